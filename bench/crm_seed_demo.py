"""seed_demo's bulk path vs a save()-per-row baseline (issue: 10,000 customers and 50,000 orders in < 60 s on
SQLite). The baseline saves a sample of customers and orders one row at a time and is extrapolated."""

import time

from django.core.management import call_command
from django.utils import timezone
from django_scopes import scope

from bench.common import row, workspace_drop
from crm.demo_data import generate_store
from crm.models import Workspace

FULL_CUSTOMERS, FULL_ORDERS = 10_000, 50_000


def _per_row_seconds(workspace, store, sample: int = 200) -> float:
    from customers.models import Customer, Event, Order, OrderLine

    started = time.perf_counter()
    customers = {}
    for record in store.customers[:sample]:
        customer = Customer(
            workspace=workspace,
            source="baseline",
            external_id=record.external_id,
            email=record.email,
            first_name=record.first_name,
            last_name=record.last_name,
        )
        customer.save()
        customers[record.external_id] = customer
    orders = [o for o in store.orders if o.customer_external_id in customers][: sample * 5]
    for record in orders:
        order = Order(
            workspace=workspace,
            source="baseline",
            external_id=record.external_id,
            customer=customers[record.customer_external_id],
            total=record.total,
            net_total=record.total,
            placed_at=record.placed_at,
        )
        order.save()
        for line in record.lines:
            OrderLine(
                workspace=workspace,
                order=order,
                customer=order.customer,
                placed_at=order.placed_at,
                title=line.title,
                quantity=line.quantity,
                unit_price=line.unit_price,
                total=line.unit_price * line.quantity,
            ).save()
        Event(workspace=workspace, customer=order.customer, type="order_placed", occurred_at=record.placed_at).save()
    elapsed = time.perf_counter() - started
    # seconds for the whole store at the same per-row costs
    per_customer = elapsed / (len(customers) + len(orders)) if orders else elapsed / len(customers)
    return per_customer * (len(store.customers) + len(store.orders))


def run(args) -> list[dict]:
    from customers import services

    customers = max(500, int(FULL_CUSTOMERS * args.scale))
    orders = max(2500, int(FULL_ORDERS * args.scale))
    rows = []

    # the whole command, every app's demo data included
    slug = f"bench-seed-{int(time.time())}"
    started = time.perf_counter()
    call_command("seed_demo", customers=customers, orders=orders, workspace=slug, stdout=_Null())
    seed_ms = (time.perf_counter() - started) * 1000
    workspace_drop(Workspace.objects.get(slug=slug))
    rows.append(
        row(
            f"seed_demo {customers:,} customers + {orders:,} orders, all apps",
            n=orders,
            median=seed_ms,
            target="< 60,000 ms at 10,000 + 50,000 (SQLite)",
        )
    )

    # its bulk core (customers, products, orders with lines and stats) against saving the same rows one by one
    store = generate_store(customers=customers, orders=orders, now=timezone.now(), events=False, seed=3)
    workspace = Workspace.objects.create(name="bench seed core", slug=f"{slug}-core")
    with scope(workspace=workspace):
        started = time.perf_counter()
        services.products_bulk_upsert(workspace=workspace, records=store.products)
        services.customers_bulk_upsert(workspace=workspace, records=store.customers)
        services.orders_bulk_upsert(workspace=workspace, records=store.orders)
        core_ms = (time.perf_counter() - started) * 1000
        baseline_ms = _per_row_seconds(workspace, store) * 1000
    workspace_drop(workspace)
    rows.append(
        row(
            "  its bulk core: customers, products, orders + lines + stats",
            n=orders,
            median=core_ms,
            baseline=baseline_ms,
            target="baseline: save() per row, extrapolated",
        )
    )
    return rows


class _Null:
    def write(self, *args, **kwargs):
        pass

    def flush(self):
        pass
