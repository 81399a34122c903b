"""Signed webhook deliveries as the platforms send them (used by tests and by ``manage.py fake_store --send-to``)."""

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def shopify_delivery(
    *,
    topic: str,
    payload: dict,
    secret: str,
    shop_domain: str = "fake-shop.myshopify.com",
    event_id: str | None = None,
    webhook_id: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """(raw body, headers) of a Shopify webhook. Retries of one event keep its X-Shopify-Event-Id."""
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(secret, body),
        "X-Shopify-Shop-Domain": shop_domain,
        "X-Shopify-API-Version": "2025-01",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": "2026-01-01T00:00:00.000000Z",
    }
    return body, headers


def woocommerce_delivery(
    *,
    topic: str,
    payload: dict,
    secret: str,
    source: str = "http://127.0.0.1",
    delivery_id: str | None = None,
    webhook_id: int = 7,
) -> tuple[bytes, dict[str, str]]:
    resource, _, event = topic.partition(".")
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": source.rstrip("/") + "/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": sign(secret, body),
        "X-WC-Webhook-ID": str(webhook_id),
        "X-WC-Webhook-Delivery-ID": delivery_id or uuid.uuid4().hex,
    }
    return body, headers


def woocommerce_ping(webhook_id: int = 7) -> tuple[bytes, dict[str, str]]:
    """The unsigned request WooCommerce sends when a webhook is created: a form post of ``webhook_id=N``."""
    return f"webhook_id={webhook_id}".encode(), {"Content-Type": "application/x-www-form-urlencoded"}


def as_django_headers(headers: dict[str, Any]) -> dict[str, Any]:
    """Headers in the form Django's test client takes (HTTP_X_...)."""
    out = {}
    for name, value in headers.items():
        if name.lower() == "content-type":
            out["content_type"] = value
        else:
            out["HTTP_" + name.upper().replace("-", "_")] = value
    return out
