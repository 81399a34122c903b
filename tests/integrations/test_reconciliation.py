"""Reconciliation finds a day of orders whose webhooks were missed and backfills it."""

import datetime as dt

from django.test import TestCase
from django_scopes import scope

from customers.models import Order
from integrations import reconciliation, sync


def test_reconciliation_repairs_a_day_of_missed_orders(workspace, woo_connection, catalogue):
    # given: a synced store...
    with scope(workspace=workspace), TestCase.captureOnCommitCallbacks(execute=True):
        sync.sync_run_start(workspace=workspace, connection=woo_connection, kind="full")
    today = workspace.today()
    missed_day = today - dt.timedelta(days=2)
    # ...then three orders on one day whose webhooks never arrived (and that an incremental sync, whose watermark is
    # past their modification time, does not see either)
    noon = dt.datetime.combine(missed_day, dt.time(12), tzinfo=dt.UTC)
    missed = [
        catalogue.add_order(
            created_at=noon + dt.timedelta(minutes=i), quantity=i + 1, updated_at=noon - dt.timedelta(days=30)
        )
        for i in range(3)
    ]

    with scope(workspace=workspace):
        run = reconciliation.connection_reconcile(workspace=workspace, connection=woo_connection, days=7, today=today)

    assert run.status == "done", run.message
    differing = [row for row in run.details["days"] if row["differs"]]
    assert [row["date"] for row in differing] == [missed_day.isoformat()]
    row = differing[0]
    assert row["store_count"] == row["crm_count"] + 3
    assert row["repaired"] is True
    assert row["crm_count_after"] == row["store_count"]
    assert run.message == "1 day(s) differed and were repaired (3 orders backfilled)."
    with scope(workspace=workspace):
        assert set(
            Order.objects.filter(source="woocommerce", external_id__in=[str(o.id) for o in missed]).values_list(
                "external_id", flat=True
            )
        ) == {str(o.id) for o in missed}


def test_reconciliation_of_a_matching_store_changes_nothing(workspace, shopify_connection, catalogue):
    with scope(workspace=workspace), TestCase.captureOnCommitCallbacks(execute=True):
        sync.sync_run_start(workspace=workspace, connection=shopify_connection, kind="full")

    with scope(workspace=workspace):
        before = Order.objects.count()
        run = reconciliation.connection_reconcile(workspace=workspace, connection=shopify_connection, days=21)
        after = Order.objects.count()

    assert run.message == "All 21 days match the store."
    assert before == after == len(catalogue.orders)
    assert sum(row["store_count"] for row in run.details["days"]) > 150
