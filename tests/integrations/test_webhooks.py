"""Webhooks: signed, deduplicated, processed in a task; tampered or replayed deliveries change nothing."""

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope

from customers.models import Customer, Event, Order
from integrations import services
from integrations.fake_store import render
from integrations.fake_store.webhooks import (
    as_django_headers,
    shopify_delivery,
    woocommerce_delivery,
    woocommerce_ping,
)
from integrations.models import WebhookDelivery
from tests.integrations.conftest import WEBHOOK_SECRET
from tests.tenancy import workspace_fingerprint


def post(connection, body, headers):
    url = reverse(f"integrations_public:{connection.platform}_webhook", kwargs={"token": connection.webhook_token})
    return Client().post(url, data=body, **as_django_headers(headers))


def deliver(django_capture_on_commit_callbacks, connection, body, headers):
    with django_capture_on_commit_callbacks(execute=True):
        return post(connection, body, headers)


@pytest.fixture
def order_payload(catalogue):
    return render.shopify_order_rest(catalogue.orders[0], catalogue)


def test_signed_order_webhook_lands_the_order(
    workspace, shopify_connection, order_payload, django_capture_on_commit_callbacks
):
    body, headers = shopify_delivery(topic="orders/create", payload=order_payload, secret=WEBHOOK_SECRET)

    response = deliver(django_capture_on_commit_callbacks, shopify_connection, body, headers)

    assert response.status_code == 200
    assert response.json() == {"ok": True, "duplicate": False}
    with scope(workspace=workspace):
        order = Order.objects.get(source="shopify", external_id=str(order_payload["id"]))
        assert str(order.total) == order_payload["total_price"]
        assert order.customer.external_id == str(order_payload["customer"]["id"])
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.topic) == ("processed", "orders/create")
        assert delivery.delivery_id == headers["X-Shopify-Event-Id"]


@pytest.mark.parametrize("signature", ["", "bm90IHRoZSByaWdodCBzaWduYXR1cmU=", None])
def test_bad_or_missing_signature_is_401_and_stores_nothing(
    workspace, shopify_connection, order_payload, signature, django_capture_on_commit_callbacks
):
    body, headers = shopify_delivery(topic="orders/create", payload=order_payload, secret=WEBHOOK_SECRET)
    if signature is None:
        headers.pop("X-Shopify-Hmac-Sha256")
    else:
        headers["X-Shopify-Hmac-Sha256"] = signature
    before = workspace_fingerprint(workspace)

    response = deliver(django_capture_on_commit_callbacks, shopify_connection, body, headers)

    assert response.status_code == 401
    assert workspace_fingerprint(workspace) == before


def test_tampered_body_is_refused(workspace, shopify_connection, order_payload, django_capture_on_commit_callbacks):
    body, headers = shopify_delivery(topic="orders/create", payload=order_payload, secret=WEBHOOK_SECRET)
    tampered = body.replace(order_payload["total_price"].encode(), b"0.01")
    before = workspace_fingerprint(workspace)

    response = deliver(django_capture_on_commit_callbacks, shopify_connection, tampered, headers)

    assert response.status_code == 401
    assert workspace_fingerprint(workspace) == before


def test_replayed_delivery_changes_nothing(
    workspace, shopify_connection, order_payload, django_capture_on_commit_callbacks
):
    body, headers = shopify_delivery(topic="orders/create", payload=order_payload, secret=WEBHOOK_SECRET)
    deliver(django_capture_on_commit_callbacks, shopify_connection, body, headers)
    before = workspace_fingerprint(workspace)

    response = deliver(django_capture_on_commit_callbacks, shopify_connection, body, headers)

    assert response.status_code == 200
    assert response.json() == {"ok": True, "duplicate": True}
    assert workspace_fingerprint(workspace) == before


def test_previous_secret_is_accepted_during_rotation_only(
    workspace, shopify_connection, order_payload, django_capture_on_commit_callbacks
):
    with scope(workspace=workspace):
        services.connection_rotate_webhook_secret(
            workspace=workspace, connection=shopify_connection, new_secret="brand-new"
        )
    old_body, old_headers = shopify_delivery(topic="orders/create", payload=order_payload, secret=WEBHOOK_SECRET)
    assert deliver(django_capture_on_commit_callbacks, shopify_connection, old_body, old_headers).status_code == 200

    shopify_connection.previous_webhook_secret_expires_at = timezone.now() - dt.timedelta(seconds=1)
    shopify_connection.save()
    body, headers = shopify_delivery(topic="orders/updated", payload=order_payload, secret=WEBHOOK_SECRET)
    assert deliver(django_capture_on_commit_callbacks, shopify_connection, body, headers).status_code == 401
    body, headers = shopify_delivery(topic="orders/updated", payload=order_payload, secret="brand-new")
    assert deliver(django_capture_on_commit_callbacks, shopify_connection, body, headers).status_code == 200


def test_consent_comes_from_the_consent_topic_not_the_customer_payload(
    workspace, shopify_connection, catalogue, django_capture_on_commit_callbacks
):
    customer = catalogue.customers[0]
    customer.is_subscribed = True
    body, headers = shopify_delivery(
        topic="customers/create", payload=render.shopify_customer_rest(customer), secret=WEBHOOK_SECRET
    )
    deliver(django_capture_on_commit_callbacks, shopify_connection, body, headers)
    with scope(workspace=workspace):
        assert Customer.objects.get(source="shopify", external_id=str(customer.id)).email_consent == "not_subscribed"

    consent = {
        "customer_id": customer.id,
        "email_address": customer.email,
        "email_marketing_consent": {
            "state": "subscribed",
            "opt_in_level": "confirmed_opt_in",
            "consent_updated_at": "2026-01-05T10:00:00Z",
            "consent_collected_from": "SHOPIFY",
        },
    }
    body, headers = shopify_delivery(
        topic="customers/email_marketing_consent_update", payload=consent, secret=WEBHOOK_SECRET
    )
    deliver(django_capture_on_commit_callbacks, shopify_connection, body, headers)

    with scope(workspace=workspace):
        stored = Customer.objects.get(source="shopify", external_id=str(customer.id))
        assert (stored.email_consent, stored.email_consent_source, stored.email_consent_version) == (
            "subscribed",
            "shopify",
            "confirmed_opt_in",
        )
        assert stored.email_consent_at == dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)
        assert Event.objects.filter(customer=stored, type="consent_changed").count() == 1


def test_checkout_webhook_creates_an_open_cart(
    workspace, shopify_connection, catalogue, django_capture_on_commit_callbacks
):
    checkout = catalogue.checkouts[0]
    body, headers = shopify_delivery(
        topic="checkouts/create",
        secret=WEBHOOK_SECRET,
        payload=render.shopify_checkout_rest(checkout, catalogue, "fake-shop.myshopify.com"),
    )

    deliver(django_capture_on_commit_callbacks, shopify_connection, body, headers)

    with scope(workspace=workspace):
        from customers.models import Cart

        cart = Cart.objects.get(source="shopify", external_id=str(checkout.id))
        assert (cart.status, cart.value, cart.customer.external_id) == (
            "open",
            checkout.total,
            str(checkout.customer_id),
        )


def test_app_uninstalled_pauses_the_connection(workspace, shopify_connection, django_capture_on_commit_callbacks):
    body, headers = shopify_delivery(
        topic="app/uninstalled", secret=WEBHOOK_SECRET, payload={"id": 1, "domain": "fake-shop.myshopify.com"}
    )

    deliver(django_capture_on_commit_callbacks, shopify_connection, body, headers)

    shopify_connection.refresh_from_db()
    assert (shopify_connection.status, shopify_connection.is_paused) == ("uninstalled", True)


def test_customers_redact_reaches_the_erasure_service_or_says_it_is_missing(
    workspace, shopify_connection, catalogue, django_capture_on_commit_callbacks
):
    customer = catalogue.customers[0]
    body, headers = shopify_delivery(
        topic="customers/create", payload=render.shopify_customer_rest(customer), secret=WEBHOOK_SECRET
    )
    deliver(django_capture_on_commit_callbacks, shopify_connection, body, headers)
    payload = {
        "shop_id": 1,
        "shop_domain": "fake-shop.myshopify.com",
        "customer": {"id": customer.id, "email": customer.email, "phone": customer.phone},
        "orders_to_redact": [],
    }
    body, headers = shopify_delivery(topic="customers/redact", payload=payload, secret=WEBHOOK_SECRET)

    deliver(django_capture_on_commit_callbacks, shopify_connection, body, headers)

    with scope(workspace=workspace):
        delivery = WebhookDelivery.objects.get(topic="customers/redact")
        stored = Customer.objects.get(source="shopify", external_id=str(customer.id))
    try:
        import customers.gdpr  # noqa: F401
    except ImportError:
        assert delivery.status == "failed"
        assert "erasure service is not available" in delivery.message
    else:
        assert delivery.status == "processed", delivery.message
        assert stored.erased_at is not None


def test_woocommerce_order_webhook(workspace, woo_connection, catalogue, django_capture_on_commit_callbacks):
    order = catalogue.orders[5]
    body, headers = woocommerce_delivery(
        topic="order.created", payload=render.woo_order(order, catalogue), secret=WEBHOOK_SECRET
    )

    response = deliver(django_capture_on_commit_callbacks, woo_connection, body, headers)

    assert response.status_code == 200
    with scope(workspace=workspace):
        stored = Order.objects.get(source="woocommerce", external_id=str(order.id))
        assert stored.total == order.total
        assert stored.customer.email == order.email


def test_woocommerce_bad_signature(workspace, woo_connection, catalogue, django_capture_on_commit_callbacks):
    body, headers = woocommerce_delivery(
        topic="order.created", payload=render.woo_order(catalogue.orders[0], catalogue), secret="not-the-secret"
    )
    before = workspace_fingerprint(workspace)

    assert deliver(django_capture_on_commit_callbacks, woo_connection, body, headers).status_code == 401
    assert workspace_fingerprint(workspace) == before


def test_woocommerce_creation_ping_is_acknowledged_without_effect(
    workspace, woo_connection, django_capture_on_commit_callbacks
):
    body, headers = woocommerce_ping(webhook_id=12)
    before = workspace_fingerprint(workspace)

    response = deliver(django_capture_on_commit_callbacks, woo_connection, body, headers)

    assert (response.status_code, response.json()) == (200, {"ok": True, "ping": True})
    assert workspace_fingerprint(workspace) == before


def test_woocommerce_deleted_body_with_only_an_id(
    workspace, woo_connection, catalogue, django_capture_on_commit_callbacks
):
    body, headers = woocommerce_delivery(topic="order.deleted", payload={"id": 4242}, secret=WEBHOOK_SECRET)

    response = deliver(django_capture_on_commit_callbacks, woo_connection, body, headers)

    assert response.status_code == 200
    with scope(workspace=workspace):
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.message) == ("ignored", "order 4242 was deleted in WooCommerce; history kept")


def test_unknown_webhook_address_is_404(db):
    response = Client().post("/hooks/shopify/nope/", data=b"{}", content_type="application/json")

    assert response.status_code == 404


def test_webhook_answers_fast(workspace, shopify_connection, catalogue, settings):
    """The request only verifies and records; processing happens in the task (queued on commit)."""
    import time

    body, headers = shopify_delivery(
        topic="orders/create", secret=WEBHOOK_SECRET, payload=render.shopify_order_rest(catalogue.orders[1], catalogue)
    )
    started = time.perf_counter()
    response = post(shopify_connection, body, headers)
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert elapsed < 1.0
    with scope(workspace=workspace):
        assert WebhookDelivery.objects.get().status == "received"  # not processed inside the request
        assert not Order.objects.filter(source="shopify").exists()


def test_a_delivery_whose_task_was_lost_is_processed_by_the_minute_tick(workspace, shopify_connection, catalogue):
    from integrations.tasks import integrations_minute_tick

    body, headers = shopify_delivery(
        topic="orders/create", secret=WEBHOOK_SECRET, payload=render.shopify_order_rest(catalogue.orders[2], catalogue)
    )
    post(shopify_connection, body, headers)  # recorded; its on-commit task never runs (the test transaction)
    with scope(workspace=workspace):
        WebhookDelivery.objects.update(received_at=timezone.now() - dt.timedelta(minutes=6))

    integrations_minute_tick(workspace.id)

    with scope(workspace=workspace):
        assert WebhookDelivery.objects.get().status == "processed"
        assert Order.objects.filter(source="shopify", external_id=str(catalogue.orders[2].id)).exists()
