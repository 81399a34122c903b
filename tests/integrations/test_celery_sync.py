"""One full sync through a real Celery worker on Redis into the real database (PostgreSQL in CI). The fake store
runs in this test process on 127.0.0.1; the worker process reaches it over HTTP."""

import time

import pytest
from django_scopes import scope, scopes_disabled

from customers.models import Customer, Order, Product
from integrations import services, sync
from integrations.fake_store import FakeShopify, generate
from integrations.models import SyncRun
from tests.factories import WorkspaceFactory


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_full_sync_through_a_real_worker(celery_worker):
    catalogue = generate(seed=3, customers=25, products=6, orders=150, checkouts=3, days=15)
    workspace = WorkspaceFactory(slug="worker-sync")
    other = WorkspaceFactory(slug="worker-other")
    with FakeShopify(catalogue, bucket_size=100_000, restore_rate=10_000) as server:
        with scope(workspace=workspace):
            connection = services.connection_create(
                workspace=workspace,
                platform="shopify",
                name="Worker shop",
                address=server.url,
                access_token=server.access_token,
            )
            run = sync.sync_run_start(workspace=workspace, connection=connection, kind="full")

        deadline = time.monotonic() + 90
        with scopes_disabled():
            while time.monotonic() < deadline:
                run.refresh_from_db()
                if run.status in ("done", "failed"):
                    break
                time.sleep(0.3)
        assert server.requests, f"the worker never called the fake store:\n{celery_worker.output()}"

    assert run.status == "done", f"{run.status}: {run.message}\n{celery_worker.output()[-3000:]}"
    assert "integrations.tasks.sync_run_execute" in celery_worker.output()
    with scope(workspace=workspace):
        assert Customer.objects.filter(source="shopify").count() == 25
        assert Product.objects.filter(source="shopify").count() == 6
        assert sorted(Order.objects.filter(source="shopify").values_list("external_id", flat=True)) == sorted(
            str(o.id) for o in catalogue.orders
        )
        assert SyncRun.objects.get().counts["orders"]["created"] == 150
    with scope(workspace=other):
        assert not Order.objects.exists()
