"""Sync runs: a full backfill or an incremental pull of one connection, page by page, resumable.

Every page that lands is upserted (idempotent, keyed by (workspace, source, external_id)) and then the run's cursor
moves past it, in that order: if the process dies in between, the resumed run reads that page again and the
upserts skip what is already there. So a run resumes where it stopped, never from zero, and never duplicates.

A page that keeps failing after the HTTP client's own retries (exponential backoff, Retry-After) puts the run in
RETRYING with ``retry_at`` set by exponential backoff; the minute tick resumes it from its cursor.
"""

import datetime as dt
import logging
import math
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from crm.exceptions import DomainError
from crm.models import Workspace
from customers import services as customer_services
from customers.records import UpsertResult
from integrations.connectors import ConnectorError, Page, connector_for
from integrations.connectors.base import parse_datetime
from integrations.models import ConnectionStatus, StoreConnection, SyncKind, SyncRun, SyncStatus

logger = logging.getLogger(__name__)

MAX_ERRORS_KEPT = 200
WATERMARK_OVERLAP = dt.timedelta(minutes=5)  # re-read a little before the watermark: clocks and commits drift

UPSERTS: dict[str, Callable[..., UpsertResult]] = {
    "customers": customer_services.customers_bulk_upsert,
    "products": customer_services.products_bulk_upsert,
    "orders": customer_services.orders_bulk_upsert,
    "checkouts": customer_services.carts_bulk_upsert,
}


def max_attempts() -> int:
    return int(getattr(settings, "INTEGRATIONS_SYNC_MAX_ATTEMPTS", 6))


def retry_delay(attempts: int) -> dt.timedelta:
    base = float(getattr(settings, "INTEGRATIONS_SYNC_RETRY_SECONDS", 30.0))
    return dt.timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 3600))


def sync_run_start(*, workspace: Workspace, connection: StoreConnection, kind: str = SyncKind.INCREMENTAL) -> SyncRun:
    """Queue a run, or return the one already under way for this connection (two runs never overlap)."""
    if kind not in (SyncKind.FULL, SyncKind.INCREMENTAL):
        raise DomainError("Unknown kind of sync.")
    if connection.status == ConnectionStatus.UNINSTALLED:
        raise DomainError("The app was uninstalled from this store; reconnect it before syncing.")
    with transaction.atomic():
        locked = StoreConnection.objects.select_for_update().filter(workspace=workspace, pk=connection.pk).first()
        if locked is None:
            raise DomainError("This connection was removed.")
        active = (
            SyncRun.objects.filter(
                workspace=workspace,
                connection=connection,
                status__in=[SyncStatus.QUEUED, SyncStatus.RUNNING, SyncStatus.RETRYING],
            )
            .exclude(kind=SyncKind.RECONCILE)
            .first()
        )
        if active is not None:
            return active
        resources = list(connector_resources(connection))
        since: dict[str, str | None] = {}
        for resource in resources:
            mark = parse_datetime(locked.sync_state.get(resource)) if kind == SyncKind.INCREMENTAL else None
            since[resource] = (mark - WATERMARK_OVERLAP).isoformat() if mark else None
        run = SyncRun.objects.create(
            workspace=workspace,
            connection=connection,
            kind=kind,
            cursor={"resources": resources, "index": 0, "page": None, "since": since, "max_updated": {}},
            counts={resource: {"created": 0, "updated": 0, "skipped": 0, "failed": 0} for resource in resources},
        )
        transaction.on_commit(lambda: _enqueue(run))
    return run


def _enqueue(run: SyncRun) -> None:
    from integrations.tasks import sync_run_execute as task

    task.delay(run.workspace_id, run.pk)


def connector_resources(connection: StoreConnection) -> tuple[str, ...]:
    from integrations.connectors.shopify import RESOURCES as SHOPIFY
    from integrations.connectors.woocommerce import RESOURCES as WOOCOMMERCE

    return SHOPIFY if connection.platform == "shopify" else WOOCOMMERCE


def _claim(workspace: Workspace, run: SyncRun) -> bool:
    """QUEUED/RETRYING -> RUNNING with a conditional update, so a duplicated task does not run it twice."""
    claimed = SyncRun.objects.filter(
        workspace=workspace, pk=run.pk, status__in=[SyncStatus.QUEUED, SyncStatus.RETRYING]
    ).update(
        status=SyncStatus.RUNNING,
        started_at=run.started_at or timezone.now(),
        retry_at=None,
        heartbeat_at=timezone.now(),
    )
    if claimed:
        run.refresh_from_db()
    return bool(claimed)


def sync_run_execute(
    *, workspace: Workspace, run: SyncRun, connector: Any = None, max_pages: int | None = None
) -> SyncRun:
    """Run (or resume) ``run`` from its cursor until done, a persistent failure, or ``max_pages`` pages."""
    if not _claim(workspace, run):
        return run
    connection = run.connection
    if connection.is_paused:
        return _finish(workspace, run, status=SyncStatus.FAILED, message="The connection is paused.")
    owns_connector = connector is None
    try:
        connector = connector or connector_for(connection)
    except (ConnectorError, DomainError) as error:
        return _finish(workspace, run, status=SyncStatus.FAILED, message=error.message)
    pages = 0
    try:
        if not run.pages_expected:
            _estimate(run, connector)
        cursor = run.cursor
        resources = cursor["resources"]
        while cursor["index"] < len(resources):
            if max_pages is not None and pages >= max_pages:
                run.status = SyncStatus.RETRYING
                run.retry_at = timezone.now()
                run.save(update_fields=["status", "retry_at"])
                return run
            resource = resources[cursor["index"]]
            since = parse_datetime(cursor["since"].get(resource))
            page = connector.fetch_page(resource, cursor=cursor["page"], since=since)
            _land(workspace, run, resource, page)
            pages += 1
    except ConnectorError as error:
        return _failed_page(workspace, run, error)
    finally:
        if owns_connector and connector is not None:
            connector.close()
    _advance_watermarks(workspace, connection, run)
    now = timezone.now()
    StoreConnection.objects.filter(workspace=workspace, pk=connection.pk).exclude(
        status=ConnectionStatus.UNINSTALLED
    ).update(status=ConnectionStatus.CONNECTED, last_sync_at=now, last_error="", updated_at=now)
    return _finish(workspace, run, status=SyncStatus.DONE, message=_summary(run))


def _estimate(run: SyncRun, connector: Any) -> None:
    total_pages = 0
    for resource in run.cursor["resources"]:
        since = parse_datetime(run.cursor["since"].get(resource))
        total_pages += max(1, math.ceil(connector.count(resource, since=since) / connector.page_size))
    run.pages_expected = total_pages
    run.save(update_fields=["pages_expected"])


def _land(workspace: Workspace, run: SyncRun, resource: str, page: Page) -> None:
    counts = run.counts.setdefault(resource, {"created": 0, "updated": 0, "skipped": 0, "failed": 0})
    errors = [{"resource": e.resource, "external_id": e.external_id, "reason": e.reason} for e in page.errors]
    if page.records:
        try:
            result = UPSERTS[resource](workspace=workspace, records=page.records)
        except (DatabaseError, DomainError, ValueError, TypeError) as error:
            # One bad record must not sink the page: land the records one by one and keep the failures.
            logger.warning("page of %s failed as a batch (%r); landing records one by one", resource, error)
            result = None
            for record in page.records:
                try:
                    one = UPSERTS[resource](workspace=workspace, records=[record])
                except (DatabaseError, DomainError, ValueError, TypeError) as record_error:
                    errors.append(
                        {"resource": resource, "external_id": record.external_id, "reason": str(record_error)[:300]}
                    )
                    continue
                result = one if result is None else result + one
        if result is not None:
            counts["created"] += result.created
            counts["updated"] += result.updated
            counts["skipped"] += result.skipped_stale
    counts["failed"] += len(errors)
    run.errors = (run.errors + errors)[:MAX_ERRORS_KEPT]
    cursor = run.cursor
    if page.max_updated_at:
        known = parse_datetime(cursor["max_updated"].get(resource))
        if known is None or page.max_updated_at > known:
            cursor["max_updated"][resource] = page.max_updated_at.isoformat()
    if page.next_cursor:
        cursor["page"] = page.next_cursor
    else:
        cursor["index"] += 1
        cursor["page"] = None
    run.pages_done += 1
    run.pages_expected = max(run.pages_expected, run.pages_done + (1 if page.next_cursor else 0))
    run.attempts = 0
    run.heartbeat_at = timezone.now()
    run.save(update_fields=["counts", "errors", "cursor", "pages_done", "pages_expected", "attempts", "heartbeat_at"])


def _advance_watermarks(workspace: Workspace, connection: StoreConnection, run: SyncRun) -> None:
    with transaction.atomic():
        locked = StoreConnection.objects.select_for_update().get(workspace=workspace, pk=connection.pk)
        state = dict(locked.sync_state)
        for resource, value in run.cursor.get("max_updated", {}).items():
            known = parse_datetime(state.get(resource))
            new = parse_datetime(value)
            if new and (known is None or new > known):
                state[resource] = new.isoformat()
        locked.sync_state = state
        locked.save(update_fields=["sync_state", "updated_at"])
        connection.sync_state = state


def _failed_page(workspace: Workspace, run: SyncRun, error: ConnectorError) -> SyncRun:
    from integrations.services import connection_record_error

    run.attempts += 1
    connection_record_error(workspace=workspace, connection=run.connection, message=error.message)
    if not error.is_transient or run.attempts >= max_attempts():
        return _finish(
            workspace,
            run,
            status=SyncStatus.FAILED,
            message=f"Stopped after {run.attempts} attempt(s): {error.message} "
            f"Start the sync again to resume from where it stopped.",
        )
    run.status = SyncStatus.RETRYING
    run.retry_at = timezone.now() + retry_delay(run.attempts)
    run.message = f"{error.message} Retrying at {run.retry_at:%H:%M:%S} UTC (attempt {run.attempts + 1})."
    run.save(update_fields=["status", "retry_at", "message", "attempts"])
    return run


def _finish(workspace: Workspace, run: SyncRun, *, status: str, message: str) -> SyncRun:
    run.status = status
    run.message = message
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "message", "finished_at"])
    return run


def _summary(run: SyncRun) -> str:
    parts = []
    for resource, values in run.counts.items():
        landed = values.get("created", 0) + values.get("updated", 0)
        parts.append(
            f"{resource}: {values.get('created', 0)} new, {values.get('updated', 0)} updated"
            if landed
            else f"{resource}: nothing new"
        )
    return "; ".join(parts)


def sync_run_resume(*, workspace: Workspace, run: SyncRun) -> SyncRun:
    """Give a FAILED run another go from its cursor (the button on the health panel)."""
    if run.status != SyncStatus.FAILED or run.kind == SyncKind.RECONCILE:
        raise DomainError("Only a failed sync can be resumed.")
    SyncRun.objects.filter(workspace=workspace, pk=run.pk).update(
        status=SyncStatus.RETRYING, attempts=0, retry_at=timezone.now(), finished_at=None
    )
    run.refresh_from_db()
    transaction.on_commit(lambda: _enqueue(run))
    return run


STALE_AFTER = dt.timedelta(minutes=10)


def runs_due(*, workspace: Workspace) -> list[SyncRun]:
    """Runs to (re)start now: RETRYING ones whose backoff has elapsed, and runs whose worker was lost (RUNNING with
    no page landed for STALE_AFTER, or QUEUED that long: the task never arrived). Those are put back to RETRYING
    with a conditional update, so they resume from their cursor exactly once."""
    now = timezone.now()
    cutoff = now - STALE_AFTER
    SyncRun.objects.filter(workspace=workspace, status=SyncStatus.RUNNING, heartbeat_at__lt=cutoff).exclude(
        kind=SyncKind.RECONCILE
    ).update(status=SyncStatus.RETRYING, retry_at=now, message="The worker running this sync was lost; resuming.")
    SyncRun.objects.filter(workspace=workspace, status=SyncStatus.QUEUED, created_at__lt=cutoff).exclude(
        kind=SyncKind.RECONCILE
    ).update(status=SyncStatus.RETRYING, retry_at=now)
    return list(SyncRun.objects.filter(workspace=workspace, status=SyncStatus.RETRYING, retry_at__lte=now))


def connections_due_for_sync(*, workspace: Workspace) -> list[StoreConnection]:
    now = timezone.now()
    due = []
    for connection in StoreConnection.objects.filter(workspace=workspace, is_paused=False).exclude(
        status=ConnectionStatus.UNINSTALLED
    ):
        if connection.last_sync_at and connection.last_sync_at > now - dt.timedelta(
            minutes=connection.sync_interval_minutes
        ):
            continue
        if SyncRun.objects.filter(
            workspace=workspace,
            connection=connection,
            kind__in=[SyncKind.FULL, SyncKind.INCREMENTAL],
            status__in=[SyncStatus.QUEUED, SyncStatus.RUNNING, SyncStatus.RETRYING],
        ).exists():
            continue
        if SyncRun.objects.filter(
            workspace=workspace,
            connection=connection,
            kind__in=[SyncKind.FULL, SyncKind.INCREMENTAL],
            status=SyncStatus.FAILED,
            finished_at__gt=now - dt.timedelta(minutes=connection.sync_interval_minutes),
        ).exists():
            continue  # a run failed recently: wait one interval before trying again
        due.append(connection)
    return due
