"""Idempotent bulk upserts of customers, products, orders (with lines), carts and events."""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from crm.models import Workspace
from customers.models import (
    Cart,
    CartStatus,
    Customer,
    CustomerTag,
    Event,
    EventType,
    Product,
    Source,
)
from customers.records import CartRecord, CustomerRecord, EventRecord, ProductRecord, UpsertResult
from customers.services._common import (
    CUSTOMER_PROFILE_FIELDS,
    EMAIL_CONSENT_FIELDS,
    SMS_CONSENT_FIELDS,
    _batched,
    _customer_ids_for,
    _events_write,
    _latest_per_key,
    _mark_carts_converted,
    _resolve_customers,
    _split_fresh,
)

# --- customers ---------------------------------------------------------------------------------------------------


def customers_bulk_upsert(*, workspace: Workspace, records: Iterable[CustomerRecord]) -> UpsertResult:
    result = UpsertResult()
    for batch in _batched(records):
        result += _customers_upsert_batch(workspace=workspace, records=_latest_per_key(batch))
    return result


@transaction.atomic
def _customers_upsert_batch(*, workspace: Workspace, records: list[CustomerRecord]) -> UpsertResult:
    fresh, existing, stale = _split_fresh(
        Customer, workspace=workspace, records=records, fields=["erased_at", "merged_into_id"]
    )
    # An erased customer stays erased: a store sync replaying its old profile must not bring the data back.
    fresh = [r for r in fresh if not (existing.get((r.source, r.external_id)) or {}).get("erased_at")]
    merged_away = [r for r in fresh if (existing.get((r.source, r.external_id)) or {}).get("merged_into_id")]
    if merged_away:
        _merged_away_updates_apply(workspace=workspace, records=merged_away, existing=existing)
        fresh = [r for r in fresh if not (existing.get((r.source, r.external_id)) or {}).get("merged_into_id")]
    if not fresh:
        return UpsertResult(updated=len(merged_away), skipped_stale=stale)
    now = timezone.now()
    # Records that carry consent (or loyalty, preferences...) update those columns; the others leave them alone, so
    # the upsert runs once per shape of record.
    groups: dict[tuple[str, ...], list[Customer]] = defaultdict(list)
    for record in fresh:
        update_fields = [*CUSTOMER_PROFILE_FIELDS, "source_updated_at", "updated_at"]
        values: dict[str, Any] = {name: getattr(record, name) for name in CUSTOMER_PROFILE_FIELDS}
        values["email"] = (record.email or "").strip().lower()
        if record.email_consent is not None:
            update_fields += EMAIL_CONSENT_FIELDS
            values.update(
                email_consent=record.email_consent,
                email_consent_at=record.email_consent_at or record.updated_at or now,
                email_consent_source=record.email_consent_source or record.source,
                email_consent_version=record.email_consent_version,
            )
        if record.sms_consent is not None:
            update_fields += SMS_CONSENT_FIELDS
            values.update(
                sms_consent=record.sms_consent,
                sms_consent_at=record.sms_consent_at or record.updated_at or now,
                sms_consent_source=record.sms_consent_source or record.source,
                sms_consent_version=record.sms_consent_version,
            )
        for optional in ("loyalty_points", "preferences", "custom_attributes"):
            if getattr(record, optional) is not None:
                update_fields.append(optional)
                values[optional] = getattr(record, optional)
        customer = Customer(
            workspace=workspace,
            source=record.source,
            external_id=record.external_id,
            source_updated_at=record.updated_at,
            created_at=record.created_at or now,
            updated_at=now,
            **values,
        )
        groups[tuple(update_fields)].append(customer)
    for field_names, customers in groups.items():
        Customer.objects.bulk_create(
            customers,
            update_conflicts=True,
            unique_fields=["workspace", "source", "external_id"],
            update_fields=list(field_names),
        )
    ids = dict(
        Customer.objects.filter(
            workspace=workspace, external_id__in=[r.external_id for r in fresh], source__in={r.source for r in fresh}
        ).values_list("external_id", "id")
    )
    tags = [
        CustomerTag(workspace=workspace, customer_id=ids[record.external_id], name=tag.strip()[:64])
        for record in fresh
        for tag in record.tags
        if tag.strip() and record.external_id in ids
    ]
    CustomerTag.objects.bulk_create(tags, ignore_conflicts=True)
    created = [r for r in fresh if (r.source, r.external_id) not in existing]
    Event.objects.bulk_create(
        [
            Event(
                workspace=workspace,
                customer_id=ids[r.external_id],
                type=EventType.CUSTOMER_CREATED,
                occurred_at=r.created_at or r.updated_at or now,
                source=r.source,
                external_id=f"customer_created:{r.external_id}",
                properties={"source": r.source},
            )
            for r in created
            if r.external_id in ids
        ],
        ignore_conflicts=True,
    )
    return UpsertResult(created=len(created), updated=len(fresh) - len(created) + len(merged_away), skipped_stale=stale)


def _survivor_ids(workspace: Workspace, merged_into: dict[int, int]) -> dict[int, int]:
    """Map merged-away customer id -> the live customer it ended up in (a survivor may itself be merged later)."""
    resolved = dict(merged_into)
    for _ in range(10):
        targets = set(resolved.values())
        onward = dict(
            Customer.objects.filter(workspace=workspace, id__in=targets, merged_into__isnull=False).values_list(
                "id", "merged_into_id"
            )
        )
        if not onward:
            break
        resolved = {source: onward.get(target, target) for source, target in resolved.items()}
    return resolved


def _merged_away_updates_apply(*, workspace: Workspace, records: list[CustomerRecord], existing: dict) -> None:
    """A store still knows a merged-away customer by its own id, and keeps syncing it: the update lands on the
    survivor, the person's one profile. Values the record carries fill in or change the survivor's profile (a blank
    does not erase what the survivor has from elsewhere), consent changes only when the record's decision is newer
    than the survivor's (as in a merge), tags are added; loyalty points stay the survivor's running total. The
    merged-away row only records the source's updated_at, so a replay is still recognised as stale."""
    now = timezone.now()
    rows = {(r.source, r.external_id): existing[(r.source, r.external_id)] for r in records}
    survivor_of = _survivor_ids(workspace, {row["id"]: row["merged_into_id"] for row in rows.values()})
    survivors = Customer.objects.filter(workspace=workspace).select_for_update().in_bulk(set(survivor_of.values()))
    changed: dict[int, set[str]] = defaultdict(set)
    tags = []
    for record in sorted(records, key=lambda r: r.updated_at or now):
        row = rows[(record.source, record.external_id)]
        survivor = survivors.get(survivor_of[row["id"]])
        Customer.objects.filter(workspace=workspace, id=row["id"]).update(source_updated_at=record.updated_at)
        if survivor is None:
            continue
        for name in CUSTOMER_PROFILE_FIELDS:
            value = (record.email or "").strip().lower() if name == "email" else getattr(record, name)
            if value not in ("", None) and getattr(survivor, name) != value:
                setattr(survivor, name, value)
                changed[survivor.id].add(name)
        for channel in ("email", "sms"):
            status = getattr(record, f"{channel}_consent")
            decided_at = getattr(record, f"{channel}_consent_at") or record.updated_at or now
            current_at = getattr(survivor, f"{channel}_consent_at")
            if status is None or (current_at is not None and decided_at <= current_at):
                continue
            values = {
                f"{channel}_consent": status,
                f"{channel}_consent_at": decided_at,
                f"{channel}_consent_source": getattr(record, f"{channel}_consent_source") or record.source,
                f"{channel}_consent_version": getattr(record, f"{channel}_consent_version"),
            }
            for name, value in values.items():
                setattr(survivor, name, value)
            changed[survivor.id].update(values)
        for name in ("preferences", "custom_attributes"):
            incoming = getattr(record, name)
            if incoming:
                setattr(survivor, name, {**(getattr(survivor, name) or {}), **incoming})
                changed[survivor.id].add(name)
        tags += [
            CustomerTag(workspace=workspace, customer_id=survivor.id, name=tag.strip()[:64])
            for tag in record.tags
            if tag.strip()
        ]
    for survivor_id, fields in changed.items():
        survivors[survivor_id].save(update_fields=[*sorted(fields), "updated_at"])
    CustomerTag.objects.bulk_create(tags, ignore_conflicts=True)


def customer_upsert(*, workspace: Workspace, record: CustomerRecord) -> Customer:
    """Upsert one customer; returns the live customer the record now belongs to (the survivor after a merge)."""
    customers_bulk_upsert(workspace=workspace, records=[record])
    customer = Customer.objects.get(workspace=workspace, source=record.source, external_id=record.external_id)
    if customer.merged_into_id:
        survivor_id = _survivor_ids(workspace, {customer.id: customer.merged_into_id})[customer.id]
        return Customer.objects.get(workspace=workspace, id=survivor_id)
    return customer


# --- products ----------------------------------------------------------------------------------------------------

PRODUCT_FIELDS = [
    "title",
    "sku",
    "category",
    "vendor",
    "price",
    "inventory_quantity",
    "is_in_stock",
    "image_url",
    "url",
]


def products_bulk_upsert(*, workspace: Workspace, records: Iterable[ProductRecord]) -> UpsertResult:
    result = UpsertResult()
    for batch in _batched(records):
        result += _products_upsert_batch(workspace=workspace, records=_latest_per_key(batch))
    return result


def product_upsert(*, workspace: Workspace, record: ProductRecord) -> Product:
    products_bulk_upsert(workspace=workspace, records=[record])
    return Product.objects.get(workspace=workspace, source=record.source, external_id=record.external_id)


@transaction.atomic
def _products_upsert_batch(*, workspace: Workspace, records: list[ProductRecord]) -> UpsertResult:
    fresh, existing, stale = _split_fresh(Product, workspace=workspace, records=records, fields=["is_in_stock"])
    now = timezone.now()
    Product.objects.bulk_create(
        [
            Product(
                workspace=workspace,
                source=r.source,
                external_id=r.external_id,
                source_updated_at=r.updated_at,
                created_at=now,
                updated_at=now,
                **{name: getattr(r, name) for name in PRODUCT_FIELDS},
            )
            for r in fresh
        ],
        update_conflicts=True,
        unique_fields=["workspace", "source", "external_id"],
        update_fields=[*PRODUCT_FIELDS, "source_updated_at", "updated_at"],
    )
    _record_back_in_stock(workspace=workspace, records=fresh, existing=existing, now=now)
    created = sum(1 for r in fresh if (r.source, r.external_id) not in existing)
    return UpsertResult(created=created, updated=len(fresh) - created, skipped_stale=stale)


def _record_back_in_stock(*, workspace: Workspace, records: list[ProductRecord], existing: dict, now) -> None:
    """One product-level event per stored product that was out of stock and is now in stock. A new product is not
    "back"; a replay is stale (or finds the product in stock already), so it records nothing."""
    events = []
    for r in records:
        stored = existing.get((r.source, r.external_id))
        if stored is None or stored["is_in_stock"] or not r.is_in_stock:
            continue
        events.append(
            Event(
                workspace=workspace,
                customer=None,
                type=EventType.PRODUCT_BACK_IN_STOCK,
                occurred_at=r.updated_at or now,
                source=r.source,
                # The same change delivered twice (a webhook and a sync racing) is recorded once.
                external_id=f"product_back_in_stock:{r.external_id}:{r.updated_at.isoformat()}"
                if r.updated_at
                else None,
                properties={"product_id": stored["id"], "external_id": r.external_id, "title": r.title, "sku": r.sku},
            )
        )
    Event.objects.bulk_create(events, ignore_conflicts=True)


# --- carts -------------------------------------------------------------------------------------------------------


def carts_bulk_upsert(*, workspace: Workspace, records: Iterable[CartRecord]) -> UpsertResult:
    result = UpsertResult()
    for batch in _batched(records):
        result += _carts_upsert_batch(workspace=workspace, records=_latest_per_key(batch))
    return result


@transaction.atomic
def _carts_upsert_batch(*, workspace: Workspace, records: list[CartRecord]) -> UpsertResult:
    fresh, existing, stale = _split_fresh(Cart, workspace=workspace, records=records, fields=["status"])
    now = timezone.now()
    carts = []
    by_source: dict[str, list[CartRecord]] = defaultdict(list)
    for r in fresh:
        by_source[r.source].append(r)
    for source, source_records in by_source.items():
        resolvable = [r for r in source_records if r.customer_external_id or r.email]
        customer_ids = _resolve_customers(workspace, source, resolvable)
        resolved = {id(r): customer_ids[i] for i, r in enumerate(resolvable)}
        for r in source_records:
            stored = existing.get((r.source, r.external_id))
            carts.append(
                Cart(
                    workspace=workspace,
                    source=r.source,
                    external_id=r.external_id,
                    customer_id=resolved.get(id(r)),
                    anonymous_id=r.anonymous_id,
                    email=(r.email or "").lower(),
                    lines=list(r.lines),
                    value=r.value,
                    currency=r.currency,
                    checkout_url=r.checkout_url,
                    status=stored["status"] if stored else CartStatus.OPEN,
                    started_at=r.started_at,
                    last_activity_at=r.updated_at or r.started_at,
                    source_updated_at=r.updated_at,
                    created_at=now,
                    updated_at=now,
                )
            )
    Cart.objects.bulk_create(
        carts,
        update_conflicts=True,
        unique_fields=["workspace", "source", "external_id"],
        update_fields=[
            "customer_id",
            "anonymous_id",
            "email",
            "lines",
            "value",
            "currency",
            "checkout_url",
            "last_activity_at",
            "source_updated_at",
            "updated_at",
        ],
    )
    created = sum(1 for r in fresh if (r.source, r.external_id) not in existing)
    cart_customers = {c.customer_id for c in carts if c.customer_id}
    _mark_carts_converted(workspace=workspace, customer_ids=cart_customers)
    return UpsertResult(created=created, updated=len(fresh) - created, skipped_stale=stale)


def carts_mark_abandoned(*, workspace: Workspace, older_than: dt.timedelta = dt.timedelta(hours=1)) -> int:
    """Open carts with no activity for ``older_than`` and no order since become abandoned, each with a
    cart_abandoned event."""
    cutoff = timezone.now() - older_than
    with transaction.atomic():
        carts = list(
            Cart.objects.filter(workspace=workspace, status=CartStatus.OPEN, last_activity_at__lt=cutoff)
            .select_for_update(skip_locked=connection.features.has_select_for_update_skip_locked)
            .only("id", "customer_id", "anonymous_id", "value", "currency", "checkout_url", "lines", "last_activity_at")
        )
        if not carts:
            return 0
        now = timezone.now()
        Cart.objects.filter(id__in=[c.id for c in carts]).update(status=CartStatus.ABANDONED, abandoned_at=now)
        Event.objects.bulk_create(
            [
                Event(
                    workspace=workspace,
                    customer_id=c.customer_id,
                    anonymous_id=c.anonymous_id,
                    type=EventType.CART_ABANDONED,
                    occurred_at=now,
                    source=Source.CRM,
                    external_id=f"cart_abandoned:{c.id}",
                    properties={
                        "cart_id": c.id,
                        "value": str(c.value),
                        "currency": c.currency,
                        "checkout_url": c.checkout_url,
                        "items": len(c.lines),
                    },
                )
                for c in carts
            ],
            ignore_conflicts=True,
        )
    return len(carts)


# --- events ------------------------------------------------------------------------------------------------------


def events_bulk_record(*, workspace: Workspace, records: Iterable[EventRecord]) -> int:
    """Append events. Events with an external_id are recorded once however often they are replayed.
    Returns how many records were given (replays included)."""
    total = 0
    for batch in _batched(records):
        total += len(batch)
        needs_lookup = [r for r in batch if r.customer_id is None and (r.customer_external_id or r.email)]
        lookup: dict[int, int | None] = {}
        for source in {r.source for r in needs_lookup}:
            source_records = [r for r in needs_lookup if r.source == source]
            external_ids = {r.customer_external_id for r in source_records if r.customer_external_id}
            emails = {r.email.strip().lower() for r in source_records if r.email}
            by_external, by_email = _customer_ids_for(workspace, source, external_ids, emails)
            for r in source_records:
                lookup[id(r)] = by_external.get(r.customer_external_id) or by_email.get((r.email or "").strip().lower())
        _events_write(
            [
                Event(
                    workspace=workspace,
                    customer_id=r.customer_id if r.customer_id is not None else lookup.get(id(r)),
                    anonymous_id=r.anonymous_id,
                    type=r.type,
                    occurred_at=r.occurred_at,
                    properties=r.properties,
                    source=r.source,
                    external_id=r.external_id,
                )
                for r in batch
            ]
        )
    return total


def event_record(
    *,
    workspace: Workspace,
    customer: Customer | None,
    type: str,  # noqa: A002 - the event's type, as stored
    occurred_at: dt.datetime | None = None,
    properties: dict | None = None,
    source: str = Source.CRM,
    external_id: str | None = None,
    anonymous_id: str = "",
) -> Event:
    event, _ = (
        Event.objects.get_or_create(
            workspace=workspace,
            source=source,
            external_id=external_id,
            defaults={
                "customer": customer,
                "type": type,
                "occurred_at": occurred_at or timezone.now(),
                "properties": properties or {},
                "anonymous_id": anonymous_id,
            },
        )
        if external_id
        else (
            Event.objects.create(
                workspace=workspace,
                customer=customer,
                type=type,
                occurred_at=occurred_at or timezone.now(),
                properties=properties or {},
                source=source,
                anonymous_id=anonymous_id,
            ),
            True,
        )
    )
    return event


def anonymous_events_identify(*, workspace: Workspace, anonymous_id: str, customer: Customer) -> int:
    """Attach a visitor's earlier anonymous events and carts to the customer they turned out to be."""
    if not anonymous_id:
        return 0
    moved = Event.objects.filter(workspace=workspace, anonymous_id=anonymous_id, customer__isnull=True).update(
        customer=customer
    )
    Cart.objects.filter(workspace=workspace, anonymous_id=anonymous_id, customer__isnull=True).update(customer=customer)
    return moved
