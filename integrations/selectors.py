"""Reads of the integrations app, shaped for the Integrations page and its health panels."""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q
from django.http import Http404
from django.utils import timezone

from crm.models import Workspace
from integrations.models import StoreConnection, StorefrontTracking, SyncKind, SyncRun, WebhookDelivery


def connection_list(*, workspace: Workspace) -> list[StoreConnection]:
    return list(StoreConnection.objects.filter(workspace=workspace).order_by("created_at"))


def connection_get(*, workspace: Workspace, connection_id: int) -> StoreConnection:
    connection = StoreConnection.objects.filter(workspace=workspace, pk=connection_id).first()
    if connection is None:
        raise Http404("No such connection")
    return connection


def sync_run_get(*, workspace: Workspace, connection: StoreConnection, run_id: int) -> SyncRun:
    run = SyncRun.objects.filter(workspace=workspace, connection=connection, pk=run_id).first()
    if run is None:
        raise Http404("No such sync run")
    return run


def connection_by_webhook_token(*, platform: str, token: str) -> StoreConnection | None:
    """The connection a webhook URL names. Looked up across workspaces: the token is the secret part of the URL."""
    from django_scopes import scopes_disabled

    with scopes_disabled():
        return (
            StoreConnection.objects.select_related("workspace").filter(platform=platform, webhook_token=token).first()
        )


@dataclass(frozen=True, kw_only=True)
class Health:
    connection: StoreConnection
    latest_sync: SyncRun | None
    latest_reconcile: SyncRun | None
    deliveries_24h: int
    deliveries_failed_24h: int
    level: str  # success / warning / danger / secondary
    headline: str


def connection_health(*, workspace: Workspace, connection: StoreConnection) -> Health:
    runs = SyncRun.objects.filter(workspace=workspace, connection=connection).order_by("-created_at")
    latest_sync = runs.exclude(kind=SyncKind.RECONCILE).first()
    latest_reconcile = runs.filter(kind=SyncKind.RECONCILE).first()
    since = timezone.now() - dt.timedelta(hours=24)
    stats = WebhookDelivery.objects.filter(
        workspace=workspace, connection=connection, received_at__gte=since
    ).aggregate(total=Count("id"), failed=Count("id", filter=Q(status=WebhookDelivery.Status.FAILED)))
    if connection.status == "uninstalled":
        level, headline = "danger", "The app was uninstalled from the store"
    elif connection.is_paused:
        level, headline = "secondary", "Paused: no syncs and webhooks are ignored"
    elif connection.status == "failing" or (latest_sync and latest_sync.status == "failed"):
        level, headline = "danger", connection.last_error or (latest_sync.message if latest_sync else "Failing")
    elif latest_sync and latest_sync.is_running:
        level, headline = "info", "Syncing"
    elif (
        latest_reconcile
        and latest_reconcile.details
        and any(row["differs"] and not row["repaired"] for row in latest_reconcile.details.get("days", []))
    ):
        level, headline = "warning", "Reconciliation found days that still differ"
    elif connection.last_sync_at:
        level, headline = "success", "Healthy"
    else:
        level, headline = "secondary", "Not synced yet"
    return Health(
        connection=connection,
        latest_sync=latest_sync,
        latest_reconcile=latest_reconcile,
        deliveries_24h=stats["total"],
        deliveries_failed_24h=stats["failed"],
        level=level,
        headline=headline,
    )


def sync_run_list(*, workspace: Workspace, connection: StoreConnection, limit: int = 15) -> list[SyncRun]:
    return list(SyncRun.objects.filter(workspace=workspace, connection=connection).order_by("-created_at")[:limit])


def webhook_delivery_list(
    *, workspace: Workspace, connection: StoreConnection, limit: int = 20
) -> list[WebhookDelivery]:
    return list(
        WebhookDelivery.objects.filter(workspace=workspace, connection=connection)
        .defer("payload")
        .order_by("-received_at")[:limit]
    )


def tracking_get(*, workspace: Workspace) -> StorefrontTracking | None:
    return StorefrontTracking.objects.filter(workspace=workspace).first()


@dataclass(frozen=True, kw_only=True)
class StorefrontSummary:
    store_link: str  # the customer's page in the store's own admin, when they came from a connected store
    store_name: str
    counts: dict[str, int]  # tracked event type -> count over the last 30 days
    last_seen_at: dt.datetime | None


def customer_storefront_summary(*, workspace: Workspace, customer) -> StorefrontSummary:
    from django.db.models import Max

    from customers.models import Event

    store_link = store_name = ""
    if customer.source in ("shopify", "woocommerce") and customer.external_id and customer.external_id.isdigit():
        connection = StoreConnection.objects.filter(workspace=workspace, platform=customer.source).first()
        if connection is not None:
            store_name = connection.name
            store_link = (
                f"{connection.base_url}/admin/customers/{customer.external_id}"
                if connection.platform == "shopify"
                else f"{connection.base_url}/wp-admin/user-edit.php?user_id={customer.external_id}"
            )
    since = timezone.now() - dt.timedelta(days=30)
    tracked = Event.objects.filter(workspace=workspace, customer=customer, source="tracking")
    counts = dict(
        tracked.filter(occurred_at__gte=since).values_list("type").annotate(n=Count("id")).values_list("type", "n")
    )
    last_seen = tracked.aggregate(last=Max("occurred_at"))["last"]
    return StorefrontSummary(store_link=store_link, store_name=store_name, counts=counts, last_seen_at=last_seen)
