"""The ready-made back-in-stock flow: a product_back_in_stock event enrols who wanted that product."""

import dataclasses
import datetime as dt

import pytest
from django.core import mail

from campaigns.flows import flow_install_preset, flow_set_active, flows_advance, flows_ingest_events
from campaigns.models import FlowRun
from campaigns.sending import messages_send_due
from customers.models import Event
from customers.records import ProductRecord
from customers.services import products_bulk_upsert
from tests.campaigns.factories import subscribed_customers
from tests.factories import EventFactory, OrderLineFactory, ProductFactory

BACK = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def flow(in_scope):
    flow = flow_install_preset(workspace=in_scope, key="back_in_stock")
    flow_set_active(workspace=in_scope, flow=flow, is_active=True)
    flow.refresh_from_db()
    return flow


def interest(customer, product_id, *, days_before: float, type: str = "product_viewed"):  # noqa: A002
    return EventFactory(
        customer=customer,
        type=type,
        occurred_at=BACK - dt.timedelta(days=days_before),
        properties={"product_id": product_id, "title": "Trail shoes"},
    )


def back_in_stock(workspace, product) -> Event:
    return Event.objects.create(
        workspace=workspace,
        customer=None,
        type="product_back_in_stock",
        occurred_at=BACK,
        properties={"product_id": product.pk, "external_id": product.external_id, "title": product.title, "sku": "T1"},
    )


def test_who_viewed_or_carted_it_lately_and_did_not_buy_it_gets_the_product(in_scope, flow):
    workspace = in_scope
    shoes = ProductFactory(workspace=workspace, external_id="101", title="Trail shoes", url="https://shop.example/t")
    other = ProductFactory(workspace=workspace, external_id="202")
    viewer, carter, long_ago, buyer, elsewhere, rebought_then_viewed = subscribed_customers(workspace, 6)
    interest(viewer, "101", days_before=5)
    interest(carter, 101, days_before=2, type="added_to_cart")  # a storefront may send the id as a number
    interest(long_ago, "101", days_before=31)
    interest(buyer, "101", days_before=6)
    OrderLineFactory(
        order__workspace=workspace, order__customer=buyer, order__placed_at=BACK - dt.timedelta(days=1), product=shoes
    )
    interest(elsewhere, "202", days_before=1)
    OrderLineFactory(
        order__workspace=workspace,
        order__customer=rebought_then_viewed,
        order__placed_at=BACK - dt.timedelta(9),
        product=shoes,
    )
    interest(rebought_then_viewed, "101", days_before=3)
    assert other.pk != shoes.pk
    back_in_stock(workspace, shoes)

    assert flows_ingest_events(workspace=workspace) == 3
    flows_ingest_events(workspace=workspace)  # the cursor moved on: nobody enrolled twice
    flows_advance(workspace=workspace, now=BACK)
    messages_send_due(workspace=workspace, now=BACK)

    enrolled = set(FlowRun.objects.filter(flow=flow).values_list("customer_id", flat=True))
    assert enrolled == {viewer.pk, carter.pk, rebought_then_viewed.pk}
    assert sorted(m.to[0] for m in mail.outbox) == sorted([viewer.email, carter.email, rebought_then_viewed.email])
    html = mail.outbox[0].alternatives[0][0]
    assert "Back in stock" in html and "Trail shoes" in html
    assert "Back in stock:\n- Trail shoes" in mail.outbox[0].body


def test_the_product_upsert_flipping_to_in_stock_starts_the_flow(in_scope, flow):
    workspace = in_scope
    record = ProductRecord(
        source="shopify", external_id="p9", title="Rain jacket", sku="RJ", is_in_stock=False, updated_at=BACK
    )
    products_bulk_upsert(workspace=workspace, records=[record])
    (fan,) = subscribed_customers(workspace, 1)
    interest(fan, "p9", days_before=3)

    products_bulk_upsert(
        workspace=workspace,
        records=[dataclasses.replace(record, is_in_stock=True, updated_at=BACK + dt.timedelta(hours=1))],
    )
    flows_ingest_events(workspace=workspace)
    flows_advance(workspace=workspace, now=BACK + dt.timedelta(hours=1))
    messages_send_due(workspace=workspace, now=BACK + dt.timedelta(hours=1))

    assert [m.to for m in mail.outbox] == [[fan.email]]
    assert "Rain jacket" in mail.outbox[0].alternatives[0][0]
