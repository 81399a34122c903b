"""GDPR: a customer's data as JSON (right of access) and erasure (right to be forgotten).

Other apps hold data about a customer too (messages, tickets, segment memberships). They join both operations
through a registry, so this app never imports them:

    from customers.gdpr import register_exporter, register_eraser
    register_exporter("tickets", lambda *, workspace, customer: [...])      # in the app's AppConfig.ready()
    register_eraser("tickets", lambda *, workspace, customer: None)

or, without code in ready(), by dotted paths in settings: ``CUSTOMER_DATA_EXPORTERS = {"tickets":
"support.selectors.customer_gdpr_export"}`` and ``CUSTOMER_DATA_ERASERS = {...}``.

Erasure keeps the customer row (anonymised) and its orders, so revenue, AOV and cohort numbers stay right; the
order rows lose their email, events lose every property that is not a plain number, id or product reference,
notes are deleted (they are free text about the person), and an AuditRecord without personal data says who erased
whom and when. A later store sync cannot bring the data back: the upsert skips erased customers.
"""

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone
from django.utils.module_loading import import_string

from crm.models import Workspace
from customers.models import PROFILE_FIELDS as CONTACT_PROFILE_FIELDS
from customers.models import (
    AuditRecord,
    Cart,
    ConsentStatus,
    Customer,
    CustomerTag,
    Event,
    EventType,
    Note,
    Order,
    OrderLine,
)

Exporter = Callable[..., Any]
_EXPORTERS: dict[str, Exporter] = {}
_ERASERS: dict[str, Exporter] = {}


def register_exporter(name: str, exporter: Exporter) -> None:
    """``exporter(*, workspace, customer)`` returns JSON-able data put under ``name`` in the export."""
    _EXPORTERS[name] = exporter


def register_eraser(name: str, eraser: Exporter) -> None:
    """``eraser(*, workspace, customer)`` scrubs the app's personal data about the customer (same transaction)."""
    _ERASERS[name] = eraser


def _registered(registry: dict[str, Exporter], setting: str) -> dict[str, Exporter]:
    found = dict(registry)
    for name, path in (getattr(settings, setting, None) or {}).items():
        found[name] = import_string(path)
    return found


def _json(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {key: _json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json(item) for item in value]
    return value


PROFILE_FIELDS = [
    "id",
    "source",
    "external_id",
    *CONTACT_PROFILE_FIELDS,
    "loyalty_points",
    "preferences",
    "custom_attributes",
    "orders_count",
    "total_spent",
    "average_order_value",
    "first_order_at",
    "last_order_at",
    "top_categories",
    "rfm_group",
    "predicted_clv",
    "churn_risk",
    "created_at",
    "updated_at",
    "erased_at",
]
CONSENT_FIELDS = ["consent", "consent_at", "consent_source", "consent_version"]


def customer_data_export(*, workspace: Workspace, customer: Customer, actor=None) -> dict:
    """Everything the CRM holds about one customer, as a JSON-able dict; records the export in the audit log."""
    profile = {name: getattr(customer, name) for name in PROFILE_FIELDS}
    orders = []
    lines_by_order: dict[int, list[dict]] = {}
    for line in (
        OrderLine.objects.filter(workspace=workspace, order__customer=customer)
        .order_by("id")
        .values("order_id", "title", "sku", "category", "quantity", "unit_price", "discount", "total")
    ):
        row: dict[str, Any] = dict(line)
        lines_by_order.setdefault(int(row.pop("order_id")), []).append(row)
    for order in Order.objects.filter(workspace=workspace, customer=customer).order_by("placed_at"):
        data = model_to_dict(order, exclude=["workspace", "customer"])
        data["id"] = order.id
        data["lines"] = lines_by_order.get(order.id, [])
        orders.append(data)
    export: dict[str, Any] = {
        "exported_at": timezone.now(),
        "workspace": workspace.name,
        "profile": profile,
        "consents": {
            channel: {name: getattr(customer, f"{channel}_{name}") for name in CONSENT_FIELDS}
            for channel in ("email", "sms")
        },
        "tags": list(CustomerTag.objects.filter(workspace=workspace, customer=customer).values_list("name", flat=True)),
        "orders": orders,
        "carts": list(
            Cart.objects.filter(workspace=workspace, customer=customer)
            .order_by("started_at")
            .values("id", "status", "lines", "value", "currency", "started_at", "last_activity_at", "abandoned_at")
        ),
        "events": list(
            Event.objects.filter(workspace=workspace, customer=customer)
            .order_by("occurred_at", "id")
            .values("id", "type", "occurred_at", "properties", "source")
        ),
        "notes": list(
            Note.objects.filter(workspace=workspace, customer=customer)
            .order_by("created_at")
            .values("id", "body", "is_pinned", "created_at", "updated_at")
        ),
    }
    for name, exporter in _registered(_EXPORTERS, "CUSTOMER_DATA_EXPORTERS").items():
        export[name] = exporter(workspace=workspace, customer=customer)
    AuditRecord.objects.create(
        workspace=workspace,
        action=AuditRecord.Action.EXPORT,
        customer_id_ref=customer.id,
        actor=actor,
        data={"sections": sorted(export)},
    )
    return _json(export)


ERASED_PROFILE: dict[str, Any] = {
    "email": "",
    "phone": "",
    "first_name": "",
    "last_name": "",
    "birth_date": None,
    "gender": "",
    "address_line": "",
    "city": "",
    "region": "",
    "postcode": "",
    "language": "",
    "preferences": {},
    "custom_attributes": {},
    "loyalty_points": 0,
}
# Event properties that say nothing about the person: ids, amounts, counts, product references, states.
SAFE_EVENT_KEYS = {
    "order_id",
    "number",
    "total",
    "currency",
    "items",
    "discount_codes",
    "refunded",
    "value",
    "cart_id",
    "product_id",
    "sku",
    "title",
    "product_title",
    "price",
    "quantity",
    "category",
    "channel",
    "from",
    "to",
    "segment",
    "segment_id",
    "segment_name",
    "campaign_id",
    "flow_id",
    "message_id",
    "ticket_id",
    "kind",
    "score",
    "fields",
    "source",
    "duplicate_id",
    "orders",
    "events",
}


@transaction.atomic
def customer_erase(*, workspace: Workspace, customer: Customer, actor=None) -> Customer:
    customer = Customer.objects.select_for_update().get(workspace=workspace, pk=customer.pk)
    if customer.erased_at:
        return customer
    now = timezone.now()
    for name, value in ERASED_PROFILE.items():
        setattr(customer, name, value)
    for channel in ("email", "sms"):
        setattr(customer, f"{channel}_consent", ConsentStatus.UNSUBSCRIBED)
        setattr(customer, f"{channel}_consent_at", now)
        setattr(customer, f"{channel}_consent_source", "erasure")
        setattr(customer, f"{channel}_consent_version", "")
    customer.erased_at = now
    customer.save()

    tags_deleted, _ = CustomerTag.objects.filter(workspace=workspace, customer=customer).delete()
    notes_deleted, _ = Note.objects.filter(workspace=workspace, customer=customer).delete()
    orders_kept = Order.objects.filter(workspace=workspace, customer=customer).update(email="")
    Cart.objects.filter(workspace=workspace, customer=customer).update(email="", anonymous_id="", checkout_url="")
    # Merged-away duplicates of this person are personal data too: erase them the same way.
    for duplicate in Customer.objects.filter(workspace=workspace, merged_into=customer, erased_at__isnull=True):
        customer_erase(workspace=workspace, customer=duplicate, actor=actor)

    scrubbed = 0
    events = Event.objects.filter(workspace=workspace, customer=customer).only("id", "properties", "type")
    changed = []
    for event in events.iterator(chunk_size=2000):
        properties = event.properties or {}
        kept = {
            key: value for key, value in properties.items() if key in SAFE_EVENT_KEYS and not isinstance(value, dict)
        }
        if event.type == EventType.NOTE_ADDED:
            kept = {}
        if kept != properties:
            event.properties = kept
            changed.append(event)
            scrubbed += 1
    Event.objects.bulk_update(changed, ["properties"], batch_size=1000)
    Event.objects.filter(workspace=workspace, customer=customer).exclude(anonymous_id="").update(anonymous_id="")

    for _name, eraser in _registered(_ERASERS, "CUSTOMER_DATA_ERASERS").items():
        eraser(workspace=workspace, customer=customer)
    Event.objects.create(
        workspace=workspace, customer=customer, type=EventType.DATA_ERASED, occurred_at=now, properties={}
    )
    AuditRecord.objects.create(
        workspace=workspace,
        action=AuditRecord.Action.ERASE,
        customer_id_ref=customer.id,
        actor=actor,
        data={
            "erased_at": now.isoformat(),
            "orders_kept": orders_kept,
            "events_scrubbed": scrubbed,
            "notes_deleted": notes_deleted,
            "tags_deleted": tags_deleted,
            "by": getattr(actor, "email", ""),
            "extensions": sorted(_registered(_ERASERS, "CUSTOMER_DATA_ERASERS")),
        },
    )
    return customer
