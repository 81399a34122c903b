"""Shared helpers of the upserts: batching, newest-record-wins, stale checks."""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any

from django.db import connection
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from crm.models import Workspace
from customers.models import (
    PROFILE_FIELDS,
    Cart,
    CartStatus,
    Customer,
    Event,
    Order,
    OrderStatus,
)
from customers.records import CustomerRecord

BATCH_SIZE = 2000

CUSTOMER_PROFILE_FIELDS = PROFILE_FIELDS
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


def _existing(model: Any, *, workspace: Workspace, records: Sequence[Any], fields: Sequence[str]) -> dict:
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


def _split_fresh(model: Any, *, workspace: Workspace, records: Sequence[Any], fields: Sequence[str] = ()):
    existing = _existing(model, workspace=workspace, records=records, fields=["source_updated_at", *fields])
    fresh = [r for r in records if not _is_stale(r, existing.get((r.source, r.external_id)))]
    return fresh, existing, len(records) - len(fresh)


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
        from customers.services.ingestion import customers_bulk_upsert  # the upsert uses these helpers too

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
