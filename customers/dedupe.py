"""Likely duplicate customers, merging them, and undoing a merge.

Detection is three GROUP BY queries (same normalised email, same phone, same name + postcode) over live customers;
groups found by several rules are shown once with every reason. A merge moves orders, events, notes, carts and
tags to the survivor, fills the survivor's empty profile fields from the duplicate, keeps the most recent consent
decision per channel, marks the duplicate ``merged_into`` the survivor (its row is kept, not deleted) and writes an
AuditRecord holding exactly what moved and what changed, which is what ``customer_merge_undo`` replays backwards.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import CharField, Count, Q, Value
from django.db.models.functions import Concat, Lower, Replace, Trim, Upper
from django.utils import timezone

from crm.exceptions import DomainError
from crm.models import Workspace
from customers.models import (
    PROFILE_FIELDS,
    AuditRecord,
    Cart,
    Customer,
    CustomerTag,
    Event,
    EventType,
    Note,
    Order,
    OrderLine,
)

FILLABLE_FIELDS = PROFILE_FIELDS
CONSENT_CHANNELS = ("email", "sms")
# What a merge (and its undo) may change on the survivor row; stats are recomputed, RFM and predictions untouched.
MERGED_FIELDS = [
    *FILLABLE_FIELDS,
    *(f"{channel}_consent{suffix}" for channel in CONSENT_CHANNELS for suffix in ("", "_at", "_source", "_version")),
    "loyalty_points",
    "preferences",
    "custom_attributes",
    "updated_at",
]


@dataclass(frozen=True, kw_only=True)
class DuplicateGroup:
    customer_ids: tuple[int, ...]
    reasons: tuple[str, ...]
    customers: list[Customer] = field(default_factory=list)


def _live(workspace: Workspace):
    return Customer.objects.filter(workspace=workspace, merged_into__isnull=True, erased_at__isnull=True)


def _groups_by(workspace: Workspace, key_expression, exclude: Q, limit: int) -> list[tuple[str, list[int]]]:
    keys = (
        _live(workspace)
        .exclude(exclude)
        .annotate(key=key_expression)
        .values("key")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .order_by("-n", "key")
        .values_list("key", flat=True)[:limit]
    )
    keys = list(keys)
    if not keys:
        return []
    members: dict[str, list[int]] = defaultdict(list)
    for key, customer_id in (
        _live(workspace)
        .exclude(exclude)
        .annotate(key=key_expression)
        .filter(key__in=keys)
        .order_by("id")
        .values_list("key", "id")
    ):
        members[key].append(customer_id)
    return [(key, members[key]) for key in keys if len(members[key]) > 1]


def duplicate_groups_find(*, workspace: Workspace, limit: int = 100) -> list[DuplicateGroup]:
    rules = [
        ("Same email", Lower(Trim("email")), Q(email="")),
        ("Same phone", Lower("phone"), Q(phone="")),
        (
            "Same name and postcode",
            Concat(
                Lower(Trim("first_name")),
                Value("|"),
                Lower(Trim("last_name")),
                Value("|"),
                Upper(Replace("postcode", Value(" "), Value(""))),
                output_field=CharField(),
            ),
            Q(first_name="") | Q(last_name="") | Q(postcode=""),
        ),
    ]
    by_ids: dict[tuple[int, ...], list[str]] = {}
    for reason, expression, exclude in rules:
        for key, ids in _groups_by(workspace, expression, exclude, limit):
            shown = key.replace("|", " ").strip() if reason.startswith("Same name") else key
            by_ids.setdefault(tuple(sorted(ids)), []).append(f"{reason}: {shown}")
    ordered = sorted(by_ids.items(), key=lambda item: (-len(item[1]), -len(item[0]), item[0]))[:limit]
    customers = {
        c.id: c for c in Customer.objects.filter(workspace=workspace, id__in={i for ids, _ in ordered for i in ids})
    }
    return [
        DuplicateGroup(
            customer_ids=ids, reasons=tuple(reasons), customers=[customers[i] for i in ids if i in customers]
        )
        for ids, reasons in ordered
    ]


def survivor_suggest(customers: list[Customer]) -> Customer:
    """The profile to keep: the one with the most orders, then the oldest."""
    return sorted(customers, key=lambda c: (-c.orders_count, c.created_at, c.id))[0]


# --- merging ---------------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _merge_one(*, workspace: Workspace, survivor: Customer, duplicate: Customer) -> dict:
    """Move everything of ``duplicate`` onto ``survivor``; return what was done, for the audit record and undo."""
    moved = {
        "orders": list(Order.objects.filter(workspace=workspace, customer=duplicate).values_list("id", flat=True)),
        "events": list(Event.objects.filter(workspace=workspace, customer=duplicate).values_list("id", flat=True)),
        "notes": list(Note.objects.filter(workspace=workspace, customer=duplicate).values_list("id", flat=True)),
        "carts": list(Cart.objects.filter(workspace=workspace, customer=duplicate).values_list("id", flat=True)),
    }
    # updated_at moves too: readers of "what changed" (the analytics tick) then see the orders change hands.
    Order.objects.filter(workspace=workspace, id__in=moved["orders"]).update(
        customer=survivor, updated_at=timezone.now()
    )
    OrderLine.objects.filter(workspace=workspace, order_id__in=moved["orders"]).update(customer=survivor)
    Event.objects.filter(workspace=workspace, id__in=moved["events"]).update(customer=survivor)
    Note.objects.filter(workspace=workspace, id__in=moved["notes"]).update(customer=survivor)
    Cart.objects.filter(workspace=workspace, id__in=moved["carts"]).update(customer=survivor, updated_at=timezone.now())

    duplicate_tags = list(
        CustomerTag.objects.filter(workspace=workspace, customer=duplicate).values_list("name", flat=True)
    )
    survivor_tags = set(
        CustomerTag.objects.filter(workspace=workspace, customer=survivor).values_list("name", flat=True)
    )
    added_tags = [name for name in duplicate_tags if name not in survivor_tags]
    CustomerTag.objects.bulk_create(
        [CustomerTag(workspace=workspace, customer=survivor, name=name) for name in added_tags], ignore_conflicts=True
    )
    CustomerTag.objects.filter(workspace=workspace, customer=duplicate).delete()

    filled: dict[str, dict] = {}
    for name in FILLABLE_FIELDS:
        mine, theirs = getattr(survivor, name), getattr(duplicate, name)
        if mine in ("", None) and theirs not in ("", None):
            filled[name] = {"before": _jsonable(mine), "after": _jsonable(theirs)}
            setattr(survivor, name, theirs)

    consent: dict[str, dict] = {}
    for channel in CONSENT_CHANNELS:
        names = [
            f"{channel}_consent",
            f"{channel}_consent_at",
            f"{channel}_consent_source",
            f"{channel}_consent_version",
        ]
        mine_at, theirs_at = getattr(survivor, names[1]), getattr(duplicate, names[1])
        if theirs_at is not None and (mine_at is None or theirs_at > mine_at):
            consent[channel] = {
                "before": {n: _jsonable(getattr(survivor, n)) for n in names},
                "after": {n: _jsonable(getattr(duplicate, n)) for n in names},
            }
            for n in names:
                setattr(survivor, n, getattr(duplicate, n))

    loyalty = duplicate.loyalty_points
    survivor.loyalty_points += loyalty
    preferences_before = dict(survivor.preferences or {})
    survivor.preferences = {**(duplicate.preferences or {}), **(survivor.preferences or {})}
    attributes_before = dict(survivor.custom_attributes or {})
    survivor.custom_attributes = {**(duplicate.custom_attributes or {}), **(survivor.custom_attributes or {})}

    duplicate.merged_into = survivor
    duplicate.save(update_fields=["merged_into", "updated_at"])
    return {
        "duplicate_id": duplicate.id,
        "duplicate_name": duplicate.full_name,
        "duplicate_email": duplicate.email,
        "moved": moved,
        "tags_added_to_survivor": added_tags,
        "duplicate_tags": duplicate_tags,
        "filled_fields": filled,
        "consent": consent,
        "loyalty_points_added": loyalty,
        "preferences_before": preferences_before,
        "custom_attributes_before": attributes_before,
    }


@transaction.atomic
def customer_merge(*, workspace: Workspace, survivor: Customer, duplicates: list[Customer], actor=None) -> Customer:
    """Merge ``duplicates`` into ``survivor``. Returns the survivor, its stats recomputed."""
    from customers.services import customer_stats_refresh, event_record

    ids = [survivor.id, *(d.id for d in duplicates)]
    if len(set(ids)) != len(ids):
        raise DomainError("A customer cannot be merged into itself.")
    if not duplicates:
        raise DomainError("Choose at least one duplicate to merge.")
    locked = {
        c.id: c for c in Customer.objects.filter(workspace=workspace, id__in=ids).select_for_update().order_by("id")
    }
    if len(locked) != len(ids):
        raise DomainError("One of these customers no longer exists.")
    survivor = locked[survivor.id]
    for customer in locked.values():
        if customer.merged_into_id or customer.erased_at:
            raise DomainError(f"{customer} was already merged or erased; reload the duplicates list.")
    merges = [_merge_one(workspace=workspace, survivor=survivor, duplicate=locked[d.id]) for d in duplicates]
    survivor.save(update_fields=MERGED_FIELDS)
    customer_stats_refresh(workspace=workspace, customer_ids=ids)
    events = []
    for merge in merges:
        events.append(
            event_record(
                workspace=workspace,
                customer=survivor,
                type=EventType.CUSTOMERS_MERGED,
                properties={
                    "duplicate_id": merge["duplicate_id"],
                    "duplicate_name": merge["duplicate_name"],
                    "duplicate_email": merge["duplicate_email"],
                    "orders": len(merge["moved"]["orders"]),
                    "events": len(merge["moved"]["events"]),
                    "by": getattr(actor, "email", ""),
                },
            ).id
        )
    AuditRecord.objects.create(
        workspace=workspace,
        action=AuditRecord.Action.MERGE,
        customer_id_ref=survivor.id,
        actor=actor,
        data={"survivor_id": survivor.id, "merges": merges, "merge_event_ids": events},
    )
    survivor.refresh_from_db()
    return survivor


def merge_audit_get(*, workspace: Workspace, audit_id: int) -> AuditRecord:
    from django.http import Http404

    audit = AuditRecord.objects.filter(workspace=workspace, pk=audit_id, action=AuditRecord.Action.MERGE).first()
    if audit is None:
        raise Http404("No such merge")
    return audit


def merges_recent(*, workspace: Workspace, limit: int = 20) -> list[AuditRecord]:
    return list(
        AuditRecord.objects.filter(workspace=workspace, action=AuditRecord.Action.MERGE)
        .select_related("actor")
        .order_by("-created_at")[:limit]
    )


def _restore(value: Any, model_field) -> Any:
    if value is None or not isinstance(value, str):
        return value
    return model_field.to_python(value)


@transaction.atomic
def customer_merge_undo(*, workspace: Workspace, audit: AuditRecord, actor=None) -> Customer:
    """Put every duplicate of a merge back as it was. Rows that changed owner since the merge (e.g. an order
    merged again elsewhere) are left where they are; fields edited since the merge keep their new value."""
    from customers.services import customer_stats_refresh, event_record

    audit = AuditRecord.objects.select_for_update().get(workspace=workspace, pk=audit.pk)
    if audit.action != AuditRecord.Action.MERGE:
        raise DomainError("Only a merge can be undone.")
    if audit.data.get("undone_at"):
        raise DomainError("This merge was already undone.")
    survivor = Customer.objects.select_for_update().filter(workspace=workspace, pk=audit.data["survivor_id"]).first()
    if survivor is None or survivor.erased_at:
        raise DomainError("The surviving customer was erased or deleted; this merge cannot be undone.")
    meta = Customer._meta
    restored_ids = [survivor.id]
    # The survivor's own orders change meaning too (which was their first, their gaps), and readers of "what changed"
    # (the analytics tick) only see orders whose updated_at moved.
    Order.objects.filter(workspace=workspace, customer=survivor).update(updated_at=timezone.now())
    for merge in audit.data["merges"]:
        duplicate = Customer.objects.select_for_update().filter(workspace=workspace, pk=merge["duplicate_id"]).first()
        if duplicate is None:
            continue
        moved = merge["moved"]
        Order.objects.filter(workspace=workspace, id__in=moved["orders"], customer=survivor).update(
            customer=duplicate, updated_at=timezone.now()
        )
        OrderLine.objects.filter(workspace=workspace, order_id__in=moved["orders"], customer=survivor).update(
            customer=duplicate
        )
        Event.objects.filter(workspace=workspace, id__in=moved["events"], customer=survivor).update(customer=duplicate)
        Note.objects.filter(workspace=workspace, id__in=moved["notes"], customer=survivor).update(customer=duplicate)
        Cart.objects.filter(workspace=workspace, id__in=moved["carts"], customer=survivor).update(
            customer=duplicate, updated_at=timezone.now()
        )
        CustomerTag.objects.filter(
            workspace=workspace, customer=survivor, name__in=merge["tags_added_to_survivor"]
        ).delete()
        CustomerTag.objects.bulk_create(
            [CustomerTag(workspace=workspace, customer=duplicate, name=n) for n in merge["duplicate_tags"]],
            ignore_conflicts=True,
        )
        for name, change in merge["filled_fields"].items():
            model_field = meta.get_field(name)
            if _jsonable(getattr(survivor, name)) == change["after"]:
                setattr(survivor, name, _restore(change["before"], model_field))
        for change in merge["consent"].values():
            current = {n: _jsonable(getattr(survivor, n)) for n in change["after"]}
            if current == change["after"]:
                for n, value in change["before"].items():
                    setattr(survivor, n, _restore(value, meta.get_field(n)))
        survivor.loyalty_points -= merge["loyalty_points_added"]
        survivor.preferences = merge["preferences_before"]
        survivor.custom_attributes = merge["custom_attributes_before"]
        duplicate.merged_into = None
        duplicate.save(update_fields=["merged_into", "updated_at"])
        restored_ids.append(duplicate.id)
        event_record(
            workspace=workspace,
            customer=survivor,
            type=EventType.CUSTOMERS_UNMERGED,
            properties={
                "duplicate_id": duplicate.id,
                "duplicate_name": merge["duplicate_name"],
                "duplicate_email": merge["duplicate_email"],
                "by": getattr(actor, "email", ""),
            },
        )
    survivor.save(update_fields=MERGED_FIELDS)
    customer_stats_refresh(workspace=workspace, customer_ids=restored_ids)
    survivor.refresh_from_db()
    audit.data = {**audit.data, "undone_at": timezone.now().isoformat(), "undone_by": getattr(actor, "email", "")}
    audit.save(update_fields=["data"])
    AuditRecord.objects.create(
        workspace=workspace,
        action=AuditRecord.Action.UNMERGE,
        customer_id_ref=survivor.id,
        actor=actor,
        data={"merge_audit_id": audit.id, "restored_customer_ids": restored_ids[1:]},
    )
    return survivor
