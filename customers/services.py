"""Every write to customer data. Ingestion paths (connectors, webhooks, CSV, tracking, seed_demo) build canonical
records (``customers.records``) and call the idempotent bulk upserts here, keyed by (workspace, source, external_id).

Idempotency: a record whose ``updated_at`` is not newer than the stored ``source_updated_at`` is skipped, so replays,
retries and overlapping syncs change nothing, and a stale update never overwrites newer data. Existing rows are
locked (SELECT ... FOR UPDATE on PostgreSQL) before the comparison, so two writers of the same keys serialise.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import islice
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Max, Min, OuterRef, Subquery, Sum
from django.utils import timezone

from crm.exceptions import DomainError
from crm.models import Workspace
from customers.models import (
    Cart,
    CartStatus,
    ConsentStatus,
    Customer,
    CustomerTag,
    Event,
    EventType,
    Note,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    Source,
)
from customers.records import CartRecord, CustomerRecord, EventRecord, OrderRecord, ProductRecord, UpsertResult

BATCH_SIZE = 2000

CUSTOMER_PROFILE_FIELDS = [
    "email",
    "phone",
    "first_name",
    "last_name",
    "birth_date",
    "gender",
    "address_line",
    "city",
    "region",
    "country",
    "postcode",
    "language",
]
EMAIL_CONSENT_FIELDS = ["email_consent", "email_consent_at", "email_consent_source", "email_consent_version"]
SMS_CONSENT_FIELDS = ["sms_consent", "sms_consent_at", "sms_consent_source", "sms_consent_version"]


def _batched(items: Iterable[Any], size: int = BATCH_SIZE) -> Iterable[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _latest_per_key(records: Iterable[Any]) -> list[Any]:
    """Keep one record per (source, external_id): the one with the newest updated_at (the last one on ties)."""
    chosen: dict[tuple[str, str], Any] = {}
    for record in records:
        key = (record.source, record.external_id)
        current = chosen.get(key)
        if current is None or (record.updated_at or dt.datetime.min.replace(tzinfo=dt.UTC)) >= (
            current.updated_at or dt.datetime.min.replace(tzinfo=dt.UTC)
        ):
            chosen[key] = record
    return list(chosen.values())


def _existing(model: type, *, workspace: Workspace, records: Sequence[Any], fields: Sequence[str]) -> dict:
    """Map (source, external_id) -> dict of ``fields`` for stored rows, locked for the rest of the transaction."""
    by_source: dict[str, list[str]] = defaultdict(list)
    for record in records:
        by_source[record.source].append(record.external_id)
    found: dict[tuple[str, str], dict] = {}
    for source, external_ids in by_source.items():
        queryset = model.objects.filter(workspace=workspace, source=source, external_id__in=external_ids)
        if connection.features.has_select_for_update:
            queryset = queryset.select_for_update()
        for row in queryset.values("id", "source", "external_id", *fields):
            found[(row["source"], row["external_id"])] = row
    return found


def _is_stale(record: Any, stored: dict | None) -> bool:
    if stored is None or record.updated_at is None or stored.get("source_updated_at") is None:
        return False
    return record.updated_at <= stored["source_updated_at"]


def _split_fresh(model: type, *, workspace: Workspace, records: Sequence[Any], fields: Sequence[str] = ()):
    existing = _existing(model, workspace=workspace, records=records, fields=["source_updated_at", *fields])
    fresh = [r for r in records if not _is_stale(r, existing.get((r.source, r.external_id)))]
    return fresh, existing, len(records) - len(fresh)


# --- customers ---------------------------------------------------------------------------------------------------


def customers_bulk_upsert(*, workspace: Workspace, records: Iterable[CustomerRecord]) -> UpsertResult:
    result = UpsertResult()
    for batch in _batched(records):
        result += _customers_upsert_batch(workspace=workspace, records=_latest_per_key(batch))
    return result


@transaction.atomic
def _customers_upsert_batch(*, workspace: Workspace, records: list[CustomerRecord]) -> UpsertResult:
    fresh, existing, stale = _split_fresh(Customer, workspace=workspace, records=records, fields=["erased_at"])
    # An erased customer stays erased: a store sync replaying its old profile must not bring the data back.
    fresh = [r for r in fresh if not (existing.get((r.source, r.external_id)) or {}).get("erased_at")]
    if not fresh:
        return UpsertResult(skipped_stale=stale)
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
    for update_fields, customers in groups.items():
        Customer.objects.bulk_create(
            customers,
            update_conflicts=True,
            unique_fields=["workspace", "source", "external_id"],
            update_fields=list(update_fields),
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
    return UpsertResult(created=len(created), updated=len(fresh) - len(created), skipped_stale=stale)


def customer_upsert(*, workspace: Workspace, record: CustomerRecord) -> Customer:
    customers_bulk_upsert(workspace=workspace, records=[record])
    return Customer.objects.get(workspace=workspace, source=record.source, external_id=record.external_id)


def _customer_ids_for(workspace: Workspace, source: str, external_ids: set[str], emails: set[str]) -> tuple[dict, dict]:
    # A customer merged into another one is found by its old external id, but what it resolves to is the survivor.
    by_external = (
        {
            external_id: merged_into_id or customer_id
            for external_id, customer_id, merged_into_id in Customer.objects.filter(
                workspace=workspace, source=source, external_id__in=external_ids
            ).values_list("external_id", "id", "merged_into_id")
        }
        if external_ids
        else {}
    )
    by_email: dict[str, int] = {}
    if emails:
        for email, customer_id in (
            Customer.objects.filter(
                workspace=workspace, email__in=emails, merged_into__isnull=True, erased_at__isnull=True
            )
            .order_by("id")
            .values_list("email", "id")
        ):
            by_email.setdefault(email, customer_id)
    return by_external, by_email


def _resolve_customers(workspace: Workspace, source: str, records: Sequence[Any]) -> dict[int, int | None]:
    """Map record index -> customer id. Unknown customers referenced by id or email are created (a guest order
    or an abandoned checkout still belongs to someone)."""
    external_ids = {r.customer_external_id for r in records if r.customer_external_id}
    emails = {(r.email or "").strip().lower() for r in records if r.email}
    by_external, by_email = _customer_ids_for(workspace, source, external_ids, emails)
    missing: dict[str, CustomerRecord] = {}
    for r in records:
        email = (r.email or "").strip().lower()
        if r.customer_external_id and r.customer_external_id not in by_external:
            missing[r.customer_external_id] = CustomerRecord(
                source=source, external_id=r.customer_external_id, email=email
            )
        elif not r.customer_external_id and email and email not in by_email:
            missing[f"email:{email}"] = CustomerRecord(source=source, external_id=f"email:{email}", email=email)
    if missing:
        customers_bulk_upsert(workspace=workspace, records=missing.values())
        by_external, by_email = _customer_ids_for(workspace, source, external_ids | set(missing), emails)
    resolved: dict[int, int | None] = {}
    for index, r in enumerate(records):
        email = (r.email or "").strip().lower()
        if r.customer_external_id:
            resolved[index] = by_external.get(r.customer_external_id)
        elif email:
            resolved[index] = by_email.get(email) or by_external.get(f"email:{email}")
        else:
            resolved[index] = None
    return resolved


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


@transaction.atomic
def _products_upsert_batch(*, workspace: Workspace, records: list[ProductRecord]) -> UpsertResult:
    fresh, existing, stale = _split_fresh(Product, workspace=workspace, records=records)
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
    created = sum(1 for r in fresh if (r.source, r.external_id) not in existing)
    return UpsertResult(created=created, updated=len(fresh) - created, skipped_stale=stale)


# --- orders ------------------------------------------------------------------------------------------------------

ORDER_FIELDS = [
    "customer_id",
    "number",
    "email",
    "status",
    "financial_status",
    "fulfillment_status",
    "currency",
    "subtotal",
    "discount_total",
    "discount_codes",
    "shipping_total",
    "tax_total",
    "total",
    "refunded_total",
    "net_total",
    "placed_at",
    "cancelled_at",
    "refunded_at",
    "source_updated_at",
    "updated_at",
]


def order_net_total(
    *, status: str, total: Decimal, refunded_total: Decimal, cancelled_at: dt.datetime | None
) -> Decimal:
    """Revenue an order counts for: nothing once cancelled, else what was paid minus what was refunded."""
    if status == OrderStatus.CANCELLED or cancelled_at is not None:
        return Decimal("0")
    return max(Decimal(total) - Decimal(refunded_total), Decimal("0"))


def orders_bulk_upsert(
    *, workspace: Workspace, records: Iterable[OrderRecord], refresh_stats: bool = True
) -> UpsertResult:
    result = UpsertResult()
    touched: set[int] = set()  # customers whose orders changed; their stats are refreshed once, at the end
    for number, batch in enumerate(_batched(records)):
        if number in (1, 4) or (number and number % 16 == 0):
            _analyze_after_bulk_load()
        result += _orders_upsert_batch(workspace=workspace, records=_latest_per_key(batch), touched=touched)
    if refresh_stats and touched:
        customer_stats_refresh(workspace=workspace, customer_ids=sorted(touched))
    return result


def _analyze_after_bulk_load() -> None:
    """Refresh PostgreSQL's planner statistics during a long load. Planned on the statistics of the (nearly empty)
    tables it started with, a lookup by key may pick a whole-workspace index and slow every batch down."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in ("customers_order", "customers_orderline", "customers_event", "customers_customer"):
            cursor.execute(f"ANALYZE {table}")


@transaction.atomic
def _orders_upsert_batch(*, workspace: Workspace, records: list[OrderRecord], touched: set[int]) -> UpsertResult:
    if connection.vendor == "postgresql":
        return _orders_upsert_batch_postgres(workspace=workspace, records=records, touched=touched)
    fresh, existing, stale = _split_fresh(
        Order, workspace=workspace, records=records, fields=["customer_id", "status", "refunded_total"]
    )
    if not fresh:
        return UpsertResult(skipped_stale=stale)
    now = timezone.now()
    by_source: dict[str, list[OrderRecord]] = defaultdict(list)
    for r in fresh:
        by_source[r.source].append(r)
    order_objects: list[Order] = []
    for source, source_records in by_source.items():
        customer_ids = _resolve_customers(workspace, source, source_records)
        for index, r in enumerate(source_records):
            status = OrderStatus.CANCELLED if r.cancelled_at else r.status
            order_objects.append(
                Order(
                    workspace=workspace,
                    source=r.source,
                    external_id=r.external_id,
                    customer_id=customer_ids[index],
                    number=r.number,
                    email=(r.email or "").strip().lower(),
                    status=status,
                    financial_status=r.financial_status,
                    fulfillment_status=r.fulfillment_status,
                    currency=r.currency,
                    subtotal=r.subtotal,
                    discount_total=r.discount_total,
                    discount_codes=[code.strip().upper() for code in r.discount_codes if code.strip()],
                    shipping_total=r.shipping_total,
                    tax_total=r.tax_total,
                    total=r.total,
                    refunded_total=r.refunded_total,
                    net_total=order_net_total(
                        status=status, total=r.total, refunded_total=r.refunded_total, cancelled_at=r.cancelled_at
                    ),
                    placed_at=r.placed_at,
                    cancelled_at=r.cancelled_at,
                    refunded_at=r.refunded_at,
                    source_updated_at=r.updated_at,
                    created_at=now,
                    updated_at=now,
                )
            )
    if connection.vendor == "postgresql":
        _orders_write_postgres(order_objects)
    else:
        Order.objects.bulk_create(
            order_objects,
            update_conflicts=True,
            unique_fields=["workspace", "source", "external_id"],
            update_fields=ORDER_FIELDS,
        )
    order_ids = {
        (source, external_id): (order_id, customer_id)
        for source, external_id, order_id, customer_id in Order.objects.filter(
            workspace=workspace, source__in=by_source.keys(), external_id__in=[r.external_id for r in fresh]
        ).values_list("source", "external_id", "id", "customer_id")
    }
    _replace_order_lines(workspace=workspace, records=fresh, order_ids=order_ids)
    _record_order_events(workspace=workspace, records=fresh, order_ids=order_ids, existing=existing)

    affected_customers = {customer_id for _, customer_id in order_ids.values() if customer_id}
    affected_customers |= {row["customer_id"] for row in existing.values() if row.get("customer_id")}
    _mark_carts_converted(workspace=workspace, customer_ids=affected_customers)
    touched |= affected_customers
    created = sum(1 for r in fresh if (r.source, r.external_id) not in existing)
    return UpsertResult(created=created, updated=len(fresh) - created, skipped_stale=stale)


ORDER_COLUMNS = [
    "workspace_id",
    "source",
    "external_id",
    "customer_id",
    "number",
    "email",
    "status",
    "financial_status",
    "fulfillment_status",
    "currency",
    "subtotal",
    "discount_total",
    "discount_codes",
    "shipping_total",
    "tax_total",
    "total",
    "refunded_total",
    "net_total",
    "placed_at",
    "cancelled_at",
    "refunded_at",
    "source_updated_at",
    "created_at",
    "updated_at",
]
LINE_COLUMNS = [
    "workspace_id",
    "order_id",
    "product_id",
    "external_id",
    "title",
    "sku",
    "category",
    "quantity",
    "unit_price",
    "discount",
    "total",
]
EVENT_COLUMNS = [
    "workspace_id",
    "customer_id",
    "anonymous_id",
    "type",
    "occurred_at",
    "properties",
    "source",
    "external_id",
    "created_at",
]


def _orders_upsert_batch_postgres(
    *, workspace: Workspace, records: list[OrderRecord], touched: set[int]
) -> UpsertResult:
    """The same upsert as the portable path, written for throughput: plain tuples instead of model instances,
    array parameters instead of long IN lists, COPY for every insert, order ids from RETURNING."""
    from customers.bulk_postgres import copy_insert, copy_upsert, jsonb

    ws = workspace.id
    now = timezone.now()
    fresh: list[OrderRecord] = []
    previous_customers: set[int] = set()
    created = 0
    by_source: dict[str, list[OrderRecord]] = defaultdict(list)
    for r in records:
        by_source[r.source].append(r)
    with connection.cursor() as cursor:
        for source, source_records in by_source.items():
            cursor.execute(
                "SELECT external_id, source_updated_at, customer_id FROM customers_order "
                "WHERE workspace_id = %s AND source = %s AND external_id = ANY(%s) FOR UPDATE",
                [ws, source, [r.external_id for r in source_records]],
            )
            stored = {external_id: (updated, customer) for external_id, updated, customer in cursor.fetchall()}
            for r in source_records:
                known = stored.get(r.external_id)
                if known and known[0] is not None and r.updated_at is not None and r.updated_at <= known[0]:
                    continue
                fresh.append(r)
                if known is None:
                    created += 1
                elif known[1]:
                    previous_customers.add(known[1])
    if not fresh:
        return UpsertResult(skipped_stale=len(records))

    rows = []
    for source in {r.source for r in fresh}:
        source_records = [r for r in fresh if r.source == source]
        customer_ids = _resolve_customers(workspace, source, source_records)
        for index, r in enumerate(source_records):
            status = OrderStatus.CANCELLED if r.cancelled_at else r.status
            rows.append(
                [
                    ws,
                    r.source,
                    r.external_id,
                    customer_ids[index],
                    r.number,
                    (r.email or "").strip().lower(),
                    status,
                    r.financial_status,
                    r.fulfillment_status,
                    r.currency,
                    r.subtotal,
                    r.discount_total,
                    jsonb([code.strip().upper() for code in r.discount_codes if code.strip()]),
                    r.shipping_total,
                    r.tax_total,
                    r.total,
                    r.refunded_total,
                    order_net_total(
                        status=status, total=r.total, refunded_total=r.refunded_total, cancelled_at=r.cancelled_at
                    ),
                    r.placed_at,
                    r.cancelled_at,
                    r.refunded_at,
                    r.updated_at,
                    now,
                    now,
                ]
            )
    returned = copy_upsert(
        table="customers_order",
        columns=ORDER_COLUMNS,
        rows=rows,
        conflict_columns=["workspace_id", "source", "external_id"],
        update_columns=[c for c in ORDER_COLUMNS if c not in {"workspace_id", "source", "external_id", "created_at"}],
        returning=["id", "source", "external_id", "customer_id"],
    )
    order_ids = {
        (source, external_id): (order_id, customer_id) for order_id, source, external_id, customer_id in returned
    }

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM customers_orderline WHERE order_id = ANY(%s)", [[v[0] for v in order_ids.values()]])
        products: dict[tuple[str, str], tuple[int, str]] = {}
        for source in {r.source for r in fresh}:
            wanted = list(
                {
                    line.product_external_id
                    for r in fresh
                    if r.source == source
                    for line in r.lines
                    if line.product_external_id
                }
            )
            if wanted:
                cursor.execute(
                    "SELECT external_id, id, category FROM customers_product "
                    "WHERE workspace_id = %s AND source = %s AND external_id = ANY(%s)",
                    [ws, source, wanted],
                )
                for external_id, product_id, category in cursor.fetchall():
                    products[(source, external_id)] = (product_id, category)
    line_rows = []
    event_rows = []
    for r in fresh:
        order_id, customer_id = order_ids[(r.source, r.external_id)]
        for line in r.lines:
            product_id, product_category = products.get((r.source, line.product_external_id), (None, ""))
            total = line.total if line.total is not None else line.unit_price * line.quantity - line.discount
            line_rows.append(
                [
                    ws,
                    order_id,
                    product_id,
                    line.external_id,
                    line.title[:255],
                    line.sku,
                    line.category or product_category,
                    line.quantity,
                    line.unit_price,
                    line.discount,
                    total,
                ]
            )
        if customer_id is None:
            continue
        base = {"order_id": order_id, "number": r.number, "total": str(r.total), "currency": r.currency}
        event_rows.append(
            [
                ws,
                customer_id,
                "",
                EventType.ORDER_PLACED,
                r.placed_at,
                jsonb(
                    {**base, "items": sum(line.quantity for line in r.lines), "discount_codes": list(r.discount_codes)}
                ),
                r.source,
                f"order_placed:{r.external_id}",
                now,
            ]
        )
        if r.cancelled_at or r.status == OrderStatus.CANCELLED:
            event_rows.append(
                [
                    ws,
                    customer_id,
                    "",
                    EventType.ORDER_CANCELLED,
                    r.cancelled_at or r.updated_at or now,
                    jsonb(base),
                    r.source,
                    f"order_cancelled:{r.external_id}",
                    now,
                ]
            )
        if r.refunded_total and r.refunded_total > 0:
            event_rows.append(
                [
                    ws,
                    customer_id,
                    "",
                    EventType.ORDER_REFUNDED,
                    r.refunded_at or r.updated_at or now,
                    jsonb({**base, "refunded": str(r.refunded_total)}),
                    r.source,
                    f"order_refunded:{r.external_id}:{r.refunded_total}",
                    now,
                ]
            )
    copy_insert(table="customers_orderline", columns=LINE_COLUMNS, rows=line_rows)
    copy_upsert(
        table="customers_event",
        columns=EVENT_COLUMNS,
        rows=event_rows,
        conflict_columns=["workspace_id", "source", "external_id"],
    )

    affected_customers = {customer_id for _, customer_id in order_ids.values() if customer_id} | previous_customers
    _mark_carts_converted(workspace=workspace, customer_ids=affected_customers)
    touched |= affected_customers
    return UpsertResult(created=created, updated=len(fresh) - created, skipped_stale=len(records) - len(fresh))


def _orders_write_postgres(orders: list[Order]) -> None:
    from customers.bulk_postgres import copy_upsert, jsonb

    copy_upsert(
        table="customers_order",
        columns=ORDER_COLUMNS,
        rows=(
            [
                o.workspace_id,
                o.source,
                o.external_id,
                o.customer_id,
                o.number,
                o.email,
                o.status,
                o.financial_status,
                o.fulfillment_status,
                o.currency,
                o.subtotal,
                o.discount_total,
                jsonb(o.discount_codes),
                o.shipping_total,
                o.tax_total,
                o.total,
                o.refunded_total,
                o.net_total,
                o.placed_at,
                o.cancelled_at,
                o.refunded_at,
                o.source_updated_at,
                o.created_at,
                o.updated_at,
            ]
            for o in orders
        ),
        conflict_columns=["workspace_id", "source", "external_id"],
        update_columns=[c for c in ORDER_COLUMNS if c not in {"workspace_id", "source", "external_id", "created_at"}],
    )


def _lines_write(lines: list[OrderLine]) -> None:
    if connection.vendor != "postgresql":
        OrderLine.objects.bulk_create(lines, batch_size=BATCH_SIZE)
        return
    from customers.bulk_postgres import copy_insert

    copy_insert(
        table="customers_orderline",
        columns=LINE_COLUMNS,
        rows=(
            [
                line.workspace_id,
                line.order_id,
                line.product_id,
                line.external_id,
                line.title,
                line.sku,
                line.category,
                line.quantity,
                line.unit_price,
                line.discount,
                line.total,
            ]
            for line in lines
        ),
    )


def _events_write(events: list[Event]) -> None:
    """Insert events; one whose (workspace, source, external_id) is already stored is left alone.

    COPY through a temporary table pays off from about a thousand rows; a storefront batch is smaller and takes
    one INSERT ... ON CONFLICT DO NOTHING."""
    if connection.vendor != "postgresql" or len(events) < 1000:
        Event.objects.bulk_create(events, ignore_conflicts=True, batch_size=BATCH_SIZE)
        return
    from customers.bulk_postgres import copy_upsert, jsonb

    now = timezone.now()
    copy_upsert(
        table="customers_event",
        columns=EVENT_COLUMNS,
        rows=(
            [
                e.workspace_id,
                e.customer_id,
                e.anonymous_id,
                e.type,
                e.occurred_at,
                jsonb(e.properties),
                e.source,
                e.external_id,
                now,
            ]
            for e in events
        ),
        conflict_columns=["workspace_id", "source", "external_id"],
    )


def _replace_order_lines(*, workspace: Workspace, records: list[OrderRecord], order_ids: dict) -> None:
    ids = [order_ids[(r.source, r.external_id)][0] for r in records]
    OrderLine.objects.filter(workspace=workspace, order_id__in=ids).delete()
    product_keys = {
        (r.source, line.product_external_id) for r in records for line in r.lines if line.product_external_id
    }
    products: dict[tuple[str, str], tuple[int, str]] = {}
    for source in {source for source, _ in product_keys}:
        wanted = [ext for src, ext in product_keys if src == source]
        for external_id, product_id, category in Product.objects.filter(
            workspace=workspace, source=source, external_id__in=wanted
        ).values_list("external_id", "id", "category"):
            products[(source, external_id)] = (product_id, category)
    lines = []
    for r in records:
        order_id = order_ids[(r.source, r.external_id)][0]
        for line in r.lines:
            product_id, product_category = products.get((r.source, line.product_external_id), (None, ""))
            total = line.total if line.total is not None else line.unit_price * line.quantity - line.discount
            lines.append(
                OrderLine(
                    workspace=workspace,
                    order_id=order_id,
                    product_id=product_id,
                    external_id=line.external_id,
                    title=line.title[:255],
                    sku=line.sku,
                    category=line.category or product_category,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    discount=line.discount,
                    total=total,
                )
            )
    _lines_write(lines)


def _record_order_events(*, workspace: Workspace, records: list[OrderRecord], order_ids: dict, existing: dict) -> None:
    events = []
    for r in records:
        order_id, customer_id = order_ids[(r.source, r.external_id)]
        if customer_id is None:
            continue
        base = {"order_id": order_id, "number": r.number, "total": str(r.total), "currency": r.currency}
        events.append(
            Event(
                workspace=workspace,
                customer_id=customer_id,
                type=EventType.ORDER_PLACED,
                occurred_at=r.placed_at,
                source=r.source,
                external_id=f"order_placed:{r.external_id}",
                properties={
                    **base,
                    "items": sum(line.quantity for line in r.lines),
                    "discount_codes": list(r.discount_codes),
                },
            )
        )
        if r.cancelled_at or r.status == OrderStatus.CANCELLED:
            events.append(
                Event(
                    workspace=workspace,
                    customer_id=customer_id,
                    type=EventType.ORDER_CANCELLED,
                    occurred_at=r.cancelled_at or r.updated_at or timezone.now(),
                    source=r.source,
                    external_id=f"order_cancelled:{r.external_id}",
                    properties=base,
                )
            )
        if r.refunded_total and r.refunded_total > 0:
            events.append(
                Event(
                    workspace=workspace,
                    customer_id=customer_id,
                    type=EventType.ORDER_REFUNDED,
                    occurred_at=r.refunded_at or r.updated_at or timezone.now(),
                    source=r.source,
                    external_id=f"order_refunded:{r.external_id}:{r.refunded_total}",
                    properties={**base, "refunded": str(r.refunded_total)},
                )
            )
    _events_write(events)


def _mark_carts_converted(*, workspace: Workspace, customer_ids: set[int]) -> None:
    """A cart whose customer ordered after starting it is converted (open) or recovered (already abandoned)."""
    if not customer_ids:
        return
    first_order_after = Subquery(
        Order.objects.filter(
            workspace=workspace, customer_id=OuterRef("customer_id"), placed_at__gte=OuterRef("started_at")
        )
        .exclude(status=OrderStatus.CANCELLED)
        .order_by("placed_at")
        .values("id")[:1]
    )
    carts = Cart.objects.filter(workspace=workspace, customer_id__in=customer_ids, recovered_order__isnull=True)
    carts.filter(status=CartStatus.ABANDONED).annotate(next_order=first_order_after).filter(
        next_order__isnull=False
    ).update(status=CartStatus.RECOVERED, recovered_order=first_order_after)
    carts.filter(status=CartStatus.OPEN).annotate(next_order=first_order_after).filter(next_order__isnull=False).update(
        status=CartStatus.CONVERTED, recovered_order=first_order_after
    )


def customer_stats_refresh(*, workspace: Workspace, customer_ids: Iterable[int] | None = None) -> int:
    """Recompute the denormalised order stats of some (or all) customers of a workspace in bulk.

    orders_count and total_spent count orders that are not cancelled, at their net value (total - refunds).
    """
    ids = None if customer_ids is None else list(customer_ids)
    if ids is not None and not ids:
        return 0
    if connection.vendor == "postgresql":
        return _customer_stats_refresh_postgres(workspace=workspace, customer_ids=ids)
    return _customer_stats_refresh_portable(workspace=workspace, customer_ids=ids)


def _top_categories(workspace: Workspace, customer_ids: list[int] | None) -> dict[int, list[str]]:
    lines = (
        OrderLine.objects.filter(workspace=workspace).exclude(category="").exclude(order__status=OrderStatus.CANCELLED)
    )
    if customer_ids is not None:
        lines = lines.filter(order__customer_id__in=customer_ids)
    top: dict[int, list[tuple[Decimal, str]]] = defaultdict(list)
    for customer_id, category, spent in lines.values_list("order__customer_id", "category").annotate(
        spent=Sum("total")
    ):
        if customer_id is not None:
            top[customer_id].append((spent or Decimal("0"), category))
    return {cid: [name for _, name in sorted(pairs, key=lambda p: (-p[0], p[1]))[:3]] for cid, pairs in top.items()}


def _customer_stats_refresh_portable(*, workspace: Workspace, customer_ids: list[int] | None) -> int:
    customers = Customer.objects.filter(workspace=workspace)
    if customer_ids is not None:
        customers = customers.filter(id__in=customer_ids)
    stats = {
        row["customer_id"]: row
        for row in Order.objects.filter(workspace=workspace, customer__in=customers)
        .exclude(status=OrderStatus.CANCELLED)
        .values("customer_id")
        .annotate(n=Count("id"), spent=Sum("net_total"), first=Min("placed_at"), last=Max("placed_at"))
    }
    categories = _top_categories(workspace, customer_ids)
    changed = []
    for customer in customers.only("id", "workspace_id"):
        row = stats.get(customer.id)
        customer.orders_count = row["n"] if row else 0
        customer.total_spent = (row["spent"] or Decimal("0")) if row else Decimal("0")
        customer.average_order_value = (
            (customer.total_spent / customer.orders_count).quantize(Decimal("0.01")) if row else Decimal("0")
        )
        customer.first_order_at = row["first"] if row else None
        customer.last_order_at = row["last"] if row else None
        customer.top_categories = categories.get(customer.id, [])
        changed.append(customer)
    Customer.objects.bulk_update(
        changed,
        ["orders_count", "total_spent", "average_order_value", "first_order_at", "last_order_at", "top_categories"],
        batch_size=500,
    )
    return len(changed)


def _customer_stats_refresh_postgres(*, workspace: Workspace, customer_ids: list[int] | None) -> int:
    if customer_ids is not None and len(customer_ids) <= 20_000:
        return _customer_stats_refresh_postgres_some(workspace=workspace, customer_ids=customer_ids)
    # A large refresh usually follows a bulk load; fresh planner statistics keep it on hash joins.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_order")
        cursor.execute("ANALYZE customers_orderline")
    only = "AND c.id = ANY(%(ids)s)" if customer_ids is not None else ""
    only_orders = "AND o.customer_id = ANY(%(ids)s)" if customer_ids is not None else ""
    sql = f"""
        WITH stats AS (
            SELECT o.customer_id, COUNT(*) AS n, SUM(o.net_total) AS spent, MIN(o.placed_at) AS first_at,
                   MAX(o.placed_at) AS last_at
            FROM customers_order o
            WHERE o.workspace_id = %(ws)s AND o.status <> 'cancelled' AND o.customer_id IS NOT NULL {only_orders}
            GROUP BY o.customer_id
        ), category_spend AS (
            SELECT o.customer_id, l.category, SUM(l.total) AS spent
            FROM customers_orderline l JOIN customers_order o ON o.id = l.order_id
            WHERE l.workspace_id = %(ws)s AND o.status <> 'cancelled' AND l.category <> ''
                  AND o.customer_id IS NOT NULL {only_orders}
            GROUP BY o.customer_id, l.category
        ), ranked AS (
            SELECT customer_id, category,
                   ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY spent DESC, category) AS position
            FROM category_spend
        ), top AS (
            SELECT customer_id, jsonb_agg(category ORDER BY position) AS categories
            FROM ranked WHERE position <= 3 GROUP BY customer_id
        )
        UPDATE customers_customer c SET
            orders_count = COALESCE(s.n, 0),
            total_spent = COALESCE(s.spent, 0),
            average_order_value = CASE WHEN COALESCE(s.n, 0) > 0 THEN ROUND(s.spent / s.n, 2) ELSE 0 END,
            first_order_at = s.first_at,
            last_order_at = s.last_at,
            top_categories = COALESCE(t.categories, '[]'::jsonb)
        FROM customers_customer c2
        LEFT JOIN stats s ON s.customer_id = c2.id
        LEFT JOIN top t ON t.customer_id = c2.id
        WHERE c.id = c2.id AND c2.workspace_id = %(ws)s {only.replace("c.id", "c2.id")}
          AND (c.orders_count, c.total_spent, c.first_order_at, c.last_order_at, c.top_categories)
              IS DISTINCT FROM (COALESCE(s.n, 0), COALESCE(s.spent, 0), s.first_at, s.last_at,
                                COALESCE(t.categories, '[]'::jsonb))
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"ws": workspace.id, "ids": customer_ids})
        return cursor.rowcount


def _customer_stats_refresh_postgres_some(*, workspace: Workspace, customer_ids: list[int]) -> int:
    """Stats for a few thousand customers, one index-driven LATERAL lookup each.

    Written so that its plan does not depend on table statistics: right after a bulk load they are stale, and a
    set-based join planned on them can degrade to nested loops over whole tables. The lookups filter on the
    customer alone (whose workspace the outer WHERE checks): with a workspace condition too, the planner may pick
    the workspace index and read every order of the workspace once per customer.
    """
    sql = """
        UPDATE customers_customer c SET
            orders_count = s.n,
            total_spent = s.spent,
            average_order_value = CASE WHEN s.n > 0 THEN ROUND(s.spent / s.n, 2) ELSE 0 END,
            first_order_at = s.first_at,
            last_order_at = s.last_at,
            top_categories = t.categories
        FROM unnest(%(ids)s::bigint[]) AS x(id)
        CROSS JOIN LATERAL (
            SELECT COUNT(*) AS n, COALESCE(SUM(o.net_total), 0) AS spent, MIN(o.placed_at) AS first_at,
                   MAX(o.placed_at) AS last_at
            FROM customers_order o
            WHERE o.customer_id = x.id AND o.status <> 'cancelled'
        ) s
        CROSS JOIN LATERAL (
            SELECT COALESCE(jsonb_agg(category ORDER BY spent DESC, category), '[]'::jsonb) AS categories
            FROM (
                SELECT l.category, SUM(l.total) AS spent
                FROM customers_order o JOIN customers_orderline l ON l.order_id = o.id
                WHERE o.customer_id = x.id AND o.status <> 'cancelled' AND l.category <> ''
                GROUP BY l.category ORDER BY spent DESC, l.category LIMIT 3
            ) top3
        ) t
        WHERE c.id = x.id AND c.workspace_id = %(ws)s
          AND (c.orders_count, c.total_spent, c.first_order_at, c.last_order_at, c.top_categories)
              IS DISTINCT FROM (s.n, s.spent, s.first_at, s.last_at, t.categories)
    """
    with transaction.atomic(), connection.cursor() as cursor:
        # Right after a bulk load the planner may believe customers_order is tiny and scan it once per customer;
        # these lookups are index-driven by design, so say so for this statement only.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(sql, {"ws": workspace.id, "ids": customer_ids})
        updated = cursor.rowcount
        cursor.execute("SET LOCAL enable_seqscan = on")
        return updated


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
    customer_ids = {c.customer_id for c in carts if c.customer_id}
    _mark_carts_converted(workspace=workspace, customer_ids=customer_ids)
    return UpsertResult(created=created, updated=len(fresh) - created, skipped_stale=stale)


def carts_mark_abandoned(*, workspace: Workspace, older_than: dt.timedelta = dt.timedelta(hours=1)) -> int:
    """Open carts with no activity for ``older_than`` and no order since become abandoned, with a cart_abandoned event."""
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


# --- profile, tags, notes, consent -----------------------------------------------------------------------------


def customer_update_profile(
    *, workspace: Workspace, customer: Customer, changes: dict[str, Any], actor=None
) -> Customer:
    allowed = set(CUSTOMER_PROFILE_FIELDS) | {"loyalty_points", "preferences", "custom_attributes"}
    unknown = set(changes) - allowed
    if unknown:
        raise DomainError(f"These fields cannot be edited: {', '.join(sorted(unknown))}")
    changed = {name: value for name, value in changes.items() if getattr(customer, name) != value}
    if not changed:
        return customer
    for name, value in changed.items():
        setattr(customer, name, value)
    customer.save(update_fields=[*changed, "updated_at"])
    event_record(
        workspace=workspace,
        customer=customer,
        type=EventType.PROFILE_UPDATED,
        properties={"fields": sorted(changed), "by": getattr(actor, "email", "")},
    )
    return customer


def customer_set_consent(
    *,
    workspace: Workspace,
    customer: Customer,
    channel: str,
    status: str,
    source: str,
    version: str = "",
    at: dt.datetime | None = None,
) -> Customer:
    if channel not in ("email", "sms") or status not in ConsentStatus.values:
        raise DomainError(f"Unknown consent {channel}/{status}")
    at = at or timezone.now()
    previous = getattr(customer, f"{channel}_consent")
    current_at = getattr(customer, f"{channel}_consent_at")
    if current_at and at < current_at:
        return customer  # an older decision never overrides a newer one
    fields = {
        f"{channel}_consent": status,
        f"{channel}_consent_at": at,
        f"{channel}_consent_source": source,
        f"{channel}_consent_version": version,
    }
    Customer.objects.filter(workspace=workspace, pk=customer.pk).update(**fields, updated_at=timezone.now())
    for name, value in fields.items():
        setattr(customer, name, value)
    if previous != status:
        event_record(
            workspace=workspace,
            customer=customer,
            type=EventType.CONSENT_CHANGED,
            occurred_at=at,
            properties={"channel": channel, "from": previous, "to": status, "source": source, "version": version},
        )
    return customer


def customers_add_tag(*, workspace: Workspace, customer_ids: Iterable[int], tag: str) -> int:
    name = tag.strip()[:64]
    if not name:
        raise DomainError("A tag needs a name.", field="tag")
    tagged = 0
    # In batches: "tag all 80,000 matching" must not become one IN (...) list larger than SQLite's 32,766 variables.
    for batch in _batched(customer_ids):
        ids = list(Customer.objects.filter(workspace=workspace, id__in=batch).values_list("id", flat=True))
        CustomerTag.objects.bulk_create(
            [CustomerTag(workspace=workspace, customer_id=cid, name=name) for cid in ids], ignore_conflicts=True
        )
        tagged += len(ids)
    return tagged


def customers_remove_tag(*, workspace: Workspace, customer_ids: Iterable[int], tag: str) -> int:
    deleted = 0
    for batch in _batched(customer_ids):
        count, _ = CustomerTag.objects.filter(workspace=workspace, customer_id__in=batch, name=tag.strip()).delete()
        deleted += count
    return deleted


def customer_update_support_signals(
    *,
    workspace: Workspace,
    customer_id: int,
    open_tickets_count: int | None = None,
    csat_score: int | None = None,
    nps_score: int | None = None,
    at: dt.datetime | None = None,
) -> None:
    """The support app's way to keep the customer's support columns (used by segments and analytics) current."""
    fields: dict[str, Any] = {}
    if open_tickets_count is not None:
        fields["open_tickets_count"] = open_tickets_count
    if csat_score is not None:
        fields.update(last_csat_score=csat_score, last_csat_at=at or timezone.now())
    if nps_score is not None:
        fields.update(last_nps_score=nps_score, last_nps_at=at or timezone.now())
    if fields:
        Customer.objects.filter(workspace=workspace, pk=customer_id).update(**fields)


@transaction.atomic
def note_create(*, workspace: Workspace, customer: Customer, author, body: str, is_pinned: bool = False) -> Note:
    body = body.strip()
    if not body:
        raise DomainError("A note cannot be empty.", field="body")
    note = Note.objects.create(workspace=workspace, customer=customer, author=author, body=body, is_pinned=is_pinned)
    event_record(
        workspace=workspace,
        customer=customer,
        type=EventType.NOTE_ADDED,
        occurred_at=note.created_at,
        properties={"note_id": note.id, "author": getattr(author, "display_name", ""), "excerpt": body[:140]},
    )
    return note


def note_update(
    *, workspace: Workspace, note: Note, editor, body: str | None = None, is_pinned: bool | None = None
) -> Note:
    fields = []
    if body is not None:
        if note.author_id != getattr(editor, "id", None):
            raise DomainError("You can only edit your own notes.")
        if not body.strip():
            raise DomainError("A note cannot be empty.", field="body")
        note.body = body.strip()
        fields.append("body")
    if is_pinned is not None:
        note.is_pinned = is_pinned
        fields.append("is_pinned")
    if fields:
        note.save(update_fields=[*fields, "updated_at"])
    if "body" in fields:
        # The timeline shows the note through its note_added event: keep that line saying what the note says now.
        for event in Event.objects.filter(
            workspace=workspace, customer_id=note.customer_id, type=EventType.NOTE_ADDED, properties__note_id=note.id
        ):
            event.properties = {**event.properties, "excerpt": note.body[:140], "edited": True}
            event.save(update_fields=["properties"])
    return note
