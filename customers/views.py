"""The customer list and the customer page. Views parse, check the role, call one selector or service, render."""

import csv
from collections.abc import Iterable, Iterator
from copy import copy
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.functional import cached_property
from django.views.decorators.http import require_GET, require_POST

from crm.csv_export import csv_safe
from crm.exceptions import DomainError
from crm.permissions import Capability, requires
from crm.urls_helpers import ws_reverse
from customers import selectors, services
from customers.forms import BulkTagForm, ConsentForm, CustomerFilterForm, CustomerProfileForm, NoteForm
from customers.models import EventType
from customers.timeline import timeline_entry

PAGE_SIZE = 50
COUNT_CAP = 10_000


class CappedPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 matches: ``SELECT COUNT(*) FROM (... LIMIT 10001)`` stops scanning early, so
    the list's cost does not grow with the size of the store. Beyond the cap the page says "10,000+"."""

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: COUNT_CAP + 1].count()

    @property
    def is_capped(self) -> bool:
        return self.count > COUNT_CAP


# Timeline filter groups: a rep usually wants "orders" or "emails", not one exact event type.
TIMELINE_GROUPS: dict[str, tuple[str, list[str]]] = {
    "orders": ("Orders", [EventType.ORDER_PLACED, EventType.ORDER_CANCELLED, EventType.ORDER_REFUNDED]),
    "shopping": (
        "Browsing and carts",
        [
            EventType.PAGE_VIEWED,
            EventType.PRODUCT_VIEWED,
            EventType.ADDED_TO_CART,
            EventType.CHECKOUT_STARTED,
            EventType.CART_ABANDONED,
        ],
    ),
    "email": (
        "Email",
        [
            EventType.EMAIL_SENT,
            EventType.EMAIL_OPENED,
            EventType.EMAIL_CLICKED,
            EventType.EMAIL_UNSUBSCRIBED,
            EventType.EMAIL_BOUNCED,
            EventType.EMAIL_COMPLAINED,
        ],
    ),
    "support": (
        "Support",
        [EventType.TICKET_OPENED, EventType.TICKET_REPLIED, EventType.TICKET_SOLVED, EventType.SURVEY_ANSWERED],
    ),
    "notes": ("Notes", [EventType.NOTE_ADDED]),
    "profile": (
        "Profile and consent",
        [
            EventType.CUSTOMER_CREATED,
            EventType.IDENTIFIED,
            EventType.CONSENT_CHANGED,
            EventType.PROFILE_UPDATED,
            EventType.CUSTOMERS_MERGED,
        ],
    ),
    "segments": ("Segments", [EventType.SEGMENT_ENTERED, EventType.SEGMENT_LEFT, EventType.RFM_GROUP_CHANGED]),
}


def _filter_query(params: QueryDict, *, keep: Iterable[str] | None = None) -> str:
    """The list's query string without the page number (pagination and export links add their own)."""
    allowed = set(keep) if keep is not None else None
    pairs = [
        (key, value)
        for key, value in params.items()
        if key != "page" and value != "" and (allowed is None or key in allowed)
    ]
    return urlencode(pairs)


# --- the list --------------------------------------------------------------------------------------------------


def _list_context(request: HttpRequest, params: QueryDict) -> dict:
    """The list for ``params`` (the query string, or the filters a bulk action POSTed back)."""
    form = CustomerFilterForm(params)
    filters = form.to_filters()
    customers = selectors.customer_list(workspace=request.workspace, filters=filters)
    page = CappedPaginator(customers, PAGE_SIZE).get_page(params.get("page"))
    return {
        "form": form,
        "filters": filters,
        "page": page,
        "customers": page.object_list,
        "query": _filter_query(params, keep=form.fields),
        "hidden_filters": [
            (key, value) for key, value in params.items() if value and (key in form.fields or key == "page")
        ],
        "is_filtered": any(
            value for key, value in params.items() if key in form.fields and key not in ("page", "sort")
        ),
        # Row links are built from this prefix: reversing a URL per row costs more than the rest of the row.
        "list_url": ws_reverse(request, "customers:list"),
        "count_cap": COUNT_CAP,
    }


@require_GET
@requires(Capability.VIEW)
def customer_list(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    context = _list_context(request, request.GET)
    if request.htmx and not request.htmx.boosted:
        response = render(request, "customers/list.html#results", context)
    else:
        choices = selectors.customer_filter_choices(workspace=request.workspace)
        context.update(
            tag_names=choices.tags,
            rfm_groups=choices.rfm_groups,
            countries=choices.countries,
            sorts=[(key, label) for key, (label, _) in selectors.SORTS.items()],
        )
        response = render(request, "customers/list.html", context)
    response["Vary"] = "HX-Request"
    return response


@require_POST
@requires(Capability.EDIT_CUSTOMERS)
def customer_bulk_tag(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    form = BulkTagForm(request.POST)
    filters_form = CustomerFilterForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        if data["apply_to_all"]:
            ids = list(selectors.customer_ids_matching(workspace=workspace, filters=filters_form.to_filters()))
        else:
            ids = data["customer_ids"]
        try:
            if data["action"] == "add":
                count = services.customers_add_tag(workspace=workspace, customer_ids=ids, tag=data["tag_name"])
                messages.success(
                    request, f"Tagged {count} customer{'s' if count != 1 else ''} “{data['tag_name'].strip()}”."
                )
            else:
                count = services.customers_remove_tag(workspace=workspace, customer_ids=ids, tag=data["tag_name"])
                messages.success(
                    request, f"Removed “{data['tag_name'].strip()}” from {count} customer{'s' if count != 1 else ''}."
                )
        except DomainError as error:
            messages.error(request, error.message)
        selectors.customer_filter_choices_forget(workspace=workspace)
    else:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    # The list comes back with the filters (and page) it was showing: the bulk form carries them as hidden fields.
    if request.htmx:
        return render(request, "customers/list.html#results", _list_context(request, request.POST))
    query = _filter_query(request.POST, keep=filters_form.fields)
    return redirect(ws_reverse(request, "customers:list") + (f"?{query}" if query else ""))


EXPORT_COLUMNS = [
    ("id", "id"),
    ("first_name", "first_name"),
    ("last_name", "last_name"),
    ("email", "email"),
    ("phone", "phone"),
    ("city", "city"),
    ("region", "region"),
    ("country", "country"),
    ("postcode", "postcode"),
    ("email_consent", "email_consent"),
    ("sms_consent", "sms_consent"),
    ("orders_count", "orders_count"),
    ("total_spent", "total_spent"),
    ("average_order_value", "average_order_value"),
    ("first_order_at", "first_order_at"),
    ("last_order_at", "last_order_at"),
    ("rfm_group", "rfm_group"),
    ("loyalty_points", "loyalty_points"),
    ("created_at", "created_at"),
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _export_rows(customers) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff"  # a BOM so Excel reads the file as UTF-8
    yield writer.writerow([header for header, _ in EXPORT_COLUMNS] + ["tags"])
    for customer in customers.iterator(chunk_size=2000):
        row = [getattr(customer, attribute) for _, attribute in EXPORT_COLUMNS]
        row = [value.isoformat() if hasattr(value, "isoformat") else value for value in row]
        tags = ";".join(tag.name for tag in customer.tags.all())
        yield writer.writerow([csv_safe(value) for value in [*row, tags]])


@require_GET
@requires(Capability.EXPORT_DATA)
def customer_export(request: HttpRequest, workspace_slug: str) -> StreamingHttpResponse:
    filters = CustomerFilterForm(request.GET).to_filters()
    customers = selectors.customer_list(workspace=request.workspace, filters=filters).only(
        "workspace_id", *(attribute for _, attribute in EXPORT_COLUMNS)
    )
    response = StreamingHttpResponse(_export_rows(customers), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime(timezone.now(), request.workspace.tzinfo).strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="customers-{request.workspace.slug}-{stamp}.csv"'
    return response


# --- the customer page -----------------------------------------------------------------------------------------


def _timeline_types(request: HttpRequest) -> tuple[str, list[str] | None]:
    chosen = request.GET.get("type", "")
    if chosen in TIMELINE_GROUPS:
        return chosen, [str(t) for t in TIMELINE_GROUPS[chosen][1]]
    if chosen:
        return chosen, [chosen]
    return "", None


def _timeline_context(request: HttpRequest, customer) -> dict:
    chosen, types = _timeline_types(request)
    page = selectors.customer_timeline(
        workspace=request.workspace, customer=customer, types=types, cursor=request.GET.get("cursor", "")
    )
    return {
        "timeline": [timeline_entry(event) for event in page.events],
        "next_cursor": page.next_cursor,
        "timeline_type": chosen,
        "timeline_query": urlencode({"type": chosen}) if chosen else "",
    }


def _notes_context(request: HttpRequest, customer) -> dict:
    return {"notes": selectors.customer_notes(workspace=request.workspace, customer=customer), "note_form": NoteForm()}


@require_GET
@requires(Capability.VIEW)
def customer_detail(request: HttpRequest, workspace_slug: str, customer_id: int) -> HttpResponse:
    workspace = request.workspace
    customer = selectors.customer_get(workspace=workspace, customer_id=customer_id)
    if customer.merged_into_id:
        messages.info(request, "This profile was merged into another one; you are looking at the survivor.")
        return redirect(ws_reverse(request, "customers:detail", customer_id=customer.merged_into_id))
    context = {
        "customer": customer,
        "tags": selectors.customer_tags(workspace=workspace, customer=customer),
        **_orders_context(request, customer),
        "carts": selectors.customer_open_carts(workspace=workspace, customer=customer),
        "timeline_groups": [(key, label) for key, (label, _) in TIMELINE_GROUPS.items()],
        "event_types": EventType.choices,
        "consent_form": ConsentForm(),
        **_timeline_context(request, customer),
        **_notes_context(request, customer),
    }
    return render(request, "customers/detail.html", context)


def _orders_context(request: HttpRequest, customer) -> dict:
    cursor = request.GET.get("orders_cursor", "")
    page = selectors.customer_orders(workspace=request.workspace, customer=customer, cursor=cursor)
    return {"orders": page.orders, "orders_cursor": cursor, "orders_next_cursor": page.next_cursor}


@require_GET
@requires(Capability.VIEW)
def customer_orders(request: HttpRequest, workspace_slug: str, customer_id: int) -> HttpResponse:
    """The next page of the orders tab: appended below the others with htmx; without JavaScript the same link opens
    the customer page showing that page of orders."""
    customer = selectors.customer_get(workspace=request.workspace, customer_id=customer_id)
    if not request.htmx:
        url = ws_reverse(request, "customers:detail", customer_id=customer.id)
        return redirect(f"{url}?{urlencode({'orders_cursor': request.GET.get('orders_cursor', '')})}#tab-orders")
    return render(
        request, "customers/detail.html#orders-items", {"customer": customer, **_orders_context(request, customer)}
    )


@require_GET
@requires(Capability.VIEW)
def customer_timeline(request: HttpRequest, workspace_slug: str, customer_id: int) -> HttpResponse:
    customer = selectors.customer_get(workspace=request.workspace, customer_id=customer_id)
    context = {"customer": customer, **_timeline_context(request, customer)}
    # The first page replaces the whole list (a new filter); later pages append below the "load more" row.
    partial = "timeline-items" if request.GET.get("cursor") else "timeline"
    if not request.htmx:
        return redirect(ws_reverse(request, "customers:detail", customer_id=customer.id))
    return render(request, f"customers/detail.html#{partial}", context)


def _notes_response(request: HttpRequest, customer, *, form: NoteForm | None = None) -> HttpResponse:
    context = {"customer": customer, **_notes_context(request, customer)}
    if form is not None:
        context["note_form"] = form
    response = render(request, "customers/detail.html#notes", context)
    response["HX-Trigger"] = "timeline-changed"
    return response


@require_POST
@requires(Capability.EDIT_CUSTOMERS)
def note_create(request: HttpRequest, workspace_slug: str, customer_id: int) -> HttpResponse:
    customer = selectors.customer_get(workspace=request.workspace, customer_id=customer_id)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            services.note_create(
                workspace=request.workspace,
                customer=customer,
                author=request.user,
                body=form.cleaned_data["body"],
                is_pinned=form.cleaned_data["is_pinned"],
            )
            form = None
        except DomainError as error:
            form.add_error("body", error.message)
    if request.htmx:
        return _notes_response(request, customer, form=form)
    if form is not None:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    return redirect(ws_reverse(request, "customers:detail", customer_id=customer.id))


@require_POST
@requires(Capability.EDIT_CUSTOMERS)
def note_update(request: HttpRequest, workspace_slug: str, note_id: int) -> HttpResponse:
    note = selectors.note_get(workspace=request.workspace, note_id=note_id)
    body = request.POST.get("body")
    pinned = request.POST.get("is_pinned")
    try:
        services.note_update(
            workspace=request.workspace,
            note=note,
            editor=request.user,
            body=body if body is not None else None,
            is_pinned=None if pinned is None else pinned in ("1", "true", "on"),
        )
    except DomainError as error:
        messages.error(request, error.message)
    if request.htmx:
        return _notes_response(request, note.customer)
    return redirect(ws_reverse(request, "customers:detail", customer_id=note.customer_id))


@requires(Capability.EDIT_CUSTOMERS)
def customer_edit(request: HttpRequest, workspace_slug: str, customer_id: int) -> HttpResponse:
    customer = selectors.customer_get(workspace=request.workspace, customer_id=customer_id)
    if customer.erased_at:
        messages.error(request, "This customer's data was erased; the profile cannot be edited.")
        return redirect(ws_reverse(request, "customers:detail", customer_id=customer.id))
    # The form validates a copy: a ModelForm writes cleaned values onto its instance, and the service compares
    # the changes against the stored customer to record which fields changed.
    form = CustomerProfileForm(request.POST or None, instance=copy(customer))
    if request.method == "POST" and form.is_valid():
        changes = {name: form.cleaned_data[name] for name in form.Meta.fields}
        try:
            services.customer_update_profile(
                workspace=request.workspace, customer=customer, changes=changes, actor=request.user
            )
        except DomainError as error:
            form.add_error(error.field, error.message)
        else:
            messages.success(request, "Profile saved.")
            return redirect(ws_reverse(request, "customers:detail", customer_id=customer.id))
    return render(request, "customers/edit.html", {"customer": customer, "form": form})


@require_POST
@requires(Capability.EDIT_CUSTOMERS)
def customer_consent(request: HttpRequest, workspace_slug: str, customer_id: int) -> HttpResponse:
    customer = selectors.customer_get(workspace=request.workspace, customer_id=customer_id)
    form = ConsentForm(request.POST)
    if form.is_valid():
        services.customer_set_consent(
            workspace=request.workspace,
            customer=customer,
            channel=form.cleaned_data["channel"],
            status=form.cleaned_data["status"],
            source=f"crm:{request.user.email}",
        )
        messages.success(request, "Consent updated.")
    else:
        messages.error(request, "Choose a channel and a consent status.")
    return redirect(ws_reverse(request, "customers:detail", customer_id=customer.id))


@require_POST
@requires(Capability.EDIT_CUSTOMERS)
def customer_tag(request: HttpRequest, workspace_slug: str, customer_id: int) -> HttpResponse:
    customer = selectors.customer_get(workspace=request.workspace, customer_id=customer_id)
    tag = request.POST.get("tag", "")
    try:
        if request.POST.get("action") == "remove":
            services.customers_remove_tag(workspace=request.workspace, customer_ids=[customer.id], tag=tag)
        else:
            services.customers_add_tag(workspace=request.workspace, customer_ids=[customer.id], tag=tag)
    except DomainError as error:
        messages.error(request, error.message)
    selectors.customer_filter_choices_forget(workspace=request.workspace)
    if request.htmx:
        context = {
            "customer": customer,
            "tags": selectors.customer_tags(workspace=request.workspace, customer=customer),
        }
        return render(request, "customers/detail.html#tags", context)
    return redirect(ws_reverse(request, "customers:detail", customer_id=customer.id))
