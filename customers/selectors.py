"""Reads of customer data, for this app's views and for the other apps.

``customer_get`` is the one lookup helper: a customer of another workspace is the same 404 as a missing one
(the scoped manager already refuses to see it; the explicit workspace filter keeps that true with scopes off).
"""

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.fields import TextField
from django.http import Http404

from crm.models import Workspace
from customers.models import (
    Cart,
    CartStatus,
    Customer,
    CustomerTag,
    Event,
    ImportJob,
    Note,
    Order,
    OrderLine,
)

# The search text of a customer. The PostgreSQL migration indexes exactly this expression with a pg_trgm GIN
# index, so a "contains" search over 100,000 customers is an index scan; on SQLite it is a plain scan.
SEARCH_EXPRESSION = "lower(first_name || ' ' || last_name || ' ' || email || ' ' || phone)"
PHONE_LIKE = re.compile(r"^[\d\s().+-]+$")

SORTS: dict[str, tuple[str, list]] = {
    "recent_order": ("Last order (newest)", [F("last_order_at").desc(nulls_last=True), "-id"]),
    "oldest_order": ("Last order (oldest)", [F("last_order_at").asc(nulls_last=True), "id"]),
    "spent": ("Total spent (highest)", ["-total_spent", "-id"]),
    "spent_low": ("Total spent (lowest)", ["total_spent", "id"]),
    "orders": ("Orders (most)", ["-orders_count", "-id"]),
    "name": ("Name (A–Z)", ["last_name", "first_name", "id"]),
    "name_desc": ("Name (Z–A)", ["-last_name", "-first_name", "-id"]),
    "newest": ("Newest customers", ["-created_at", "-id"]),
}
DEFAULT_SORT = "recent_order"


@dataclass(frozen=True, kw_only=True)
class CustomerFilters:
    search: str = ""
    tag: str = ""
    country: str = ""
    email_consent: str = ""
    sms_consent: str = ""
    has_ordered: bool | None = None
    spent_min: Decimal | None = None
    spent_max: Decimal | None = None
    last_order_from: dt.date | None = None
    last_order_to: dt.date | None = None
    rfm_group: str = ""
    sort: str = DEFAULT_SORT


def _search_terms(text: str) -> str:
    text = text.strip().lower()
    if PHONE_LIKE.match(text) and sum(ch.isdigit() for ch in text) >= 3:
        return re.sub(r"\D", "", text)  # "(415) 555-0100" finds +14155550100
    return re.sub(r"\s+", " ", text)


SELECTIVE_SEARCH_LIMIT = 2000


def customer_search(queryset: QuerySet[Customer], text: str) -> QuerySet[Customer]:
    """Customers whose name, email or phone contains ``text``.

    A selective search (up to SELECTIVE_SEARCH_LIMIT matches, read through the trigram index) becomes a primary-key
    list: PostgreSQL cannot estimate how many rows a ``LIKE '%...%'`` matches, and when it guesses too many it walks
    the sort index testing every customer (a 100-match phone search took 370 ms that way, 5 ms this way). A broad
    search keeps the plain filter, for which walking the sort index is the right plan."""
    terms = _search_terms(text)
    if not terms:
        return queryset
    matches = queryset.alias(search_text=RawSQL(SEARCH_EXPRESSION, (), output_field=TextField())).filter(
        search_text__contains=terms
    )
    ids = list(matches.order_by().values_list("id", flat=True)[: SELECTIVE_SEARCH_LIMIT + 1])
    if len(ids) <= SELECTIVE_SEARCH_LIMIT:
        return queryset.filter(id__in=ids)
    return matches


def customer_list(*, workspace: Workspace, filters: CustomerFilters) -> QuerySet[Customer]:
    """Live (not merged) customers matching ``filters``, sorted. Tags are prefetched for the page shown."""
    customers: QuerySet[Customer] = Customer.objects.filter(workspace=workspace, merged_into__isnull=True)
    if filters.search:
        customers = customer_search(customers, filters.search)
    if filters.tag:
        customers = _with_tag(customers, workspace=workspace, tag=filters.tag)
    if filters.country:
        customers = customers.filter(country=filters.country.upper())
    if filters.email_consent:
        customers = customers.filter(email_consent=filters.email_consent)
    if filters.sms_consent:
        customers = customers.filter(sms_consent=filters.sms_consent)
    if filters.has_ordered is True:
        customers = customers.filter(orders_count__gt=0)
    elif filters.has_ordered is False:
        customers = customers.filter(orders_count=0)
    if filters.spent_min is not None:
        customers = customers.filter(total_spent__gte=filters.spent_min)
    if filters.spent_max is not None:
        customers = customers.filter(total_spent__lte=filters.spent_max)
    tz = workspace.tzinfo
    if filters.last_order_from is not None:
        start = dt.datetime.combine(filters.last_order_from, dt.time.min, tzinfo=tz)
        customers = customers.filter(last_order_at__gte=start)
    if filters.last_order_to is not None:
        end = dt.datetime.combine(filters.last_order_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        customers = customers.filter(last_order_at__lt=end)
    if filters.rfm_group:
        customers = customers.filter(rfm_group=filters.rfm_group)
    _, ordering = SORTS.get(filters.sort, SORTS[DEFAULT_SORT])
    return (
        customers.order_by(*ordering)
        .only(*LIST_COLUMNS)
        .prefetch_related(
            Prefetch(
                "tags",
                queryset=CustomerTag.objects.filter(workspace=workspace).only("customer_id", "name").order_by("name"),
            )
        )
    )


SELECTIVE_TAG_LIMIT = 5000


def _with_tag(customers: QuerySet[Customer], *, workspace: Workspace, tag: str) -> QuerySet[Customer]:
    """Most tags mark a few customers: their ids (read from the (workspace, name) index) make the list an index
    lookup by primary key. PostgreSQL would otherwise hash-join the tags against a scan of every customer. A tag
    on more than SELECTIVE_TAG_LIMIT customers is filtered with EXISTS instead."""
    tags = CustomerTag.objects.filter(workspace=workspace, name=tag)
    ids = list(tags.values_list("customer_id", flat=True)[: SELECTIVE_TAG_LIMIT + 1])
    if len(ids) <= SELECTIVE_TAG_LIMIT:
        return customers.filter(id__in=ids)
    return customers.filter(Exists(tags.filter(customer_id=OuterRef("pk"))))


LIST_COLUMNS = (
    "id",
    "workspace_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "country",
    "city",
    "email_consent",
    "sms_consent",
    "orders_count",
    "total_spent",
    "last_order_at",
    "rfm_group",
    "erased_at",
    "created_at",
)


def customer_ids_matching(*, workspace: Workspace, filters: CustomerFilters) -> QuerySet:
    """The ids of every customer matching ``filters`` (for "apply to all matching" bulk actions)."""
    return (
        customer_list(workspace=workspace, filters=filters)
        .prefetch_related(None)
        .order_by()
        .values_list("id", flat=True)
    )


def customer_tag_names(*, workspace: Workspace) -> list[str]:
    return list(
        CustomerTag.objects.filter(workspace=workspace).order_by("name").values_list("name", flat=True).distinct()
    )


def customer_rfm_groups(*, workspace: Workspace) -> list[str]:
    return list(
        Customer.objects.filter(workspace=workspace)
        .exclude(rfm_group="")
        .order_by("rfm_group")
        .values_list("rfm_group", flat=True)
        .distinct()
    )


def customer_countries(*, workspace: Workspace) -> list[str]:
    return list(
        Customer.objects.filter(workspace=workspace)
        .exclude(country="")
        .order_by("country")
        .values_list("country", flat=True)
        .distinct()
    )


@dataclass(frozen=True, kw_only=True)
class FilterChoices:
    tags: list[str]
    rfm_groups: list[str]
    countries: list[str]


FILTER_CHOICES_SECONDS = 60


def _filter_choices_key(workspace: Workspace) -> str:
    return f"customers:filter-choices:{workspace.id}"


def customer_filter_choices(*, workspace: Workspace) -> FilterChoices:
    """The values the list's dropdowns offer. Three DISTINCT scans over every customer are the costliest part of
    the full page at 100,000 customers, so they are cached briefly (shared cache: Redis in production)."""
    key = _filter_choices_key(workspace)
    cached = cache.get(key)
    if cached is None:
        cached = FilterChoices(
            tags=customer_tag_names(workspace=workspace),
            rfm_groups=customer_rfm_groups(workspace=workspace),
            countries=customer_countries(workspace=workspace),
        )
        cache.set(key, cached, FILTER_CHOICES_SECONDS)
    return cached


def customer_filter_choices_forget(*, workspace: Workspace) -> None:
    cache.delete(_filter_choices_key(workspace))


def customer_get(*, workspace: Workspace, customer_id: int) -> Customer:
    customer = Customer.objects.filter(workspace=workspace, pk=customer_id).first()
    if customer is None:
        raise Http404("No such customer")
    return customer


def customer_tags(*, workspace: Workspace, customer: Customer) -> list[str]:
    return list(
        CustomerTag.objects.filter(workspace=workspace, customer=customer)
        .order_by("name")
        .values_list("name", flat=True)
    )


# --- the timeline ----------------------------------------------------------------------------------------------

TIMELINE_PAGE_SIZE = 25


@dataclass(frozen=True, kw_only=True)
class TimelinePage:
    events: list[Event]
    next_cursor: str  # "" when this is the last page


def _encode_cursor(event: Event) -> str:
    return f"{event.occurred_at.timestamp():.6f}_{event.id}"


def _decode_cursor(cursor: str) -> tuple[dt.datetime, int] | None:
    try:
        stamp, event_id = cursor.split("_", 1)
        return dt.datetime.fromtimestamp(float(stamp), tz=dt.UTC), int(event_id)
    except (ValueError, OverflowError, OSError):
        return None


def customer_timeline(
    *,
    workspace: Workspace,
    customer: Customer,
    types: list[str] | None = None,
    cursor: str = "",
    page_size: int = TIMELINE_PAGE_SIZE,
) -> TimelinePage:
    """One page of the customer's events, newest first, after ``cursor`` (keyset pagination on
    (occurred_at, id), served by the (workspace, customer, -occurred_at) index)."""
    events = Event.objects.filter(workspace=workspace, customer=customer)
    if types:
        events = events.filter(type__in=types)
    position = _decode_cursor(cursor) if cursor else None
    if position is not None:
        occurred_at, event_id = position
        events = events.filter(Q(occurred_at__lt=occurred_at) | Q(occurred_at=occurred_at, id__lt=event_id))
    page = list(events.order_by("-occurred_at", "-id")[: page_size + 1])
    has_more = len(page) > page_size
    page = page[:page_size]
    return TimelinePage(events=page, next_cursor=_encode_cursor(page[-1]) if has_more and page else "")


# --- the customer page -----------------------------------------------------------------------------------------


ORDERS_PAGE_SIZE = 20


@dataclass(frozen=True, kw_only=True)
class OrdersPage:
    orders: list[Order]
    next_cursor: str  # "" when this is the last page


def customer_orders(
    *, workspace: Workspace, customer: Customer, cursor: str = "", page_size: int = ORDERS_PAGE_SIZE
) -> OrdersPage:
    """One page of the customer's orders with their lines, newest first, after ``cursor`` (keyset pagination on
    (placed_at, id), served by the (workspace, customer, placed_at) index)."""
    orders = Order.objects.filter(workspace=workspace, customer=customer)
    position = _decode_cursor(cursor) if cursor else None
    if position is not None:
        placed_at, order_id = position
        orders = orders.filter(Q(placed_at__lt=placed_at) | Q(placed_at=placed_at, id__lt=order_id))
    page = list(
        orders.order_by("-placed_at", "-id").prefetch_related(
            Prefetch("lines", queryset=OrderLine.objects.filter(workspace=workspace).order_by("id"))
        )[: page_size + 1]
    )
    has_more = len(page) > page_size
    page = page[:page_size]
    next_cursor = f"{page[-1].placed_at.timestamp():.6f}_{page[-1].id}" if has_more and page else ""
    return OrdersPage(orders=page, next_cursor=next_cursor)


def customer_open_carts(*, workspace: Workspace, customer: Customer) -> list[Cart]:
    return list(
        Cart.objects.filter(
            workspace=workspace, customer=customer, status__in=[CartStatus.OPEN, CartStatus.ABANDONED]
        ).order_by("-last_activity_at")
    )


def customer_notes(*, workspace: Workspace, customer: Customer) -> list[Note]:
    return list(
        Note.objects.filter(workspace=workspace, customer=customer)
        .select_related("author")
        .order_by("-is_pinned", "-created_at")
    )


def note_get(*, workspace: Workspace, note_id: int) -> Note:
    note = Note.objects.filter(workspace=workspace, pk=note_id).select_related("customer", "author").first()
    if note is None:
        raise Http404("No such note")
    return note


def import_job_get(*, workspace: Workspace, import_id: int) -> ImportJob:
    job = ImportJob.objects.filter(workspace=workspace, pk=import_id).first()
    if job is None:
        raise Http404("No such import")
    return job


def import_jobs_recent(*, workspace: Workspace, limit: int = 10) -> list[ImportJob]:
    return list(ImportJob.objects.filter(workspace=workspace).order_by("-created_at")[:limit])
