"""Orders with their lines: the idempotent bulk upsert (a PostgreSQL path with COPY, a portable ORM path)."""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from crm.models import Workspace
from customers.models import (
    ORDER_UPSERT_FIELDS,
    Event,
    EventType,
    Order,
    OrderLine,
    OrderStatus,
    Product,
)
from customers.records import OrderRecord, UpsertResult
from customers.services._common import (
    BATCH_SIZE,
    _batched,
    _events_write,
    _latest_per_key,
    _mark_carts_converted,
    _resolve_customers,
    _split_fresh,
)
from customers.services.orders_parallel import orders_upsert_connections, orders_upsert_parallel
from customers.services.orders_postgres import (
    STATS_TABLES,
    analyze_stale_lookup_tables,
    orders_upsert_batch_postgres,
)
from customers.services.stats import customer_stats_refresh

# A PostgreSQL batch costs a fixed number of statements whatever its size; bigger batches pay those round trips
# and the commit's deferred foreign-key checks less often.
POSTGRES_BATCH_SIZE = 25_000

# --- orders ------------------------------------------------------------------------------------------------------


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
    postgres = connection.vendor == "postgresql"
    batch_size = POSTGRES_BATCH_SIZE if postgres else BATCH_SIZE
    if (connections := orders_upsert_connections()) > 1:  # PostgreSQL outside a transaction
        result = orders_upsert_parallel(
            workspace=workspace,
            batches=_batched(records, batch_size),
            connections=connections,
            upsert_batch=_orders_upsert_batch,
            touched=touched,
        )
    else:
        for batch in _batched(records, batch_size):
            if postgres and len(batch) >= 1000:
                analyze_stale_lookup_tables()
            result += _orders_upsert_batch(workspace=workspace, records=_latest_per_key(batch), touched=touched)
    if postgres and result.created + result.updated >= 1000:
        analyze_stale_lookup_tables(STATS_TABLES)
    for customer_ids in _batched(sorted(touched), 1000):  # bounded IN lists (SQLite caps query parameters)
        _mark_carts_converted(workspace=workspace, customer_ids=set(customer_ids))
    if refresh_stats and touched:
        customer_stats_refresh(workspace=workspace, customer_ids=sorted(touched))
    return result


@transaction.atomic
def _orders_upsert_batch(*, workspace: Workspace, records: list[OrderRecord], touched: set[int]) -> UpsertResult:
    if connection.vendor == "postgresql":
        return orders_upsert_batch_postgres(workspace=workspace, records=records, touched=touched, now=timezone.now())
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
    Order.objects.bulk_create(
        order_objects,
        update_conflicts=True,
        unique_fields=["workspace", "source", "external_id"],
        update_fields=ORDER_UPSERT_FIELDS,
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
    touched |= affected_customers
    created = sum(1 for r in fresh if (r.source, r.external_id) not in existing)
    return UpsertResult(created=created, updated=len(fresh) - created, skipped_stale=stale)


def _replace_order_lines(*, workspace: Workspace, records: list[OrderRecord], order_ids: dict) -> None:
    ids = [order_ids[(r.source, r.external_id)][0] for r in records]
    OrderLine.objects.filter(workspace=workspace, order_id__in=ids).delete()
    product_keys = {
        (r.source, line.product_external_id) for r in records for line in r.lines if line.product_external_id
    }
    products: dict[tuple[str, str | None], tuple[int | None, str]] = {}
    for source in {source for source, _ in product_keys}:
        wanted = [ext for src, ext in product_keys if src == source]
        for external_id, found_id, category in Product.objects.filter(
            workspace=workspace, source=source, external_id__in=wanted
        ).values_list("external_id", "id", "category"):
            products[(source, external_id)] = (found_id, category)
    lines = []
    for r in records:
        order_id, customer_id = order_ids[(r.source, r.external_id)]
        is_cancelled = bool(r.cancelled_at) or r.status == OrderStatus.CANCELLED
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
                    customer_id=customer_id,
                    placed_at=r.placed_at,
                    is_order_cancelled=is_cancelled,
                )
            )
    OrderLine.objects.bulk_create(lines, batch_size=BATCH_SIZE)


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
