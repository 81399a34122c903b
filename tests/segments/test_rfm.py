"""RFM scoring: the pure scoring functions, and the bulk rescore on a hand-built store (ties included)."""

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from django_scopes import scope, scopes_disabled

from customers.models import Customer, Event
from segments import rfm, selectors, services
from segments.models import RfmGroupChange, RfmSnapshot
from tests.factories import CustomerFactory, OrderFactory

AS_OF = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.UTC)


def test_quintiles_of_ten_distinct_values():
    scores = rfm.quintile_scores(pd.Series(range(1, 11), dtype="float64"))

    assert scores.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_ties_share_the_score_where_their_tie_starts():
    # five buyers, three with one order: the tie sits at the bottom; 2 and 3 orders rank 4th and 5th
    scores = rfm.quintile_scores(pd.Series([1, 1, 1, 2, 3], dtype="float64"))

    assert scores.tolist() == [1, 1, 1, 4, 5]


def test_fewer_days_since_the_last_order_is_better():
    scores = rfm.quintile_scores(pd.Series([100, 1, 1, 40, 10], dtype="float64"), higher_is_better=False)

    assert scores.tolist() == [1, 4, 4, 2, 3]


@pytest.mark.parametrize(("f", "m", "fm"), [(1, 1, 1), (1, 2, 2), (4, 5, 5), (3, 4, 4), (2, 2, 2), (5, 5, 5)])
def test_fm_is_the_average_rounded_half_up(f, m, fm):
    assert rfm.fm_score(f, m) == fm


def test_the_default_map_covers_every_cell_with_a_known_group():
    assert set(rfm.DEFAULT_GROUP_MAP) == {(r, fm) for r in range(1, 6) for fm in range(1, 6)}
    assert set(rfm.DEFAULT_GROUP_MAP.values()) == set(rfm.GROUP_NAMES) - {rfm.PROSPECTS}
    assert rfm.DEFAULT_GROUP_MAP[(5, 5)] == "Champions"
    assert rfm.DEFAULT_GROUP_MAP[(1, 1)] == "Dormant"


def test_overrides_replace_single_cells_and_ignore_nonsense():
    mapping = rfm.group_map_with_overrides({"4,5": "Champions", "9,9": "Loyal", "1,1": "Prospects", "x": "Loyal"})

    assert mapping[(4, 5)] == "Champions"
    assert mapping[(1, 1)] == "Dormant"
    assert len(mapping) == 25


def test_score_customers_keeps_non_buyers_apart():
    frame = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "days_since_last_order": [5.0, np.nan, 50.0],
            "orders": [2, 0, 1],
            "revenue": [100.0, 0.0, 10.0],
        }
    )

    scored = rfm.score_customers(frame)

    assert scored[["customer_id", "recency", "frequency", "monetary", "group"]].values.tolist() == [
        [1, 5, 5, 5, "Champions"],
        [2, 0, 0, 0, "Prospects"],
        [3, 3, 3, 3, "Needs attention"],  # with two buyers the lower one is in the bottom 50%
    ]


# ---- the bulk rescore on a hand-built store --------------------------------------------------------------------
#
# buyer  days since last  orders  spent  |  R  F  M  FM   group
# A      1                5       500    |  4  5  5  5    Loyal
# B      1 (tie with A)   3       300    |  4  4  3  4    Loyal   (3.5 rounds up)
# C      10               1       50     |  3  1  2  2    Needs attention
# D      40               2       300    |  2  3  3  3    At risk (M ties with B)
# E      100              1       20     |  1  1  1  1    Dormant (its cancelled order today does not count)
# P      -                0       0      |  0  0  0  -    Prospects


def _orders(workspace, customer, *, last_days, count, each, as_of=AS_OF):
    for index in range(count):
        OrderFactory(
            workspace=workspace,
            customer=customer,
            placed_at=as_of - dt.timedelta(days=last_days + 50 * index),
            total=Decimal(each),
            net_total=Decimal(each),
            status="closed",
        )


@pytest.fixture
def hand_store(workspace):
    people = {name: CustomerFactory(workspace=workspace, first_name=name) for name in "ABCDEP"}
    _orders(workspace, people["A"], last_days=1, count=5, each="100")
    _orders(workspace, people["B"], last_days=1, count=3, each="100")
    _orders(workspace, people["C"], last_days=10, count=1, each="50")
    _orders(workspace, people["D"], last_days=40, count=2, each="150")
    _orders(workspace, people["E"], last_days=100, count=1, each="20")
    OrderFactory(workspace=workspace, customer=people["E"], placed_at=AS_OF - dt.timedelta(hours=1), total=999,
                 net_total=0, status="cancelled")  # fmt: skip
    return people


def scores(workspace) -> dict[str, tuple]:
    with scopes_disabled():
        return {
            c.first_name: (c.rfm_recency, c.rfm_frequency, c.rfm_monetary, c.rfm_group)
            for c in Customer.objects.filter(workspace=workspace)
        }


def test_rescore_scores_the_hand_built_store(workspace, hand_store):
    with scope(workspace=workspace):
        result = services.rfm_rescore(workspace=workspace, as_of=AS_OF)

    assert scores(workspace) == {
        "A": (4, 5, 5, "Loyal"),
        "B": (4, 4, 3, "Loyal"),
        "C": (3, 1, 2, "Needs attention"),
        "D": (2, 3, 3, "At risk"),
        "E": (1, 1, 1, "Dormant"),
        "P": (0, 0, 0, "Prospects"),
    }
    assert (result.customers, result.scored, result.prospects, result.updated) == (6, 5, 1, 6)
    # a first scoring is history, not an event
    assert result.events == 0
    with scopes_disabled():
        assert RfmGroupChange.objects.filter(workspace=workspace).count() == 6
        assert not Event.objects.filter(workspace=workspace, type="rfm_group_changed").exists()


def test_rescore_records_group_moves_as_history_and_events(workspace, hand_store):
    with scope(workspace=workspace):
        services.rfm_rescore(workspace=workspace, as_of=AS_OF)
    # a month later E comes back with a big order
    later = AS_OF + dt.timedelta(days=30)
    _orders(workspace, hand_store["E"], last_days=1, count=1, each="1000", as_of=later)

    with scope(workspace=workspace):
        result = services.rfm_rescore(workspace=workspace, as_of=later)

    # days: A 31, B 31, C 40, D 70, E 1 -> R 3 3 2 1 5; F 5 4 1 2 2; M (500 300 50 300 1020) 4 2 1 2 5
    assert scores(workspace) == {
        "A": (3, 5, 4, "Loyal"),
        "B": (3, 4, 2, "Needs attention"),
        "C": (2, 1, 1, "Almost lost"),
        "D": (1, 2, 2, "Dormant"),
        "E": (5, 2, 5, "Champions"),
        "P": (0, 0, 0, "Prospects"),
    }
    assert result.group_changes == 4
    with scopes_disabled():
        events = {
            (e.customer.first_name, e.properties["from"], e.properties["to"])
            for e in Event.objects.filter(workspace=workspace, type="rfm_group_changed").select_related("customer")
        }
        history = list(
            RfmGroupChange.objects.filter(workspace=workspace, customer=hand_store["E"]).order_by("changed_at", "pk")
        )
    assert events == {
        ("B", "Loyal", "Needs attention"),
        ("C", "Needs attention", "Almost lost"),
        ("D", "At risk", "Dormant"),
        ("E", "Dormant", "Champions"),
    }
    assert [(h.from_group, h.to_group) for h in history] == [("", "Dormant"), ("Dormant", "Champions")]


def test_rescoring_again_changes_nothing(workspace, hand_store):
    with scope(workspace=workspace):
        services.rfm_rescore(workspace=workspace, as_of=AS_OF)
        again = services.rfm_rescore(workspace=workspace, as_of=AS_OF)

    assert (again.updated, again.group_changes, again.events) == (0, 0, 0)


def test_a_workspace_can_override_the_group_map(workspace, hand_store):
    with scope(workspace=workspace):
        services.rfm_settings_update(workspace=workspace, window_days=None, group_map={"4,5": "Champions"})
        services.rfm_rescore(workspace=workspace, as_of=AS_OF)

    assert scores(workspace)["A"] == (4, 5, 5, "Champions")
    assert scores(workspace)["B"] == (4, 4, 3, "Loyal")


def test_the_window_only_counts_recent_orders(workspace, hand_store):
    # A, B and C each have exactly one order in the last 20 days (a three-way tie in F); D and E have none
    with scope(workspace=workspace):
        services.rfm_settings_update(workspace=workspace, window_days=20, group_map={})
        services.rfm_rescore(workspace=workspace, as_of=AS_OF)

    result = scores(workspace)
    assert result["D"] == result["E"] == result["P"] == (0, 0, 0, "Prospects")
    # three buyers: ceil(5 * rank / 3) with the tie at rank 1 -> 2 for all; recency ranks C 1st, A and B 2nd
    assert [result[name][1] for name in "ABC"] == [2, 2, 2]
    assert [result[name][0] for name in "ABC"] == [4, 4, 2]


@pytest.mark.parametrize(("window", "group_map", "message"), [
    (0, {}, "The scoring window must be between 1 and 3650 days (or empty for all time)."),
    (None, {"6,1": "Loyal"}, "'6,1' is not an R,FM cell (both 1-5)."),
    (None, {"1,1": "Heroes"}, "'Heroes' is not an RFM group."),
])  # fmt: skip
def test_settings_refuse_nonsense(workspace, window, group_map, message):
    from crm.exceptions import DomainError

    with scope(workspace=workspace), pytest.raises(DomainError) as error:
        services.rfm_settings_update(workspace=workspace, window_days=window, group_map=group_map)
    assert error.value.message == message


def test_snapshot_feeds_the_rfm_page_with_change_since_last_week(workspace, hand_store):
    with scope(workspace=workspace):
        services.rfm_rescore(workspace=workspace, as_of=AS_OF)
        _orders(workspace, hand_store["P"], last_days=1, count=1, each="10", as_of=AS_OF + dt.timedelta(days=8))
        services.rfm_rescore(workspace=workspace, as_of=AS_OF + dt.timedelta(days=8))
        overview = selectors.rfm_overview(workspace=workspace)

    with scopes_disabled():
        assert RfmSnapshot.objects.filter(workspace=workspace).count() == 2
    assert overview.compared_with is not None
    by_name = {row.name: row for row in overview.groups}
    assert by_name["Prospects"].customers == 0
    assert by_name["Prospects"].change == -1
    assert overview.total_customers == 6
    assert sum(row.customers for row in overview.groups) == 6
    assert sum(cell.customers for row in overview.grid_rows for cell in row) == 6
    assert round(sum(row.revenue_share for row in overview.groups), 6) == 1.0


def test_rfm_page_figures_on_the_first_scoring(workspace, hand_store):
    with scope(workspace=workspace):
        services.rfm_rescore(workspace=workspace, as_of=AS_OF)
        overview = selectors.rfm_overview(workspace=workspace)

    loyal = next(row for row in overview.groups if row.name == "Loyal")
    assert loyal.customers == 2
    assert loyal.revenue == 800.0
    assert loyal.average_spend == 400.0
    assert loyal.average_days_since_last_order == 1.0
    assert loyal.customer_share == pytest.approx(2 / 6)
    assert loyal.revenue_share == pytest.approx(800 / 1170)
    assert loyal.change is None  # no snapshot a week older
    # grid row R=4 (second row), column F=5 holds A; F=4 holds B
    assert overview.grid_rows[1][4].customers == 1
    assert overview.grid_rows[1][4].revenue == 500.0
    assert overview.grid_rows[1][3].customers == 1


@pytest.mark.parametrize("tz", ["UTC", "Pacific/Kiritimati"])
def test_days_since_follow_the_workspace_calendar(workspace, tz):
    workspace.timezone = tz
    # AS_OF (12:00 UTC on 30 June) is already 1 July in Kiritimati (UTC+14), where 09:00 UTC on 30 June was still
    # 30 June (23:00): the same order is 0 days old in a UTC workspace and 1 day old in Kiritimati
    epoch = pd.Series([dt.datetime(2026, 6, 30, 9, 0, tzinfo=dt.UTC).timestamp(), np.nan])

    days = selectors.days_since(epoch, as_of=AS_OF, workspace=workspace)

    assert days.tolist()[0] == (0.0 if tz == "UTC" else 1.0)
    assert np.isnan(days.tolist()[1])


def test_rescore_leaves_other_workspaces_alone(workspace, other_workspace, hand_store):
    stranger = CustomerFactory(workspace=other_workspace, first_name="Z")
    _orders(other_workspace, stranger, last_days=1, count=1, each="10")

    with scope(workspace=workspace):
        services.rfm_rescore(workspace=workspace, as_of=AS_OF)

    with scopes_disabled():
        stranger.refresh_from_db()
    assert (stranger.rfm_recency, stranger.rfm_group) == (0, "")
