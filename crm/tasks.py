"""Periodic entry points. The schedule itself is CELERY_BEAT_SCHEDULE in crm/settings.py.

``minute_tick`` fans out the per-workspace work that is due; ``nightly`` the bulk recomputations. Each app adds
its own due-work call below, so the whole periodic plan can be read in one place.
"""

import logging

from celery import chain, shared_task

from crm.models import Invitation, Workspace
from crm.tasking import workspace_scope

logger = logging.getLogger(__name__)


@shared_task
def minute_tick() -> None:
    """Every minute: each app's due work for each workspace, as separate tasks on their own queues."""
    from analytics.tasks import rollups_refresh_if_due
    from campaigns.tasks import tick as campaigns_tick
    from integrations.tasks import integrations_minute_tick
    from segments.tasks import segments_refresh_due
    from support.tasks import support_minute_tick

    for workspace_id in Workspace.objects.values_list("id", flat=True):
        support_minute_tick.delay(workspace_id)  # support: NPS for new orders, send due CSAT/NPS surveys
        campaigns_tick.delay(workspace_id)  # campaigns: scheduled sends, A/B winners, stale claims, flows, attribution
        segments_refresh_due.delay(workspace_id)  # segments: refresh dynamic segments whose data moved (<= 15 min)
        integrations_minute_tick.delay(workspace_id)  # integrations: due syncs, daily reconcile, abandoned carts
        rollups_refresh_if_due.delay(workspace_id)  # analytics: the days whose data changed; group charts every 15 min


@shared_task
def nightly() -> None:
    """Nightly, per workspace, in this order: customer stats, then RFM and segments (which read the stats), then
    analytics rollups and the CLV fit (which read both). A chain, so each step starts when the previous ended."""
    from analytics.tasks import nightly as analytics_nightly
    from customers.tasks import customer_stats_refresh_all
    from segments.tasks import segments_nightly

    for workspace_id in Workspace.objects.values_list("id", flat=True):
        chain(
            customer_stats_refresh_all.si(workspace_id),
            segments_nightly.si(workspace_id),
            analytics_nightly.si(workspace_id),
        ).delay()


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def invitation_send(*, workspace_id: int, invitation_id: int) -> None:
    """Email an invitation. SMTP hiccups (OSError) are retried with backoff."""
    from crm import services

    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return
        invitation = Invitation.objects.filter(pk=invitation_id).select_related("invited_by").first()
        if invitation is None or not invitation.is_pending:
            return
        services.invitation_send(workspace=workspace, invitation=invitation)
