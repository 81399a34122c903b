"""Analytics writes: rollups (rebuilt for a day range in bulk SQL, refreshed incrementally) and predictions.

``rollups_refresh(workspace=..., start=..., end=...)`` is the one entry point other code calls for the local days
that changed (an order upsert, a sync, the nightly task). It is idempotent: it recomputes those days from the
source rows and overwrites them, so it can be called as often as wanted, concurrently with reads.
"""

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd
from django.db import connection, transaction
from django.db.models import Count, DateField, DateTimeField, ExpressionWrapper, F, Max, Min, Q, Sum
from django.db.models.functions import ExtractHour, TruncDate, TruncMonth
from django.utils import timezone

from analytics.models import (
    DAILY_ACTIVITY_FIELDS,
    DAILY_CUSTOMER_FIELDS,
    DAILY_PLAIN_FIELDS,
    CohortMetrics,
    DailyMetrics,
    GroupFigures,
    ProductDailyMetrics,
    RollupState,
    daily_zeros,
)
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
    watermark = _watermark(workspace)
    days = rollups_refresh(workspace=workspace, start=start, end=today)
    _save_watermark(workspace, watermark, last_full_rebuild_at=timezone.now())
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
    # A range refresh does not move the change cursor (only rollups_refresh_changed and a rebuild, which look at
    # every day, may), except on a workspace's very first refresh.
    first_watermark = None if RollupState.objects.filter(workspace=workspace).exists() else _watermark(workspace)
    _refresh_plain_range(workspace=workspace, start=start, end=end)
    _refresh_customer_days(workspace=workspace, start=start, end=end, today=today)
    _refresh_cohorts(workspace=workspace, start=start, end=end)
    if first_watermark is not None:
        _save_watermark(workspace, first_watermark)
    return (end - start).days + 1


@dataclass(frozen=True, kw_only=True)
class Watermark:
    """Where the next incremental refresh starts reading: orders and carts changed at or after ``changed_since``
    (the time the refresh started), storefront events with an id above ``last_event_id``."""

    changed_since: dt.datetime
    last_event_id: int


def _watermark(workspace: Workspace) -> Watermark:
    """The newest event id of any workspace (ids are global): one step down the primary key, where the newest id
    of one workspace would walk past every other workspace's newer events."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(id) FROM {connection.ops.quote_name(Event._meta.db_table)}")  # noqa: S608
        newest = cursor.fetchone()[0]
    return Watermark(changed_since=timezone.now(), last_event_id=newest or 0)


def _save_watermark(workspace: Workspace, watermark: Watermark, **extra) -> None:
    RollupState.objects.update_or_create(
        workspace=workspace,
        defaults={"last_refreshed_at": watermark.changed_since, "last_event_id": watermark.last_event_id, **extra},
    )


def _refresh_plain_range(*, workspace: Workspace, start: dt.date, end: dt.date) -> None:
    chunk_days = _chunk_days(workspace=workspace, start=start, end=end)
    chunk_start = start
    while chunk_start <= end:
        chunk_end = min(chunk_start + dt.timedelta(days=chunk_days - 1), end)
        _refresh_days(workspace=workspace, start=chunk_start, end=chunk_end)
        chunk_start = chunk_end + dt.timedelta(days=1)


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


# Rows committed by a transaction that began before a refresh started but committed after it carry an updated_at
# just before the refresh's watermark: the next refresh reads this far back so they are not missed.
CURSOR_OVERLAP = dt.timedelta(minutes=2)
# A session counts on the day it starts, and the refresh reads events this far around a day: an event can move a
# session that began this long before it (on the previous day, just after midnight).
SESSION_REACH = dt.timedelta(hours=6)
# Beyond this many changed customers (a large import) one range refresh is cheaper than day-by-day bookkeeping.
MAX_DIRTY_CUSTOMERS = 20_000


@dataclass(frozen=True, kw_only=True)
class DirtyDays:
    """What an incremental refresh must recompute."""

    days: set[dt.date]  # per-day sums: orders, carts, sessions, surveys, products
    customer_days: set[dt.date]  # new/returning, reach arrays, activations and lapses
    cohort_months: set[dt.date]  # first day of each month whose cohort cells change
    last_event_id: int


def rollups_dirty_days(*, workspace: Workspace, since: dt.datetime, after_event_id: int) -> DirtyDays | None:
    """The local days whose rollups changed: days of orders and carts changed since ``since`` (``updated_at``),
    days of storefront events with an id above ``after_event_id``, and today. None when so many customers
    changed that a range refresh is the cheaper way.

    An order changes more than its own day x: for its customer it also moves the next order day (its gap and
    activation; the one after too when x is, or was, the first order day, as ranks shift), the day x + window
    (when x stops being active) and p + window for the previous order day p when x is within p's window (p's
    lapse appears or goes away). Days after today are written when they come. Cohort cells move for x's month,
    and for every month of the customer's orders when x is (or was) their first order day. A new order today
    from any customer therefore dirties today only.
    """
    tz = workspace.tzinfo
    today = workspace.today()
    days: set[dt.date] = {today}
    dirty_pairs: set[tuple[int, dt.date]] = set()
    for day, customer_id in (
        Order.objects.filter(workspace=workspace, updated_at__gte=since)
        .annotate(day=TruncDate("placed_at", tzinfo=tz))
        .values_list("day", "customer_id")
        .distinct()
    ):
        days.add(day)
        if customer_id is not None:
            dirty_pairs.add((customer_id, day))
    days.update(
        Cart.objects.filter(workspace=workspace, updated_at__gte=since)
        .annotate(day=TruncDate("started_at", tzinfo=tz))
        .values_list("day", flat=True)
        .distinct()
    )
    new_events = Event.objects.filter(workspace=workspace, id__gt=after_event_id, type__in=STOREFRONT_TYPES)
    last_event_id = after_event_id
    for day, early_day, newest in (
        new_events.annotate(
            day=TruncDate("occurred_at", tzinfo=tz),
            early_day=TruncDate(
                ExpressionWrapper(F("occurred_at") - SESSION_REACH, output_field=DateTimeField()), tzinfo=tz
            ),
        )
        .values("day", "early_day")
        .annotate(newest=Max("id"))
        .values_list("day", "early_day", "newest")
    ):
        days.update((day, early_day))
        last_event_id = max(last_event_id, newest)
    customers = {customer_id for customer_id, _ in dirty_pairs}
    if len(customers) > MAX_DIRTY_CUSTOMERS:
        return None
    history: dict[int, list[dt.date]] = {}
    for customer_id, day in (
        Order.objects.filter(workspace=workspace, customer_id__in=customers)
        .exclude(status=OrderStatus.CANCELLED)
        .annotate(day=TruncDate("placed_at", tzinfo=tz))
        .values_list("customer_id", "day")
        .distinct()
    ):
        history.setdefault(customer_id, []).append(day)
    customer_days: set[dt.date] = set()
    cohort_months: set[dt.date] = set()
    for customer_id, day in dirty_pairs:
        order_days = sorted(history.get(customer_id, []))
        later = [d for d in order_days if d > day]
        earlier = [d for d in order_days if d < day]
        customer_days.update([day, day + WINDOW, *later[:1]])
        if earlier and earlier[-1] + WINDOW > day:  # the previous day's lapse appears or goes away
            customer_days.add(earlier[-1] + WINDOW)
        cohort_months.add(day.replace(day=1))
        if not earlier:  # x is, or was, the first order day: ranks shift and the customer's cohort may move
            customer_days.update(later[:2])
            cohort_months.update(d.replace(day=1) for d in order_days)
    return DirtyDays(
        days={day for day in days if day <= today},
        customer_days={day for day in customer_days if day <= today},
        cohort_months=cohort_months,
        last_event_id=last_event_id,
    )


def rollups_refresh_changed(*, workspace: Workspace) -> int:
    """The minute tick's refresh: recompute only the days that changed since the last one (see
    ``rollups_dirty_days``), then move the cursor. Returns the number of days recomputed."""
    state = RollupState.objects.filter(workspace=workspace).first()
    if state is None or state.last_refreshed_at is None:
        return rollups_rebuild(workspace=workspace)
    watermark = _watermark(workspace)
    # A cursor saved before events were tracked (0) starts at the newest event rather than reading them all.
    after_event_id = state.last_event_id or watermark.last_event_id
    dirty = rollups_dirty_days(
        workspace=workspace, since=state.last_refreshed_at - CURSOR_OVERLAP, after_event_id=after_event_id
    )
    if dirty is None:
        start = Order.objects.filter(workspace=workspace, updated_at__gte=state.last_refreshed_at - CURSOR_OVERLAP)
        first = start.order_by("placed_at").values_list("placed_at", flat=True).first()
        first_day = timezone.localtime(first, workspace.tzinfo).date() if first else workspace.today()
        days = rollups_refresh(workspace=workspace, start=first_day, end=workspace.today())
        _save_watermark(workspace, watermark)
        return days
    for run_start, run_end in _runs(dirty.days):
        _refresh_plain_range(workspace=workspace, start=run_start, end=run_end)
    for batch in _batches(sorted(dirty.customer_days), 62):
        _refresh_customer_day_set(workspace=workspace, days=batch)
    for month in sorted(dirty.cohort_months):
        _refresh_cohorts(workspace=workspace, start=month, end=_month_end(month))
    _save_watermark(workspace, Watermark(changed_since=watermark.changed_since, last_event_id=dirty.last_event_id))
    return len(dirty.days | dirty.customer_days)


def _runs(days: set[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Consecutive days grouped into (first, last) runs."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in sorted(days):
        if runs and day == runs[-1][1] + dt.timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _batches(items: list, size: int) -> list[list]:
    return [items[index : index + size] for index in range(0, len(items), size)]


def _month_end(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


# How often the minute tick renews the stored charts by customer group (RFM groups move nightly, segment
# memberships every 15 minutes at most).
GROUP_FIGURES_EVERY = dt.timedelta(minutes=15)


def group_figures_refresh(*, workspace: Workspace) -> int:
    """Compute and store the charts by customer group for every preset period ending today."""
    from analytics.selectors import GROUP_CHARTS, GROUP_PERIODS, DateRange

    today = workspace.today()
    computed_at = timezone.now()
    stored = 0
    for chart, live_rows in GROUP_CHARTS.items():
        for days in GROUP_PERIODS:
            rows = live_rows(
                workspace=workspace, date_range=DateRange(start=today - dt.timedelta(days=days - 1), end=today)
            )
            GroupFigures.objects.update_or_create(
                workspace=workspace,
                chart=chart,
                period_days=days,
                defaults={"end_date": today, "computed_at": computed_at, "rows": [list(row) for row in rows]},
            )
            stored += 1
    return stored


def group_figures_refresh_if_due(*, workspace: Workspace) -> int:
    oldest = GroupFigures.objects.filter(workspace=workspace).aggregate(
        computed=Min("computed_at"), day=Min("end_date")
    )
    if (
        oldest["computed"] is not None
        and oldest["day"] == workspace.today()
        and timezone.now() - oldest["computed"] < GROUP_FIGURES_EVERY
    ):
        return 0
    return group_figures_refresh(workspace=workspace)


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
    DailyMetrics.objects.filter(workspace=workspace, date__gte=start, date__lte=end).update(
        **_PLAIN_ZEROS, refreshed_at=timezone.now()
    )
    objects = []
    for values in rows.values():
        if len(values) == 1:
            continue
        values.setdefault("events_by_hour", [0] * 24)
        values.setdefault("orders_by_hour", [0] * 24)
        objects.append(DailyMetrics(workspace=workspace, **values))
    DailyMetrics.objects.bulk_create(
        objects,
        update_conflicts=True,
        unique_fields=["workspace", "date"],
        update_fields=[*DAILY_PLAIN_FIELDS, "refreshed_at"],
    )
    _refresh_products(workspace=workspace, start=start, end=end, lower=lower, upper=upper)


_PLAIN_ZEROS: dict[str, Any] = daily_zeros(DAILY_PLAIN_FIELDS)


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


def _customer_frames(workspace: Workspace, affected) -> tuple[pd.DataFrame, pd.Series]:
    """Per-day customer figures and lapses computed from the whole order-day history of ``affected`` customers
    (a values("customer_id") queryset)."""
    history = (
        _identified_orders(workspace)
        .filter(customer_id__in=affected)
        .annotate(day=TruncDate("placed_at", tzinfo=workspace.tzinfo))
        .values("customer_id", "day")
        .annotate(revenue=Sum("net_total"), orders=Count("id"))
    )
    order_days = pd.DataFrame.from_records(history, columns=["customer_id", "day", "revenue", "orders"])
    if order_days.empty:
        return pd.DataFrame(), pd.Series(dtype=int)
    order_days["revenue"] = order_days["revenue"].astype(float)
    flags = order_day_flags(order_days)
    per_day = daily_customer_metrics(flags)
    per_day.index = per_day.index.date
    lapses = daily_lapses(flags)
    lapses.index = lapses.index.date
    return per_day, lapses


def _identified_orders(workspace: Workspace):
    return Order.objects.filter(workspace=workspace, customer__isnull=False).exclude(status=OrderStatus.CANCELLED)


def _customer_row(per_day: pd.DataFrame, lapses: pd.Series, day: dt.date, *, with_figures: bool) -> dict[str, Any]:
    values = per_day.loc[day] if day in per_day.index else None
    row: dict[str, Any] = {
        "customers_activated": int(values["customers_activated"]) if values is not None else 0,
        "customers_lapsed": int(lapses.get(day, 0)),
    }
    if with_figures:
        row.update(daily_zeros(DAILY_CUSTOMER_FIELDS))
        if values is not None:
            for field in DAILY_CUSTOMER_FIELDS:
                if field.endswith("_reach"):
                    row[field] = values[field]
                elif field.endswith("_revenue"):
                    row[field] = Decimal(str(round(float(values[field]), 2)))
                else:
                    row[field] = int(values[field])
    return row


def _write_customer_rows(workspace: Workspace, rows: dict[dt.date, dict[str, Any]], fields: list[str]) -> None:
    DailyMetrics.objects.bulk_create(
        [DailyMetrics(workspace=workspace, date=day, **values) for day, values in rows.items()],
        update_conflicts=True,
        unique_fields=["workspace", "date"],
        update_fields=[*fields, "refreshed_at"],
        batch_size=1000,
    )


@transaction.atomic
def _refresh_customer_days(*, workspace: Workspace, start: dt.date, end: dt.date, today: dt.date) -> None:
    """New/returning split and gap histograms for [start, end]; active-customer moves for [start, end + window].

    An order day can change who is "new" on that day and the activation/lapse of its customer up to a window
    later, so those later days are rewritten too. Only the customers who ordered on the affected days (or a
    window before them) are loaded, with their whole order history.
    """
    spell_end = min(end + WINDOW, today)
    lower, upper = local_bounds(workspace, start, spell_end)
    back_lower, back_upper = local_bounds(workspace, start - WINDOW, spell_end - WINDOW)
    affected = (
        _identified_orders(workspace)
        .filter(Q(placed_at__gte=lower, placed_at__lt=upper) | Q(placed_at__gte=back_lower, placed_at__lt=back_upper))
        .values("customer_id")
    )
    per_day, lapses = _customer_frames(workspace, affected)
    DailyMetrics.objects.filter(workspace=workspace, date__gte=start, date__lte=end).update(
        **daily_zeros(DAILY_CUSTOMER_FIELDS)
    )
    DailyMetrics.objects.filter(workspace=workspace, date__gte=start, date__lte=spell_end).update(
        **daily_zeros(DAILY_ACTIVITY_FIELDS)
    )
    days = [day for day in sorted(set(per_day.index) | set(lapses.index)) if start <= day <= spell_end]
    _write_customer_rows(
        workspace,
        {day: _customer_row(per_day, lapses, day, with_figures=True) for day in days if day <= end},
        [*DAILY_CUSTOMER_FIELDS, *DAILY_ACTIVITY_FIELDS],
    )
    _write_customer_rows(
        workspace,
        {day: _customer_row(per_day, lapses, day, with_figures=False) for day in days if day > end},
        DAILY_ACTIVITY_FIELDS,
    )


@transaction.atomic
def _refresh_customer_day_set(*, workspace: Workspace, days: list[dt.date]) -> None:
    """Customer figures and activity moves of some scattered days, exactly: a day's figures come from the
    customers who ordered on it, its lapses from those who ordered a window before; only those are loaded."""
    if not days:
        return
    wanted = Q()
    for run_start, run_end in _runs(set(days) | {day - WINDOW for day in days}):
        lower, upper = local_bounds(workspace, run_start, run_end)
        wanted |= Q(placed_at__gte=lower, placed_at__lt=upper)
    per_day, lapses = _customer_frames(workspace, _identified_orders(workspace).filter(wanted).values("customer_id"))
    _write_customer_rows(
        workspace,
        {day: _customer_row(per_day, lapses, day, with_figures=True) for day in days},
        [*DAILY_CUSTOMER_FIELDS, *DAILY_ACTIVITY_FIELDS],
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
