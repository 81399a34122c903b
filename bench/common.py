"""Helpers shared by the benchmarks: a throwaway workspace and a median timer."""

import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django_scopes import scope, scopes_disabled


@contextmanager
def throwaway_workspace(prefix: str = "bench") -> Iterator:
    from crm.models import Workspace

    workspace = Workspace.objects.create(name=f"{prefix} workspace", slug=f"{prefix}-{uuid.uuid4().hex[:8]}")
    try:
        with scope(workspace=workspace):
            yield workspace
    finally:
        workspace_drop(workspace)


def workspace_drop(workspace) -> None:
    """Delete a benchmark workspace with one DELETE per table. Django's cascade collects every related row in
    Python first, which takes many minutes for a million customers. Foreign keys are deferred to the commit."""
    from django.apps import apps
    from django.db import connection, transaction

    from crm.models import User

    with scopes_disabled(), transaction.atomic(), connection.cursor() as cursor:
        for model in apps.get_models():
            if any(field.name == "workspace" and field.is_relation for field in model._meta.fields):
                cursor.execute(f'DELETE FROM "{model._meta.db_table}" WHERE workspace_id = %s', [workspace.pk])
        User.objects.filter(last_workspace=workspace).update(last_workspace=None)
        cursor.execute('DELETE FROM "crm_workspace" WHERE id = %s', [workspace.pk])


def median_ms(function: Callable[[], object], *, repeat: int = 5, setup: Callable[[], object] | None = None) -> float:
    samples = []
    for _ in range(repeat):
        if setup:
            setup()
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def row(benchmark: str, *, n: int, median: float, baseline: float | None = None, target: str = "") -> dict:
    return {
        "benchmark": benchmark,
        "n": n,
        "median_ms": median,
        "baseline_ms": baseline,
        "ratio": (baseline / median) if baseline and median else None,
        "target": target,
    }
