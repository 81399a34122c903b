"""Analytics rollups and model fits.

Every table here is derived: it can be dropped and rebuilt from customers' orders, carts and events with
``analytics.services.rollups_refresh``. Days are calendar days in the workspace's own timezone.
"""

from decimal import Decimal

from django.db import models

from crm.models import TenantModel

MONEY = {"max_digits": 16, "decimal_places": 2, "default": Decimal("0")}


class DailyMetrics(TenantModel):
    """One row per workspace and local day, written for every day of a refreshed range (zeros included).

    Distinct-customer figures over a range are not sums of daily distinct counts, so the day also keeps, for its
    second and later order days, how many reach back more than k days to the customer's previous order day; a
    range [s, e] then counts a customer once, at the first of their order days inside it, with one array lookup
    per day (``analytics.selectors.range_customer_counts_sql``). ``customers_activated``/``customers_lapsed``
    move the number of active customers (ordered in the last ACTIVE_WINDOW_DAYS days): the count on day d is the
    running sum of their difference.
    """

    date = models.DateField()
    revenue = models.DecimalField(**MONEY)  # net of refunds, cancelled orders count nothing
    orders = models.PositiveIntegerField(default=0)  # not cancelled
    discount_total = models.DecimalField(**MONEY)
    guest_orders = models.PositiveIntegerField(default=0)
    customers_ordered = models.PositiveIntegerField(default=0)
    new_customers = models.PositiveIntegerField(default=0)
    new_customer_revenue = models.DecimalField(**MONEY)
    new_customer_orders = models.PositiveIntegerField(default=0)
    returning_customers = models.PositiveIntegerField(default=0)
    returning_customer_revenue = models.DecimalField(**MONEY)
    returning_customer_orders = models.PositiveIntegerField(default=0)
    # R[k] = second (later) order days on this day whose previous order day is more than k days earlier.
    second_order_reach = models.JSONField(default=list, blank=True)
    later_order_reach = models.JSONField(default=list, blank=True)
    customers_activated = models.PositiveIntegerField(default=0)
    customers_lapsed = models.PositiveIntegerField(default=0)

    sessions = models.PositiveIntegerField(default=0)
    sessions_with_product_view = models.PositiveIntegerField(default=0)
    sessions_with_cart = models.PositiveIntegerField(default=0)
    sessions_with_checkout = models.PositiveIntegerField(default=0)
    sessions_with_order = models.PositiveIntegerField(default=0)
    session_seconds = models.PositiveBigIntegerField(default=0)
    page_views = models.PositiveIntegerField(default=0)  # page_viewed + product_viewed
    events_by_hour = models.JSONField(default=list, blank=True)  # 24 counts of storefront events, local hours
    orders_by_hour = models.JSONField(default=list, blank=True)

    carts_started = models.PositiveIntegerField(default=0)
    carts_abandoned = models.PositiveIntegerField(default=0)  # abandoned, recovered later or not
    carts_recovered = models.PositiveIntegerField(default=0)

    nps_responses = models.PositiveIntegerField(default=0)
    nps_promoters = models.PositiveIntegerField(default=0)
    nps_detractors = models.PositiveIntegerField(default=0)
    csat_responses = models.PositiveIntegerField(default=0)
    csat_satisfied = models.PositiveIntegerField(default=0)

    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "date"], name="daily_metrics_unique_day")]

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.date}"


# --- the metric columns of DailyMetrics, read from the model (every other list of them derives from these) --------


def _metric_fields() -> list[str]:
    return [
        field.name
        for field in DailyMetrics._meta.concrete_fields
        if field.name not in ("id", "workspace", "date", "refreshed_at")
    ]


DAILY_FIELDS: list[str] = _metric_fields()
# JSON columns (hourly counts, reach arrays): lists, not numbers.
DAILY_LIST_FIELDS = [name for name in DAILY_FIELDS if isinstance(DailyMetrics._meta.get_field(name), models.JSONField)]
# Distinct customers on one day: a range's figure is not the sum of its days (see range_customer_counts_sql).
DAILY_DISTINCT_FIELDS = ["customers_ordered", "returning_customers"]
# Numbers whose range total is the sum of the days.
DAILY_SUM_FIELDS = [name for name in DAILY_FIELDS if name not in (*DAILY_LIST_FIELDS, *DAILY_DISTINCT_FIELDS)]
# Computed from each customer's whole order-day history (analytics.transforms.daily_customer_metrics) for the
# refreshed days; the activity moves are written up to a window later.
DAILY_ACTIVITY_FIELDS = ["customers_activated", "customers_lapsed"]
DAILY_CUSTOMER_FIELDS = [
    name
    for name in DAILY_FIELDS
    if name.startswith(("customers_ordered", "new_customer", "returning_customer")) or name.endswith("_reach")
]
# Everything else is a plain count or sum of the rows of that day (orders, carts, sessions, surveys).
DAILY_PLAIN_FIELDS = [
    name for name in DAILY_FIELDS if name not in DAILY_CUSTOMER_FIELDS and name not in DAILY_ACTIVITY_FIELDS
]
DAILY_SESSION_FIELDS = [name for name in DAILY_PLAIN_FIELDS if name.startswith("session") or name == "page_views"]


def daily_zeros(names: list[str]) -> dict:
    """Each column's empty value (its default: 0, Decimal 0 or an empty list)."""
    return {name: DailyMetrics._meta.get_field(name).get_default() for name in names}


class ProductDailyMetrics(TenantModel):
    """Sales of one product (or, for lines without a product, one title) on one local day."""

    date = models.DateField()
    product_key = models.CharField(max_length=300)  # "p:<product id>" or "t:<title>"
    product_id = models.BigIntegerField(null=True, blank=True)
    title = models.CharField(max_length=255, blank=True, default="")
    category = models.CharField(max_length=100, blank=True, default="")
    orders = models.PositiveIntegerField(default=0)
    units = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(**MONEY)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "date", "product_key"], name="product_daily_unique")
        ]
        indexes = [models.Index(fields=["workspace", "date"], name="product_daily_ws_date")]


class CohortMetrics(TenantModel):
    """Customers of a first-order month (the cohort) who ordered again in a later month."""

    cohort_month = models.DateField()
    month = models.DateField()
    customers = models.PositiveIntegerField(default=0)
    orders = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(**MONEY)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "cohort_month", "month"], name="cohort_metrics_unique")
        ]


class RollupState(TenantModel):
    """Where the minute tick's incremental refresh resumes: orders and carts with ``updated_at`` from
    ``last_refreshed_at`` (when the last refresh started) on, storefront events with an id above
    ``last_event_id``."""

    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_event_id = models.BigIntegerField(default=0)
    last_full_rebuild_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace"], name="rollup_state_unique_workspace")]


class GroupFigures(TenantModel):
    """A chart by customer group (RFM group or segment) for one preset period ending on ``end_date``: customers,
    customers who ordered and their revenue per group. These read the period's orders per customer, too slow
    for a page at millions of orders, so the minute tick recomputes them every GROUP_FIGURES_EVERY for the presets
    and the dashboard reads them here (custom ranges are computed when asked)."""

    chart = models.CharField(max_length=20)  # "rfm" or "segments"
    period_days = models.PositiveSmallIntegerField()
    end_date = models.DateField()
    computed_at = models.DateTimeField()
    rows = models.JSONField(default=list, blank=True)  # [[group, customers, ordered, revenue], ...]

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "chart", "period_days"], name="group_figures_unique")
        ]


class ModelFit(TenantModel):
    """The latest BG/NBD + Gamma-Gamma fit of a workspace (one row, replaced by each fit)."""

    class Status(models.TextChoices):
        FITTED = "fitted", "Fitted"
        TOO_LITTLE_HISTORY = "too_little_history", "Too little history"
        FAILED = "failed", "Could not fit"

    status = models.CharField(max_length=24, choices=Status.choices)
    message = models.TextField(blank=True, default="")
    fitted_at = models.DateTimeField()
    customers = models.PositiveIntegerField(default=0)
    repeat_customers = models.PositiveIntegerField(default=0)
    history_days = models.PositiveIntegerField(default=0)
    bgnbd_params = models.JSONField(default=dict, blank=True)  # r, alpha, a, b (time unit: weeks)
    gamma_gamma_params = models.JSONField(default=dict, blank=True)  # p, q, v
    average_predicted_clv = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    expected_orders_90d = models.FloatField(null=True, blank=True)
    forecast = models.JSONField(default=list, blank=True)  # [{"date", "expected", "low", "high"}] for 90 days

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace"], name="model_fit_unique_workspace")]
