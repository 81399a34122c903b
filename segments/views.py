"""Segments pages: list, builder (htmx live preview), detail with members and size chart, CSV export, RFM page."""

import csv
import json

import plotly.graph_objects as go
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from crm.csv_export import csv_safe
from crm.exceptions import DomainError
from crm.permissions import Capability, requires
from crm.urls_helpers import ws_reverse
from segments import compiler, forms, rfm, selectors, services
from segments.models import Segment

SAMPLE_SIZE = 10


@requires(Capability.VIEW)
@require_GET
def list(request: HttpRequest, workspace_slug: str) -> HttpResponse:  # noqa: A001 - the URL name other apps use
    workspace = request.workspace
    segments = selectors.segment_list(workspace=workspace)
    starter_keys = {d["key"] for d in services.starter_definitions(workspace=workspace)}
    existing = set(segments.values_list("starter_key", flat=True))
    return render(
        request,
        "segments/list.html",
        {"segments": segments, "missing_starters": len(starter_keys - existing), "tab": "segments"},
    )


# ---- the builder ---------------------------------------------------------------------------------------------


def _preview(request: HttpRequest, rules: dict, segment_id: int | None) -> dict:
    """Count and sample for the rule being edited, or the problems that keep it from compiling."""
    workspace = request.workspace
    try:
        queryset = compiler.rules_queryset(rules, workspace=workspace, segment_id=segment_id)
        count = compiler.exact_count(queryset)
        sample = queryset.order_by("-total_spent", "pk")[:SAMPLE_SIZE]
        return {"count": count, "sample": sample, "problems": {}}
    except compiler.RuleError as error:
        return {"count": None, "sample": [], "problems": error.problems}


def _builder_context(request: HttpRequest, *, rules: dict, segment: Segment | None, meta: forms.SegmentMetaForm):
    segment_id = segment.pk if segment else None
    preview = _preview(request, rules, segment_id)
    choices = forms.builder_choices(workspace=request.workspace, exclude_segment_id=segment_id)
    return {
        "segment": segment,
        "meta": meta,
        "rules_json": json.dumps(rules),
        "root": forms.view_tree(rules, choices=choices, problems=preview["problems"], segment_id=segment_id),
        "choices": choices,
        "field_groups": forms.field_groups(),
        "months": compiler.MONTHS,
        "preview": preview,
        "problem_list": [
            (compiler.describe_path(path), message) for path, message in sorted(preview["problems"].items())
        ],
        "tab": "segments",
    }


def _builder_page(request: HttpRequest, segment: Segment | None) -> HttpResponse:
    workspace = request.workspace
    if request.method == "POST":
        meta = forms.SegmentMetaForm(request.POST)
        rules = forms.tree_from_post(request.POST)
        if meta.is_valid():
            try:
                if segment is None and request.POST.get("save_as") == "static":
                    saved = services.segment_freeze(
                        workspace=workspace, name=meta.cleaned_data["name"], rules=rules, created_by=request.user
                    )
                elif segment is None:
                    saved = services.segment_create(
                        workspace=workspace,
                        name=meta.cleaned_data["name"],
                        description=meta.cleaned_data["description"],
                        rules=rules,
                        created_by=request.user,
                    )
                else:
                    saved = services.segment_update(
                        workspace=workspace,
                        segment=segment,
                        name=meta.cleaned_data["name"],
                        description=meta.cleaned_data["description"],
                        rules=rules,
                    )
            except compiler.RuleError:
                messages.error(request, "The rule is not finished yet: see the conditions marked in red.")
            except DomainError as error:
                meta.add_error("name" if error.field == "name" else None, error.message)
            else:
                messages.success(request, f"Saved '{saved.name}': {saved.size} customers.")
                return redirect(ws_reverse(request, "segments:detail", segment_id=saved.pk))
        status = 400
    else:
        status = 200
        if segment is not None:
            meta = forms.SegmentMetaForm(initial={"name": segment.name, "description": segment.description})
            rules = segment.rules
        else:
            meta = forms.SegmentMetaForm()
            rules = compiler.group("all", forms.blank_condition())
    context = _builder_context(request, rules=rules, segment=segment, meta=meta)
    return render(request, "segments/builder.html", context, status=status)


@requires(Capability.MANAGE_SEGMENTS)
def segment_new(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    return _builder_page(request, None)


@requires(Capability.MANAGE_SEGMENTS)
def segment_edit(request: HttpRequest, workspace_slug: str, segment_id: int) -> HttpResponse:
    segment = selectors.segment_get(workspace=request.workspace, segment_id=segment_id)
    if not segment.is_dynamic:
        messages.info(request, "A static segment is a fixed list: rename, duplicate or delete it instead.")
        return redirect(ws_reverse(request, "segments:detail", segment_id=segment.pk))
    return _builder_page(request, segment)


@requires(Capability.MANAGE_SEGMENTS)
@require_POST
def builder_preview(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    """htmx: the re-rendered tree (after an add/remove action or a field change) plus the live count and sample."""
    segment = None
    if request.POST.get("segment_id", "").isdigit() and len(request.POST["segment_id"]) < 18:
        segment = selectors.segment_get(workspace=request.workspace, segment_id=int(request.POST["segment_id"]))
    rules = forms.tree_from_post(request.POST)
    if request.POST.get("action"):
        rules = forms.apply_action(rules, request.POST["action"])
    context = _builder_context(request, rules=rules, segment=segment, meta=forms.SegmentMetaForm(request.POST))
    response = render(request, "segments/builder.html#builder", context)
    response["Vary"] = "HX-Request"
    return response


# ---- one segment ---------------------------------------------------------------------------------------------


def _size_chart(history) -> str:
    figure = go.Figure(
        go.Scatter(
            x=[point.recorded_at for point in history],
            y=[point.size for point in history],
            mode="lines+markers",
            line={"shape": "hv", "color": "#3b5bdb"},
            hovertemplate="%{x|%d %b %H:%M}: %{y} customers<extra></extra>",
        )
    )
    figure.update_layout(
        margin={"l": 40, "r": 10, "t": 10, "b": 30}, height=220, yaxis={"rangemode": "tozero"}, template="plotly_white"
    )
    return figure.to_json()


@requires(Capability.VIEW)
@require_GET
def segment_detail(request: HttpRequest, workspace_slug: str, segment_id: int) -> HttpResponse:
    workspace = request.workspace
    segment = selectors.segment_get(workspace=workspace, segment_id=segment_id)
    customers = selectors.segment_customers(workspace=workspace, segment=segment).order_by("-total_spent", "pk")
    page = Paginator(customers, 25).get_page(request.GET.get("page"))
    history = selectors.segment_size_history(workspace=workspace, segment=segment)
    problems = []
    if segment.is_dynamic:
        try:
            compiler.compile_rules(segment.rules, workspace=workspace, segment_id=segment.pk)
        except compiler.RuleError as error:
            problems = [(compiler.describe_path(p), m) for p, m in sorted(error.problems.items())]
    context = {
        "segment": segment,
        "page": page,
        "history": history,
        "chart_json": _size_chart(history) if len(history) > 1 else "",
        "rule_summary": _summary(segment.rules, workspace) if segment.rules else "",
        "problems": problems,
        "tab": "segments",
    }
    if request.htmx:
        return render(request, "segments/detail.html#members", context)
    return render(request, "segments/detail.html", context)


NEGATIVE_ACTIVITY = {
    "bought_product": "Did not buy product",
    "bought_category": "Did not buy in category",
    "used_discount": "Did not use a discount code",
    "event": "No storefront activity:",
    "email_received": "Did not receive an email",
    "email_opened": "Did not open an email",
    "email_clicked": "Did not click an email",
    "email_unsubscribed": "Did not unsubscribe",
    "email_bounced": "Had no email bounce",
}


def _summary(node: dict, workspace, *, top: bool = True) -> str:
    """The rule in words, for the detail page."""
    if node.get("type") == "group":
        joiner = " and " if node.get("match") == "all" else " or "
        parts = [_summary(child, workspace, top=False) for child in node.get("children") or []]
        text = joiner.join(p for p in parts if p)
        return text if top or len(parts) < 2 else f"({text})"
    spec = compiler.fields().get(node.get("field") or "")
    if spec is None:
        return "(incomplete condition)"
    operator = node.get("operator") or ""
    if spec.kind == "activity":
        positive = "Storefront activity:" if spec.key == "event" else spec.label
        words = [positive if operator == "did" else NEGATIVE_ACTIVITY[spec.key]]
        if node.get("value"):
            words.append(_choice_label(spec, node["value"], workspace))
        if node.get("times") and str(node["times"]) != "1":
            words.append(f"at least {node['times']} times")
        if node.get("days"):
            words.append(f"in the last {node['days']} days")
        return " ".join(words)
    words = [f"{spec.label} '{node.get('key', '')}'" if spec.key == "custom_attribute" else spec.label]
    if operator == "in_last_days":
        words.append(f"is in the last {node.get('days')} days")
    elif operator == "not_in_last_days":
        words.append(f"is more than {node.get('days')} days ago")
    else:
        words.append(compiler.OPERATORS.get(operator, operator))
        if operator not in compiler.VALUELESS:
            words.append(_choice_label(spec, node.get("value", ""), workspace))
            if operator == "between":
                words.append(f"and {node.get('value2', '')}")
    return " ".join(str(w) for w in words)


def _choice_label(spec, value, workspace) -> str:
    if spec.kind == "segment":
        other = Segment.objects.filter(workspace=workspace, pk=value).first() if str(value).isdigit() else None
        return f"'{other.name}'" if other else "(deleted segment)"
    if spec.activity == "product":
        from customers.models import Product

        product = Product.objects.filter(workspace=workspace, pk=value).first() if str(value).isdigit() else None
        return f"'{product.title}'" if product else "(deleted product)"
    for key, label in spec.choices:
        if key == str(value):
            return label if spec.kind != "activity" else label.lower()
    if spec.kind in ("number", "nullable_number", "date"):
        return str(value)
    return f"'{value}'"


@requires(Capability.MANAGE_SEGMENTS)
@require_POST
def segment_rename(request: HttpRequest, workspace_slug: str, segment_id: int) -> HttpResponse:
    segment = selectors.segment_get(workspace=request.workspace, segment_id=segment_id)
    form = forms.RenameForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the segment a name.")
    else:
        try:
            services.segment_rename(workspace=request.workspace, segment=segment, name=form.cleaned_data["name"])
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Renamed to '{segment.name}'.")
    return redirect(ws_reverse(request, "segments:detail", segment_id=segment.pk))


@requires(Capability.MANAGE_SEGMENTS)
@require_POST
def segment_duplicate(request: HttpRequest, workspace_slug: str, segment_id: int) -> HttpResponse:
    segment = selectors.segment_get(workspace=request.workspace, segment_id=segment_id)
    try:
        copy = services.segment_duplicate(workspace=request.workspace, segment=segment, created_by=request.user)
    except compiler.RuleError as error:
        messages.error(request, f"Could not duplicate: {error.message}")
        return redirect(ws_reverse(request, "segments:detail", segment_id=segment.pk))
    messages.success(request, f"Created '{copy.name}'.")
    return redirect(ws_reverse(request, "segments:detail", segment_id=copy.pk))


@requires(Capability.MANAGE_SEGMENTS)
@require_POST
def segment_delete(request: HttpRequest, workspace_slug: str, segment_id: int) -> HttpResponse:
    segment = selectors.segment_get(workspace=request.workspace, segment_id=segment_id)
    name = segment.name
    try:
        services.segment_delete(workspace=request.workspace, segment=segment)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect(ws_reverse(request, "segments:detail", segment_id=segment.pk))
    messages.success(request, f"Deleted '{name}'.")
    return redirect(ws_reverse(request, "segments:list"))


@requires(Capability.MANAGE_SEGMENTS)
@require_POST
def segment_refresh(request: HttpRequest, workspace_slug: str, segment_id: int) -> HttpResponse:
    segment = selectors.segment_get(workspace=request.workspace, segment_id=segment_id)
    try:
        result = services.segment_refresh(workspace=request.workspace, segment=segment)
    except compiler.RuleError as error:
        messages.error(request, f"Not refreshed: {error.message}")
    else:
        messages.success(request, f"Refreshed: {result.size} customers ({result.entered} joined, {result.left} left).")
    return redirect(ws_reverse(request, "segments:detail", segment_id=segment.pk))


class _Echo:
    def write(self, value: str) -> str:
        return value


EXPORT_COLUMNS = [
    ("id", "pk"),
    ("email", "email"),
    ("first_name", "first_name"),
    ("last_name", "last_name"),
    ("phone", "phone"),
    ("city", "city"),
    ("country", "country"),
    ("email_consent", "email_consent"),
    ("orders_count", "orders_count"),
    ("total_spent", "total_spent"),
    ("last_order_at", "last_order_at"),
    ("rfm_group", "rfm_group"),
    ("rfm_recency", "rfm_recency"),
    ("rfm_frequency", "rfm_frequency"),
    ("rfm_monetary", "rfm_monetary"),
]


@requires(Capability.EXPORT_DATA)
@require_GET
def segment_export(request: HttpRequest, workspace_slug: str, segment_id: int) -> StreamingHttpResponse:
    workspace = request.workspace
    segment = selectors.segment_get(workspace=workspace, segment_id=segment_id)
    rows = (
        selectors.segment_customers(workspace=workspace, segment=segment)
        .order_by("pk")
        .values_list(*[attribute for _, attribute in EXPORT_COLUMNS])
    )
    writer = csv.writer(_Echo())

    def stream():
        yield writer.writerow([name for name, _ in EXPORT_COLUMNS])
        for row in rows.iterator(chunk_size=2000):
            yield writer.writerow([csv_safe(cell) for cell in row])

    filename = f"segment-{segment.pk}-{timezone.localdate(timezone=workspace.tzinfo):%Y%m%d}.csv"
    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@requires(Capability.MANAGE_SEGMENTS)
@require_POST
def starters_create(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    created = services.segments_create_starters(workspace=request.workspace, created_by=request.user)
    if created:
        messages.success(request, f"Added {len(created)} starter segments: {', '.join(s.name for s in created)}.")
    else:
        messages.info(request, "All starter segments are already here.")
    return redirect(ws_reverse(request, "segments:list"))


@requires(Capability.MANAGE_SEGMENTS)
def segment_import(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    form = forms.CsvSegmentForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            result = services.segment_create_from_csv(
                workspace=request.workspace,
                name=form.cleaned_data["name"],
                file=form.cleaned_data["file"],
                created_by=request.user,
            )
        except DomainError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            text = f"'{result.segment.name}' holds {result.matched} customers."
            if result.unknown:
                text += f" Not found: {', '.join(result.unknown)}{'…' if len(result.unknown) == 20 else ''}."
            if result.invalid_rows:
                text += f" Lines without an email: {', '.join(map(str, result.invalid_rows))}."
            messages.success(request, text)
            return redirect(ws_reverse(request, "segments:detail", segment_id=result.segment.pk))
    return render(
        request, "segments/import.html", {"form": form, "tab": "segments"}, status=400 if form.errors else 200
    )


# ---- RFM -----------------------------------------------------------------------------------------------------


@requires(Capability.VIEW)
@require_GET
def rfm_page(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    overview = selectors.rfm_overview(workspace=workspace)
    settings = selectors.rfm_settings_get(workspace=workspace)
    mapping = rfm.group_map_with_overrides(settings.group_map)
    map_rows = [
        (recency, [(fm, mapping[(recency, fm)], rfm.DEFAULT_GROUP_MAP[(recency, fm)]) for fm in range(1, 6)])
        for recency in range(5, 0, -1)
    ]
    return render(
        request,
        "segments/rfm.html",
        {
            "overview": overview,
            "grid": [
                [(cell, round(0.06 + 0.6 * cell.customers / (overview.max_cell_customers or 1), 2)) for cell in row]
                for row in overview.grid_rows
            ],
            "settings": settings,
            "settings_form": forms.RfmSettingsForm(initial={"window_days": settings.window_days}),
            "map_rows": map_rows,
            "group_names": [g for g in rfm.GROUP_NAMES if g != rfm.PROSPECTS],
            "customers_url": ws_reverse(request, "customers:list"),
            "tab": "rfm",
        },
    )


@requires(Capability.MANAGE_SEGMENTS)
@require_POST
def rfm_rescore(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    result = services.rfm_rescore(workspace=request.workspace)
    messages.success(
        request,
        f"Rescored {result.customers} customers: {result.updated} changed, {result.group_changes} changed group.",
    )
    return redirect(ws_reverse(request, "segments:rfm"))


@requires(Capability.MANAGE_SEGMENTS)
@require_POST
def rfm_settings(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    form = forms.RfmSettingsForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The scoring window must be a whole number of days between 1 and 3650, or empty.")
        return redirect(ws_reverse(request, "segments:rfm"))
    group_map = {
        f"{recency},{fm}": request.POST[f"map-{recency}-{fm}"]
        for recency in range(1, 6)
        for fm in range(1, 6)
        if f"map-{recency}-{fm}" in request.POST
    }
    try:
        services.rfm_settings_update(
            workspace=request.workspace, window_days=form.cleaned_data["window_days"], group_map=group_map
        )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        result = services.rfm_rescore(workspace=request.workspace)
        messages.success(request, f"Settings saved and {result.customers} customers rescored.")
    return redirect(ws_reverse(request, "segments:rfm"))
