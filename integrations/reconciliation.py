"""Daily reconciliation: compare order counts and totals per day between the store and the CRM, and backfill the
days that differ (WooCommerce never retries a failed webhook and disables it after a few failures; any platform can
miss events). The result is a SyncRun of kind ``reconcile`` whose ``details`` the health panel shows."""

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from crm.exceptions import DomainError
from crm.models import Workspace
from customers import services as customer_services
from customers.models import Order
from integrations.connectors import ConnectorError, connector_for
from integrations.models import StoreConnection, SyncKind, SyncRun, SyncStatus

DEFAULT_DAYS = 7


def _day_bounds(workspace: Workspace, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time.min, tzinfo=workspace.tzinfo)
    return start, start + dt.timedelta(days=1)


def crm_orders_by_day(*, workspace: Workspace, source: str, start: dt.datetime, end: dt.datetime) -> dict:
    rows = (
        Order.objects.filter(workspace=workspace, source=source, placed_at__gte=start, placed_at__lt=end)
        .annotate(day=TruncDate("placed_at", tzinfo=workspace.tzinfo))
        .values("day")
        .annotate(count=Count("id"), total=Sum("total"))
        .order_by("day")
    )
    return {row["day"]: (row["count"], row["total"] or Decimal("0")) for row in rows}


def connection_reconcile(
    *, workspace: Workspace, connection: StoreConnection, days: int = DEFAULT_DAYS, today: dt.date | None = None
) -> SyncRun:
    """Compare the ``days`` whole days before today (workspace time), repair the ones that differ."""
    if connection.platform not in ("shopify", "woocommerce"):
        raise DomainError("Unknown platform.")
    today = today or workspace.today()
    first_day = today - dt.timedelta(days=days)
    start, _ = _day_bounds(workspace, first_day)
    end, _ = _day_bounds(workspace, today)
    run = SyncRun.objects.create(
        workspace=workspace,
        connection=connection,
        kind=SyncKind.RECONCILE,
        status=SyncStatus.RUNNING,
        started_at=timezone.now(),
        pages_expected=days,
    )
    try:
        connector = connector_for(connection)
    except (ConnectorError, DomainError) as error:
        return _finish(run, SyncStatus.FAILED, error.message)
    try:
        store: dict[dt.date, list] = defaultdict(lambda: [0, Decimal("0")])
        for _, created_at, total in connector.orders_created_between(start, end):
            day = timezone.localtime(created_at, workspace.tzinfo).date()
            store[day][0] += 1
            store[day][1] += total
        crm = crm_orders_by_day(workspace=workspace, source=connection.source, start=start, end=end)
        rows = []
        repaired_orders = 0
        for offset in range(days):
            day = first_day + dt.timedelta(days=offset)
            store_count, store_total = store.get(day, (0, Decimal("0")))
            crm_count, crm_total = crm.get(day, (0, Decimal("0")))
            row = {
                "date": day.isoformat(),
                "store_count": store_count,
                "store_total": str(store_total),
                "crm_count": crm_count,
                "crm_total": str(crm_total),
                "differs": False,
                "repaired": False,
            }
            if (store_count, store_total) != (crm_count, crm_total):
                row["differs"] = True
                day_start, day_end = _day_bounds(workspace, day)
                result = customer_services.orders_bulk_upsert(
                    workspace=workspace, records=list(connector.orders_full_between(day_start, day_end))
                )
                repaired_orders += result.created + result.updated
                after = crm_orders_by_day(
                    workspace=workspace, source=connection.source, start=day_start, end=day_end
                ).get(day, (0, Decimal("0")))
                row.update(
                    crm_count_after=after[0],
                    crm_total_after=str(after[1]),
                    repaired=(after[0], after[1]) == (store_count, store_total),
                    orders_backfilled=result.created + result.updated,
                )
            rows.append(row)
            run.pages_done = offset + 1
    except ConnectorError as error:
        return _finish(run, SyncStatus.FAILED, error.message)
    finally:
        connector.close()
    differing = [row for row in rows if row["differs"]]
    unresolved = [row for row in differing if not row["repaired"]]
    run.details = {
        "days": rows,
        "first_day": first_day.isoformat(),
        "last_day": (today - dt.timedelta(days=1)).isoformat(),
    }
    run.counts = {"orders": {"created": repaired_orders, "updated": 0, "skipped": 0, "failed": 0}}
    if not differing:
        message = f"All {days} days match the store."
    elif not unresolved:
        message = f"{len(differing)} day(s) differed and were repaired ({repaired_orders} orders backfilled)."
    else:
        message = (
            f"{len(differing)} day(s) differed; {len(unresolved)} still differ after backfill "
            f"(orders deleted in the store stay in the CRM)."
        )
    return _finish(run, SyncStatus.DONE, message)


def _finish(run: SyncRun, status: str, message: str) -> SyncRun:
    run.status = status
    run.message = message
    run.finished_at = timezone.now()
    run.save()
    return run


def connections_due_for_reconciliation(*, workspace: Workspace) -> list[StoreConnection]:
    """Once a day per active connection (the minute tick asks; the last run's start decides)."""
    since = timezone.now() - dt.timedelta(hours=24)
    due = []
    for connection in StoreConnection.objects.filter(workspace=workspace, is_paused=False, last_sync_at__isnull=False):
        if not SyncRun.objects.filter(
            workspace=workspace, connection=connection, kind=SyncKind.RECONCILE, created_at__gte=since
        ).exists():
            due.append(connection)
    return due
