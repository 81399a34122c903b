"""Canonical records: what every ingestion path (connectors, webhooks, CSV import, tracking API, seed_demo)
turns its input into before calling the upserts in ``customers.services``.

``updated_at`` is the source's own last-modified time; an upsert never lets an older one overwrite a newer one.
Optional fields left as ``None`` are not touched on update (so a customer payload without consent does not
reset consent).
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, kw_only=True)
class CustomerRecord:
    source: str
    external_id: str
    email: str = ""
    phone: str = ""
    first_name: str = ""
    last_name: str = ""
    birth_date: dt.date | None = None
    gender: str = ""
    address_line: str = ""
    city: str = ""
    region: str = ""
    country: str = ""
    postcode: str = ""
    language: str = ""
    email_consent: str | None = None
    email_consent_at: dt.datetime | None = None
    email_consent_source: str = ""
    email_consent_version: str = ""
    sms_consent: str | None = None
    sms_consent_at: dt.datetime | None = None
    sms_consent_source: str = ""
    sms_consent_version: str = ""
    tags: tuple[str, ...] = ()
    loyalty_points: int | None = None
    preferences: dict | None = None
    custom_attributes: dict | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, kw_only=True)
class ProductRecord:
    source: str
    external_id: str
    title: str
    sku: str = ""
    category: str = ""
    vendor: str = ""
    price: Decimal = Decimal("0")
    inventory_quantity: int | None = None
    is_in_stock: bool = True
    image_url: str = ""
    url: str = ""
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, kw_only=True)
class OrderLineRecord:
    external_id: str = ""
    product_external_id: str = ""
    title: str = ""
    sku: str = ""
    category: str = ""
    quantity: int = 1
    unit_price: Decimal = Decimal("0")
    discount: Decimal = Decimal("0")
    total: Decimal | None = None  # defaults to quantity * unit_price - discount


@dataclass(frozen=True, kw_only=True)
class OrderRecord:
    source: str
    external_id: str
    placed_at: dt.datetime
    customer_external_id: str = ""  # the customer's id in the same source; else matched by email
    email: str = ""
    number: str = ""
    status: str = "open"
    financial_status: str = "paid"
    fulfillment_status: str = ""
    currency: str = "USD"
    subtotal: Decimal = Decimal("0")
    discount_total: Decimal = Decimal("0")
    discount_codes: tuple[str, ...] = ()
    shipping_total: Decimal = Decimal("0")
    tax_total: Decimal = Decimal("0")
    total: Decimal = Decimal("0")
    refunded_total: Decimal = Decimal("0")
    cancelled_at: dt.datetime | None = None
    refunded_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    lines: tuple[OrderLineRecord, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CartRecord:
    source: str
    external_id: str
    started_at: dt.datetime
    customer_external_id: str = ""
    email: str = ""
    anonymous_id: str = ""
    lines: tuple[dict, ...] = ()  # {"product_external_id", "sku", "title", "quantity", "price"}
    value: Decimal = Decimal("0")
    currency: str = "USD"
    checkout_url: str = ""
    updated_at: dt.datetime | None = None
    completed_order_external_id: str = ""


@dataclass(frozen=True, kw_only=True)
class EventRecord:
    type: str
    occurred_at: dt.datetime
    source: str = "crm"
    external_id: str | None = None  # set it when the source can replay the same event
    customer_id: int | None = None
    customer_external_id: str = ""
    email: str = ""
    anonymous_id: str = ""
    properties: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class UpsertResult:
    created: int = 0
    updated: int = 0
    skipped_stale: int = 0

    def __add__(self, other: "UpsertResult") -> "UpsertResult":
        return UpsertResult(
            created=self.created + other.created,
            updated=self.updated + other.updated,
            skipped_stale=self.skipped_stale + other.skipped_stale,
        )
