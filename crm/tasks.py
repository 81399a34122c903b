"""Periodic entry points. The schedule itself is CELERY_BEAT_SCHEDULE in crm/settings.py.

``minute_tick`` fans out the per-workspace work that is due; ``nightly`` the bulk recomputations. Each app adds
its own due-work call below, so the whole periodic plan can be read in one place.
"""

import logging

from celery import shared_task

from crm.models import Workspace

logger = logging.getLogger(__name__)


@shared_task
def minute_tick() -> None:
    for workspace_id in Workspace.objects.values_list("id", flat=True):
        logger.debug("minute tick for workspace %s", workspace_id)
        from support.tasks import support_minute_tick

        support_minute_tick.delay(workspace_id)  # support: NPS for new orders, send due CSAT/NPS surveys


@shared_task
def nightly() -> None:
    for workspace_id in Workspace.objects.values_list("id", flat=True):
        logger.debug("nightly work for workspace %s", workspace_id)
