"""A small hand-built store whose every figure is worked out by hand in tests/analytics/test_kpis.py.

Period under test: 2025-03-01 .. 2025-03-31 (31 days); previous period: 2025-01-29 .. 2025-02-28.
"""

import datetime as dt
from decimal import Decimal

from django_scopes import scope

from customers import services as customer_services
from customers.records import EventRecord
from tests.factories import CartFactory, CustomerFactory, OrderFactory


def at(day: str, time: str = "12:00") -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{time}:00+00:00")


def build_store(workspace) -> dict:
    c = {name: CustomerFactory(workspace=workspace, first_name=name) for name in "ABCDEFGH"}

    def order(customer, day, total, **extra):
        return OrderFactory(
            workspace=workspace,
            customer=customer,
            placed_at=at(day),
            total=Decimal(total),
            net_total=Decimal(total) if extra.get("status") != "cancelled" else Decimal("0"),
            **extra,
        )

    order(c["A"], "2024-01-10", "100")
    order(c["A"], "2025-03-05", "50")
    order(c["A"], "2025-03-20", "30")
    order(c["B"], "2025-03-10", "80")
    order(c["B"], "2025-03-12", "40")
    order(c["C"], "2025-02-10", "60")
    order(c["C"], "2025-03-15", "20")
    order(c["D"], "2024-02-20", "70")
    order(c["E"], "2024-03-10", "90")
    order(c["F"], "2025-03-25", "200", status="cancelled")
    order(None, "2025-03-18", "40")  # a guest checkout
    order(c["G"], "2024-06-01", "10")
    order(c["H"], "2025-03-28", "25")

    for customer, day, status in [
        (c["A"], "2025-03-05", "converted"),
        (c["B"], "2025-03-07", "abandoned"),
        (c["C"], "2025-03-08", "recovered"),
        (c["H"], "2025-03-09", "open"),
        (c["C"], "2025-02-10", "abandoned"),
    ]:
        CartFactory(
            workspace=workspace,
            customer=customer,
            started_at=at(day, "09:00"),
            last_activity_at=at(day, "09:30"),
            status=status,
        )

    def event(kind, day, time, *, customer=None, anonymous=""):
        return EventRecord(
            type=kind,
            occurred_at=at(day, time),
            source="tracking",
            customer_id=customer.pk if customer else None,
            anonymous_id=anonymous,
        )

    with scope(workspace=workspace):
        customer_services.events_bulk_record(
            workspace=workspace,
            records=[
                # A's visit that ends in an order: one session of 30 minutes, 2 page views, every funnel step.
                event("page_viewed", "2025-03-05", "10:00", customer=c["A"]),
                event("product_viewed", "2025-03-05", "10:10", customer=c["A"]),
                event("added_to_cart", "2025-03-05", "10:20", customer=c["A"]),
                event("checkout_started", "2025-03-05", "10:25", customer=c["A"]),
                event("order_placed", "2025-03-05", "10:30", customer=c["A"]),
                # Visitor x: a 45-minute gap splits two sessions (0 s and 5 minutes long).
                event("page_viewed", "2025-03-06", "09:00", anonymous="x"),
                event("page_viewed", "2025-03-06", "09:45", anonymous="x"),
                event("product_viewed", "2025-03-06", "09:50", anonymous="x"),
                # Visitor y: views a product and adds it to the cart, 5 minutes.
                event("product_viewed", "2025-03-07", "12:00", anonymous="y"),
                event("added_to_cart", "2025-03-07", "12:05", anonymous="y"),
                # An order that arrived by webhook with no tracked visit is not a session.
                event("order_placed", "2025-03-10", "15:00", customer=c["B"]),
            ],
        )
        for name, nps, csat in [("A", 10, 5), ("B", 9, 3), ("C", 5, None), ("H", 7, None)]:
            customer_services.customer_update_support_signals(
                workspace=workspace,
                customer_id=c[name].pk,
                nps_score=nps,
                csat_score=csat,
                at=at("2025-03-20"),
            )
        customer_services.customer_stats_refresh(workspace=workspace)
    return c
