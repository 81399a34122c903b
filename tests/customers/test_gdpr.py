import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from customers import gdpr
from customers.models import AuditRecord, Cart, Customer, CustomerTag, Event, EventType, Note, Order
from customers.records import CustomerRecord
from customers.services import customer_stats_refresh, customers_bulk_upsert
from tests.factories import (
    CartFactory,
    CustomerFactory,
    CustomerTagFactory,
    EventFactory,
    NoteFactory,
    OrderFactory,
    OrderLineFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def ann(workspace):
    customer = CustomerFactory(
        workspace=workspace,
        source="shopify",
        external_id="gid-1",
        first_name="Ann",
        last_name="Lee",
        email="ann@example.org",
        phone="+14155550100",
        address_line="1 Main St",
        city="Springfield",
        postcode="12345",
        country="US",
        birth_date=dt.date(1990, 4, 1),
        email_consent="subscribed",
        email_consent_at=timezone.now() - dt.timedelta(days=3),
        preferences={"size": "M"},
    )
    order = OrderFactory(
        workspace=workspace,
        customer=customer,
        email="ann@example.org",
        total=Decimal("80"),
        net_total=Decimal("80"),
        number="#1001",
    )
    OrderLineFactory(order=order, title="Red scarf", total=Decimal("80"))
    CartFactory(
        workspace=workspace,
        customer=customer,
        email="ann@example.org",
        anonymous_id="anon-1",
        checkout_url="https://shop.example/checkouts/secret-token",
    )
    EventFactory(
        customer=customer,
        type="page_viewed",
        properties={"url": "https://shop.example/?email=ann@example.org", "ip": "203.0.113.9", "title": "Home"},
    )
    EventFactory(
        customer=customer, type="order_placed", properties={"order_id": order.id, "total": "80.00", "currency": "USD"}
    )
    NoteFactory(customer=customer, body="Lives next to the shop; her husband Bob calls")
    CustomerTagFactory(customer=customer, name="vip")
    with scope(workspace=workspace):
        customer_stats_refresh(workspace=workspace)
    customer.refresh_from_db()
    return customer


def test_export_contains_profile_consents_orders_events_notes_and_extensions(workspace, ann, owner, settings):
    gdpr.register_exporter("loyalty_card", lambda *, workspace, customer: {"card": f"LC-{customer.id}"})
    try:
        with scope(workspace=workspace):
            data = gdpr.customer_data_export(workspace=workspace, customer=ann, actor=owner)
            audit = AuditRecord.objects.get(action=AuditRecord.Action.EXPORT)
    finally:
        gdpr._EXPORTERS.pop("loyalty_card")
    json.dumps(data)  # JSON-able throughout
    assert data["profile"]["email"] == "ann@example.org" and data["profile"]["birth_date"] == "1990-04-01"
    assert data["consents"]["email"]["consent"] == "subscribed"
    assert data["orders"][0]["number"] == "#1001" and data["orders"][0]["lines"][0]["title"] == "Red scarf"
    assert {event["type"] for event in data["events"]} == {"page_viewed", "order_placed"}
    assert data["notes"][0]["body"].startswith("Lives next to the shop")
    assert data["tags"] == ["vip"]
    assert data["loyalty_card"] == {"card": f"LC-{ann.id}"}
    assert audit.customer_id_ref == ann.id and "loyalty_card" in audit.data["sections"]


def test_export_view_downloads_json(workspace, owner_client, ann):
    response = owner_client.post(f"/w/{workspace.slug}/customers/{ann.id}/gdpr/export/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "attachment" in response["Content-Disposition"]
    assert json.loads(response.content)["profile"]["id"] == ann.id


def test_erase_anonymises_but_keeps_the_numbers(workspace, ann, owner):
    erased_by_extension = []
    gdpr.register_eraser("tickets", lambda *, workspace, customer: erased_by_extension.append(customer.id))
    try:
        with scope(workspace=workspace):
            gdpr.customer_erase(workspace=workspace, customer=ann, actor=owner)
            customer = Customer.objects.get(pk=ann.pk)
            order = Order.objects.get(customer=customer)
            cart = Cart.objects.get(customer=customer)
            events = {e.type: e for e in Event.objects.filter(customer=customer)}
            audit = AuditRecord.objects.get(action=AuditRecord.Action.ERASE)
            customer_stats_refresh(workspace=workspace)
            assert Customer.objects.get(pk=ann.pk).total_spent == Decimal("80.00")
            assert not Note.objects.filter(customer=customer).exists()
            assert not CustomerTag.objects.filter(customer=customer).exists()
    finally:
        gdpr._ERASERS.pop("tickets")
    for name in ("email", "phone", "first_name", "last_name", "address_line", "city", "postcode"):
        assert getattr(customer, name) == "", name
    assert customer.birth_date is None and customer.preferences == {} and customer.erased_at is not None
    assert customer.email_consent == "unsubscribed"
    assert customer.orders_count == 1 and customer.total_spent == Decimal("80.00")
    assert order.email == "" and order.total == Decimal("80.00")
    assert cart.email == "" and cart.anonymous_id == "" and cart.checkout_url == ""
    assert events["page_viewed"].properties == {"title": "Home"}
    assert events["order_placed"].properties["total"] == "80.00"
    assert EventType.DATA_ERASED in events
    assert audit.customer_id_ref == ann.id and audit.data["orders_kept"] == 1 and audit.data["notes_deleted"] == 1
    assert "ann@example.org" not in json.dumps(audit.data)
    assert erased_by_extension == [ann.id]


def test_a_store_sync_cannot_bring_erased_data_back(workspace, ann):
    with scope(workspace=workspace):
        gdpr.customer_erase(workspace=workspace, customer=ann)
        customers_bulk_upsert(
            workspace=workspace,
            records=[
                CustomerRecord(
                    source="shopify",
                    external_id="gid-1",
                    email="ann@example.org",
                    first_name="Ann",
                    updated_at=timezone.now(),
                )
            ],
        )
        assert Customer.objects.get(pk=ann.pk).email == ""


def test_erase_view_needs_the_erase_capability(workspace, make_member_client, owner_client, ann):
    marketer = make_member_client(workspace, "marketer")
    assert marketer.post(f"/w/{workspace.slug}/customers/{ann.id}/gdpr/erase/").status_code == 403
    with scopes_disabled():
        assert Customer.objects.get(pk=ann.pk).email == "ann@example.org"
    response = owner_client.post(f"/w/{workspace.slug}/customers/{ann.id}/gdpr/erase/")
    assert response.status_code == 302
    page = owner_client.get(response["Location"]).content.decode()
    assert f"Erased customer #{ann.id}" in page and "ann@example.org" not in page


def test_cannot_export_or_erase_another_workspaces_customer(workspace, other_workspace, owner_client):
    stranger = CustomerFactory(workspace=other_workspace, email="secret@globex.test")
    assert owner_client.post(f"/w/{workspace.slug}/customers/{stranger.id}/gdpr/export/").status_code == 404
    assert owner_client.post(f"/w/{workspace.slug}/customers/{stranger.id}/gdpr/erase/").status_code == 404
    with scopes_disabled():
        assert Customer.objects.get(pk=stranger.pk).email == "secret@globex.test"
        assert not AuditRecord.objects.exists()
