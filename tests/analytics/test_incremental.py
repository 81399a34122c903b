"""The minute tick refreshes only the days that changed, and the result equals a full rebuild."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from django_scopes import scope

from analytics import services, tasks
from analytics.models import DAILY_FIELDS, CohortMetrics, DailyMetrics, ProductDailyMetrics, RollupState, daily_zeros
from customers import services as customer_services
from customers.models import Cart, Order
from customers.records import EventRecord
from tests.analytics.store import at, build_store
from tests.factories import CustomerFactory, OrderFactory

ZEROS = daily_zeros(DAILY_FIELDS)


@pytest.fixture
def store(workspace):
    customers = build_store(workspace)
    with scope(workspace=workspace):
        # the store was loaded an hour ago
        an_hour_ago = timezone.now() - dt.timedelta(hours=1)
        Order.objects.update(updated_at=an_hour_ago)
        Cart.objects.update(updated_at=an_hour_ago)
        services.rollups_rebuild(workspace=workspace)
    return customers


def _snapshot(workspace) -> dict:
    """Every rollup as plain values; days whose figures are all zero count as absent (readers treat them so)."""
    with scope(workspace=workspace):
        days = {
            row["date"]: {name: row[name] for name in DAILY_FIELDS}
            for row in DailyMetrics.objects.values("date", *DAILY_FIELDS)
        }
        return {
            "days": {day: values for day, values in days.items() if values != ZEROS},
            "products": set(
                ProductDailyMetrics.objects.values_list("date", "product_key", "orders", "units", "revenue")
            ),
            "cohorts": set(
                CohortMetrics.objects.values_list("cohort_month", "month", "customers", "orders", "revenue")
            ),
        }


def _refreshed_at(workspace) -> dict[dt.date, dt.datetime]:
    with scope(workspace=workspace):
        return dict(DailyMetrics.objects.values_list("date", "refreshed_at"))


def _tick(workspace) -> set[dt.date]:
    """Run the minute tick (made due) and return the days it wrote."""
    before = _refreshed_at(workspace)
    with scope(workspace=workspace):
        RollupState.objects.update(last_refreshed_at=timezone.now() - dt.timedelta(minutes=1))
    tasks.rollups_refresh_if_due(workspace.id)
    return {day for day, stamp in _refreshed_at(workspace).items() if before.get(day) != stamp}


def _rebuilt(workspace) -> dict:
    with scope(workspace=workspace):
        services.rollups_rebuild(workspace=workspace)
    return _snapshot(workspace)


def test_an_order_for_an_old_day_corrects_that_day_only(workspace, store):
    # given rollups built, then a first order of a new customer backfilled for a day last year
    old_day = dt.date(2025, 6, 10)
    OrderFactory(
        workspace=workspace,
        customer=CustomerFactory(workspace=workspace),
        placed_at=at("2025-06-10", "15:00"),
        total=Decimal("70"),
        net_total=Decimal("70"),
    )

    touched = _tick(workspace)

    # the day itself and the day the customer stops being active a year later (today is recomputed too, but this
    # store has nothing today, so it has no row to write)
    assert touched == {old_day, old_day + dt.timedelta(days=365)}
    incremental = _snapshot(workspace)
    assert incremental["days"][old_day]["orders"] == 1
    assert incremental["days"][old_day]["revenue"] == Decimal("70")
    assert incremental["days"][old_day]["new_customers"] == 1
    assert incremental["days"][old_day + dt.timedelta(days=365)]["customers_lapsed"] == 1
    assert incremental == _rebuilt(workspace)


def test_a_refund_changes_the_day_of_the_order(workspace, store):
    # given A's 50.00 order of 2025-03-05 (A also ordered on 2024-01-10 and 2025-03-20), refunded 20.00 today
    with scope(workspace=workspace):
        order = Order.objects.get(customer=store["A"], placed_at=at("2025-03-05"))
        revenue_before = DailyMetrics.objects.get(date=dt.date(2025, 3, 5)).revenue
    order.refunded_total = Decimal("20")
    order.net_total = Decimal("30")
    order.save()

    touched = _tick(workspace)

    # the order's day, A's next order day (its gap) and the day A's 03-05 activity window closes
    assert touched == {dt.date(2025, 3, 5), dt.date(2025, 3, 20), dt.date(2026, 3, 5)}
    incremental = _snapshot(workspace)
    assert incremental["days"][dt.date(2025, 3, 5)]["revenue"] == revenue_before - Decimal("20")
    assert incremental["days"][dt.date(2025, 3, 5)]["returning_customer_revenue"] == Decimal("30")
    assert incremental == _rebuilt(workspace)


def test_a_cancelled_first_order_moves_the_customers_later_days(workspace, store):
    # given C's first order (2025-02-10) cancelled: C's 2025-03-15 order becomes their first
    with scope(workspace=workspace):
        order = Order.objects.get(customer=store["C"], placed_at=at("2025-02-10"))
        order.status = "cancelled"
        order.net_total = Decimal("0")
        order.save()
        customer_services.customer_stats_refresh(workspace=workspace, customer_ids=[store["C"].pk])

    _tick(workspace)

    incremental = _snapshot(workspace)
    assert incremental["days"][dt.date(2025, 3, 15)]["new_customers"] == 1
    assert incremental == _rebuilt(workspace)


def test_late_storefront_events_refresh_their_day(workspace, store):
    with scope(workspace=workspace):
        customer_services.events_bulk_record(
            workspace=workspace,
            records=[
                EventRecord(
                    type="page_viewed", occurred_at=at("2025-04-02", "08:00"), source="tracking", anonymous_id="z"
                )
            ],
        )

    touched = _tick(workspace)

    # the event's day (the day before is recomputed too, as a session may begin there and run past midnight, but
    # it has nothing to write)
    assert touched == {dt.date(2025, 4, 2)}
    assert _snapshot(workspace)["days"][dt.date(2025, 4, 2)]["sessions"] == 1
    assert _snapshot(workspace) == _rebuilt(workspace)
    # nothing new since: the next tick writes nothing
    assert _tick(workspace) == set()


def test_a_merge_and_its_undo_reach_the_rollups(workspace, store):
    # given C merged into A: C's orders become A's, so C's first-order day no longer has a new customer
    from customers.dedupe import customer_merge, customer_merge_undo, merges_recent

    before = _snapshot(workspace)
    with scope(workspace=workspace):
        customer_merge(workspace=workspace, survivor=store["A"], duplicates=[store["C"]])

    touched = _tick(workspace)

    assert dt.date(2025, 2, 10) in touched
    merged = _snapshot(workspace)
    assert merged != before
    assert merged == _rebuilt(workspace)

    # when the merge is undone, the next tick brings the figures back
    with scope(workspace=workspace):
        customer_merge_undo(workspace=workspace, audit=merges_recent(workspace=workspace)[0])
    _tick(workspace)
    undone = _snapshot(workspace)
    assert undone == _rebuilt(workspace)
    assert undone == before
