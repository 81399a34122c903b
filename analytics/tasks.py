"""Celery entry points (queue "analytics"). Each takes ids, opens the workspace scope and calls one service."""

import datetime as dt

from celery import shared_task
from django.utils import timezone

from analytics import services
from analytics.models import RollupState
from crm.tasking import workspace_scope

# Today's rollups are refreshed by the minute tick at most this often (orders also refresh their days directly).
REFRESH_EVERY = dt.timedelta(minutes=10)


@shared_task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
def rollups_refresh(workspace_id: int, start: str, end: str) -> int:
    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return 0
        return services.rollups_refresh(
            workspace=workspace, start=dt.date.fromisoformat(start), end=dt.date.fromisoformat(end)
        )


@shared_task
def rollups_rebuild(workspace_id: int) -> int:
    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return 0
        return services.rollups_rebuild(workspace=workspace)


@shared_task
def rollups_refresh_if_due(workspace_id: int) -> int:
    """Minute tick: when the last refresh is older than REFRESH_EVERY, refresh today, yesterday and the days of
    any order or cart changed since."""
    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return 0
        state = RollupState.objects.filter(workspace=workspace).first()
        if state is None or state.last_refreshed_at is None:
            return 0  # never built: the dashboard or the nightly run builds it in full
        if timezone.now() - state.last_refreshed_at < REFRESH_EVERY:
            return 0
        return services.rollups_refresh_changed(workspace=workspace)


@shared_task
def predictions_fit(workspace_id: int) -> str:
    from analytics.predictive_services import predictions_fit as fit

    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return "gone"
        return fit(workspace=workspace).status


@shared_task
def nightly(workspace_id: int) -> None:
    """03:10 UTC: rebuild rollups if never built, else refresh the last three days; then refit the models."""
    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return
        state = RollupState.objects.filter(workspace=workspace).first()
        if state is None or state.last_refreshed_at is None:
            services.rollups_rebuild(workspace=workspace)
        else:
            services.rollups_refresh_recent(workspace=workspace, days=3)
    predictions_fit(workspace_id)
