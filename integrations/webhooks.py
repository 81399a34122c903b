"""Webhooks: verify (constant time, before anything is parsed), record once, process in a task.

Shopify signs the raw body with HMAC-SHA256 (base64) in ``X-Shopify-Hmac-Sha256``; WooCommerce likewise in
``X-WC-Webhook-Signature``. A delivery is recorded once per (connection, delivery id): Shopify's
``X-Shopify-Event-Id`` (the same across retries of one event; ``X-Shopify-Webhook-Id`` when absent), WooCommerce's
``X-WC-Webhook-Delivery-ID``. A replayed delivery therefore changes nothing.
"""

import base64
import datetime as dt
import hashlib
import hmac
import logging
import re
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.models import Workspace
from customers import services as customer_services
from customers.models import Customer
from customers.records import CustomerRecord
from integrations.connectors import shopify, woocommerce
from integrations.connectors.base import parse_datetime
from integrations.models import StoreConnection, WebhookDelivery

logger = logging.getLogger(__name__)

WOOCOMMERCE_PING = re.compile(rb"^webhook_id=\d+$")

SHOPIFY_TOPICS = {
    "orders/create",
    "orders/updated",
    "orders/cancelled",
    "customers/create",
    "customers/update",
    "customers/email_marketing_consent_update",
    "checkouts/create",
    "checkouts/update",
    "app/uninstalled",
    "customers/data_request",
    "customers/redact",
    "shop/redact",
}
CONSENT_STATES = {
    "subscribed": "subscribed",
    "not_subscribed": "not_subscribed",
    "unsubscribed": "unsubscribed",
    "pending": "pending",
    "redacted": "unsubscribed",
    "invalid": "not_subscribed",
}


def signature_is_valid(*, secrets: list[str], body: bytes, signature: str) -> bool:
    """Compare the expected HMAC with the given one in constant time, for every accepted secret."""
    if not signature or not secrets:
        return False
    given = signature.strip().encode()
    valid = False
    for secret in secrets:
        expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
        valid |= hmac.compare_digest(expected, given)  # no early exit: the time does not depend on which matched
    return valid


def is_woocommerce_ping(body: bytes, content_type: str) -> bool:
    return content_type.startswith("application/x-www-form-urlencoded") and bool(WOOCOMMERCE_PING.match(body.strip()))


@dataclass(frozen=True, kw_only=True)
class Receipt:
    delivery: WebhookDelivery
    is_new: bool


def webhook_record(
    *, workspace: Workspace, connection: StoreConnection, delivery_id: str, topic: str, payload: dict
) -> Receipt:
    """Store a verified delivery once; a replay returns the stored row with ``is_new=False`` and queues nothing."""
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                workspace=workspace,
                connection=connection,
                delivery_id=delivery_id[:150],
                topic=topic[:80],
                payload=payload,
            )
    except IntegrityError:
        existing = WebhookDelivery.objects.get(
            workspace=workspace, connection=connection, delivery_id=delivery_id[:150]
        )
        return Receipt(delivery=existing, is_new=False)
    StoreConnection.objects.filter(workspace=workspace, pk=connection.pk).update(last_webhook_at=timezone.now())
    if connection.is_paused:
        _done(delivery, WebhookDelivery.Status.IGNORED, "The connection is paused; the next sync will catch up.")
        return Receipt(delivery=delivery, is_new=True)

    def enqueue() -> None:
        from integrations.tasks import webhook_process as task

        task.delay(workspace.id, delivery.pk)

    transaction.on_commit(enqueue)
    return Receipt(delivery=delivery, is_new=True)


def _done(delivery: WebhookDelivery, status: str, message: str = "") -> WebhookDelivery:
    delivery.status = status
    delivery.message = message[:2000]
    delivery.processed_at = timezone.now()
    delivery.save(update_fields=["status", "message", "processed_at"])
    return delivery


def webhook_process(*, workspace: Workspace, delivery: WebhookDelivery) -> WebhookDelivery:
    if delivery.status != WebhookDelivery.Status.RECEIVED:
        return delivery
    connection = delivery.connection
    handler = _shopify if connection.platform == "shopify" else _woocommerce
    try:
        with transaction.atomic():
            status, message = handler(workspace, connection, delivery.topic, delivery.payload)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        return _done(delivery, WebhookDelivery.Status.FAILED, f"Unreadable payload: {error!r}")
    return _done(delivery, status, message)


# --- Shopify -----------------------------------------------------------------------------------------------------


def _shopify(workspace: Workspace, connection: StoreConnection, topic: str, body: dict) -> tuple[str, str]:
    processed = WebhookDelivery.Status.PROCESSED
    if topic in ("orders/create", "orders/updated", "orders/cancelled"):
        if body.get("customer") and body["customer"].get("id"):
            customer_services.customers_bulk_upsert(
                workspace=workspace, records=[shopify.customer_from_rest(body["customer"])]
            )
        result = customer_services.orders_bulk_upsert(workspace=workspace, records=[shopify.order_from_rest(body)])
        return processed, f"order {body['id']}: {_describe(result)}"
    if topic in ("customers/create", "customers/update"):
        # Consent is not read from here: it comes from customers/email_marketing_consent_update only.
        result = customer_services.customers_bulk_upsert(
            workspace=workspace, records=[shopify.customer_from_rest(body)]
        )
        return processed, f"customer {body['id']}: {_describe(result)}"
    if topic == "customers/email_marketing_consent_update":
        return _shopify_consent(workspace, body)
    if topic in ("checkouts/create", "checkouts/update"):
        if body.get("completed_at"):
            return WebhookDelivery.Status.IGNORED, "checkout completed: the order webhook records it"
        result = customer_services.carts_bulk_upsert(workspace=workspace, records=[shopify.cart_from_rest(body)])
        return processed, f"checkout {body['id']}: {_describe(result)}"
    if topic == "app/uninstalled":
        from integrations.services import connection_mark_uninstalled

        connection_mark_uninstalled(workspace=workspace, connection=connection)
        return processed, "the app was uninstalled: connection paused"
    if topic == "customers/data_request":
        customer = body.get("customer") or {}
        found = _customers_for(workspace, "shopify", [str(customer.get("id", ""))], [customer.get("email") or ""])
        request_id = (body.get("data_request") or {}).get("id")
        who = customer.get("email") or customer.get("id")
        return processed, (
            f"Data request {request_id} for {who}: {len(found)} matching customer(s); export their data from the "
            f"customer page and send it to the store owner."
        )
    if topic == "customers/redact":
        customer = body.get("customer") or {}
        found = _customers_for(workspace, "shopify", [str(customer.get("id", ""))], [customer.get("email") or ""])
        return _erase(workspace, found, reason=f"Shopify customers/redact for customer {customer.get('id')}")
    if topic == "shop/redact":
        found = list(Customer.objects.filter(workspace=workspace, source="shopify", erased_at__isnull=True))
        return _erase(workspace, found, reason=f"Shopify shop/redact for {body.get('shop_domain')}")
    return WebhookDelivery.Status.IGNORED, f"topic {topic} is not used"


def _shopify_consent(workspace: Workspace, body: dict) -> tuple[str, str]:
    consent = body.get("email_marketing_consent") or {}
    status = CONSENT_STATES.get((consent.get("state") or "").lower())
    if status is None:
        return WebhookDelivery.Status.FAILED, f"unknown consent state {consent.get('state')!r}"
    external_id = str(body["customer_id"])
    found = _customers_for(workspace, "shopify", [external_id], [])
    if found:
        customer = found[0]
    else:
        customer = customer_services.customer_upsert(
            workspace=workspace,
            record=CustomerRecord(source="shopify", external_id=external_id, email=body.get("email_address") or ""),
        )
    customer_services.customer_set_consent(
        workspace=workspace,
        customer=customer,
        channel="email",
        status=status,
        source="shopify",
        version=(consent.get("opt_in_level") or "")[:50],
        at=parse_datetime(consent.get("consent_updated_at")),
    )
    return WebhookDelivery.Status.PROCESSED, f"customer {external_id}: email consent {status}"


def _customers_for(workspace: Workspace, source: str, external_ids: list[str], emails: list[str]) -> list[Customer]:
    ids = [value for value in external_ids if value]
    by_id = list(Customer.objects.filter(workspace=workspace, source=source, external_id__in=ids)) if ids else []
    if by_id:
        return by_id
    emails = [value.strip().lower() for value in emails if value and value.strip()]
    return (
        list(Customer.objects.filter(workspace=workspace, email__in=emails, erased_at__isnull=True)) if emails else []
    )


def _erase(workspace: Workspace, customers: list[Customer], *, reason: str) -> tuple[str, str]:
    if not customers:
        return WebhookDelivery.Status.PROCESSED, f"{reason}: no matching customer holds data here"
    try:
        from customers.gdpr import customer_erase  # the customers app's erasure service, when it exists
    except ImportError:
        return WebhookDelivery.Status.FAILED, (
            f"{reason}: {len(customers)} customer(s) must be erased, but the erasure service is not available"
        )
    for customer in customers:
        customer_erase(workspace=workspace, customer=customer)
    return WebhookDelivery.Status.PROCESSED, f"{reason}: {len(customers)} customer(s) erased"


def _describe(result) -> str:
    if result.created:
        return "created"
    if result.updated:
        return "updated"
    return "already up to date"


# --- WooCommerce -------------------------------------------------------------------------------------------------


def _woocommerce(workspace: Workspace, connection: StoreConnection, topic: str, body: dict) -> tuple[str, str]:
    resource, _, event = topic.partition(".")
    if event == "deleted" or set(body) == {"id"}:
        # Deleted resources arrive as {"id": N}. The CRM keeps the customer's history; the store no longer has it.
        return WebhookDelivery.Status.IGNORED, f"{resource} {body.get('id')} was deleted in WooCommerce; history kept"
    if resource == "order":
        customer_id = str(body.get("customer_id") or "")
        if customer_id and customer_id != "0" and not _customers_for(workspace, "woocommerce", [customer_id], []):
            # A customer the CRM has not seen yet: create them from the billing details; customer.* fills the rest.
            billing = body.get("billing") or {}
            customer_services.customers_bulk_upsert(
                workspace=workspace,
                records=[
                    CustomerRecord(
                        source="woocommerce",
                        external_id=customer_id,
                        email=billing.get("email") or "",
                        first_name=billing.get("first_name") or "",
                        last_name=billing.get("last_name") or "",
                    )
                ],
            )
        result = customer_services.orders_bulk_upsert(workspace=workspace, records=[woocommerce.order_from_rest(body)])
        return WebhookDelivery.Status.PROCESSED, f"order {body['id']}: {_describe(result)}"
    if resource == "customer":
        result = customer_services.customers_bulk_upsert(
            workspace=workspace, records=[woocommerce.customer_from_rest(body)]
        )
        return WebhookDelivery.Status.PROCESSED, f"customer {body['id']}: {_describe(result)}"
    if resource == "product":
        result = customer_services.products_bulk_upsert(
            workspace=workspace, records=[woocommerce.product_from_rest(body)]
        )
        return WebhookDelivery.Status.PROCESSED, f"product {body['id']}: {_describe(result)}"
    return WebhookDelivery.Status.IGNORED, f"topic {topic} is not used"


def deliveries_stuck(*, workspace: Workspace, older_than: dt.timedelta = dt.timedelta(minutes=5)) -> list[int]:
    """Deliveries recorded but never processed (their task was lost): the minute tick queues them again."""
    cutoff = timezone.now() - older_than
    return list(
        WebhookDelivery.objects.filter(
            workspace=workspace, status=WebhookDelivery.Status.RECEIVED, received_at__lt=cutoff
        ).values_list("id", flat=True)[:500]
    )
