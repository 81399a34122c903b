import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from django_scopes import scope

from customers import services
from customers.models import Cart, CartStatus, Customer, CustomerTag, Event, Order, OrderLine
from customers.records import CartRecord, CustomerRecord, OrderLineRecord, OrderRecord, ProductRecord

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def customer_record(**overrides):
    values = {
        "source": "shopify",
        "external_id": "c1",
        "email": "Ann@Example.com ",
        "first_name": "Ann",
        "last_name": "Lee",
        "updated_at": T0,
    }
    return CustomerRecord(**{**values, **overrides})


def order_record(**overrides):
    values = {
        "source": "shopify",
        "external_id": "o1",
        "customer_external_id": "c1",
        "placed_at": T0,
        "number": "#1001",
        "subtotal": Decimal("80.00"),
        "total": Decimal("80.00"),
        "updated_at": T0,
        "lines": (
            OrderLineRecord(product_external_id="p1", title="Shirt", quantity=2, unit_price=Decimal("25.00")),
            OrderLineRecord(product_external_id="p2", title="Mug", quantity=1, unit_price=Decimal("30.00")),
        ),
    }
    return OrderRecord(**{**values, **overrides})


@pytest.fixture
def store(workspace):
    with scope(workspace=workspace):
        services.products_bulk_upsert(
            workspace=workspace,
            records=[
                ProductRecord(
                    source="shopify", external_id="p1", title="Shirt", category="Apparel", price=Decimal("25")
                ),
                ProductRecord(source="shopify", external_id="p2", title="Mug", category="Home", price=Decimal("30")),
            ],
        )
        services.customers_bulk_upsert(workspace=workspace, records=[customer_record()])
        yield workspace


def snapshot(workspace):
    """Everything an upsert could touch, as plain values."""
    return (
        list(Customer.objects.filter(workspace=workspace).order_by("id").values()),
        list(Order.objects.filter(workspace=workspace).order_by("id").values()),
        list(OrderLine.objects.filter(workspace=workspace).order_by("id").values_list("order_id", "title", "total")),
        list(Event.objects.filter(workspace=workspace).order_by("id").values_list("type", "external_id")),
    )


def test_customer_upsert_creates_then_replay_changes_nothing(store):
    customer = Customer.objects.get(external_id="c1")
    assert (customer.email, customer.first_name) == ("ann@example.com", "Ann")
    before = snapshot(store)

    result = services.customers_bulk_upsert(workspace=store, records=[customer_record()])

    assert result.created == 0 and result.updated == 0 and result.skipped_stale == 1
    assert snapshot(store) == before


def test_stale_customer_update_never_overwrites_newer_data(store):
    services.customers_bulk_upsert(
        workspace=store, records=[customer_record(first_name="Annie", updated_at=T0 + dt.timedelta(hours=2))]
    )

    result = services.customers_bulk_upsert(
        workspace=store, records=[customer_record(first_name="Old name", updated_at=T0 + dt.timedelta(hours=1))]
    )

    assert result.skipped_stale == 1
    assert Customer.objects.get(external_id="c1").first_name == "Annie"


def test_newest_record_wins_inside_one_batch(store):
    services.customers_bulk_upsert(
        workspace=store,
        records=[
            customer_record(first_name="Third", updated_at=T0 + dt.timedelta(hours=3)),
            customer_record(first_name="Second", updated_at=T0 + dt.timedelta(hours=2)),
        ],
    )

    assert Customer.objects.get(external_id="c1").first_name == "Third"


def test_customer_payload_without_consent_keeps_consent(store):
    services.customers_bulk_upsert(
        workspace=store, records=[customer_record(email_consent="subscribed", updated_at=T0 + dt.timedelta(hours=1))]
    )

    services.customers_bulk_upsert(
        workspace=store, records=[customer_record(first_name="Ann B", updated_at=T0 + dt.timedelta(hours=2))]
    )

    customer = Customer.objects.get(external_id="c1")
    assert (customer.first_name, customer.email_consent) == ("Ann B", "subscribed")


def test_tags_are_added_once(store):
    services.customers_bulk_upsert(
        workspace=store,
        records=[customer_record(tags=("vip", "vip ", "wholesale"), updated_at=T0 + dt.timedelta(hours=1))],
    )

    assert sorted(CustomerTag.objects.values_list("name", flat=True)) == ["vip", "wholesale"]


def test_order_upsert_stores_lines_stats_and_event_and_replay_changes_nothing(store):
    services.orders_bulk_upsert(workspace=store, records=[order_record()])
    before = snapshot(store)

    result = services.orders_bulk_upsert(workspace=store, records=[order_record()])

    assert result.skipped_stale == 1
    assert snapshot(store) == before
    customer = Customer.objects.get(external_id="c1")
    assert customer.orders_count == 1
    assert customer.total_spent == Decimal("80.00")
    assert customer.average_order_value == Decimal("80.00")
    assert customer.first_order_at == T0 and customer.last_order_at == T0
    assert customer.top_categories == ["Apparel", "Home"]  # 50.00 of apparel, 30.00 of home
    assert list(OrderLine.objects.order_by("title").values_list("title", "category", "total")) == [
        ("Mug", "Home", Decimal("30.00")),
        ("Shirt", "Apparel", Decimal("50.00")),
    ]
    assert list(Event.objects.filter(customer=customer).values_list("type", flat=True).order_by("id")) == [
        "customer_created",
        "order_placed",
    ]


def test_stats_follow_refund_and_cancel(store):
    second = order_record(
        external_id="o2",
        number="#1002",
        placed_at=T0 + dt.timedelta(days=10),
        total=Decimal("40.00"),
        subtotal=Decimal("40.00"),
        lines=(),
    )
    services.orders_bulk_upsert(workspace=store, records=[order_record(), second])
    customer = Customer.objects.get(external_id="c1")
    assert (customer.orders_count, customer.total_spent, customer.average_order_value) == (
        2,
        Decimal("120.00"),
        Decimal("60.00"),
    )

    # a partial refund of the first order lowers what it counts for
    services.orders_bulk_upsert(
        workspace=store,
        records=[
            order_record(
                refunded_total=Decimal("30.00"),
                refunded_at=T0 + dt.timedelta(days=2),
                financial_status="partially_refunded",
                updated_at=T0 + dt.timedelta(days=2),
            )
        ],
    )
    customer.refresh_from_db()
    assert (customer.orders_count, customer.total_spent, customer.average_order_value) == (
        2,
        Decimal("90.00"),
        Decimal("45.00"),
    )

    # cancelling the second order removes it from the count, the spend and the last order date
    services.orders_bulk_upsert(
        workspace=store,
        records=[
            dataclasses.replace(second, cancelled_at=T0 + dt.timedelta(days=11), updated_at=T0 + dt.timedelta(days=11))
        ],
    )
    customer.refresh_from_db()
    assert (customer.orders_count, customer.total_spent, customer.average_order_value) == (
        1,
        Decimal("50.00"),
        Decimal("50.00"),
    )
    assert customer.last_order_at == T0
    assert set(Event.objects.filter(customer=customer).values_list("type", flat=True)) == {
        "customer_created",
        "order_placed",
        "order_refunded",
        "order_cancelled",
    }


def test_order_lines_carry_their_orders_customer_date_and_cancellation(store):
    services.customers_bulk_upsert(workspace=store, records=[customer_record(external_id="c2", email="bo@example.com")])
    services.orders_bulk_upsert(workspace=store, records=[order_record()])
    c1, c2 = (Customer.objects.get(external_id=key).id for key in ("c1", "c2"))

    def lines():
        return set(OrderLine.objects.values_list("title", "customer_id", "placed_at", "is_order_cancelled"))

    assert lines() == {("Shirt", c1, T0, False), ("Mug", c1, T0, False)}

    # the order moves to another customer, a day later in the store's records, then is cancelled
    later = T0 + dt.timedelta(days=1)
    services.orders_bulk_upsert(
        workspace=store,
        records=[order_record(customer_external_id="c2", placed_at=later, updated_at=T0 + dt.timedelta(hours=1))],
    )
    assert lines() == {("Shirt", c2, later, False), ("Mug", c2, later, False)}
    services.orders_bulk_upsert(
        workspace=store,
        records=[
            order_record(
                customer_external_id="c2", placed_at=later, cancelled_at=later, updated_at=T0 + dt.timedelta(hours=2)
            )
        ],
    )
    assert lines() == {("Shirt", c2, later, True), ("Mug", c2, later, True)}


def test_guest_order_joins_customer_by_email(store):
    services.orders_bulk_upsert(
        workspace=store,
        records=[order_record(external_id="g1", customer_external_id="", email="ANN@example.com", lines=())],
    )

    order = Order.objects.get(external_id="g1")
    assert order.customer == Customer.objects.get(external_id="c1")


def test_order_for_unknown_customer_creates_them(store):
    services.orders_bulk_upsert(
        workspace=store,
        records=[order_record(external_id="o9", customer_external_id="c9", email="new@example.com", lines=())],
    )

    customer = Customer.objects.get(external_id="c9")
    assert (customer.email, customer.orders_count) == ("new@example.com", 1)


def test_order_after_abandoned_cart_marks_it_recovered(store):
    services.carts_bulk_upsert(
        workspace=store,
        records=[
            CartRecord(
                source="shopify",
                external_id="chk1",
                customer_external_id="c1",
                started_at=T0 - dt.timedelta(hours=5),
                value=Decimal("80.00"),
                updated_at=T0 - dt.timedelta(hours=5),
            )
        ],
    )
    assert services.carts_mark_abandoned(workspace=store, older_than=dt.timedelta(hours=1)) == 1

    services.orders_bulk_upsert(workspace=store, records=[order_record()])

    cart = Cart.objects.get(external_id="chk1")
    assert cart.status == CartStatus.RECOVERED
    assert cart.recovered_order == Order.objects.get(external_id="o1")
    assert Event.objects.filter(type="cart_abandoned", properties__cart_id=cart.id).count() == 1


def test_upserts_never_cross_workspaces(store, other_workspace):
    with scope(workspace=other_workspace):
        services.customers_bulk_upsert(workspace=other_workspace, records=[customer_record(first_name="Other")])
        assert Customer.objects.get(external_id="c1").first_name == "Other"
    assert Customer.objects.get(external_id="c1").first_name == "Ann"


def test_bulk_upsert_of_many_orders_is_idempotent(store):
    records = [
        order_record(external_id=f"o{n}", number=f"#{n}", placed_at=T0 + dt.timedelta(minutes=n)) for n in range(2500)
    ]  # more than one batch

    first = services.orders_bulk_upsert(workspace=store, records=records)
    before = snapshot(store)
    again = services.orders_bulk_upsert(workspace=store, records=records)

    assert (first.created, again.created, again.skipped_stale) == (2500, 0, 2500)
    assert snapshot(store) == before
    assert Customer.objects.get(external_id="c1").orders_count == 2500


def test_order_moved_to_another_customer_refreshes_both_customers_stats(store):
    services.customers_bulk_upsert(workspace=store, records=[customer_record(external_id="c2", email="bo@example.com")])
    services.orders_bulk_upsert(workspace=store, records=[order_record()])

    services.orders_bulk_upsert(
        workspace=store, records=[order_record(customer_external_id="c2", updated_at=T0 + dt.timedelta(hours=1))]
    )

    assert dict(Customer.objects.values_list("external_id", "orders_count")) == {"c1": 0, "c2": 1}
    assert Customer.objects.get(external_id="c1").top_categories == []


def test_a_batch_with_new_updated_and_stale_orders_writes_only_the_fresh_ones(store):
    services.orders_bulk_upsert(
        workspace=store,
        records=[order_record(), order_record(external_id="o2", number="#1002", updated_at=T0 + dt.timedelta(hours=5))],
    )
    lines_of_o2 = list(OrderLine.objects.filter(order__external_id="o2").values_list("id", flat=True))

    result = services.orders_bulk_upsert(
        workspace=store,
        records=[
            order_record(number="#1001-B", updated_at=T0 + dt.timedelta(hours=1), lines=order_record().lines[:1]),
            order_record(external_id="o2", number="#stale", updated_at=T0 + dt.timedelta(hours=4)),
            order_record(external_id="o3", number="#1003"),
        ],
    )

    assert (result.created, result.updated, result.skipped_stale) == (1, 1, 1)
    assert dict(Order.objects.values_list("external_id", "number")) == {"o1": "#1001-B", "o2": "#1002", "o3": "#1003"}
    assert list(OrderLine.objects.filter(order__external_id="o1").values_list("title", flat=True)) == ["Shirt"]
    assert list(OrderLine.objects.filter(order__external_id="o2").values_list("id", flat=True)) == lines_of_o2
    assert Customer.objects.get(external_id="c1").orders_count == 3


def test_order_events_carry_the_order_and_follow_its_life(store):
    services.orders_bulk_upsert(workspace=store, records=[order_record(discount_codes=(" save10 ",))])
    services.orders_bulk_upsert(
        workspace=store,
        records=[
            order_record(
                discount_codes=(" save10 ",),
                cancelled_at=T0 + dt.timedelta(days=1),
                refunded_total=Decimal("80.00"),
                refunded_at=T0 + dt.timedelta(days=1),
                updated_at=T0 + dt.timedelta(days=1),
            )
        ],
    )

    order = Order.objects.get(external_id="o1")
    assert (order.status, order.net_total, order.discount_codes) == ("cancelled", Decimal("0.00"), ["SAVE10"])
    events = list(
        Event.objects.filter(type__startswith="order_").order_by("id").values_list("type", "external_id", "properties")
    )
    base = {"order_id": order.id, "number": "#1001", "total": "80.00", "currency": "USD"}
    assert events == [
        ("order_placed", "order_placed:o1", {**base, "items": 3, "discount_codes": [" save10 "]}),
        ("order_cancelled", "order_cancelled:o1", base),
        ("order_refunded", "order_refunded:o1:80.00", {**base, "refunded": "80.00"}),
    ]


def product_record(**overrides):
    values = {"source": "shopify", "external_id": "p1", "title": "Shirt", "sku": "SH-1", "updated_at": T0}
    return ProductRecord(**{**values, **overrides})


def test_product_coming_back_in_stock_records_one_product_event(store):
    services.products_bulk_upsert(workspace=store, records=[product_record(is_in_stock=False)])
    assert not Event.objects.filter(type="product_back_in_stock").exists()  # new rows and updates are not "back"

    back = product_record(is_in_stock=True, title="Shirt (restock)", updated_at=T0 + dt.timedelta(hours=1))
    product = services.product_upsert(workspace=store, record=back)
    services.products_bulk_upsert(workspace=store, records=[back])  # a replay
    services.products_bulk_upsert(workspace=store, records=[dataclasses.replace(back, updated_at=T0 + dt.timedelta(2))])

    event = Event.objects.get(type="product_back_in_stock")
    assert (event.customer_id, event.source, event.occurred_at) == (None, "shopify", T0 + dt.timedelta(hours=1))
    assert event.properties == {
        "product_id": product.id,
        "external_id": "p1",
        "title": "Shirt (restock)",
        "sku": "SH-1",
    }


def test_new_product_in_stock_and_stock_going_out_record_nothing(store):
    services.products_bulk_upsert(
        workspace=store,
        records=[
            product_record(external_id="p3", is_in_stock=True),
            product_record(external_id="p4", is_in_stock=False),
            product_record(is_in_stock=False, updated_at=T0 + dt.timedelta(hours=1)),
        ],
    )

    assert not Event.objects.filter(type="product_back_in_stock").exists()


def test_bulk_product_upsert_records_back_in_stock_per_product(store):
    services.products_bulk_upsert(
        workspace=store,
        records=[product_record(is_in_stock=False), product_record(external_id="p2", title="Mug", is_in_stock=False)],
    )

    services.products_bulk_upsert(
        workspace=store,
        records=[
            product_record(is_in_stock=True, updated_at=T0 + dt.timedelta(hours=1)),
            product_record(external_id="p2", title="Mug", is_in_stock=True, updated_at=T0 + dt.timedelta(hours=1)),
        ],
    )

    assert sorted(
        Event.objects.filter(type="product_back_in_stock").values_list("properties__external_id", flat=True)
    ) == [
        "p1",
        "p2",
    ]


def test_a_bulk_orders_load_leaves_the_callers_planner_settings_alone(postgres_only, store):
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = on")
        cursor.execute("SET LOCAL work_mem = '4MB'")
        services.orders_bulk_upsert(workspace=store, records=[order_record()])
        cursor.execute("SELECT current_setting('jit'), current_setting('work_mem')")
        settings_after = cursor.fetchone()

    assert settings_after == ("on", "4MB")
    assert Order.objects.filter(external_id="o1").count() == 1
