"""Analytics reads. The dashboard reads only rollups (``DailyMetrics`` and friends) so it stays fast however many
orders a workspace has; reports that need raw rows (discount codes, baskets, pages) read them for the chosen
range only."""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd
from django.db import connection
from django.db.models import Avg, Count, Exists, OuterRef, Q, Sum

from analytics.models import DAILY_SUM_FIELDS, CohortMetrics, DailyMetrics, ModelFit, ProductDailyMetrics
from analytics.transforms import ACTIVE_WINDOW_DAYS
from crm.models import Workspace

DAY_FIELDS = ["date", *DAILY_SUM_FIELDS, "customers_ordered"]


@dataclass(frozen=True, kw_only=True)
class DateRange:
    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> "DateRange":
        """The period of the same length just before this one."""
        end = self.start - dt.timedelta(days=1)
        return DateRange(start=end - dt.timedelta(days=self.days - 1), end=end)


@dataclass(frozen=True, kw_only=True)
class Kpi:
    key: str
    label: str
    value: float | None
    previous: float | None
    kind: str  # money, count, percent, number, score
    definition: str
    sparkline: list[float | None] = field(default_factory=list)
    is_higher_better: bool = True
    note: str = ""  # a plain-words explanation shown on the card when the figure needs one

    @property
    def delta(self) -> float | None:
        """Relative change against the previous period (percent points for rates)."""
        if self.value is None or self.previous is None:
            return None
        if self.kind in ("percent", "score"):
            return self.value - self.previous
        if self.previous == 0:
            return None
        return self.value / self.previous - 1

    @property
    def is_good(self) -> bool | None:
        delta = self.delta
        if delta is None or abs(delta) < 1e-12:
            return None
        return (delta > 0) == self.is_higher_better


@dataclass(frozen=True, kw_only=True)
class Overview:
    range: DateRange
    previous_range: DateRange
    kpis: list[Kpi]
    has_orders: bool
    has_sessions: bool

    def kpi(self, key: str) -> Kpi:
        return next(k for k in self.kpis if k.key == key)


def daily_rows(*, workspace: Workspace, date_range: DateRange, fields: list[str] | None = None) -> list[dict]:
    return list(
        DailyMetrics.objects.filter(workspace=workspace, date__gte=date_range.start, date__lte=date_range.end)
        .order_by("date")
        .values(*(fields or DAY_FIELDS))
    )


def daily_frame(*, workspace: Workspace, date_range: DateRange, fields: list[str] | None = None) -> pd.DataFrame:
    """Daily rollups for the range, one row per day (missing days filled with zeros)."""
    wanted = fields or DAY_FIELDS
    frame = pd.DataFrame.from_records(
        daily_rows(workspace=workspace, date_range=date_range, fields=wanted), columns=wanted
    )
    days = pd.date_range(date_range.start, date_range.end, freq="D").date
    frame = frame.set_index("date").reindex(days)
    for column in frame.columns:
        if column.endswith("_by_hour") or column.endswith("_reach"):
            frame[column] = frame[column].apply(lambda value: value if isinstance(value, list | dict) else [])
        else:
            frame[column] = frame[column].astype(float).fillna(0.0)
    frame.index.name = "date"
    return frame.reset_index()


def active_customers_at(*, workspace: Workspace, days: list[dt.date]) -> dict[dt.date, int]:
    """Customers with an order in the active window up to the end of each day (one query for all days)."""
    aggregates = {}
    for index, day in enumerate(days):
        aggregates[f"a{index}"] = Sum("customers_activated", filter=Q(date__lte=day), default=0)
        aggregates[f"l{index}"] = Sum("customers_lapsed", filter=Q(date__lte=day), default=0)
    totals = DailyMetrics.objects.filter(workspace=workspace).aggregate(**aggregates)
    return {day: int(totals[f"a{index}"]) - int(totals[f"l{index}"]) for index, day in enumerate(days)}


def cumulative_customer_revenue(*, workspace: Workspace, days: list[dt.date]) -> dict[dt.date, tuple[float, int]]:
    """(revenue from identified customers, customers acquired) from the first day up to each day."""
    aggregates = {}
    for index, day in enumerate(days):
        aggregates[f"n{index}"] = Sum("new_customer_revenue", filter=Q(date__lte=day), default=Decimal("0"))
        aggregates[f"r{index}"] = Sum("returning_customer_revenue", filter=Q(date__lte=day), default=Decimal("0"))
        aggregates[f"c{index}"] = Sum("new_customers", filter=Q(date__lte=day), default=0)
    totals = DailyMetrics.objects.filter(workspace=workspace).aggregate(**aggregates)
    return {
        day: (float(totals[f"n{index}"]) + float(totals[f"r{index}"]), int(totals[f"c{index}"]))
        for index, day in enumerate(days)
    }


def range_customer_counts_sql(*, workspace: Workspace, periods: list[DateRange]) -> list[dict[str, int]]:
    """``transforms.range_customer_counts`` done inside the database: one array lookup per day, so the reach
    arrays never leave it. For each period: customers (distinct, who ordered), new, returning and repeat."""
    table = DailyMetrics._meta.db_table
    if connection.vendor == "postgresql":
        offset = "(d.date - %s::date)"

        def element(column: str, index: str) -> str:
            return f"COALESCE((d.{column} ->> {index})::integer, 0)"
    else:
        offset = "CAST(julianday(d.date) - julianday(%s) AS INTEGER)"

        def element(column: str, index: str) -> str:
            return f"COALESCE(json_extract(d.{column}, '$[' || {index} || ']'), 0)"

    sql = (
        f"SELECT COALESCE(SUM(d.new_customers), 0), COALESCE(SUM({element('second_order_reach', offset)}), 0), "
        f"COALESCE(SUM({element('second_order_reach', '0')}), 0), "
        f"COALESCE(SUM({element('later_order_reach', offset)}), 0) "
        f"FROM {table} d WHERE d.workspace_id = %s AND d.date >= %s AND d.date <= %s"
    )
    results = []
    with connection.cursor() as cursor:
        for period in periods:
            cursor.execute(sql, [period.start, period.start, workspace.id, period.start, period.end])
            new, second_before, second_all, later_before = (int(v) for v in cursor.fetchone())
            returning = second_before + later_before
            results.append(
                {"customers": new + returning, "new": new, "returning": returning, "repeat": second_all + later_before}
            )
    return results


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


DEFINITIONS = {
    "revenue": "Order totals minus refunds, for orders placed in the period (cancelled orders count nothing).",
    "orders": "Orders placed in the period, not counting cancelled ones.",
    "aov": "Average order value: revenue ÷ orders.",
    "customers": "Distinct customers who placed at least one order in the period (guest checkouts excluded).",
    "new_customers": "Customers whose first ever order was placed in the period.",
    "returning_customers": "Customers who ordered in the period and had already ordered before it.",
    "new_revenue": "Revenue from new customers' orders on the day of their first order.",
    "returning_revenue": "Revenue from every other order of an identified customer.",
    "repeat_rate": "Of the customers who ordered in the period, the share who have ordered on at least two "
    "different days by the end of it.",
    "retention": "(E − N) ÷ S: S = active customers at the start, E = active customers at the end, N = new "
    "customers in the period. A customer is active while their last order is under 365 days old. It passes 100% "
    "when customers who had lapsed come back (they count in E but not in S).",
    "churn": "Customers who lapsed in the period (365 days passed since their last order) ÷ active customers at "
    "the start (S).",
    "historic_clv": "Average revenue per customer so far: revenue from identified customers up to the end of the "
    "period ÷ customers acquired up to then.",
    "predicted_clv": "Average predicted 12-month value of a customer (BG/NBD × Gamma-Gamma, fitted nightly). "
    "Shows the latest fit; there is no previous value.",
    "conversion": "Sessions with an order ÷ sessions. A session is one visitor's storefront events with gaps "
    "under 30 minutes.",
    "abandonment": "Carts started in the period that were abandoned (left without ordering for an hour, "
    "recovered later or not) ÷ carts started.",
    "nps": "Net Promoter Score of the latest answers given in the period: % promoters (9–10) − % detractors (0–6).",
    "csat": "Customer satisfaction: share of the latest answers given in the period that are 4 or 5 out of 5.",
}


LONG_PERIOD_NOTE = "Shown for periods of up to a year (a customer stays active for a year after an order)."


def retention_note(retention: float | None, *, came_back: int, churn: float | None) -> str:
    """Retention by its definition passes 100% when lapsed customers return; say so in words an owner reads at a
    glance, with the share of the starting customers still active (100% − churn), which cannot pass 100%."""
    if retention is None or retention <= 1 or churn is None:
        return ""
    customers = "customer" if came_back == 1 else "customers"
    return (
        f"Over 100%: {came_back:,} lapsed {customers} came back. {1 - churn:.0%} of those active at the start "
        "still are."
    )


def overview(*, workspace: Workspace, date_range: DateRange) -> Overview:
    previous = date_range.previous()
    whole = DateRange(start=previous.start, end=date_range.end)
    rows = daily_rows(workspace=workspace, date_range=whole)
    current_rows = [r for r in rows if r["date"] >= date_range.start]
    previous_rows = [r for r in rows if r["date"] < date_range.start]
    marks = [previous.start - dt.timedelta(days=1), previous.end, date_range.end]
    active = active_customers_at(workspace=workspace, days=marks)
    cumulative = cumulative_customer_revenue(workspace=workspace, days=[previous.end, date_range.end])
    fit = ModelFit.objects.filter(workspace=workspace, status=ModelFit.Status.FITTED).first()

    counts_now, counts_before = range_customer_counts_sql(workspace=workspace, periods=[date_range, previous])

    def figures(period_rows: list[dict], counts: dict, start_active: int, end_active: int, end_day: dt.date):
        totals = {name: float(sum(r[name] for r in period_rows)) for name in DAILY_SUM_FIELDS}
        revenue_so_far, customers_so_far = cumulative[end_day]
        return {
            "revenue": totals["revenue"],
            "orders": totals["orders"],
            "aov": _ratio(totals["revenue"], totals["orders"]),
            "customers": counts["customers"],
            "new_customers": counts["new"],
            "returning_customers": counts["returning"],
            "new_revenue": totals["new_customer_revenue"],
            "returning_revenue": totals["returning_customer_revenue"],
            "repeat_rate": _ratio(counts["repeat"], counts["customers"]),
            "retention": _ratio(end_active - counts["new"], start_active),
            "churn": _ratio(totals["customers_lapsed"], start_active),
            "historic_clv": _ratio(revenue_so_far, customers_so_far),
            "conversion": _ratio(totals["sessions_with_order"], totals["sessions"]),
            "abandonment": _ratio(totals["carts_abandoned"], totals["carts_started"]),
            "nps": (100 * (totals["nps_promoters"] - totals["nps_detractors"]) / totals["nps_responses"])
            if totals["nps_responses"]
            else None,
            "csat": _ratio(totals["csat_satisfied"], totals["csat_responses"]),
            "came_back": int(totals["customers_activated"]) - counts["new"],
        }

    now = figures(current_rows, counts_now, active[marks[1]], active[marks[2]], date_range.end)
    before = figures(previous_rows, counts_before, active[marks[0]], active[marks[1]], previous.end)
    now["predicted_clv"] = float(fit.average_predicted_clv) if fit and fit.average_predicted_clv is not None else None
    before["predicted_clv"] = None

    by_day = {r["date"]: r for r in current_rows}
    empty_day = dict.fromkeys(DAILY_SUM_FIELDS, 0) | {"customers_ordered": 0}

    def series(key: str) -> list[float | None]:
        out: list[float | None] = []
        for day in (date_range.start + dt.timedelta(days=n) for n in range(date_range.days)):
            r = by_day.get(day, empty_day)
            if key in ("revenue", "orders", "new_customers"):
                out.append(float(r[key]))
            elif key == "aov":
                out.append(_ratio(float(r["revenue"]), r["orders"]))
            elif key in ("customers",):
                out.append(float(r["customers_ordered"]))
            elif key == "returning_customers":
                out.append(float(r["customers_ordered"] - r["new_customers"]))
            elif key == "new_revenue":
                out.append(float(r["new_customer_revenue"]))
            elif key == "returning_revenue":
                out.append(float(r["returning_customer_revenue"]))
            elif key == "churn":
                out.append(float(r["customers_lapsed"]))
            elif key == "conversion":
                out.append(_ratio(r["sessions_with_order"], r["sessions"]))
            elif key == "abandonment":
                out.append(_ratio(r["carts_abandoned"], r["carts_started"]))
            else:
                return []
        return out

    specs = [
        ("revenue", "Revenue", "money", True),
        ("orders", "Orders", "count", True),
        ("aov", "Average order value", "money", True),
        ("customers", "Customers who ordered", "count", True),
        ("new_customers", "New customers", "count", True),
        ("returning_customers", "Returning customers", "count", True),
        ("new_revenue", "New customer revenue", "money", True),
        ("returning_revenue", "Returning customer revenue", "money", True),
        ("repeat_rate", "Repeat purchase rate", "percent", True),
        ("retention", "Retention rate", "percent", True),
        ("churn", "Churn rate", "percent", False),
        ("historic_clv", "Average historic CLV", "money", True),
        ("predicted_clv", "Average predicted CLV", "money", True),
        ("conversion", "Conversion rate", "percent", True),
        ("abandonment", "Cart abandonment rate", "percent", False),
        ("nps", "NPS", "score", True),
        ("csat", "CSAT", "percent", True),
    ]
    notes = {"retention": retention_note(now["retention"], came_back=now["came_back"], churn=now["churn"])}
    if date_range.days > ACTIVE_WINDOW_DAYS:
        # Customers acquired inside a period longer than the active window can also lapse inside it, so E − N and
        # the lapsed count stop describing the customers of S: the figures would be meaningless (even negative).
        for key in ("retention", "churn"):
            now[key] = before[key] = None
            notes[key] = LONG_PERIOD_NOTE
    kpis = [
        Kpi(
            key=key,
            label=label,
            value=now[key],
            previous=before[key],
            kind=kind,
            definition=DEFINITIONS[key],
            sparkline=series(key),
            is_higher_better=higher,
            note=notes.get(key, ""),
        )
        for key, label, kind, higher in specs
    ]
    return Overview(
        range=date_range,
        previous_range=previous,
        kpis=kpis,
        has_orders=any(r["orders"] for r in rows),
        has_sessions=any(r["sessions"] for r in rows),
    )


def product_frame(*, workspace: Workspace, date_range: DateRange | None = None) -> pd.DataFrame:
    queryset = ProductDailyMetrics.objects.filter(workspace=workspace)
    if date_range is not None:
        queryset = queryset.filter(date__gte=date_range.start, date__lte=date_range.end)
    columns = ["date", "product_key", "title", "category", "orders", "units", "revenue"]
    frame = pd.DataFrame.from_records(queryset.values_list(*columns), columns=columns)
    frame["revenue"] = frame["revenue"].astype(float)
    return frame


def cohort_frame(*, workspace: Workspace, since: dt.date) -> pd.DataFrame:
    columns = ["cohort_month", "month", "customers", "orders", "revenue"]
    rows = CohortMetrics.objects.filter(workspace=workspace, cohort_month__gte=since).values_list(*columns)
    return pd.DataFrame.from_records(rows, columns=columns)


def _spend_in_range_sql() -> str:
    """Net revenue per customer of the orders placed in [%s, %s) of workspace %s (not cancelled)."""
    from customers.models import Order

    return (
        "SELECT o.customer_id, SUM(o.net_total) AS revenue "  # noqa: S608 - table name from model meta
        f"FROM {connection.ops.quote_name(Order._meta.db_table)} o WHERE o.workspace_id = %s AND o.placed_at >= %s "
        "AND o.placed_at < %s AND o.status <> 'cancelled' AND o.customer_id IS NOT NULL GROUP BY o.customer_id"
    )


def _group_frame(rows: list, key: str) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=[key, "customers", "ordered", "revenue"])
    if frame.empty:
        return frame.assign(conversion=[])
    frame["revenue"] = frame["revenue"].astype(float)
    frame["conversion"] = frame["ordered"] / frame["customers"]
    return frame


# The dashboard's preset periods (analytics.forms.PERIODS) for which the charts by customer group are stored.
GROUP_PERIODS = (7, 30, 90, 365)
# Stored group figures older than this are not shown (the minute tick renews them every 15 minutes).
GROUP_FIGURES_MAX_AGE = dt.timedelta(minutes=45)


def rfm_group_rows_live(*, workspace: Workspace, date_range: DateRange) -> list[tuple]:
    """(RFM group, customers, customers who ordered in the range, their revenue in the range), from the range's
    orders summed once per customer and joined to the customers by id."""
    from analytics.services import local_bounds
    from customers.models import Customer

    lower, upper = local_bounds(workspace, date_range.start, date_range.end)
    sql = (
        f"WITH spend AS ({_spend_in_range_sql()}) "  # noqa: S608 - table names from model meta
        "SELECT c.rfm_group, COUNT(*), COUNT(spend.customer_id), COALESCE(SUM(spend.revenue), 0) AS revenue "
        f"FROM {connection.ops.quote_name(Customer._meta.db_table)} c "
        "LEFT JOIN spend ON spend.customer_id = c.id "
        "WHERE c.workspace_id = %s AND c.merged_into_id IS NULL AND c.rfm_group <> '' "
        "GROUP BY c.rfm_group ORDER BY revenue DESC, c.rfm_group"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [workspace.pk, lower, upper, workspace.pk])
        return [(group, customers, ordered, float(revenue)) for group, customers, ordered, revenue in cursor.fetchall()]


def segment_rows_live(*, workspace: Workspace, date_range: DateRange, limit: int = 15) -> list[tuple]:
    """(segment, members, members who ordered in the range, their revenue) for the largest segments by revenue."""
    from analytics.services import local_bounds
    from segments.selectors import segment_member_order_figures

    lower, upper = local_bounds(workspace, date_range.start, date_range.end)
    figures = segment_member_order_figures(workspace=workspace, placed_from=lower, placed_before=upper, limit=limit)
    return [(item.segment, item.members, item.members_who_ordered, item.revenue) for item in figures]


GROUP_CHARTS = {"rfm": rfm_group_rows_live, "segments": segment_rows_live}


def group_rows(*, workspace: Workspace, chart: str, date_range: DateRange) -> list:
    """A preset period ending today reads the figures the minute tick stored (when fresh); any other range, or
    none stored yet, is computed now."""
    if date_range.end == workspace.today() and date_range.days in GROUP_PERIODS:
        from django.utils import timezone

        from analytics.models import GroupFigures

        stored = (
            GroupFigures.objects.filter(
                workspace=workspace,
                chart=chart,
                period_days=date_range.days,
                end_date=date_range.end,
                computed_at__gte=timezone.now() - GROUP_FIGURES_MAX_AGE,
            )
            .values_list("rows", flat=True)
            .first()
        )
        if stored is not None:
            return stored
    return GROUP_CHARTS[chart](workspace=workspace, date_range=date_range)


def rfm_group_figures(*, workspace: Workspace, date_range: DateRange) -> pd.DataFrame:
    """Per RFM group: customers, how many ordered in the range (conversion) and their revenue in the range."""
    return _group_frame(group_rows(workspace=workspace, chart="rfm", date_range=date_range), "rfm_group")


def segment_figures(*, workspace: Workspace, date_range: DateRange) -> pd.DataFrame:
    """Per segment (the largest by revenue in the range): members, members who ordered in the range, revenue."""
    return _group_frame(group_rows(workspace=workspace, chart="segments", date_range=date_range), "segment")


def model_fit(*, workspace: Workspace) -> ModelFit | None:
    return ModelFit.objects.filter(workspace=workspace).first()


def prediction_summary(*, workspace: Workspace) -> dict:
    from customers.models import Customer

    return Customer.objects.filter(workspace=workspace, probability_alive__isnull=False).aggregate(
        customers=Count("id"),
        high_risk=Count("id", filter=Q(churn_risk="high")),
        medium_risk=Count("id", filter=Q(churn_risk="medium")),
        low_risk=Count("id", filter=Q(churn_risk="low")),
        average_clv=Avg("predicted_clv"),
    )


@dataclass(frozen=True, kw_only=True)
class DataStatus:
    has_customers: bool
    has_orders: bool
    has_events: bool
    has_rollups: bool

    @property
    def needs_rollups(self) -> bool:
        return (self.has_orders or self.has_events) and not self.has_rollups

    @property
    def is_empty(self) -> bool:
        return not (self.has_orders or self.has_events)


def data_status(*, workspace: Workspace) -> DataStatus:
    """Four yes/no questions in one round trip."""
    from analytics.models import RollupState
    from customers.models import Customer, Event, Order

    row = (
        Workspace.objects.filter(pk=workspace.pk)
        .annotate(
            has_customers=Exists(Customer.objects.filter(workspace=OuterRef("pk"))),
            has_orders=Exists(Order.objects.filter(workspace=OuterRef("pk"))),
            has_events=Exists(
                Event.objects.filter(workspace=OuterRef("pk"), type__in=["page_viewed", "product_viewed"])
            ),
            has_rollups=Exists(RollupState.objects.filter(workspace=OuterRef("pk"), last_refreshed_at__isnull=False)),
        )
        .values("has_customers", "has_orders", "has_events", "has_rollups")
        .get()
    )
    return DataStatus(**row)


def customers_by_predicted_clv(*, workspace: Workspace, limit: int = 10):
    from customers.models import Customer

    return list(
        Customer.objects.filter(workspace=workspace, predicted_clv__isnull=False)
        .order_by("-predicted_clv")
        .only(
            "id",
            "first_name",
            "last_name",
            "email",
            "predicted_clv",
            "probability_alive",
            "expected_orders_90d",
            "churn_risk",
        )[:limit]
    )


def valuable_customers_at_risk(*, workspace: Workspace, limit: int = 10):
    """Customers who have spent the most but are likely to have lapsed: who to win back first."""
    from customers.models import Customer

    return list(
        Customer.objects.filter(workspace=workspace, churn_risk="high")
        .order_by("-total_spent")
        .only(
            "id",
            "first_name",
            "last_name",
            "email",
            "total_spent",
            "orders_count",
            "probability_alive",
            "last_order_at",
        )[:limit]
    )


def forecast_frames(*, workspace: Workspace, fit: ModelFit | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The last 90 days of revenue and the stored 90-day forecast beside it."""
    today = workspace.today()
    history = daily_frame(
        workspace=workspace,
        date_range=DateRange(start=today - dt.timedelta(days=89), end=today),
        fields=["date", "revenue"],
    )
    if not history["revenue"].sum():
        history = history.iloc[0:0]
    forecast = pd.DataFrame(fit.forecast if fit and fit.forecast else [], columns=["date", "expected", "low", "high"])
    return history, forecast
