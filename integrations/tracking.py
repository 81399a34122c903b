"""Storefront tracking: validate a batch of events from the snippet, rate-limit per public key, record them.

A visitor is known by an anonymous id (a random id the snippet keeps in localStorage) until an ``identify`` event
(at login or checkout) names them; then their earlier anonymous events and carts join the customer, and later
events of that anonymous id are attached to them directly.
"""

import datetime as dt
import json
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import F
from django.utils import timezone

from crm.models import Workspace
from customers import services as customer_services
from customers.models import Customer, Event, EventType
from customers.records import CartRecord, CustomerRecord, EventRecord
from integrations.connectors.base import parse_datetime
from integrations.models import StorefrontTracking

SOURCE = "tracking"
TRACKED_TYPES = {
    "page_viewed": EventType.PAGE_VIEWED,
    "product_viewed": EventType.PRODUCT_VIEWED,
    "added_to_cart": EventType.ADDED_TO_CART,
    "checkout_started": EventType.CHECKOUT_STARTED,
    "identify": EventType.IDENTIFIED,
}
MAX_BATCH = 500
MAX_PROPERTIES_BYTES = 4096
ANONYMOUS_ID = re.compile(r"^[A-Za-z0-9_.:-]{8,64}$")
MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def rate_limit_per_minute() -> int:
    return int(getattr(settings, "TRACKING_EVENTS_PER_MINUTE", 300_000))


@dataclass(frozen=True, kw_only=True)
class FieldError:
    index: int | None
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"index": self.index, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        where = f"event {self.index}" if self.index is not None else "batch"
        return f"{where}: {self.field}: {self.message}"


class BatchInvalid(Exception):
    def __init__(self, errors: list[FieldError]):
        super().__init__(str(errors[0]))
        self.errors = errors


@dataclass(frozen=True, kw_only=True)
class TrackedEvent:
    type: str
    anonymous_id: str
    occurred_at: dt.datetime
    properties: dict = field(default_factory=dict)
    message_id: str = ""
    email: str = ""
    customer_external_id: str = ""
    platform: str = ""


def batch_parse(raw: bytes, *, now: dt.datetime | None = None) -> list[TrackedEvent]:
    """Validate a whole batch; any error rejects it, naming the event index and the field."""
    now = now or timezone.now()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BatchInvalid([FieldError(index=None, field="body", message="is not valid JSON")]) from None
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        raise BatchInvalid([FieldError(index=None, field="batch", message="must be a list of events")])
    items = body["batch"]
    if not items:
        raise BatchInvalid([FieldError(index=None, field="batch", message="is empty")])
    if len(items) > MAX_BATCH:
        raise BatchInvalid(
            [FieldError(index=None, field="batch", message=f"has {len(items)} events; at most {MAX_BATCH}")]
        )
    events: list[TrackedEvent] = []
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        parsed = _event_parse(index, item, now, errors)
        if parsed is not None:
            events.append(parsed)
    if errors:
        raise BatchInvalid(errors[:20])
    return events


def _event_parse(index: int, item: Any, now: dt.datetime, errors: list[FieldError]) -> TrackedEvent | None:
    def fail(name: str, message: str) -> None:
        errors.append(FieldError(index=index, field=name, message=message))

    if not isinstance(item, dict):
        fail("event", "must be an object")
        return None
    kind = item.get("type")
    if kind not in TRACKED_TYPES:
        fail("type", f"must be one of {', '.join(sorted(TRACKED_TYPES))}")
    anonymous_id = item.get("anonymous_id")
    if not isinstance(anonymous_id, str) or not ANONYMOUS_ID.match(anonymous_id):
        fail("anonymous_id", "must be 8-64 letters, digits or _.:-")
    message_id = item.get("message_id", "")
    if message_id and (not isinstance(message_id, str) or not MESSAGE_ID.match(message_id)):
        fail("message_id", "must be 1-64 letters, digits or _.:-")
    occurred_at: dt.datetime | None = now
    if item.get("timestamp") is not None:
        occurred_at = parse_datetime(item["timestamp"]) if isinstance(item["timestamp"], str) else None
        if occurred_at is None:
            fail("timestamp", "must be an ISO 8601 date and time")
        elif occurred_at > now + dt.timedelta(hours=1):
            fail("timestamp", "is in the future")
        elif occurred_at < now - dt.timedelta(days=30):
            fail("timestamp", "is more than 30 days old")
    properties = item.get("properties", {})
    if not isinstance(properties, dict):
        fail("properties", "must be an object")
    elif len(json.dumps(properties)) > MAX_PROPERTIES_BYTES:
        fail("properties", f"is larger than {MAX_PROPERTIES_BYTES} bytes")
    email = item.get("email") or (properties.get("email") if isinstance(properties, dict) else "") or ""
    if email:
        try:
            validate_email(email)
        except (ValidationError, TypeError):
            fail("email", "is not a valid email address")
    customer_external_id = item.get("customer_id") or ""
    platform = item.get("platform") or ""
    if kind == "identify":
        if not email and not customer_external_id:
            fail("email", "identify needs an email (or customer_id with platform)")
        if customer_external_id and platform not in ("shopify", "woocommerce"):
            fail("platform", "must be shopify or woocommerce when customer_id is given")
    if errors and errors[-1].index == index:
        return None
    return TrackedEvent(
        type=TRACKED_TYPES[str(kind)],
        anonymous_id=str(anonymous_id),
        occurred_at=occurred_at or now,
        properties=properties,
        message_id=message_id or "",
        email=str(email).strip().lower(),
        customer_external_id=str(customer_external_id),
        platform=platform,
    )


def rate_limit_take(*, public_key: str, count: int) -> int | None:
    """Count ``count`` events against the key's per-minute budget; return seconds to wait when over it."""
    window = int(time.time() // 60)
    key = f"tracking-rate:{public_key}:{window}"
    cache.add(key, 0, timeout=90)
    try:
        used = cache.incr(key, count)
    except ValueError:  # expired between add and incr
        cache.set(key, count, timeout=90)
        used = count
    if used > rate_limit_per_minute():
        return max(1, 60 - int(time.time() % 60))
    return None


KEY_CACHE_SECONDS = 30


def _key_cache(public_key: str) -> str:
    return f"tracking-key:{public_key}"


def tracking_for_key(public_key: str) -> StorefrontTracking | None:
    """The settings row of a public key, cached briefly: every storefront request needs it."""
    from django_scopes import scopes_disabled

    cached = cache.get(_key_cache(public_key))
    if cached is not None:
        return cached or None
    with scopes_disabled():
        found = StorefrontTracking.objects.select_related("workspace").filter(public_key=public_key).first()
    cache.set(_key_cache(public_key), found or False, timeout=KEY_CACHE_SECONDS)
    return found


def tracking_forget_key(public_key: str) -> None:
    cache.delete(_key_cache(public_key))


def events_ingest(*, workspace: Workspace, tracking: StorefrontTracking, events: list[TrackedEvent]) -> int:
    anonymous_ids = {event.anonymous_id for event in events}
    known = dict(
        Event.objects.filter(
            workspace=workspace, anonymous_id__in=anonymous_ids, type=EventType.IDENTIFIED, customer__isnull=False
        )
        .order_by("id")
        .values_list("anonymous_id", "customer_id")
    )
    records = [
        EventRecord(
            type=event.type,
            occurred_at=event.occurred_at,
            source=SOURCE,
            anonymous_id=event.anonymous_id,
            customer_id=known.get(event.anonymous_id),
            properties=event.properties,
            external_id=f"{event.anonymous_id}:{event.message_id}" if event.message_id else None,
        )
        for event in events
        if event.type != EventType.IDENTIFIED
    ]
    customer_services.events_bulk_record(workspace=workspace, records=records)
    for event in events:
        if event.type == EventType.CHECKOUT_STARTED:
            _cart_from_checkout(workspace, event, known.get(event.anonymous_id))
    for event in events:
        if event.type == EventType.IDENTIFIED:
            visitor_identify(workspace=workspace, event=event)
    _count_received(workspace, tracking, len(events))
    return len(events)


def _count_received(workspace: Workspace, tracking: StorefrontTracking, count: int) -> None:
    """Keep the page's "events received" figure without an UPDATE (and its row lock) on every request: counts
    gather in the cache and the first request of every 30 seconds writes them."""
    pending_key = f"tracking-pending:{tracking.pk}"
    if not cache.add(pending_key, count, timeout=None):
        try:
            cache.incr(pending_key, count)
        except ValueError:
            cache.set(pending_key, count, timeout=None)
    if not cache.add(f"tracking-flushed:{tracking.pk}", 1, timeout=30):
        return
    pending = cache.get(pending_key) or 0
    if pending:
        cache.decr(pending_key, pending)
        StorefrontTracking.objects.filter(workspace=workspace, pk=tracking.pk).update(
            events_received=F("events_received") + pending, last_event_at=timezone.now()
        )


def _cart_from_checkout(workspace: Workspace, event: TrackedEvent, customer_id: int | None) -> None:
    properties = event.properties
    lines = []
    for item in properties.get("items") or []:
        if isinstance(item, dict):
            lines.append(
                {
                    "product_external_id": str(item.get("product_id", "")),
                    "sku": str(item.get("sku", "")),
                    "title": str(item.get("title", ""))[:200],
                    "quantity": _int(item.get("quantity"), 1),
                    "price": str(_decimal(item.get("price"))),
                }
            )
    checkout_id = str(properties.get("checkout_id") or f"anon:{event.anonymous_id}")[:100]
    customer_services.carts_bulk_upsert(
        workspace=workspace,
        records=[
            CartRecord(
                source=SOURCE,
                external_id=checkout_id,
                started_at=event.occurred_at,
                anonymous_id=event.anonymous_id,
                email=event.email,
                lines=tuple(lines),
                value=_decimal(properties.get("value")),
                currency=str(properties.get("currency") or "USD")[:3],
                checkout_url=str(properties.get("url") or "")[:1000],
                updated_at=event.occurred_at,
            )
        ],
    )


def visitor_identify(*, workspace: Workspace, event: TrackedEvent) -> Customer:
    """Find (or create) the customer an identify names, and join the visitor's anonymous events to them."""
    customer = None
    if event.customer_external_id:
        customer = Customer.objects.filter(
            workspace=workspace, source=event.platform, external_id=event.customer_external_id
        ).first()
    if customer is None and event.email:
        customer = (
            Customer.objects.filter(
                workspace=workspace, email=event.email, merged_into__isnull=True, erased_at__isnull=True
            )
            .order_by("id")
            .first()
        )
    if customer is None:
        external_id = event.customer_external_id or f"email:{event.email}"
        customer = customer_services.customer_upsert(
            workspace=workspace,
            record=CustomerRecord(source=event.platform or SOURCE, external_id=external_id, email=event.email),
        )
    customer_services.anonymous_events_identify(workspace=workspace, anonymous_id=event.anonymous_id, customer=customer)
    customer_services.event_record(
        workspace=workspace,
        customer=customer,
        type=EventType.IDENTIFIED,
        occurred_at=event.occurred_at,
        properties={"method": event.properties.get("method", "")},
        source=SOURCE,
        anonymous_id=event.anonymous_id,
        external_id=f"identify:{event.anonymous_id}:{customer.pk}",
    )
    return customer


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value)).quantize(Decimal("0.01")) if value not in (None, "") else Decimal("0")
    except InvalidOperation:
        return Decimal("0")


def _int(value: Any, default: int) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return default
