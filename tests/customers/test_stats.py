"""The customer stats refresh gives the same figures whichever PostgreSQL plan it takes: one index lookup per
customer (a few customers in a big workspace) or one set-based statement (a large share of the workspace)."""

import datetime as dt
from decimal import Decimal

import pytest
from django_scopes import scope

from customers import services
from customers.models import Customer
from customers.records import CustomerRecord, OrderLineRecord, OrderRecord
from customers.services import stats

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def line(category: str, price: str, quantity: int = 1) -> OrderLineRecord:
    return OrderLineRecord(title=category, category=category, quantity=quantity, unit_price=Decimal(price))


def order(external_id: str, customer: str, days: int, total: str, *lines: OrderLineRecord, **extra) -> OrderRecord:
    return OrderRecord(
        source="shopify",
        external_id=external_id,
        customer_external_id=customer,
        placed_at=T0 + dt.timedelta(days=days),
        total=Decimal(total),
        subtotal=Decimal(total),
        updated_at=T0,
        lines=lines,
        **extra,
    )


@pytest.mark.parametrize("lookups_per_order", [0, 10**6], ids=["lookup-per-customer", "set-based"])
def test_stats_refresh_computes_the_same_figures_on_either_path(workspace, monkeypatch, lookups_per_order):
    # given: a workspace whose orders were written without their stats
    monkeypatch.setattr(stats, "ORDERS_SCANNED_PER_LOOKUP", lookups_per_order)
    with scope(workspace=workspace):
        services.customers_bulk_upsert(
            workspace=workspace,
            records=[CustomerRecord(source="shopify", external_id=name, email=f"{name}@example.com") for name in "abc"],
        )
        services.orders_bulk_upsert(
            workspace=workspace,
            refresh_stats=False,
            records=[
                order("1", "a", 0, "50.00", line("Shoes", "30.00"), line("Hats", "20.00")),
                order("2", "a", 5, "40.00", line("Hats", "20.00", 2)),
                order("3", "a", 9, "99.00", line("Bags", "99.00"), cancelled_at=T0 + dt.timedelta(days=10)),
                order(
                    "4",
                    "b",
                    3,
                    "10.00",
                    line("Socks", "5.00"),
                    line("Belts", "5.00"),
                    line("Caps", "5.00"),
                    line("Apron", "5.00"),
                ),
                order("5", "b", 4, "30.00", refunded_total=Decimal("12.50")),
            ],
        )
        Customer.objects.filter(external_id="c").update(orders_count=3, total_spent=Decimal("7"))

        # when
        updated = services.customer_stats_refresh(
            workspace=workspace, customer_ids=list(Customer.objects.values_list("id", flat=True))
        )

        # then: cancelled orders count for nothing, refunds lower the spend, top categories by spend then name
        figures = {
            c.external_id: (
                c.orders_count,
                c.total_spent,
                c.average_order_value,
                c.first_order_at,
                c.last_order_at,
                c.top_categories,
            )
            for c in Customer.objects.all()
        }
    assert updated == 3
    assert figures == {
        "a": (2, Decimal("90.00"), Decimal("45.00"), T0, T0 + dt.timedelta(days=5), ["Hats", "Shoes"]),
        "b": (
            2,
            Decimal("27.50"),
            Decimal("13.75"),
            T0 + dt.timedelta(days=3),
            T0 + dt.timedelta(days=4),
            ["Apron", "Belts", "Caps"],
        ),
        "c": (0, Decimal("0.00"), Decimal("0.00"), None, None, []),
    }
