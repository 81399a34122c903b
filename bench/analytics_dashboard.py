"""Dashboard server time from rollups vs the same figures computed from raw orders, in the same run.

Issue 6 target: the dashboard renders in under 300 ms server time with 5,000,000 orders (``--scale 1``); the
default ``--scale 0.1`` is 500,000 orders. The store (customers, orders over three years, storefront events,
carts) is generated in SQL, the rollups are built once (timed: "full rebuild"), then:

- dashboard view: a GET of /w/<slug>/ through the whole Django stack (middleware, KPIs from rollups, template),
  for the last 30 and 365 days; baseline = the same KPIs computed from raw orders, events and carts
  (SQL aggregates for sums, pandas over (customer, day) rows for first orders, repeats and active windows);
- the figures of both paths are compared; a mismatch is printed in the target column;
- chart fragments (revenue, cohorts) and the incremental refresh of today, without a baseline.
"""

import datetime as dt
import time

import pandas as pd
from django.db import connection
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.test import Client

from bench.common import median_ms, row, throwaway_workspace
from bench.segments_rfm import analyze, fill_customers, fill_orders, insert_series

FULL_ORDERS = 5_000_000
ORDERS_PER_CUSTOMER = 5
HISTORY_DAYS = 3 * 365
TARGET = "< 300 ms server time at 5M orders"


def _fill_events(workspace, count: int, customer_ids: tuple[int, int], now) -> None:
    from bench.segments_rfm import _days_ago_sql, _random
    from customers.models import Event

    low, high = customer_ids
    r = _random()
    insert_series(
        Event,
        count,
        {
            "workspace_id": "%s",
            "customer_id": f"(%s + CAST(%s * {r} AS INTEGER))",
            "type": "CASE WHEN g %% 4 = 0 THEN 'page_viewed' WHEN g %% 4 = 1 THEN 'product_viewed' "
            "WHEN g %% 4 = 2 THEN 'product_viewed' ELSE 'added_to_cart' END",
            "occurred_at": _days_ago_sql(HISTORY_DAYS),
            "source": "'tracking'",
            "properties": "'{}'",
        },
        {"workspace_id": [workspace.pk], "customer_id": [low, high - low], "occurred_at": [now]},
    )


def _fill_carts(workspace, count: int, now) -> None:
    from bench.segments_rfm import _days_ago_sql
    from customers.models import Cart

    insert_series(
        Cart,
        count,
        {
            "workspace_id": "%s",
            "source": "'tracking'",
            "external_id": "'cart' || g",
            "status": "CASE WHEN g %% 3 = 0 THEN 'converted' WHEN g %% 3 = 1 THEN 'abandoned' ELSE 'recovered' END",
            "started_at": _days_ago_sql(HISTORY_DAYS),
            "last_activity_at": "%s",
            "lines": "'[]'",
        },
        {"workspace_id": [workspace.pk], "started_at": [now], "last_activity_at": [now]},
    )


def figures_from_raw(workspace, date_range) -> dict:
    """The dashboard's order, customer, session and cart KPIs computed without rollups."""
    from analytics.services import local_bounds
    from analytics.transforms import STOREFRONT_TYPES, daily_session_metrics, order_day_flags, sessionize
    from customers.models import Cart, Event, Order

    previous = date_range.previous()
    lower, upper = local_bounds(workspace, date_range.start, date_range.end)
    not_cancelled = ~Q(status="cancelled")
    totals = Order.objects.filter(workspace=workspace, placed_at__gte=lower, placed_at__lt=upper).aggregate(
        revenue=Sum("net_total"), orders=Count("id", filter=not_cancelled)
    )
    _, end_bound = local_bounds(workspace, date_range.end, date_range.end)
    pairs = pd.DataFrame.from_records(
        Order.objects.filter(workspace=workspace, customer__isnull=False, placed_at__lt=end_bound)
        .exclude(status="cancelled")
        .annotate(day=TruncDate("placed_at", tzinfo=workspace.tzinfo))
        .values("customer_id", "day")
        .annotate(revenue=Sum("net_total"))
        .values_list("customer_id", "day", "revenue"),
        columns=["customer_id", "day", "revenue"],
    )
    flags = order_day_flags(pairs)
    start, end = pd.Timestamp(date_range.start), pd.Timestamp(date_range.end)
    inside = flags[(flags["day"] >= start) & (flags["day"] <= end)]
    customers = inside["customer_id"].nunique()
    new = int((inside["rank"] == 1).sum())
    repeat = inside.loc[inside["rank"] >= 2, "customer_id"].nunique()

    def active(day: pd.Timestamp) -> int:
        window = flags[(flags["day"] > day - pd.Timedelta(days=365)) & (flags["day"] <= day)]
        return window["customer_id"].nunique()

    s_count = active(start - pd.Timedelta(days=1))
    e_count = active(end)
    lapsed = int(((flags["lapse_day"] >= start) & (flags["lapse_day"] <= end)).sum())
    acquired = int((flags["rank"] == 1).sum())
    events = pd.DataFrame.from_records(
        Event.objects.filter(
            workspace=workspace,
            type__in=STOREFRONT_TYPES,
            occurred_at__gte=lower - dt.timedelta(hours=6),
            occurred_at__lt=upper + dt.timedelta(hours=6),
        ).values_list("customer_id", "type", "occurred_at"),
        columns=["visitor", "type", "occurred_at"],
    )
    sessions = sessionize(events, tz=workspace.timezone)
    sessions = sessions[(sessions["day"] >= date_range.start) & (sessions["day"] <= date_range.end)]
    session_totals = daily_session_metrics(sessions).sum()
    carts = Cart.objects.filter(workspace=workspace, started_at__gte=lower, started_at__lt=upper).aggregate(
        started=Count("id"), abandoned=Count("id", filter=Q(status__in=["abandoned", "recovered"]))
    )
    return {
        "revenue": float(totals["revenue"] or 0),
        "orders": totals["orders"],
        "customers": customers,
        "new_customers": new,
        "repeat_rate": repeat / customers if customers else None,
        "retention": (e_count - new) / s_count if s_count else None,
        "churn": lapsed / s_count if s_count else None,
        "historic_clv": float(flags["revenue"].sum()) / acquired if acquired else None,
        "conversion": session_totals.get("sessions_with_order", 0) / session_totals["sessions"]
        if len(session_totals) and session_totals["sessions"]
        else None,
        "abandonment": carts["abandoned"] / carts["started"] if carts["started"] else None,
        "previous_days": previous.days,
    }


def _compare(overview, raw: dict) -> str:
    wrong = []
    for key in (
        "revenue",
        "orders",
        "customers",
        "new_customers",
        "repeat_rate",
        "retention",
        "churn",
        "historic_clv",
        "conversion",
        "abandonment",
    ):
        ours, theirs = overview.kpi(key).value, raw[key]
        if (ours is None) != (theirs is None) or (ours is not None and abs(ours - theirs) > 1e-6 * max(1, abs(theirs))):
            wrong.append(f"{key}: {ours} != {theirs}")
    return "; ".join(wrong)


def _purge(workspace) -> None:
    """Delete the generated rows in bulk SQL first: Django's cascade on a million customers would take longer than
    the benchmark itself. The throwaway workspace's own delete then finds little left."""
    from analytics.models import CohortMetrics, DailyMetrics, ModelFit, ProductDailyMetrics, RollupState
    from customers.models import Cart, Customer, CustomerTag, Event, Order, OrderLine

    with connection.cursor() as cursor:
        for model in (
            DailyMetrics,
            ProductDailyMetrics,
            CohortMetrics,
            RollupState,
            ModelFit,
            OrderLine,
            Event,
            Cart,
            Order,
            CustomerTag,
            Customer,
        ):
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [workspace.pk])  # noqa: S608


def run(args) -> list[dict]:
    from django.utils import timezone

    from analytics import selectors, services
    from analytics.selectors import DateRange
    from crm.models import Membership, User
    from customers.models import Cart, Customer, Event, Order
    from customers.services import customer_stats_refresh

    orders = max(20_000, int(FULL_ORDERS * args.scale))
    customers = orders // ORDERS_PER_CUSTOMER
    rows: list[dict] = []
    with throwaway_workspace("bench-analytics") as workspace:
        now = timezone.now()
        id_range = fill_customers(workspace, customers)
        fill_orders(workspace, orders, id_range, max_days=HISTORY_DAYS, now=now)
        _fill_events(workspace, orders // 2, id_range, now)
        _fill_carts(workspace, orders // 10, now)
        customer_stats_refresh(workspace=workspace)
        analyze(Customer, Order, Event, Cart)

        started = time.perf_counter()
        services.rollups_rebuild(workspace=workspace)
        rebuild_ms = (time.perf_counter() - started) * 1000
        rows.append(
            row("analytics: rollups full rebuild (3 years)", n=orders, median=rebuild_ms, target="nightly/once")
        )
        refresh_ms = median_ms(lambda: services.rollups_refresh_recent(workspace=workspace, days=1), repeat=args.repeat)
        rows.append(row("analytics: incremental refresh of today", n=orders, median=refresh_ms, target="minute tick"))

        user = User.objects.create_user(email=f"bench-{workspace.slug}@bench.test", password=None)
        Membership.objects.create(workspace=workspace, user=user, role="owner")
        client = Client()
        client.force_login(user)
        today = workspace.today()
        try:
            for days in (30, 365):
                date_range = DateRange(start=today - dt.timedelta(days=days - 1), end=today)
                url = f"/w/{workspace.slug}/?period={days}"
                assert client.get(url).status_code == 200
                view_ms = median_ms(lambda url=url: client.get(url), repeat=args.repeat)
                raw_ms = median_ms(lambda r=date_range: figures_from_raw(workspace, r), repeat=max(1, args.repeat // 2))
                mismatch = _compare(
                    selectors.overview(workspace=workspace, date_range=date_range),
                    figures_from_raw(workspace, date_range),
                )
                rows.append(
                    row(
                        f"analytics: dashboard view, last {days} days (baseline: raw orders)",
                        n=orders,
                        median=view_ms,
                        baseline=raw_ms,
                        target=f"MISMATCH {mismatch}" if mismatch else TARGET,
                    )
                )
            for chart in ("revenue", "cohorts"):
                url = f"/w/{workspace.slug}/analytics/charts/{chart}/?period=365"
                chart_ms = median_ms(lambda url=url: client.get(url, HTTP_HX_REQUEST="true"), repeat=args.repeat)
                rows.append(
                    row(
                        f"analytics: chart fragment {chart}, 365 days",
                        n=orders,
                        median=chart_ms,
                        target="loaded after the page",
                    )
                )
        finally:
            user.delete()
            _purge(workspace)
    if connection.vendor == "sqlite":
        for item in rows:
            item["target"] = f"{item['target']} (SQLite: use PostgreSQL for the real figure)"
    return rows
