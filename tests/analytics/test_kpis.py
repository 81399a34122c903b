"""Every overview KPI on the hand-built store of tests/analytics/store.py, with the arithmetic written out."""

import datetime as dt

import pytest
from django_scopes import scope

from analytics import selectors, services
from analytics.selectors import DateRange
from tests.analytics.store import build_store

MARCH = DateRange(start=dt.date(2025, 3, 1), end=dt.date(2025, 3, 31))


@pytest.fixture
def march_overview(workspace):
    build_store(workspace)
    with scope(workspace=workspace):
        services.rollups_refresh(workspace=workspace, start=dt.date(2024, 1, 1), end=dt.date(2025, 4, 30))
        return selectors.overview(workspace=workspace, date_range=MARCH)


def test_previous_period_is_the_same_length_just_before():
    assert MARCH.previous() == DateRange(start=dt.date(2025, 1, 29), end=dt.date(2025, 2, 28))


# (kpi, value in March, value in the previous period), each worked out by hand from tests/analytics/store.py.
EXPECTED = [
    # A 50+30, B 80+40, C 20, H 25, guest 40; F's 200 was cancelled. Previous: C's 60.
    ("revenue", 285.0, 60.0),
    # A 2, B 2, C 1, H 1, guest 1 = 7. Previous: 1.
    ("orders", 7, 1),
    # 285 / 7 ; 60 / 1
    ("aov", 285 / 7, 60.0),
    # A, B, C, H (the guest is not a customer; F's only order was cancelled). Previous: C.
    ("customers", 4, 1),
    # B (first order Mar 10) and H (Mar 28). Previous: C (Feb 10).
    ("new_customers", 2, 1),
    # A (first order 2024) and C (Feb 10). Previous: nobody.
    ("returning_customers", 2, 0),
    # Orders on the first-order day: B 80 + H 25. Previous: C 60.
    ("new_revenue", 105.0, 60.0),
    # A 50+30, B's second order 40, C 20. Previous: 0.
    ("returning_revenue", 140.0, 0.0),
    # A, B (Mar 10 and 12) and C have ordered on two days by Mar 31; H has not: 3 / 4. Previous: C once: 0 / 1.
    ("repeat_rate", 0.75, 0.0),
    # S (active on Feb 28, ordered after 2024-02-29) = C, E, G = 3; E (active on Mar 31) = A, B, C, G, H = 5;
    # N = 2 -> (5 - 2) / 3 = 1.0 (E lapsed, A came back).
    # Previous: S (Jan 28) = D, E, G = 3; E (Feb 28) = 3; N = 1 -> (3 - 1) / 3.
    ("retention", 1.0, 2 / 3),
    # E's last order 2024-03-10 is 365 days old on 2025-03-10: 1 lapsed / S 3. Previous: D lapsed Feb 19: 1 / 3.
    ("churn", 1 / 3, 1 / 3),
    # Revenue of identified customers to Mar 31: A 180 + B 120 + C 80 + D 70 + E 90 + G 10 + H 25 = 575,
    # over the 7 customers acquired by then. Previous (to Feb 28): A 100 + C 60 + D 70 + E 90 + G 10 = 330 / 5.
    ("historic_clv", 575 / 7, 66.0),
    # Sessions: A's (with order), x's two, y's = 4; with an order: 1. Previous: no sessions.
    ("conversion", 0.25, None),
    # Carts started in March: 4; abandoned (abandoned or recovered): 2. Previous: 1 of 1.
    ("abandonment", 0.5, 1.0),
    # Latest NPS answers in March: A 10, B 9 (promoters), C 5 (detractor), H 7: (2 - 1) / 4 * 100.
    ("nps", 25.0, None),
    # Latest CSAT answers in March: A 5, B 3 -> 1 of 2 satisfied.
    ("csat", 0.5, None),
    # No model fitted yet.
    ("predicted_clv", None, None),
]


def _same(actual, expected) -> bool:
    return actual is None if expected is None else actual is not None and actual == pytest.approx(expected)


def test_every_kpi_matches_the_hand_worked_answer(march_overview):
    # the store is built once; every KPI is checked and all mismatches are reported together
    mismatches = [
        (key, march_overview.kpi(key).value, value, march_overview.kpi(key).previous, previous)
        for key, value, previous in EXPECTED
        if not (_same(march_overview.kpi(key).value, value) and _same(march_overview.kpi(key).previous, previous))
    ]

    assert mismatches == []
    assert {kpi.key for kpi in march_overview.kpis} == {key for key, _, _ in EXPECTED}


def test_session_details_give_pages_and_time_on_site(workspace, march_overview):
    with scope(workspace=workspace):
        frame = selectors.daily_frame(workspace=workspace, date_range=MARCH)

    # Page views: A 2, x 1 + 2, y 1 = 6. Seconds: A 1800, x 0 + 300, y 300 = 2400.
    assert frame["page_views"].sum() == 6
    assert frame["session_seconds"].sum() == 2400
    # Funnel: 4 visits, 3 with a product view (A, x's second, y), 2 carts (A, y), 1 checkout, 1 order.
    assert [
        frame[c].sum()
        for c in (
            "sessions",
            "sessions_with_product_view",
            "sessions_with_cart",
            "sessions_with_checkout",
            "sessions_with_order",
        )
    ] == [4, 3, 2, 1, 1]


def test_kpi_delta_and_sparkline(march_overview):
    revenue = march_overview.kpi("revenue")
    # (285 - 60) / 60
    assert revenue.delta == pytest.approx(3.75)
    assert len(revenue.sparkline) == 31
    assert revenue.sparkline[4] == 50.0  # Mar 5: A's 50
    # Rates move in percentage points: repeat rate 75% - 0%.
    assert march_overview.kpi("repeat_rate").delta == pytest.approx(0.75)
    # Churn going down is good, up is bad; equal is neither.
    assert march_overview.kpi("churn").is_good is None


def test_days_are_local_to_the_workspace_timezone(workspace):
    # given a New York store and an order at 03:00 UTC on Mar 1, which is still Feb 28 in New York
    from tests.factories import OrderFactory

    workspace.timezone = "America/New_York"
    workspace.save()
    OrderFactory(workspace=workspace, placed_at=dt.datetime(2025, 3, 1, 3, 0, tzinfo=dt.UTC))

    with scope(workspace=workspace):
        services.rollups_refresh(workspace=workspace, start=dt.date(2025, 2, 27), end=dt.date(2025, 3, 2))
        overview = selectors.overview(workspace=workspace, date_range=MARCH)
        frame = selectors.daily_frame(
            workspace=workspace, date_range=DateRange(start=dt.date(2025, 2, 28), end=dt.date(2025, 2, 28))
        )

    assert overview.kpi("orders").value == 0
    assert overview.kpi("orders").previous == 1
    assert frame["orders"].tolist() == [1.0]


def test_incremental_refresh_of_one_day_matches_a_full_rebuild(workspace):
    # given rollups built once, then a new order lands on Mar 31 and only that day is refreshed
    from tests.factories import OrderFactory

    customers = build_store(workspace)
    with scope(workspace=workspace):
        services.rollups_refresh(workspace=workspace, start=dt.date(2024, 1, 1), end=dt.date(2025, 4, 30))
    OrderFactory(
        workspace=workspace,
        customer=customers["D"],
        placed_at=dt.datetime(2025, 3, 31, 8, tzinfo=dt.UTC),
        total=15,
        net_total=15,
    )

    with scope(workspace=workspace):
        services.rollups_refresh(workspace=workspace, start=dt.date(2025, 3, 31), end=dt.date(2025, 3, 31))
        incremental = selectors.overview(workspace=workspace, date_range=MARCH)
        services.rollups_rebuild(workspace=workspace)
        rebuilt = selectors.overview(workspace=workspace, date_range=MARCH)

    # then D comes back: 5 customers, 3 returning, retention (6 - 2) / 3
    assert incremental.kpi("customers").value == 5
    assert incremental.kpi("retention").value == pytest.approx(4 / 3)
    # over 100%: A and D had lapsed (no order for a year) and came back; of S = {C, E, G}, E lapsed on Mar 10
    assert incremental.kpi("retention").note == (
        "Over 100%: 2 lapsed customers came back. 67% of those active at the start still are."
    )
    assert [(k.key, k.value, k.previous) for k in incremental.kpis] == [
        (k.key, k.value, k.previous) for k in rebuilt.kpis
    ]


def test_customer_counts_in_sql_match_the_pure_rule(workspace, march_overview):
    from analytics.transforms import range_customer_counts

    with scope(workspace=workspace):
        rows = selectors.daily_rows(
            workspace=workspace,
            date_range=MARCH,
            fields=["date", "new_customers", "second_order_reach", "later_order_reach"],
        )
        in_sql = selectors.range_customer_counts_sql(workspace=workspace, periods=[MARCH, MARCH.previous()])

    # March: A, B, C, H ordered; B and H are new; A, B, C ordered on two days by Mar 31.
    assert range_customer_counts(rows, start=MARCH.start) == {"customers": 4, "new": 2, "returning": 2, "repeat": 3}
    assert in_sql[0] == {"customers": 4, "new": 2, "returning": 2, "repeat": 3}
    assert in_sql[1] == {"customers": 1, "new": 1, "returning": 0, "repeat": 0}


def test_retention_up_to_100_percent_needs_no_note(march_overview):
    assert march_overview.kpi("retention").value == 1.0
    assert march_overview.kpi("retention").note == ""


def test_retention_and_churn_are_not_shown_for_periods_over_a_year(workspace):
    # given a 400-day period: customers acquired inside it can lapse inside it, so (E - N) / S loses its meaning
    build_store(workspace)
    with scope(workspace=workspace):
        services.rollups_refresh(workspace=workspace, start=dt.date(2023, 1, 1), end=dt.date(2025, 4, 30))
        overview = selectors.overview(
            workspace=workspace, date_range=DateRange(start=dt.date(2024, 2, 25), end=dt.date(2025, 3, 30))
        )

    for key in ("retention", "churn"):
        assert (overview.kpi(key).value, overview.kpi(key).previous) == (None, None)
        assert overview.kpi(key).note == selectors.LONG_PERIOD_NOTE
    assert overview.kpi("revenue").value == 285.0 + 60.0 + 10.0 + 90.0  # March, C's Feb order, G, E
