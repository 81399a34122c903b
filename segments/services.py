"""Every write of the segments app: RFM rescoring, segment CRUD, membership refresh, starter segments."""

import csv
import datetime as dt
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
from django.db import connection, transaction
from django.utils import timezone
from django_scopes import scopes_disabled

from crm.exceptions import DomainError
from crm.models import Workspace
from segments import compiler, rfm, selectors
from segments.compiler import condition, group
from segments.models import RfmGroupChange, RfmSettings, RfmSnapshot, Segment, SegmentMembership, SegmentSize

logger = logging.getLogger(__name__)

RFM_GROUP_CHANGED = "rfm_group_changed"
SEGMENT_ENTERED = "segment_entered"
SEGMENT_LEFT = "segment_left"
# A dynamic segment is refreshed by the minute tick at most this often, and only when new events arrived.
REFRESH_INTERVAL = dt.timedelta(minutes=15)
EVENT_BATCH = 5000


# --------------------------------------------------------------------------------------------------------------
# RFM


@dataclass(frozen=True, kw_only=True)
class RescoreResult:
    customers: int
    scored: int
    prospects: int
    updated: int
    group_changes: int
    events: int


def rfm_settings_update(*, workspace: Workspace, window_days: int | None, group_map: dict[str, str]) -> RfmSettings:
    if window_days is not None and not 1 <= window_days <= 3650:
        raise DomainError("The scoring window must be between 1 and 3650 days (or empty for all time).")
    defaults = rfm.DEFAULT_GROUP_MAP
    overrides = {}
    for key, name in group_map.items():
        try:
            cell = tuple(int(part) for part in key.split(","))
        except ValueError:
            raise DomainError(f"'{key}' is not an R,FM cell.") from None
        if cell not in defaults:
            raise DomainError(f"'{key}' is not an R,FM cell (both 1-5).")
        if name not in rfm.GROUPS or name == rfm.PROSPECTS:
            raise DomainError(f"'{name}' is not an RFM group.")
        if defaults[cell] != name:
            overrides[key] = name
    settings, _ = RfmSettings.objects.update_or_create(
        workspace=workspace, defaults={"window_days": window_days, "group_map": overrides}
    )
    return settings


def _write_scores(*, workspace: Workspace, changed: pd.DataFrame, now: dt.datetime) -> int:
    """Scores go through customers' bulk service (the Customer row is theirs); the group history is ours.

    Returns how many customers' stored scores actually changed."""
    from customers.services import customers_set_scores

    updated = customers_set_scores(
        workspace=workspace,
        fields=["rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_group"],
        rows=zip(
            changed["customer_id"].astype("int64").tolist(),
            changed["recency"].astype("int64").tolist(),
            changed["frequency"].astype("int64").tolist(),
            changed["monetary"].astype("int64").tolist(),
            changed["group"].astype(str).tolist(),
            strict=True,
        ),
        also_set={"rfm_scored_at": now},
    )
    moves = changed[changed["old_group"] != changed["group"]]
    _insert_group_history(
        workspace=workspace,
        rows=zip(
            moves["customer_id"].astype("int64").tolist(),
            moves["old_group"].astype(str).tolist(),
            moves["group"].astype(str).tolist(),
            strict=True,
        ),
        now=now,
    )
    return updated


def _insert_group_history(*, workspace: Workspace, rows: Iterable[tuple[int, str, str]], now: dt.datetime) -> None:
    """One RfmGroupChange per (customer_id, from_group, to_group): COPY on PostgreSQL (a first scoring writes one
    per customer), bulk_create elsewhere."""
    if connection.vendor != "postgresql":
        RfmGroupChange.objects.bulk_create(
            (
                RfmGroupChange(
                    workspace=workspace, customer_id=customer_id, from_group=old, to_group=new, changed_at=now
                )
                for customer_id, old, new in rows
            ),
            batch_size=EVENT_BATCH,
        )
        return
    table = connection.ops.quote_name(RfmGroupChange._meta.db_table)
    with connection.cursor() as cursor:
        copy_sql = f"COPY {table} (workspace_id, customer_id, from_group, to_group, changed_at) FROM STDIN"
        with cursor.cursor.copy(copy_sql) as copy:  # type: ignore[attr-defined]
            for customer_id, old, new in rows:
                copy.write_row((workspace.pk, customer_id, old, new, now))


def _record_group_change_events(*, workspace: Workspace, changed: pd.DataFrame, now: dt.datetime) -> int:
    """An ``rfm_group_changed`` event per real move (a customer's first scoring is not a change of group)."""
    from customers.records import EventRecord
    from customers.services import events_bulk_record

    moves = changed[(changed["old_group"] != "") & (changed["old_group"] != changed["group"])]
    if moves.empty:
        return 0
    records = (
        EventRecord(
            type=RFM_GROUP_CHANGED,
            occurred_at=now,
            customer_id=int(customer_id),
            properties={"from": old, "to": new},
        )
        for customer_id, old, new in zip(
            moves["customer_id"].tolist(), moves["old_group"].tolist(), moves["group"].tolist(), strict=True
        )
    )
    return events_bulk_record(workspace=workspace, records=records)


@transaction.atomic
def rfm_rescore(*, workspace: Workspace, as_of: dt.datetime | None = None) -> RescoreResult:
    """Score every customer of the workspace in bulk and write back only what changed.

    One SQL read (orders aggregated in the database), scoring in pandas (``segments.rfm``), one bulk write, one
    history insert, events for real group moves, and the day's snapshot for the RFM page.
    """
    now = timezone.now()
    as_of = as_of or now
    settings = selectors.rfm_settings_get(workspace=workspace)
    frame = selectors.rfm_input_frame(workspace=workspace, as_of=as_of, window_days=settings.window_days)
    stats = pd.DataFrame(
        {
            "customer_id": frame["customer_id"],
            "days_since_last_order": selectors.days_since(frame["last_order_epoch"], as_of=as_of, workspace=workspace),
            "orders": frame["orders"],
            "revenue": frame["revenue"],
        }
    )
    scored = rfm.score_customers(stats, group_map=rfm.group_map_with_overrides(settings.group_map))
    scored["old_group"] = frame["old_group"].fillna("").astype(str).to_numpy()
    is_changed = (
        (scored["recency"].to_numpy() != frame["old_recency"].to_numpy())
        | (scored["frequency"].to_numpy() != frame["old_frequency"].to_numpy())
        | (scored["monetary"].to_numpy() != frame["old_monetary"].to_numpy())
        | (scored["group"].to_numpy() != scored["old_group"].to_numpy())
    )
    changed = scored[is_changed]
    updated = _write_scores(workspace=workspace, changed=changed, now=now) if not changed.empty else 0
    events = _record_group_change_events(workspace=workspace, changed=changed, now=now)

    groups, grid = rfm.summarise(scored, stats)
    RfmSnapshot.objects.update_or_create(
        workspace=workspace,
        taken_on=as_of.astimezone(workspace.tzinfo).date(),
        defaults={
            "taken_at": now,
            "customers": len(scored),
            "revenue": round(float(stats["revenue"].sum()), 2),
            "groups": groups,
            "grid": grid,
        },
    )
    RfmSettings.objects.update_or_create(workspace=workspace, defaults={"last_rescored_at": now})
    prospects = int((scored["group"] == rfm.PROSPECTS).sum())
    return RescoreResult(
        customers=len(scored),
        scored=len(scored) - prospects,
        prospects=prospects,
        updated=updated,
        group_changes=int((changed["old_group"] != changed["group"]).sum()),
        events=events,
    )


# --------------------------------------------------------------------------------------------------------------
# Segments


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise DomainError("Give the segment a name.", field="name")
    if len(name) > 120:
        raise DomainError("Keep the name under 120 characters.", field="name")
    return name


def _check_unique_name(*, workspace: Workspace, name: str, exclude_id: int | None = None) -> None:
    clash = Segment.objects.filter(workspace=workspace, name__iexact=name)
    if exclude_id:
        clash = clash.exclude(pk=exclude_id)
    if clash.exists():
        raise DomainError(f"A segment called '{name}' already exists.", field="name")


@transaction.atomic
def segment_create(
    *, workspace: Workspace, name: str, rules: dict, description: str = "", created_by=None, starter_key: str = ""
) -> Segment:
    """A dynamic segment from a rule (validated), with its members filled in right away."""
    name = _clean_name(name)
    _check_unique_name(workspace=workspace, name=name)
    compiler.validate(rules, workspace=workspace)
    segment = Segment.objects.create(
        workspace=workspace,
        name=name,
        description=description[:255],
        rules=rules,
        is_dynamic=True,
        created_by=created_by,
        starter_key=starter_key,
    )
    compiler.compile_rules(rules, workspace=workspace, segment_id=segment.pk)  # references to itself etc.
    segment_refresh(workspace=workspace, segment=segment)
    return segment


@transaction.atomic
def segment_update(*, workspace: Workspace, segment: Segment, name: str, rules: dict, description: str = "") -> Segment:
    name = _clean_name(name)
    _check_unique_name(workspace=workspace, name=name, exclude_id=segment.pk)
    if segment.is_dynamic:
        compiler.compile_rules(rules, workspace=workspace, segment_id=segment.pk)
        segment.rules = rules
    segment.name = name
    segment.description = description[:255]
    segment.save(update_fields=["name", "description", "rules", "updated_at"])
    if segment.is_dynamic:
        segment_refresh(workspace=workspace, segment=segment)
    return segment


def segment_rename(*, workspace: Workspace, segment: Segment, name: str) -> Segment:
    name = _clean_name(name)
    _check_unique_name(workspace=workspace, name=name, exclude_id=segment.pk)
    segment.name = name
    segment.save(update_fields=["name", "updated_at"])
    return segment


@transaction.atomic
def segment_duplicate(*, workspace: Workspace, segment: Segment, created_by=None) -> Segment:
    base = f"Copy of {segment.name}"[:110]
    name, number = base, 2
    while Segment.objects.filter(workspace=workspace, name__iexact=name).exists():
        name, number = f"{base} ({number})", number + 1
    copy = Segment.objects.create(
        workspace=workspace,
        name=name,
        description=segment.description,
        rules=segment.rules,
        is_dynamic=segment.is_dynamic,
        created_by=created_by,
    )
    if not segment.is_dynamic:
        now = timezone.now()
        member_ids = SegmentMembership.objects.filter(workspace=workspace, segment=segment).values_list(
            "customer_id", flat=True
        )
        SegmentMembership.objects.bulk_create(
            [SegmentMembership(workspace=workspace, segment=copy, customer_id=cid, added_at=now) for cid in member_ids],
            batch_size=5000,
        )
    segment_refresh(workspace=workspace, segment=copy)
    return copy


def segment_delete(*, workspace: Workspace, segment: Segment) -> None:
    referring = [
        other.name
        for other in Segment.objects.filter(workspace=workspace, is_dynamic=True).exclude(pk=segment.pk)
        if _refers_to(other.rules, segment.pk)
    ]
    if referring:
        raise DomainError(f"'{segment.name}' is used by {', '.join(sorted(referring))}: change those rules first.")
    segment.delete()


def _refers_to(node: dict, segment_id: int) -> bool:
    if not isinstance(node, dict):
        return False
    if node.get("type") == "group":
        return any(_refers_to(child, segment_id) for child in node.get("children") or [])
    return node.get("field") == "segment" and str(node.get("value")) == str(segment_id)


@dataclass(frozen=True, kw_only=True)
class RefreshResult:
    size: int
    entered: int
    left: int


def _membership_events(*, workspace: Workspace, segment: Segment, customer_ids: list[int], kind: str, now) -> None:
    from customers.records import EventRecord
    from customers.services import events_bulk_record

    if not customer_ids:
        return
    events_bulk_record(
        workspace=workspace,
        records=(
            EventRecord(
                type=kind,
                occurred_at=now,
                customer_id=cid,
                properties={"segment_id": segment.pk, "segment": segment.name},
            )
            for cid in customer_ids
        ),
    )


@transaction.atomic
def segment_refresh(*, workspace: Workspace, segment: Segment) -> RefreshResult:
    """Bring a segment's member rows up to date with its rule, recording ``segment_entered`` / ``segment_left``.

    Static segments keep their list; only customers erased or merged away meanwhile leave.
    """

    now = timezone.now()
    members = SegmentMembership.objects.filter(workspace=workspace, segment=segment)
    if segment.is_dynamic:
        matching = selectors.segment_customers(workspace=workspace, segment=segment)
    else:
        matching = compiler.base_customers(workspace=workspace).filter(pk__in=members.values("customer_id"))
    current_ids = set(members.values_list("customer_id", flat=True))
    with compiler.segment_query_settings():
        matching_ids = set(matching.values_list("pk", flat=True))
    entered = sorted(matching_ids - current_ids)
    left = sorted(current_ids - matching_ids)
    if left:
        for start in range(0, len(left), EVENT_BATCH):
            members.filter(customer_id__in=left[start : start + EVENT_BATCH]).delete()
    if entered:
        SegmentMembership.objects.bulk_create(
            [SegmentMembership(workspace=workspace, segment=segment, customer_id=cid, added_at=now) for cid in entered],
            batch_size=EVENT_BATCH,
            ignore_conflicts=True,
        )
    _membership_events(workspace=workspace, segment=segment, customer_ids=entered, kind=SEGMENT_ENTERED, now=now)
    _membership_events(workspace=workspace, segment=segment, customer_ids=left, kind=SEGMENT_LEFT, now=now)
    # Read after recording our own entered/left events, so they do not make the segment look stale again. Event ids
    # are global, so the newest id of the whole table is a valid cursor and costs one step down the primary key.
    latest_event_id = _newest_event_id()
    segment.size = len(matching_ids)
    segment.last_evaluated_at = now
    segment.evaluated_event_id = latest_event_id
    segment.save(update_fields=["size", "last_evaluated_at", "evaluated_event_id"])
    SegmentSize.objects.create(
        workspace=workspace, segment=segment, recorded_at=now, size=segment.size, entered=len(entered), left=len(left)
    )
    return RefreshResult(size=segment.size, entered=len(entered), left=len(left))


def segments_refresh_all(*, workspace: Workspace) -> int:
    """Refresh every dynamic segment (nightly, after the RFM rescore). Returns how many were refreshed."""
    count = 0
    for segment in Segment.objects.filter(workspace=workspace, is_dynamic=True).order_by("pk"):
        try:
            segment_refresh(workspace=workspace, segment=segment)
        except compiler.RuleError as error:
            logger.warning("segment %s of workspace %s not refreshed: %s", segment.pk, workspace.pk, error.message)
            continue
        count += 1
    return count


def segments_refresh_due(*, workspace: Workspace, now: dt.datetime | None = None) -> list[int]:
    """Dynamic segments to refresh now: never evaluated, or evaluated over ``REFRESH_INTERVAL`` ago and something
    happened in the workspace since (a newer event). Relative dates move on their own, so the nightly run covers
    quiet workspaces."""
    from customers.models import Event

    now = now or timezone.now()
    due = []
    for segment in Segment.objects.filter(workspace=workspace, is_dynamic=True).only(
        "pk", "last_evaluated_at", "evaluated_event_id"
    ):
        if segment.last_evaluated_at is None:
            due.append(segment.pk)
        elif segment.last_evaluated_at <= now - REFRESH_INTERVAL:
            # walks the primary key from the cursor: cost follows the events since, not the table's size
            if Event.objects.filter(workspace=workspace, id__gt=segment.evaluated_event_id).exists():
                due.append(segment.pk)
    return due


def _newest_event_id() -> int:
    from customers.models import Event

    with scopes_disabled():
        return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


@transaction.atomic
def segment_create_static(
    *,
    workspace: Workspace,
    name: str,
    customer_ids: list[int],
    description: str = "",
    rules: dict | None = None,
    created_by=None,
) -> Segment:
    """A fixed list of customers (from a filter's result or a CSV of emails)."""
    name = _clean_name(name)
    _check_unique_name(workspace=workspace, name=name)
    segment = Segment.objects.create(
        workspace=workspace,
        name=name,
        description=description[:255],
        rules=rules or {},
        is_dynamic=False,
        created_by=created_by,
    )
    now = timezone.now()
    valid_ids = list(
        compiler.base_customers(workspace=workspace).filter(pk__in=set(customer_ids)).values_list("pk", flat=True)
    )
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(workspace=workspace, segment=segment, customer_id=cid, added_at=now) for cid in valid_ids],
        batch_size=EVENT_BATCH,
    )
    _membership_events(workspace=workspace, segment=segment, customer_ids=valid_ids, kind=SEGMENT_ENTERED, now=now)
    segment.size = len(valid_ids)
    segment.last_evaluated_at = now
    segment.save(update_fields=["size", "last_evaluated_at"])
    SegmentSize.objects.create(
        workspace=workspace, segment=segment, recorded_at=now, size=segment.size, entered=segment.size
    )
    return segment


def segment_freeze(*, workspace: Workspace, name: str, rules: dict, created_by=None) -> Segment:
    """A static segment holding whoever matches ``rules`` right now."""
    ids = list(compiler.rules_queryset(rules, workspace=workspace).values_list("pk", flat=True))
    return segment_create_static(
        workspace=workspace,
        name=name,
        customer_ids=ids,
        rules=rules,
        created_by=created_by,
        description="Fixed list: who matched the rule when it was saved.",
    )


@dataclass(frozen=True, kw_only=True)
class CsvImportResult:
    segment: Segment
    matched: int
    unknown: list[str]  # emails not found (first 20)
    invalid_rows: list[int]  # 1-based line numbers without an email


MAX_CSV_BYTES = 5 * 1024 * 1024


def segment_create_from_csv(*, workspace: Workspace, name: str, file, created_by=None) -> CsvImportResult:
    """A static segment from a CSV of emails: the column named "email", or else the first column."""
    raw = file.read(MAX_CSV_BYTES + 1)
    if len(raw) > MAX_CSV_BYTES:
        raise DomainError("The file is larger than 5 MB.", field="file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DomainError("The file is not UTF-8 text. Save it as CSV UTF-8 and try again.", field="file") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise DomainError("The file is empty.", field="file")
    header = [cell.strip().lower() for cell in rows[0]]
    column, start = (header.index("email"), 1) if "email" in header else (0, 0)
    emails: list[str] = []
    invalid_rows: list[int] = []
    for line_number, row in enumerate(rows[start:], start=start + 1):
        value = row[column].strip().lower() if len(row) > column else ""
        if "@" not in value:
            if any(cell.strip() for cell in row):
                invalid_rows.append(line_number)
            continue
        emails.append(value)
    if not emails:
        raise DomainError(
            "No email addresses found in the file (a column named 'email', or the first column).", field="file"
        )
    found: dict[str, int] = {}
    unique = sorted(set(emails))
    for start_index in range(0, len(unique), 1000):
        chunk = unique[start_index : start_index + 1000]
        for cid, email in (
            compiler.base_customers(workspace=workspace).filter(email__in=chunk).values_list("pk", "email")
        ):
            found.setdefault(email.lower(), cid)
    # Emails stored with capitals: a second, case-insensitive pass on what is left.
    missing = [e for e in unique if e not in found]
    for email in missing[:2000]:
        cid = compiler.base_customers(workspace=workspace).filter(email__iexact=email).values_list("pk", flat=True)
        if first := cid.first():
            found[email] = first
    segment = segment_create_static(
        workspace=workspace,
        name=name,
        customer_ids=list(found.values()),
        created_by=created_by,
        description="Fixed list imported from a CSV of emails.",
    )
    unknown = [e for e in unique if e not in found]
    return CsvImportResult(segment=segment, matched=segment.size, unknown=unknown[:20], invalid_rows=invalid_rows[:20])


# --------------------------------------------------------------------------------------------------------------
# Starter segments


def starter_definitions(*, workspace: Workspace) -> list[dict]:
    """The ready-to-use segments (``key``, ``name``, ``description``, ``rules``)."""
    vip_threshold = _top_spend_threshold(workspace=workspace, share=0.05)
    return [
        {"key": "first_time_buyers", "name": "First-time buyers", "description": "Exactly one order so far.",
         "rules": group("all", condition("orders_count", "eq", value=1))},
        {"key": "repeat_buyers", "name": "Repeat buyers", "description": "Two orders or more.",
         "rules": group("all", condition("orders_count", "gte", value=2))},
        {"key": "vips", "name": "VIPs", "description": f"Top 5% by total spent (≥ {vip_threshold} when created).",
         "rules": group("all", condition("total_spent", "gte", value=str(vip_threshold)),
                        condition("orders_count", "gte", value=1))},
        {"key": "at_risk", "name": "At risk", "description": "Two orders or more, none in the last 60 days.",
         "rules": group("all", condition("orders_count", "gte", value=2),
                        condition("last_order_at", "not_in_last_days", days=60))},
        {"key": "discount_seekers", "name": "Discount seekers", "description": "Used a discount code twice or more.",
         "rules": group("all", condition("used_discount", "did", times=2))},
        {"key": "cart_abandoners", "name": "Cart abandoners (7 days)",
         "description": "Abandoned a cart in the last 7 days.",
         "rules": group("all", condition("event", "did", value="cart_abandoned", days=7))},
        {"key": "birthday_this_month", "name": "Birthday this month", "description": "Birthday in the current month.",
         "rules": group("all", condition("birthday_month", "this_month"))},
        {"key": "subscribed_never_purchased", "name": "Subscribed, never purchased",
         "description": "Subscribed to email and no order yet.",
         "rules": group("all", condition("email_consent", "is", value="subscribed"),
                        condition("orders_count", "eq", value=0))},
    ]  # fmt: skip


def _top_spend_threshold(*, workspace: Workspace, share: float) -> str:
    """The total spent at which the top ``share`` of buyers starts (a fixed amount, so the rule stays explainable)."""
    buyers = compiler.base_customers(workspace=workspace).filter(orders_count__gt=0)
    count = buyers.count()
    if not count:
        return "500"
    position = max(int(count * share) - 1, 0)
    value = buyers.order_by("-total_spent").values_list("total_spent", flat=True)[position]
    return str(value)


def segments_create_starters(*, workspace: Workspace, created_by=None) -> list[Segment]:
    """Create the starter segments the workspace does not have yet (by key, or by name). Idempotent."""
    existing_keys = set(Segment.objects.filter(workspace=workspace).values_list("starter_key", flat=True))
    existing_names = {n.lower() for n in Segment.objects.filter(workspace=workspace).values_list("name", flat=True)}
    created = []
    for definition in starter_definitions(workspace=workspace):
        if definition["key"] in existing_keys or definition["name"].lower() in existing_names:
            continue
        created.append(
            segment_create(
                workspace=workspace,
                name=definition["name"],
                rules=definition["rules"],
                description=definition["description"],
                created_by=created_by,
                starter_key=definition["key"],
            )
        )
    return created
