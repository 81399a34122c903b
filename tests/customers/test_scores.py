"""customers_set_scores: bulk writes of RFM and prediction columns, only where a value changed."""

import datetime as dt
from decimal import Decimal

import pytest
from django_scopes import scopes_disabled

from customers.models import Customer
from customers.services import customers_set_scores
from tests.factories import CustomerFactory

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
T1 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
RFM = ["rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_group"]
PREDICTIONS = [
    "probability_alive",
    "expected_orders_90d",
    "predicted_clv",
    "predicted_next_order_at",
    "churn_risk",
    "clv_tier",
]


def fetch(customer, *fields):
    with scopes_disabled():
        return tuple(Customer.objects.filter(pk=customer.pk).values_list(*fields).get())


@pytest.fixture
def people(workspace):
    return [CustomerFactory(workspace=workspace) for _ in range(3)]


def test_writes_the_values_and_counts_the_customers(workspace, people):
    a, b, c = people

    changed = customers_set_scores(
        workspace=workspace,
        fields=RFM,
        rows=[(a.pk, 5, 4, 3, "Loyal"), (b.pk, 1, 1, 1, "Dormant")],
        also_set={"rfm_scored_at": T0},
    )

    assert changed == 2
    assert fetch(a, *RFM, "rfm_scored_at") == (5, 4, 3, "Loyal", T0)
    assert fetch(b, *RFM, "rfm_scored_at") == (1, 1, 1, "Dormant", T0)
    assert fetch(c, *RFM, "rfm_scored_at") == (0, 0, 0, "", None)


def test_only_customers_whose_values_differ_are_written(workspace, people):
    a, b, c = people
    customers_set_scores(
        workspace=workspace,
        fields=RFM,
        rows=[(a.pk, 5, 4, 3, "Loyal"), (b.pk, 1, 1, 1, "Dormant"), (c.pk, 2, 2, 2, "Almost lost")],
        also_set={"rfm_scored_at": T0},
    )

    # the same scores for a and c, a new monetary score for b
    changed = customers_set_scores(
        workspace=workspace,
        fields=RFM,
        rows=[(a.pk, 5, 4, 3, "Loyal"), (b.pk, 1, 1, 2, "Dormant"), (c.pk, 2, 2, 2, "Almost lost")],
        also_set={"rfm_scored_at": T1},
    )

    assert changed == 1
    assert fetch(a, "rfm_scored_at") == (T0,)  # not rewritten: its stamp is the first run's
    assert fetch(b, "rfm_monetary", "rfm_scored_at") == (2, T1)
    assert fetch(c, "rfm_scored_at") == (T0,)


def test_predictions_round_trip_and_nulls_compare_as_values(workspace, people):
    a, b, _ = people
    rows = [
        (a.pk, 0.25, 1.5, Decimal("120.40"), T1, "high", "low"),
        (b.pk, None, None, None, None, "", ""),  # b has nothing yet: not a change
    ]

    first = customers_set_scores(workspace=workspace, fields=PREDICTIONS, rows=rows)
    again = customers_set_scores(workspace=workspace, fields=PREDICTIONS, rows=rows)
    cleared = customers_set_scores(
        workspace=workspace, fields=PREDICTIONS, rows=[(a.pk, None, 1.5, Decimal("120.40"), T1, "high", "low")]
    )

    assert (first, again, cleared) == (1, 0, 1)
    assert fetch(a, *PREDICTIONS) == (None, 1.5, Decimal("120.40"), T1, "high", "low")
    assert fetch(b, *PREDICTIONS) == (None, None, None, None, "", "")


def test_reset_others_empties_customers_left_out_and_counts_them(workspace, people):
    a, b, c = people
    customers_set_scores(
        workspace=workspace,
        fields=["probability_alive", "churn_risk"],
        rows=[(a.pk, 0.5, "low"), (b.pk, 0.1, "high")],
    )

    changed = customers_set_scores(
        workspace=workspace, fields=["probability_alive", "churn_risk"], rows=[(a.pk, 0.5, "low")], reset_others=True
    )

    assert changed == 1  # b emptied; a unchanged; c was already empty
    assert fetch(a, "probability_alive", "churn_risk") == (0.5, "low")
    assert fetch(b, "probability_alive", "churn_risk") == (None, "")
    assert fetch(c, "probability_alive", "churn_risk") == (None, "")


def test_another_workspaces_customers_are_left_alone(workspace, other_workspace, people):
    stranger = CustomerFactory(workspace=other_workspace)

    changed = customers_set_scores(
        workspace=workspace,
        fields=RFM,
        rows=[(stranger.pk, 5, 5, 5, "Champions"), (people[0].pk, 5, 5, 5, "Champions")],
        reset_others=True,
    )

    assert changed == 1
    assert fetch(stranger, *RFM) == (0, 0, 0, "")
    assert fetch(people[0], *RFM) == (5, 5, 5, "Champions")


@pytest.mark.parametrize(
    ("fields", "also_set"),
    [
        (["email"], {}),
        (["rfm_group", "total_spent"], {}),
        ([], {}),
        (["rfm_group"], {"updated_at": T0}),
        (["rfm_group"], {"rfm_group": "Loyal"}),
    ],
)
def test_only_score_columns_can_be_written(workspace, people, fields, also_set):
    with pytest.raises(ValueError):
        customers_set_scores(
            workspace=workspace, fields=fields, rows=[(people[0].pk, *["x"] * len(fields))], also_set=also_set
        )

    assert fetch(people[0], "email", "rfm_group") == (people[0].email, "")
