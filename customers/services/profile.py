"""Profile edits, consent, tags, notes and support signals of one customer."""

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from crm.exceptions import DomainError
from crm.models import Workspace
from customers.models import (
    ConsentStatus,
    Customer,
    CustomerTag,
    Event,
    EventType,
    Note,
)
from customers.services._common import CUSTOMER_PROFILE_FIELDS, _batched
from customers.services.ingestion import event_record

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


def customer_email_unsubscribe(
    *, workspace: Workspace, customer_id: int, source: str, at: dt.datetime | None = None
) -> bool:
    """Withdraw a customer's marketing email consent (an unsubscribe link, a complaint, an ESP's unsubscribe).
    One conditional update, so replays change nothing; returns whether consent changed."""
    at = at or timezone.now()
    changed = (
        Customer.objects.filter(workspace=workspace, pk=customer_id)
        .exclude(email_consent=ConsentStatus.UNSUBSCRIBED)
        .update(
            email_consent=ConsentStatus.UNSUBSCRIBED, email_consent_at=at, email_consent_source=source, updated_at=at
        )
    )
    return bool(changed)
