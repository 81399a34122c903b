"""A small hand-built store whose answers are worked out by hand in the tests (compiler tests and the browser test).

Everything is relative to "now" with wide margins (no row sits near a day boundary), except where a test is about
the boundary itself.
"""

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from tests.factories import (
    CustomerFactory,
    CustomerTagFactory,
    EventFactory,
    OrderFactory,
    OrderLineFactory,
    ProductFactory,
)


def ago(days: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


def years_ago(workspace, years: int, extra_days: int = 0) -> dt.date:
    today = workspace.today()
    try:
        day = today.replace(year=today.year - years)
    except ValueError:
        day = today.replace(year=today.year - years, day=28)
    return day - dt.timedelta(days=extra_days)


def _order(workspace, customer, *, days, total, category="", product=None, discount="0", status="closed"):
    order = OrderFactory(
        workspace=workspace,
        customer=customer,
        placed_at=ago(days),
        total=Decimal(total),
        net_total=Decimal("0") if status == "cancelled" else Decimal(total),
        discount_total=Decimal(discount),
        status=status,
    )
    if category or product:
        OrderLineFactory(order=order, category=category, product=product, total=Decimal(total))
    return order


def build_store(workspace) -> dict:
    """Customers ann, bob, cat, dan, eve, fay, gus (returned by name) with the facts the tests reason about."""
    shoe = ProductFactory(workspace=workspace, title="Trail shoe", category="Shoes")
    hat = ProductFactory(workspace=workspace, title="Sun hat", category="Hats")
    c = {}
    c["ann"] = CustomerFactory(
        workspace=workspace,
        first_name="Ann",
        email="ann@gmail.com",
        city="Paris",
        country="FR",
        gender="female",
        birth_date=years_ago(workspace, 30),
        language="fr",
        email_consent="subscribed",
        custom_attributes={"plan": "Gold"},
        orders_count=5,
        total_spent=Decimal("500"),
        average_order_value=Decimal("100"),
        first_order_at=ago(400),
        last_order_at=ago(2),
        rfm_group="Champions",
        rfm_recency=5,
        rfm_frequency=5,
        rfm_monetary=5,
        open_tickets_count=1,
        last_csat_score=5,
        last_nps_score=9,
        clv_tier="high",
        churn_risk="low",
        probability_alive=0.9,
        predicted_clv=Decimal("900"),
    )
    c["bob"] = CustomerFactory(
        workspace=workspace,
        first_name="Bob",
        email="bob@yahoo.com",
        city="Lyon",
        country="FR",
        gender="male",
        birth_date=years_ago(workspace, 45, extra_days=40),
        email_consent="unsubscribed",
        custom_attributes={"plan": "silver"},
        orders_count=2,
        total_spent=Decimal("80"),
        average_order_value=Decimal("40"),
        first_order_at=ago(300),
        last_order_at=ago(100),
        rfm_group="At risk",
        rfm_recency=1,
        rfm_frequency=3,
        rfm_monetary=2,
        last_csat_score=2,
        churn_risk="high",
        probability_alive=0.2,
    )
    c["cat"] = CustomerFactory(
        workspace=workspace,
        first_name="Cat",
        email="cat@gmail.com",
        city="",
        country="US",
        email_consent="subscribed",
        rfm_group="Prospects",
    )
    c["dan"] = CustomerFactory(
        workspace=workspace,
        first_name="Dan",
        email="dan@corp.example",
        city="Boston",
        country="US",
        birth_date=years_ago(workspace, 20, extra_days=-40),
        orders_count=1,
        total_spent=Decimal("20"),
        average_order_value=Decimal("20"),
        first_order_at=ago(30),
        last_order_at=ago(30),
        rfm_group="New",
        rfm_recency=4,
        rfm_frequency=1,
        rfm_monetary=1,
        clv_tier="low",
    )
    c["eve"] = CustomerFactory(
        workspace=workspace,
        first_name="Eve",
        email="eve@gmail.com",
        city="Paris",
        country="FR",
        orders_count=1,
        total_spent=Decimal("120"),
        average_order_value=Decimal("120"),
        first_order_at=ago(20),
        last_order_at=ago(20),
        rfm_group="Loyal",
        rfm_recency=4,
        rfm_frequency=1,
        rfm_monetary=4,
    )
    c["fay"] = CustomerFactory(
        workspace=workspace,
        first_name="Fay",
        email="fay@gmail.com",
        country="DE",
        orders_count=3,
        total_spent=Decimal("200"),
        average_order_value=Decimal("66.67"),
        first_order_at=ago(200),
        last_order_at=ago(30),
        rfm_group="At risk",
        rfm_recency=2,
        rfm_frequency=4,
        rfm_monetary=4,
    )
    c["gus"] = CustomerFactory(
        workspace=workspace,
        first_name="Gus",
        email="gus@gmail.com",
        country="DE",
        orders_count=1,
        total_spent=Decimal("60"),
        average_order_value=Decimal("60"),
        first_order_at=ago(10),
        last_order_at=ago(10),
        rfm_group="Loyal",
        rfm_recency=5,
        rfm_frequency=1,
        rfm_monetary=3,
    )
    # Orders and lines
    _order(workspace, c["ann"], days=2, total="100", category="Shoes", product=shoe, discount="10")
    _order(workspace, c["ann"], days=40, total="100", category="Shoes", product=shoe)
    _order(workspace, c["ann"], days=400, total="300", category="Hats", product=hat)
    _order(workspace, c["bob"], days=100, total="40", category="Shoes", product=shoe, discount="5")
    _order(workspace, c["bob"], days=300, total="40", category="Hats", product=hat, discount="5")
    _order(workspace, c["dan"], days=30, total="20", category="Hats", product=hat)
    _order(workspace, c["dan"], days=3, total="500", category="Shoes", product=shoe, status="cancelled")
    _order(workspace, c["eve"], days=20, total="120", category="Shoes", product=shoe)
    _order(workspace, c["fay"], days=30, total="60", category="Shoes", product=shoe)
    _order(workspace, c["fay"], days=150, total="140", category="Hats", product=hat)
    _order(workspace, c["gus"], days=10, total="60", category="Shoes", product=shoe)
    # Tags
    CustomerTagFactory(customer=c["ann"], name="vip")
    CustomerTagFactory(customer=c["dan"], name="wholesale")
    # Events
    for customer, kind, days in [
        (c["ann"], "email_opened", 10),
        (c["ann"], "product_viewed", 1),
        (c["ann"], "product_viewed", 2),
        (c["ann"], "product_viewed", 3),
        (c["bob"], "email_opened", 70),
        (c["bob"], "cart_abandoned", 3),
        (c["bob"], "email_unsubscribed", 50),
        (c["cat"], "email_sent", 5),
        (c["cat"], "email_bounced", 5),
        (c["cat"], "product_viewed", 20),
        (c["dan"], "email_clicked", 1),
        (c["dan"], "email_opened", 1),
        (c["dan"], "cart_abandoned", 12),
        (c["fay"], "email_opened", 1),
        (c["gus"], "email_opened", 5),
    ]:
        EventFactory(customer=customer, type=kind, occurred_at=ago(days))
    return {"customers": c, "shoe": shoe, "hat": hat}
