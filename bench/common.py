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
        with scopes_disabled():
            workspace.delete()


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
