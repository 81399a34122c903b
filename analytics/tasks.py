"""Celery entry points (queue "analytics"). Each takes ids, opens the workspace scope and calls one service."""

import datetime as dt

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from analytics import services
from analytics.models import RollupState
from crm.tasking import workspace_scope

# The minute tick refreshes the days that changed (analytics.services.rollups_dirty_days) once a minute; a little
# under a minute so the beat's jitter never skips a tick.
REFRESH_EVERY = dt.timedelta(seconds=50)


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
    """Minute tick: refresh the days whose orders, carts or storefront events changed since the last refresh, and
    every GROUP_FIGURES_EVERY the stored charts by customer group.
    The workspace's RollupState row is locked for the run; a tick that finds it locked (the previous one still
    running) skips rather than queueing up behind it."""
    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return 0
        with transaction.atomic():
            state = RollupState.objects.select_for_update(skip_locked=True).filter(workspace=workspace).first()
            if state is None or state.last_refreshed_at is None:
                return 0  # never built (the dashboard or the nightly run builds it in full), or being refreshed
            if timezone.now() - state.last_refreshed_at < REFRESH_EVERY:
                return 0
            days = services.rollups_refresh_changed(workspace=workspace)
            services.group_figures_refresh_if_due(workspace=workspace)
            return days


@shared_task
def predictions_fit(workspace_id: int) -> str:
    from analytics.predictive_services import predictions_fit as fit

    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return "gone"
        return fit(workspace=workspace).status


@shared_task
def nightly(workspace_id: int) -> None:
    """03:10 UTC: rebuild rollups if never built, else refresh the last three days; store the charts by customer
    group; then refit the models."""
    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return
        state = RollupState.objects.filter(workspace=workspace).first()
        if state is None or state.last_refreshed_at is None:
            services.rollups_rebuild(workspace=workspace)
        else:
            services.rollups_refresh_recent(workspace=workspace, days=3)
        services.group_figures_refresh(workspace=workspace)  # RFM groups were just rescored
    predictions_fit(workspace_id)
