"""Periodic entry points. The schedule itself is CELERY_BEAT_SCHEDULE in crm/settings.py.

``minute_tick`` fans out the per-workspace work that is due; ``nightly`` the bulk recomputations. Each app adds
its own due-work call below, so the whole periodic plan can be read in one place.
"""

import logging

from celery import shared_task

from crm.models import Invitation, Workspace
from crm.tasking import workspace_scope

logger = logging.getLogger(__name__)


@shared_task
def minute_tick() -> None:
    for workspace_id in Workspace.objects.values_list("id", flat=True):
        logger.debug("minute tick for workspace %s", workspace_id)
        from support.tasks import support_minute_tick

        support_minute_tick.delay(workspace_id)  # support: NPS for new orders, send due CSAT/NPS surveys
        from campaigns.tasks import tick as campaigns_tick

        campaigns_tick.delay(workspace_id)  # campaigns: scheduled sends, A/B winners, stale claims, flows, attribution
        from segments.tasks import segments_refresh_due

        segments_refresh_due.delay(workspace_id)  # segments: refresh dynamic segments whose data moved (<= 15 min)
        from integrations.tasks import integrations_minute_tick

        integrations_minute_tick.delay(workspace_id)  # integrations: resume/schedule syncs, daily reconcile, abandoned carts
        from analytics.tasks import rollups_refresh_if_due

        rollups_refresh_if_due.delay(workspace_id)  # analytics: today's and yesterday's rollups, at most every 10 min


@shared_task
def nightly() -> None:
    for workspace_id in Workspace.objects.values_list("id", flat=True):
        logger.debug("nightly work for workspace %s", workspace_id)
        from customers.tasks import customer_stats_refresh_all

        customer_stats_refresh_all.delay(workspace_id)  # customers: recompute order stats in bulk SQL (before RFM)
        from segments.tasks import segments_nightly

        segments_nightly.delay(workspace_id)  # segments: RFM rescore, then refresh every dynamic segment
        from analytics.tasks import nightly as analytics_nightly

        analytics_nightly.delay(workspace_id)  # analytics: rollups of the last 3 days (all if never built), refit CLV


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
