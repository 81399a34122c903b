"""Sync runs against the fake stores: a full import lands exactly the store's rows in this workspace only, an
interrupted run resumes from its cursor, replays change nothing."""

from collections import Counter

import pytest
from django_scopes import scope, scopes_disabled

from customers.models import Cart, Customer, Order, OrderLine, Product
from integrations import sync
from integrations.models import SyncRun, SyncStatus
from tests.factories import CustomerFactory


def run_sync(workspace, connection, kind="full"):
    """Start a run the way the UI does; its task runs (eagerly) when the transaction commits."""
    from django.test import TestCase

    with scope(workspace=workspace), TestCase.captureOnCommitCallbacks(execute=True):
        run = sync.sync_run_start(workspace=workspace, connection=connection, kind=kind)
    with scope(workspace=workspace):
        run.refresh_from_db()
    return run


def rows(workspace, model, source):
    with scope(workspace=workspace):
        return model.objects.filter(workspace=workspace, source=source)


def test_full_shopify_sync_imports_exactly_the_store(workspace, other_workspace, shopify_connection, catalogue):
    CustomerFactory(workspace=other_workspace, source="shopify", external_id=str(catalogue.customers[0].id))

    run = run_sync(workspace, shopify_connection)

    assert run.status == SyncStatus.DONE, run.message
    with scope(workspace=workspace):
        assert sorted(rows(workspace, Customer, "shopify").values_list("external_id", flat=True)) == sorted(
            str(c.id) for c in catalogue.customers
        )
        assert rows(workspace, Product, "shopify").count() == 8
        orders = {o.external_id: o for o in rows(workspace, Order, "shopify")}
        assert len(orders) == 230
        sample = catalogue.orders[17]
        assert orders[str(sample.id)].total == sample.total
        assert OrderLine.objects.filter(order=orders[str(sample.id)]).count() == len(sample.lines)
        assert rows(workspace, Cart, "shopify").count() == 5
    assert run.counts["orders"] == {"created": 230, "updated": 0, "skipped": 0, "failed": 0}
    assert run.pages_done == run.pages_expected == 1 + 1 + 3 + 1
    with scopes_disabled():  # the other workspace only has the customer it had
        assert Customer.objects.filter(workspace=other_workspace).count() == 1
        assert Order.objects.filter(workspace=other_workspace).count() == 0


def test_full_woocommerce_sync(workspace, woo_connection, catalogue):
    run = run_sync(workspace, woo_connection)

    assert run.status == SyncStatus.DONE, run.message
    assert rows(workspace, Customer, "woocommerce").count() == 30
    assert rows(workspace, Order, "woocommerce").count() == 230
    assert run.counts["products"]["created"] == 8


def test_sync_again_changes_nothing(workspace, shopify_connection):
    run_sync(workspace, shopify_connection)
    before = rows(workspace, Order, "shopify").count()

    second = run_sync(workspace, shopify_connection, kind="full")

    assert second.counts["orders"] == {"created": 0, "updated": 0, "skipped": 230, "failed": 0}
    assert rows(workspace, Order, "shopify").count() == before


def test_interrupted_sync_resumes_from_its_cursor_with_exactly_the_right_rows(
    workspace, shopify_connection, fake_shopify, catalogue, settings
):
    settings.INTEGRATIONS_SYNC_RETRY_SECONDS = 0
    # given: the store fails every request after the 3 counts + customers + products + first orders page
    fake_shopify.inject(500, after=3 + 3, times=50)
    run = run_sync(workspace, shopify_connection)

    assert run.status == SyncStatus.RETRYING
    assert run.cursor["resources"][run.cursor["index"]] == "orders"
    saved_cursor = run.cursor["page"]
    assert saved_cursor  # inside the orders, after their first page
    assert rows(workspace, Order, "shopify").count() == 100
    assert "server error (500)" in run.message

    # when: the store recovers and the run is resumed (the minute tick does this once retry_at passes)
    fake_shopify.faults.clear()
    fake_shopify.requests.clear()
    with scope(workspace=workspace):
        assert [r.pk for r in sync.runs_due(workspace=workspace)] == [run.pk]
        run = sync.sync_run_execute(workspace=workspace, run=SyncRun.objects.get(pk=run.pk))

    # then: it went on from the saved cursor, not from the first page, and the rows are exactly the store's
    assert run.status == SyncStatus.DONE, run.message
    first_request = fake_shopify.requests[0]["body"]
    assert "orders(" in first_request["query"] and first_request["variables"]["after"] == saved_cursor
    assert not any("customers(" in r["body"]["query"] for r in fake_shopify.requests)
    external_ids = list(rows(workspace, Order, "shopify").values_list("external_id", flat=True))
    assert Counter(external_ids) == Counter(str(o.id) for o in catalogue.orders)
    assert run.counts["orders"]["created"] == 230


def test_failed_run_gives_up_after_max_attempts(workspace, shopify_connection, fake_shopify, settings):
    settings.INTEGRATIONS_SYNC_MAX_ATTEMPTS = 2
    settings.INTEGRATIONS_SYNC_RETRY_SECONDS = 0
    fake_shopify.inject(500, after=3, times=100)
    run = run_sync(workspace, shopify_connection)
    with scope(workspace=workspace):
        run = sync.sync_run_execute(workspace=workspace, run=run)
        shopify_connection.refresh_from_db()

    assert run.status == SyncStatus.FAILED
    assert run.message.startswith("Stopped after 2 attempt(s): The store answered with a server error (500)")
    assert shopify_connection.status == "failing"


def test_incremental_sync_reads_only_what_changed(workspace, shopify_connection, fake_shopify, catalogue):
    run_sync(workspace, shopify_connection)
    changed = catalogue.orders[3]
    changed.updated_at = max(o.updated_at for o in catalogue.orders) + __import__("datetime").timedelta(hours=1)
    changed.refunded = changed.total
    fake_shopify.requests.clear()

    run = run_sync(workspace, shopify_connection, kind="incremental")

    assert run.status == SyncStatus.DONE
    assert run.counts["orders"]["updated"] == 1
    assert run.counts["orders"]["created"] == 0
    order_query = next(r for r in fake_shopify.requests if "orders(" in r["body"]["query"])
    assert order_query["body"]["variables"]["query"].startswith("updated_at:>'")
    with scope(workspace=workspace):
        assert Order.objects.get(source="shopify", external_id=str(changed.id)).net_total == 0


def test_bad_record_is_counted_and_the_rest_lands(workspace, woo_connection, catalogue, monkeypatch):
    from integrations.fake_store import render

    original = render.woo_product

    def one_broken(product, site):
        body = original(product, site)
        if product.id == catalogue.products[2].id:
            body["stock_quantity"] = "plenty"  # not a number: this one record cannot be stored
        return body

    monkeypatch.setattr(render, "woo_product", one_broken)

    run = run_sync(workspace, woo_connection)

    assert run.status == SyncStatus.DONE
    assert run.counts["products"]["created"] == 7
    assert run.counts["products"]["failed"] == 1
    assert run.errors[0]["external_id"] == str(catalogue.products[2].id)


def test_order_the_database_refuses_is_counted_and_the_rest_of_its_page_lands(
    postgres_only, workspace, woo_connection, catalogue, monkeypatch
):
    # given: one order whose currency does not fit the column (PostgreSQL refuses it; the bulk path's own error)
    from integrations.fake_store import render

    original = render.woo_order
    broken = catalogue.orders[3]

    def one_broken(order, catalogue_):
        body = original(order, catalogue_)
        if order.id == broken.id:
            body["currency"] = "US DOLLARS"
        return body

    monkeypatch.setattr(render, "woo_order", one_broken)

    # when
    run = run_sync(workspace, woo_connection)

    # then: the page was landed record by record, every other order is stored
    assert run.status == SyncStatus.DONE
    assert run.counts["orders"]["failed"] == 1
    assert run.counts["orders"]["created"] == len(catalogue.orders) - 1
    assert [error["external_id"] for error in run.errors] == [str(broken.id)]
    assert rows(workspace, Order, "woocommerce").count() == len(catalogue.orders) - 1


@pytest.mark.parametrize("paused", [True])
def test_paused_connection_does_not_sync(workspace, shopify_connection, paused):
    shopify_connection.is_paused = paused
    shopify_connection.save()

    run = run_sync(workspace, shopify_connection)

    assert run.status == SyncStatus.FAILED
    assert run.message == "The connection is paused."
    assert rows(workspace, Order, "shopify").count() == 0


def test_run_whose_worker_died_is_resumed_by_the_minute_tick(workspace, shopify_connection, catalogue, settings):
    import datetime as dt

    from django.utils import timezone

    from integrations.tasks import integrations_minute_tick

    # given: a run that landed some pages, then its worker was killed (status stuck at RUNNING, no heartbeat)
    with scope(workspace=workspace):
        run = sync.sync_run_start(workspace=workspace, connection=shopify_connection, kind="full")
        sync.sync_run_execute(workspace=workspace, run=run, max_pages=3)
        SyncRun.objects.filter(pk=run.pk).update(
            status=SyncStatus.RUNNING, heartbeat_at=timezone.now() - dt.timedelta(minutes=11)
        )
    assert rows(workspace, Order, "shopify").count() == 100

    # when
    integrations_minute_tick(workspace.id)

    # then: it went on from its cursor to the end
    with scope(workspace=workspace):
        run.refresh_from_db()
    assert run.status == SyncStatus.DONE, run.message
    assert Counter(rows(workspace, Order, "shopify").values_list("external_id", flat=True)) == Counter(
        str(o.id) for o in catalogue.orders
    )
    assert run.counts["orders"]["created"] == 230
