"""Analytics writes: rollups (rebuilt for a day range in bulk SQL, refreshed incrementally) and predictions.

``rollups_refresh(workspace=..., start=..., end=...)`` is the one entry point other code calls for the local days
that changed (an order upsert, a sync, the nightly task). It is idempotent: it recomputes those days from the
source rows and overwrites them, so it can be called as often as wanted, concurrently with reads.
"""

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

import pandas as pd
from django.db import transaction
from django.db.models import Count, DateField, Max, Min, Q, Sum
from django.db.models.functions import ExtractHour, TruncDate, TruncMonth
from django.utils import timezone

from analytics.models import CohortMetrics, DailyMetrics, ProductDailyMetrics, RollupState
from analytics.transforms import (
    ACTIVE_WINDOW_DAYS,
    STOREFRONT_TYPES,
    daily_customer_metrics,
    daily_lapses,
    daily_session_metrics,
    order_day_flags,
    sessionize,
)
from crm.models import Workspace
from customers.models import Cart, CartStatus, Customer, Event, Order, OrderLine, OrderStatus

logger = logging.getLogger(__name__)

CHUNK_ROWS = 300_000  # orders + storefront events loaded per chunk of days: bounds memory on big stores
WINDOW = dt.timedelta(days=ACTIVE_WINDOW_DAYS)
ZERO = Decimal("0")


def local_bounds(workspace: Workspace, start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The aware instants [start 00:00, (end + 1) 00:00) of local days in the workspace's timezone."""
    tz = workspace.tzinfo
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=tz),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
    )


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


def first_activity_date(*, workspace: Workspace) -> dt.date | None:
    first_order = (
        Order.objects.filter(workspace=workspace).order_by("placed_at").values_list("placed_at", flat=True)[:1]
    )
    first_event = Event.objects.filter(workspace=workspace, type__in=STOREFRONT_TYPES).order_by("occurred_at")
    candidates = [*first_order, *first_event.values_list("occurred_at", flat=True)[:1]]
    if not candidates:
        return None
    return timezone.localtime(min(candidates), workspace.tzinfo).date()


def rollups_rebuild(*, workspace: Workspace) -> int:
    """Rebuild every rollup of a workspace from its first order or storefront event to today."""
    start = first_activity_date(workspace=workspace)
    today = workspace.today()
    if start is None:
        DailyMetrics.objects.filter(workspace=workspace).delete()
        ProductDailyMetrics.objects.filter(workspace=workspace).delete()
        CohortMetrics.objects.filter(workspace=workspace).delete()
        return 0
    DailyMetrics.objects.filter(workspace=workspace, date__lt=start).delete()
    days = rollups_refresh(workspace=workspace, start=start, end=today)
    RollupState.objects.filter(workspace=workspace).update(last_full_rebuild_at=timezone.now())
    return days


def rollups_refresh(*, workspace: Workspace, start: dt.date, end: dt.date) -> int:
    """Recompute every rollup for the local days [start, end] (and the active-customer counts those days move).

    Returns the number of days written. Long ranges are processed in month-sized chunks so memory stays flat.
    """
    if end < start:
        return 0
    today = workspace.today()
    end = min(end, today)
    if end < start:
        return 0
    started_at = timezone.now()  # the watermark: rows changed while this runs are picked up by the next refresh
    chunk_days = _chunk_days(workspace=workspace, start=start, end=end)
    chunk_start = start
    while chunk_start <= end:
        chunk_end = min(chunk_start + dt.timedelta(days=chunk_days - 1), end)
        _refresh_days(workspace=workspace, start=chunk_start, end=chunk_end)
        chunk_start = chunk_end + dt.timedelta(days=1)
    _refresh_customer_days(workspace=workspace, start=start, end=end, today=today)
    _refresh_cohorts(workspace=workspace, start=start, end=end)
    state, _ = RollupState.objects.get_or_create(workspace=workspace)
    state.last_refreshed_at = started_at
    state.save(update_fields=["last_refreshed_at"])
    return (end - start).days + 1


def _chunk_days(*, workspace: Workspace, start: dt.date, end: dt.date) -> int:
    """How many days to process at once so a chunk holds about CHUNK_ROWS orders and events (at least a week)."""
    days = (end - start).days + 1
    if days <= 7:
        return days
    lower, upper = local_bounds(workspace, start, end)
    rows = Order.objects.filter(workspace=workspace, placed_at__gte=lower, placed_at__lt=upper).count()
    rows += Event.objects.filter(
        workspace=workspace, type__in=STOREFRONT_TYPES, occurred_at__gte=lower, occurred_at__lt=upper
    ).count()
    return max(7, min(days, int(days * CHUNK_ROWS / max(rows, 1))))


def rollups_refresh_for_instants(*, workspace: Workspace, instants: list[dt.datetime]) -> int:
    """Refresh the local days an ingestion touched (e.g. the placed_at of upserted orders)."""
    if not instants:
        return 0
    days = [timezone.localtime(moment, workspace.tzinfo).date() for moment in instants]
    return rollups_refresh(workspace=workspace, start=min(days), end=max(days))


def rollups_refresh_changed(*, workspace: Workspace) -> int:
    """Refresh the days of orders and carts changed since the last refresh (a backfilled import, a refund on an
    old order), and always today and yesterday (storefront events arrive all the time)."""
    state = RollupState.objects.filter(workspace=workspace).first()
    if state is None or state.last_refreshed_at is None:
        return rollups_rebuild(workspace=workspace)
    since = state.last_refreshed_at
    instants = []
    for queryset, field in (
        (Order.objects.filter(workspace=workspace, updated_at__gte=since), "placed_at"),
        (Cart.objects.filter(workspace=workspace, updated_at__gte=since), "started_at"),
    ):
        span = queryset.aggregate(first=Min(field), last=Max(field))
        instants += [moment for moment in span.values() if moment is not None]
    today = workspace.today()
    days = [timezone.localtime(moment, workspace.tzinfo).date() for moment in instants]
    start = min([*days, today - dt.timedelta(days=1)])
    return rollups_refresh(workspace=workspace, start=start, end=today)


def rollups_refresh_recent(*, workspace: Workspace, days: int = 2) -> int:
    today = workspace.today()
    return rollups_refresh(workspace=workspace, start=today - dt.timedelta(days=days - 1), end=today)


# --- one chunk of days: everything that is a plain sum per day ------------------------------------------------


def _per_day(queryset, field: str, tz) -> dict:
    return {row["day"]: row for row in queryset.annotate(day=TruncDate(field, tzinfo=tz)).values("day")}


@transaction.atomic
def _refresh_days(*, workspace: Workspace, start: dt.date, end: dt.date) -> None:
    tz = workspace.tzinfo
    lower, upper = local_bounds(workspace, start, end)
    not_cancelled = ~Q(status=OrderStatus.CANCELLED)
    rows: dict[dt.date, dict[str, Any]] = {day: {"date": day} for day in _days(start, end)}

    orders = (
        Order.objects.filter(workspace=workspace, placed_at__gte=lower, placed_at__lt=upper)
        .annotate(day=TruncDate("placed_at", tzinfo=tz))
        .values("day")
        .annotate(
            revenue=Sum("net_total"),
            orders=Count("id", filter=not_cancelled),
            discount_total=Sum("discount_total", filter=not_cancelled),
            guest_orders=Count("id", filter=not_cancelled & Q(customer__isnull=True)),
        )
    )
    for order_row in orders:
        rows[order_row["day"]].update(
            revenue=order_row["revenue"] or ZERO,
            orders=order_row["orders"],
            discount_total=order_row["discount_total"] or ZERO,
            guest_orders=order_row["guest_orders"],
        )
    for day, hour, count in _hourly(
        Order.objects.filter(workspace=workspace, placed_at__gte=lower, placed_at__lt=upper).filter(not_cancelled),
        "placed_at",
        tz,
    ):
        rows[day].setdefault("orders_by_hour", [0] * 24)[hour] = count

    carts = (
        Cart.objects.filter(workspace=workspace, started_at__gte=lower, started_at__lt=upper)
        .annotate(day=TruncDate("started_at", tzinfo=tz))
        .values("day")
        .annotate(
            carts_started=Count("id"),
            carts_abandoned=Count("id", filter=Q(status__in=[CartStatus.ABANDONED, CartStatus.RECOVERED])),
            carts_recovered=Count("id", filter=Q(status=CartStatus.RECOVERED)),
        )
    )
    for cart_row in carts:
        rows[cart_row["day"]].update({key: value for key, value in cart_row.items() if key != "day"})

    for field, score_field, extra in (
        (
            "last_nps_at",
            "last_nps_score",
            {"nps_promoters": Q(last_nps_score__gte=9), "nps_detractors": Q(last_nps_score__lte=6)},
        ),
        ("last_csat_at", "last_csat_score", {"csat_satisfied": Q(last_csat_score__gte=4)}),
    ):
        responses = "nps_responses" if field == "last_nps_at" else "csat_responses"
        survey = (
            Customer.objects.filter(workspace=workspace, **{f"{field}__gte": lower, f"{field}__lt": upper})
            .filter(**{f"{score_field}__isnull": False})
            .annotate(day=TruncDate(field, tzinfo=tz))
            .values("day")
            .annotate(**{responses: Count("id")}, **{name: Count("id", filter=cond) for name, cond in extra.items()})
        )
        for survey_row in survey:
            rows[survey_row["day"]].update({key: value for key, value in survey_row.items() if key != "day"})

    storefront = Event.objects.filter(workspace=workspace, type__in=STOREFRONT_TYPES)
    for day, hour, count in _hourly(
        storefront.filter(occurred_at__gte=lower, occurred_at__lt=upper).exclude(type="order_placed"), "occurred_at", tz
    ):
        rows[day].setdefault("events_by_hour", [0] * 24)[hour] = count
    events = pd.DataFrame.from_records(
        storefront.filter(
            occurred_at__gte=lower - dt.timedelta(hours=6), occurred_at__lt=upper + dt.timedelta(hours=6)
        ).values_list("customer_id", "anonymous_id", "type", "occurred_at"),
        columns=["customer_id", "anonymous_id", "type", "occurred_at"],
    )
    if not events.empty:
        events["visitor"] = ("c" + events["customer_id"].astype("Int64").astype(str)).where(
            events["customer_id"].notna(), "a" + events["anonymous_id"]
        )
        sessions = sessionize(events[["visitor", "type", "occurred_at"]], tz=workspace.timezone)
        sessions = sessions[(sessions["day"] >= start) & (sessions["day"] <= end)]
        for day, values in daily_session_metrics(sessions).iterrows():
            rows[day].update({key: int(value) for key, value in values.items()})

    # Days without any activity need no row (readers treat a missing day as zeros): zero the range in one
    # statement, then write only the days that have something.
    DailyMetrics.objects.filter(workspace=workspace, date__gte=start, date__lte=end).update(**_SUM_ZEROS)
    objects = []
    for values in rows.values():
        if len(values) == 1:
            continue
        values.setdefault("events_by_hour", [0] * 24)
        values.setdefault("orders_by_hour", [0] * 24)
        objects.append(DailyMetrics(workspace=workspace, **values))
    DailyMetrics.objects.bulk_create(
        objects, update_conflicts=True, unique_fields=["workspace", "date"], update_fields=sorted(_SUM_FIELDS)
    )
    _refresh_products(workspace=workspace, start=start, end=end, lower=lower, upper=upper)


_SUM_FIELDS = {
    "revenue",
    "orders",
    "discount_total",
    "guest_orders",
    "sessions",
    "sessions_with_product_view",
    "sessions_with_cart",
    "sessions_with_checkout",
    "sessions_with_order",
    "session_seconds",
    "page_views",
    "events_by_hour",
    "orders_by_hour",
    "carts_started",
    "carts_abandoned",
    "carts_recovered",
    "nps_responses",
    "nps_promoters",
    "nps_detractors",
    "csat_responses",
    "csat_satisfied",
}


_SUM_ZEROS: dict[str, Any] = {
    name: ([] if name.endswith("_by_hour") else ZERO if name in ("revenue", "discount_total") else 0)
    for name in _SUM_FIELDS
}


def _hourly(queryset, field: str, tz) -> list[tuple[dt.date, int, int]]:
    return list(
        queryset.annotate(day=TruncDate(field, tzinfo=tz), hour=ExtractHour(field, tzinfo=tz))
        .values("day", "hour")
        .annotate(n=Count("id"))
        .values_list("day", "hour", "n")
    )


def _refresh_products(*, workspace: Workspace, start: dt.date, end: dt.date, lower, upper) -> None:
    tz = workspace.tzinfo
    lines = (
        OrderLine.objects.filter(workspace=workspace, order__placed_at__gte=lower, order__placed_at__lt=upper)
        .exclude(order__status=OrderStatus.CANCELLED)
        .annotate(day=TruncDate("order__placed_at", tzinfo=tz))
    )
    objects = []
    for row in (
        lines.filter(product__isnull=False)
        .values("day", "product_id")
        .annotate(
            title=Max("product__title"),
            category=Max("product__category"),
            orders=Count("order_id", distinct=True),
            units=Sum("quantity"),
            revenue=Sum("total"),
        )
    ):
        objects.append(
            ProductDailyMetrics(
                workspace=workspace,
                date=row["day"],
                product_key=f"p:{row['product_id']}",
                product_id=row["product_id"],
                title=row["title"] or "",
                category=row["category"] or "",
                orders=row["orders"],
                units=row["units"] or 0,
                revenue=row["revenue"] or ZERO,
            )
        )
    for title_row in (
        lines.filter(product__isnull=True)
        .values("day", "title")
        .annotate(
            category=Max("category"),
            orders=Count("order_id", distinct=True),
            units=Sum("quantity"),
            revenue=Sum("total"),
        )
    ):
        objects.append(
            ProductDailyMetrics(
                workspace=workspace,
                date=title_row["day"],
                product_key=f"t:{title_row['title']}"[:300],
                title=title_row["title"] or "",
                category=title_row["category"] or "",
                orders=title_row["orders"],
                units=title_row["units"] or 0,
                revenue=title_row["revenue"] or ZERO,
            )
        )
    ProductDailyMetrics.objects.filter(workspace=workspace, date__gte=start, date__lte=end).delete()
    ProductDailyMetrics.objects.bulk_create(objects, batch_size=2000)


# --- customer-level figures: new/returning, distinct counts, active customers -------------------------------------


_CUSTOMER_FIELDS = [
    "customers_ordered",
    "new_customers",
    "new_customer_revenue",
    "new_customer_orders",
    "returning_customers",
    "returning_customer_revenue",
    "returning_customer_orders",
    "second_order_reach",
    "later_order_reach",
]


@transaction.atomic
def _refresh_customer_days(*, workspace: Workspace, start: dt.date, end: dt.date, today: dt.date) -> None:
    """New/returning split and gap histograms for [start, end]; active-customer moves for [start, end + window].

    An order day can change who is "new" on that day and the activation/lapse of its customer up to a window
    later, so those later days are rewritten too. Only the customers who ordered on the affected days (or a
    window before them) are loaded, with their whole order history.
    """
    tz = workspace.tzinfo
    spell_end = min(end + WINDOW, today)
    base = Order.objects.filter(workspace=workspace, customer__isnull=False).exclude(status=OrderStatus.CANCELLED)
    lower, upper = local_bounds(workspace, start, spell_end)
    back_lower, back_upper = local_bounds(workspace, start - WINDOW, spell_end - WINDOW)
    affected = base.filter(
        Q(placed_at__gte=lower, placed_at__lt=upper) | Q(placed_at__gte=back_lower, placed_at__lt=back_upper)
    ).values("customer_id")
    history = (
        base.filter(customer_id__in=affected)
        .annotate(day=TruncDate("placed_at", tzinfo=tz))
        .values("customer_id", "day")
        .annotate(revenue=Sum("net_total"), orders=Count("id"))
    )
    order_days = pd.DataFrame.from_records(history, columns=["customer_id", "day", "revenue", "orders"])
    if order_days.empty:
        per_day = pd.DataFrame()
        lapses = pd.Series(dtype=int)
    else:
        order_days["revenue"] = order_days["revenue"].astype(float)
        flags = order_day_flags(order_days)
        per_day = daily_customer_metrics(flags)
        per_day.index = per_day.index.date
        lapses = daily_lapses(flags)
        lapses.index = lapses.index.date

    DailyMetrics.objects.filter(workspace=workspace, date__gte=start, date__lte=end).update(
        customers_ordered=0,
        new_customers=0,
        new_customer_revenue=ZERO,
        new_customer_orders=0,
        returning_customers=0,
        returning_customer_revenue=ZERO,
        returning_customer_orders=0,
        second_order_reach=[],
        later_order_reach=[],
    )
    DailyMetrics.objects.filter(workspace=workspace, date__gte=start, date__lte=spell_end).update(
        customers_activated=0, customers_lapsed=0
    )
    inside: list[DailyMetrics] = []
    after: list[DailyMetrics] = []
    for day in sorted(set(per_day.index) | set(lapses.index)):
        if not start <= day <= spell_end:
            continue
        values = per_day.loc[day] if day in per_day.index else None
        row: dict[str, Any] = {
            "customers_activated": int(values["customers_activated"]) if values is not None else 0,
            "customers_lapsed": int(lapses.get(day, 0)),
        }
        if day <= end and values is not None:
            for field in _CUSTOMER_FIELDS:
                if field.endswith("_reach"):
                    row[field] = values[field]
                elif field.endswith("_revenue"):
                    row[field] = Decimal(str(round(float(values[field]), 2)))
                else:
                    row[field] = int(values[field])
        (inside if day <= end else after).append(DailyMetrics(workspace=workspace, date=day, **row))
    DailyMetrics.objects.bulk_create(
        inside,
        update_conflicts=True,
        unique_fields=["workspace", "date"],
        update_fields=[*_CUSTOMER_FIELDS, "customers_activated", "customers_lapsed"],
        batch_size=1000,
    )
    DailyMetrics.objects.bulk_create(
        after,
        update_conflicts=True,
        unique_fields=["workspace", "date"],
        update_fields=["customers_activated", "customers_lapsed"],
        batch_size=1000,
    )


def _refresh_cohorts(*, workspace: Workspace, start: dt.date, end: dt.date) -> None:
    tz = workspace.tzinfo
    first_month = start.replace(day=1)
    lower, _ = local_bounds(workspace, first_month, first_month)
    _, upper = local_bounds(workspace, end, end)
    rows = (
        Order.objects.filter(workspace=workspace, customer__isnull=False, placed_at__gte=lower, placed_at__lt=upper)
        .exclude(status=OrderStatus.CANCELLED)
        .filter(customer__first_order_at__isnull=False)
        .annotate(
            month=TruncMonth("placed_at", tzinfo=tz, output_field=DateField()),
            cohort=TruncMonth("customer__first_order_at", tzinfo=tz, output_field=DateField()),
        )
        .values("cohort", "month")
        .annotate(customers=Count("customer_id", distinct=True), orders=Count("id"), revenue=Sum("net_total"))
    )
    with transaction.atomic():
        CohortMetrics.objects.filter(workspace=workspace, month__gte=first_month, month__lte=end).delete()
        CohortMetrics.objects.bulk_create(
            [
                CohortMetrics(
                    workspace=workspace,
                    cohort_month=row["cohort"],
                    month=row["month"],
                    customers=row["customers"],
                    orders=row["orders"],
                    revenue=row["revenue"] or ZERO,
                )
                for row in rows
                if row["cohort"] <= row["month"]
            ],
            batch_size=2000,
        )
