"""Celery entry points: take ids, open the workspace scope, call the service of the same name."""

from celery import shared_task

from crm.tasking import workspace_scope
from segments import services
from segments.models import Segment


@shared_task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
def rfm_rescore(workspace_id: int) -> None:
    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return
        services.rfm_rescore(workspace=workspace)


@shared_task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
def segment_refresh(workspace_id: int, segment_id: int) -> None:
    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return
        segment = Segment.objects.filter(workspace=workspace, pk=segment_id).first()
        if segment is None:
            return
        services.segment_refresh(workspace=workspace, segment=segment)


@shared_task
def segments_nightly(workspace_id: int) -> None:
    """Rescore RFM, then refresh every dynamic segment (their rules may read RFM groups and relative dates)."""
    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return
        services.rfm_rescore(workspace=workspace)
        services.segments_refresh_all(workspace=workspace)


@shared_task
def segments_refresh_due(workspace_id: int) -> None:
    """From the minute tick: refresh the dynamic segments whose data moved since they were last evaluated."""
    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return
        for segment_id in services.segments_refresh_due(workspace=workspace):
            segment_refresh.delay(workspace_id, segment_id)
