"""Storefront tracking: the snippet, the batch endpoint (validation, CORS, rate limit), identify, abandoned carts."""

import datetime as dt
import json

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from django_scopes import scope

from customers.models import Cart, Customer, Event
from integrations import services
from integrations.tasks import integrations_minute_tick
from tests.factories import CustomerFactory
from tests.tenancy import workspace_fingerprint

VISITOR = "a_visitor0000000001"


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def tracking(workspace):
    with scope(workspace=workspace):
        return services.tracking_get_or_create(workspace=workspace)


def send(tracking, events, origin=None, client=None):
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    return (client or Client()).post(
        f"/t/{tracking.public_key}/batch", data=json.dumps({"batch": events}), content_type="text/plain", **headers
    )


def event(kind, **extra):
    return {"type": kind, "anonymous_id": VISITOR, "timestamp": timezone.now().isoformat(), **extra}


def test_batch_is_recorded(workspace, tracking):
    response = send(
        tracking,
        [
            event("page_viewed", properties={"path": "/"}, message_id="m1"),
            event("product_viewed", properties={"product_id": "42"}, message_id="m2"),
            event("added_to_cart", properties={"product_id": "42", "quantity": 1}),
        ],
    )

    assert response.status_code == 202
    assert response.json() == {"accepted": 3}
    with scope(workspace=workspace):
        assert sorted(Event.objects.filter(anonymous_id=VISITOR).values_list("type", flat=True)) == [
            "added_to_cart",
            "page_viewed",
            "product_viewed",
        ]
        tracking.refresh_from_db()
        assert tracking.events_received == 3


def test_replayed_messages_are_recorded_once(workspace, tracking):
    batch = [event("page_viewed", message_id="same-1")]
    send(tracking, batch)
    send(tracking, batch)

    with scope(workspace=workspace):
        assert Event.objects.filter(anonymous_id=VISITOR).count() == 1


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([{"type": "page_viewed"}], "event 0: anonymous_id: must be 8-64 letters, digits or _.:-"),
        (
            [event("page_viewed"), event("bought_a_boat")],
            "event 1: type: must be one of added_to_cart, checkout_started, identify, page_viewed, product_viewed",
        ),
        ([event("page_viewed", timestamp="yesterday")], "event 0: timestamp: must be an ISO 8601 date and time"),
        ([event("page_viewed", properties=[1, 2])], "event 0: properties: must be an object"),
        ([event("identify")], "event 0: email: identify needs an email (or customer_id with platform)"),
        ([event("identify", email="not-an-email")], "event 0: email: is not a valid email address"),
        ([], "batch: batch: is empty"),
    ],
)
def test_malformed_batch_is_rejected_naming_index_and_field(workspace, tracking, events, message):
    before = workspace_fingerprint(workspace)

    response = send(tracking, events)

    assert response.status_code == 400
    assert response.json()["error"] == message
    assert workspace_fingerprint(workspace) == before


def test_not_json_is_400(tracking):
    response = Client().post(f"/t/{tracking.public_key}/batch", data="{oops", content_type="text/plain")

    assert (response.status_code, response.json()["error"]) == (400, "batch: body: is not valid JSON")


def test_unknown_key_is_404(db):
    assert send(type("T", (), {"public_key": "pk_nope"})(), [event("page_viewed")]).status_code == 404


def test_rate_limit_per_key(workspace, tracking, settings):
    settings.TRACKING_EVENTS_PER_MINUTE = 5
    assert send(tracking, [event("page_viewed")] * 4).status_code == 202

    response = send(tracking, [event("page_viewed")] * 2)

    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    with scope(workspace=workspace):
        assert Event.objects.filter(anonymous_id=VISITOR).count() == 4


def test_cors_for_the_storefront_origin(workspace, tracking):
    with scope(workspace=workspace):
        services.tracking_update(
            workspace=workspace,
            allowed_origins="https://shop.example.com",
            abandoned_cart_delay_minutes=60,
            is_enabled=True,
        )

    preflight = Client().options(
        f"/t/{tracking.public_key}/batch",
        HTTP_ORIGIN="https://shop.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    allowed = send(tracking, [event("page_viewed")], origin="https://shop.example.com")
    refused = send(tracking, [event("page_viewed")], origin="https://evil.example.net")

    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "POST" in preflight["Access-Control-Allow-Methods"]
    assert (allowed.status_code, allowed["Access-Control-Allow-Origin"]) == (202, "https://shop.example.com")
    assert refused.status_code == 403
    assert not refused.has_header("Access-Control-Allow-Origin")


def test_identify_joins_earlier_anonymous_events_and_later_ones(workspace, tracking):
    customer = CustomerFactory(workspace=workspace, email="ada@example.com")
    send(tracking, [event("page_viewed"), event("product_viewed", properties={"product_id": "1"})])

    send(tracking, [event("identify", email="Ada@Example.com", properties={"method": "login"})])
    send(tracking, [event("added_to_cart", properties={"product_id": "1"})])

    with scope(workspace=workspace):
        events = Event.objects.filter(anonymous_id=VISITOR)
        assert sorted(events.values_list("type", flat=True)) == [
            "added_to_cart",
            "identified",
            "page_viewed",
            "product_viewed",
        ]
        assert set(events.values_list("customer_id", flat=True)) == {customer.pk}


def test_identify_of_an_unknown_email_creates_the_customer(workspace, tracking):
    send(tracking, [event("page_viewed"), event("identify", email="new@example.com")])

    with scope(workspace=workspace):
        customer = Customer.objects.get(email="new@example.com")
        assert (customer.source, customer.external_id) == ("tracking", "email:new@example.com")
        assert Event.objects.get(anonymous_id=VISITOR, type="page_viewed").customer_id == customer.pk


def test_checkout_without_order_becomes_abandoned_after_the_delay(workspace, tracking):
    with scope(workspace=workspace):
        services.tracking_update(
            workspace=workspace, allowed_origins="", abandoned_cart_delay_minutes=30, is_enabled=True
        )
    started = timezone.now() - dt.timedelta(minutes=45)
    send(
        tracking,
        [
            event("identify", email="cart@example.com"),
            event(
                "checkout_started",
                timestamp=started.isoformat(),
                properties={
                    "checkout_id": "chk-1",
                    "value": "59.00",
                    "currency": "EUR",
                    "items": [{"product_id": "9", "title": "Poles", "quantity": 1, "price": "59.00"}],
                },
            ),
        ],
    )
    recent = timezone.now() - dt.timedelta(minutes=10)
    send(
        tracking,
        [
            {
                "type": "checkout_started",
                "anonymous_id": "a_someoneelse0001",
                "timestamp": recent.isoformat(),
                "properties": {"checkout_id": "chk-2", "value": 10},
            }
        ],
    )

    integrations_minute_tick(workspace.id)

    with scope(workspace=workspace):
        abandoned = Cart.objects.get(external_id="chk-1")
        assert (abandoned.status, abandoned.value, abandoned.currency) == ("abandoned", 59, "EUR")
        assert Cart.objects.get(external_id="chk-2").status == "open"
        event_row = Event.objects.get(type="cart_abandoned")
        assert event_row.customer.email == "cart@example.com"
        assert event_row.properties["value"] == "59.00"


def test_tracker_js_is_served_with_the_endpoint(tracking):
    response = Client().get(f"/t/{tracking.public_key}/tracker.js")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    body = response.content.decode()
    from django.utils.html import escapejs

    assert f'var ENDPOINT = "{escapejs(f"http://testserver/t/{tracking.public_key}/batch")}";' in body
    assert "identify" in body and "checkout_started" in body


def test_a_later_order_marks_the_abandoned_cart_recovered(
    workspace, tracking, shopify_connection, catalogue, django_capture_on_commit_callbacks
):
    from integrations.fake_store import render
    from integrations.fake_store.webhooks import as_django_headers, shopify_delivery
    from tests.integrations.conftest import WEBHOOK_SECRET

    shopper = catalogue.customers[0]
    hook = f"/hooks/shopify/{shopify_connection.webhook_token}/"
    body, headers = shopify_delivery(
        topic="customers/create", payload=render.shopify_customer_rest(shopper), secret=WEBHOOK_SECRET
    )
    with django_capture_on_commit_callbacks(execute=True):
        Client().post(hook, data=body, **as_django_headers(headers))
    started = timezone.now() - dt.timedelta(hours=2)
    send(
        tracking,
        [
            event("identify", email=shopper.email),
            event(
                "checkout_started", timestamp=started.isoformat(), properties={"checkout_id": "chk-9", "value": "35.00"}
            ),
        ],
    )
    integrations_minute_tick(workspace.id)
    with scope(workspace=workspace):
        assert Cart.objects.get(external_id="chk-9").status == "abandoned"

    order = catalogue.add_order(created_at=timezone.now().replace(microsecond=0), customer=shopper)
    body, headers = shopify_delivery(
        topic="orders/create", payload=render.shopify_order_rest(order, catalogue), secret=WEBHOOK_SECRET
    )
    with django_capture_on_commit_callbacks(execute=True):
        Client().post(hook, data=body, **as_django_headers(headers))

    with scope(workspace=workspace):
        cart = Cart.objects.get(external_id="chk-9")
        assert cart.status == "recovered"
        assert cart.recovered_order.external_id == str(order.id)
