"""Storefront tracking ingestion through the whole Django stack (middleware, key lookup, validation, rate limit,
bulk insert), batches of 100 events as the snippet sends them, against a baseline of one event per request.

Target (issue 4): at least 2,000 events/s on this machine. The requests go through Django's WSGI handler in-process
(no socket), so the figure is the application's own throughput.
"""

import json
import time
import uuid

from django.conf import settings
from django.test import Client
from django.utils import timezone

from bench.common import row, throwaway_workspace

FULL_SIZE = 20_000
BATCH = 100
BASELINE_SAMPLE = 300


def _events(count: int, visitors: int = 200) -> list[dict]:
    now = timezone.now().isoformat()
    kinds = ["page_viewed", "product_viewed", "added_to_cart", "page_viewed"]
    return [
        {
            "type": kinds[i % len(kinds)],
            "anonymous_id": f"a_bench{i % visitors:010d}",
            "timestamp": now,
            "message_id": uuid.uuid4().hex,
            "properties": {"path": f"/products/{i % 50}", "product_id": str(i % 50)},
        }
        for i in range(count)
    ]


def _post(client: Client, key: str, events: list[dict]) -> None:
    response = client.post(
        f"/t/{key}/batch",
        data=json.dumps({"batch": events}),
        content_type="text/plain",
        HTTP_ORIGIN="https://shop.example.com",
    )
    if response.status_code != 202:
        raise RuntimeError(f"ingestion refused: {response.status_code} {response.content[:200]!r}")


def run(args) -> list[dict]:
    import os

    from customers.models import Event
    from integrations import services

    settings.DEBUG = False  # no query log growing in memory
    settings.TRACKING_EVENTS_PER_MINUTE = 10_000_000
    n = max(2_000, int(FULL_SIZE * args.scale))
    client = Client()
    rows = []
    load = os.getloadavg()[0]
    with throwaway_workspace("bench-tracking") as workspace:
        key = services.tracking_get_or_create(workspace=workspace).public_key
        _post(client, key, _events(10))  # warm up: imports, caches, first connection

        sample = _events(BASELINE_SAMPLE)
        started = time.perf_counter()
        for event in sample:
            _post(client, key, [event])
        per_event_s = (time.perf_counter() - started) / BASELINE_SAMPLE

        for batch in (BATCH, 500):
            events = _events(n)
            before = Event.objects.filter(workspace=workspace, source="tracking").count()
            started = time.perf_counter()
            for offset in range(0, n, batch):
                _post(client, key, events[offset : offset + batch])
            elapsed = time.perf_counter() - started
            stored = Event.objects.filter(workspace=workspace, source="tracking").count() - before
            rows.append(
                row(
                    f"tracking ingest, batches of {batch}: {n / elapsed:,.0f} events/s "
                    f"({stored:,} stored, load {load:.1f})",
                    n=n,
                    median=elapsed * 1000,
                    baseline=per_event_s * n * 1000,
                    target=">= 2,000 events/s",
                )
            )
    return rows
