import datetime as dt

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from analytics import tasks
from analytics.models import DailyMetrics, ModelFit, RollupState
from crm.tasks import nightly
from tests.factories import OrderFactory


def _orders_on(workspace, day: dt.date) -> int:
    with scope(workspace=workspace):
        row = DailyMetrics.objects.filter(date=day).first()
        return row.orders if row else 0


def test_nightly_hook_builds_rollups_and_fits(workspace):
    yesterday = timezone.now() - dt.timedelta(days=1)
    OrderFactory(workspace=workspace, placed_at=yesterday)

    nightly()  # crm's nightly fans out to every app; tasks run eagerly here

    assert _orders_on(workspace, timezone.localtime(yesterday, workspace.tzinfo).date()) == 1
    with scope(workspace=workspace):
        assert ModelFit.objects.get().status == ModelFit.Status.TOO_LITTLE_HISTORY


def test_minute_tick_picks_up_a_backfilled_old_order(workspace):
    # given rollups built, then an order from last year imported 20 minutes later
    OrderFactory(workspace=workspace, placed_at=timezone.now() - dt.timedelta(days=2))
    tasks.rollups_rebuild(workspace.id)
    with scope(workspace=workspace):
        RollupState.objects.update(last_refreshed_at=timezone.now() - dt.timedelta(minutes=20))
    old = dt.datetime(2025, 6, 10, 12, tzinfo=dt.UTC)
    OrderFactory(workspace=workspace, placed_at=old)

    tasks.rollups_refresh_if_due(workspace.id)

    assert _orders_on(workspace, dt.date(2025, 6, 10)) == 1


def test_minute_tick_waits_until_due(workspace):
    OrderFactory(workspace=workspace, placed_at=timezone.now() - dt.timedelta(days=2))
    tasks.rollups_rebuild(workspace.id)
    OrderFactory(workspace=workspace, placed_at=dt.datetime(2025, 6, 10, 12, tzinfo=dt.UTC))

    assert tasks.rollups_refresh_if_due(workspace.id) == 0
    assert _orders_on(workspace, dt.date(2025, 6, 10)) == 0


def test_tasks_return_quietly_for_a_deleted_workspace(db):
    assert tasks.rollups_refresh(987654, "2025-01-01", "2025-01-02") == 0
    assert tasks.predictions_fit(987654) == "gone"


@pytest.mark.django_db(transaction=True)
def test_refresh_runs_in_a_real_celery_worker(workspace, celery_worker):
    # given an order, and the refresh task published to Redis and run by a separate worker process
    day = dt.date(2025, 5, 4)
    OrderFactory(workspace=workspace, placed_at=dt.datetime(2025, 5, 4, 15, tzinfo=dt.UTC), total=12, net_total=12)

    result = tasks.rollups_refresh.delay(workspace.id, "2025-05-01", "2025-05-31")

    deadline = timezone.now() + dt.timedelta(seconds=30)
    while timezone.now() < deadline and not _orders_on(workspace, day):
        import time

        time.sleep(0.3)
    assert _orders_on(workspace, day) == 1, celery_worker.output()
    assert result.id
    with scopes_disabled():
        assert DailyMetrics.objects.get(workspace=workspace, date=day).revenue == 12
