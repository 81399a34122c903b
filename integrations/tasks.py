"""Celery entry points of the integrations app (routed to the ``sync`` queue). Each takes ids, opens the workspace
scope and calls the service of the same name."""

import logging

from celery import shared_task

from crm.tasking import workspace_scope

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def sync_run_execute(workspace_id: int, run_id: int) -> None:
    from integrations import sync
    from integrations.models import SyncRun

    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return
        run = SyncRun.objects.filter(workspace=workspace, pk=run_id).select_related("connection").first()
        if run is None:
            return
        sync.sync_run_execute(workspace=workspace, run=run)


@shared_task(acks_late=True)
def webhook_process(workspace_id: int, delivery_id: int) -> None:
    from integrations import webhooks
    from integrations.models import WebhookDelivery

    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return
        delivery = (
            WebhookDelivery.objects.filter(workspace=workspace, pk=delivery_id).select_related("connection").first()
        )
        if delivery is None:
            return
        webhooks.webhook_process(workspace=workspace, delivery=delivery)


@shared_task(acks_late=True)
def connection_reconcile(workspace_id: int, connection_id: int) -> None:
    from integrations import reconciliation
    from integrations.models import StoreConnection

    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return
        connection = StoreConnection.objects.filter(workspace=workspace, pk=connection_id).first()
        if connection is None:
            return
        reconciliation.connection_reconcile(workspace=workspace, connection=connection)


@shared_task
def integrations_minute_tick(workspace_id: int) -> None:
    """Due work of one workspace: resume retrying syncs, start scheduled incremental syncs, the daily
    reconciliation, and turn stale checkouts into abandoned carts."""
    import datetime as dt

    from customers import services as customer_services
    from integrations import reconciliation, sync, webhooks
    from integrations.models import StorefrontTracking, SyncKind

    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return
        for run in sync.runs_due(workspace=workspace):
            sync_run_execute.delay(workspace_id, run.pk)
        for connection in sync.connections_due_for_sync(workspace=workspace):
            sync.sync_run_start(workspace=workspace, connection=connection, kind=SyncKind.INCREMENTAL)
        for delivery_id in webhooks.deliveries_stuck(workspace=workspace):
            webhook_process.delay(workspace_id, delivery_id)
        for connection in reconciliation.connections_due_for_reconciliation(workspace=workspace):
            connection_reconcile.delay(workspace_id, connection.pk)
        # Carts can come from any source (stores, tracking, imports): stale ones are abandoned whatever made them.
        tracking = StorefrontTracking.objects.filter(workspace=workspace).first()
        delay = dt.timedelta(minutes=tracking.abandoned_cart_delay_minutes if tracking else 60)
        customer_services.carts_mark_abandoned(workspace=workspace, older_than=delay)
