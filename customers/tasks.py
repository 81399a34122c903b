"""Celery entry points of the customers app: take ids, open the workspace scope, call the service."""

import logging

from celery import shared_task
from django.utils import timezone

from crm.tasking import workspace_scope

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def import_run(workspace_id: int, import_id: int) -> None:
    from customers import imports
    from customers.models import ImportJob

    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return
        job = ImportJob.objects.filter(workspace=workspace, pk=import_id).first()
        if job is None:
            return
        try:
            imports.import_run(workspace=workspace, job=job)
        except Exception:
            # The job must not look "running" forever: the user sees it failed (valid batches already saved stay).
            logger.exception("import %s of workspace %s failed", import_id, workspace_id)
            ImportJob.objects.filter(pk=import_id, status=ImportJob.Status.RUNNING).update(
                status=ImportJob.Status.FAILED,
                finished_at=timezone.now(),
                message="The import stopped on an unexpected error; rows imported before it are kept.",
            )
            raise


@shared_task
def customer_stats_refresh_all(workspace_id: int) -> None:
    from customers.services import customer_stats_refresh

    with workspace_scope(workspace_id) as workspace:
        if workspace is not None:
            customer_stats_refresh(workspace=workspace)
