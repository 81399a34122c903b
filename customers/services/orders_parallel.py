"""A bulk orders load on several PostgreSQL connections at once, the way ``pg_restore -j`` restores.

One batch on one connection leaves the machine mostly idle: the server runs one statement at a time on one core,
and while it commits (the deferred key checks) or Python builds the next COPY, nothing else happens. Here the
calling thread reads the input lazily and hands each batch to one of ``ORDERS_UPSERT_CONNECTIONS`` threads, each
with its own Django connection; every batch is still its own transaction, written by the same function as on the
sequential path (``_orders_upsert_batch``), so one backend writes while another commits.

Only outside a transaction (``orders_upsert_connections``): a caller's transaction must see and own every row it
writes, and another connection can neither see its uncommitted rows nor be rolled back with it.

Concurrency. Two batches of one load never run at the same time when they share an order key: the calling thread
holds a batch back until every batch in flight that shares a key with it has finished. Such a key is therefore
written in the input's order, as on the sequential path: the newest ``updated_at`` wins, and the order events (the
first version of an order records ``order_placed``) are the same. What concurrent batches can still share is a
customer that does not exist yet: both create it through ``customers_bulk_upsert`` (``INSERT ... ON CONFLICT``, so
the second waits for the first and then updates it; never a duplicate). Two such customers created by two batches
in opposite orders deadlock, and the order they are inserted in cannot be proven the same in both (guest customers
come from an unordered ``DISTINCT``), so we chose to retry rather than to prove: a batch that fails with a deadlock
(PostgreSQL aborts one of the two after ``deadlock_timeout``) or a unique violation is rolled back as a whole and
run again once the batches in flight have finished, with no other batch of the load beside it. A batch that fails
alone as well, or fails with anything else, stops the load: the batches in flight finish, no new one starts, and
the first error is raised to the caller.
"""

import logging
import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from typing import Protocol

import psycopg.errors
from django.conf import settings
from django.db import DatabaseError, connection
from django_scopes import scope

from crm.models import Workspace
from customers.records import OrderRecord, UpsertResult
from customers.services._common import _latest_per_key
from customers.services.orders_postgres import analyze_stale_lookup_tables

logger = logging.getLogger(__name__)

# Attempts of a batch alone after it lost a race with a concurrent batch. Alone, it can only lose again to a writer
# outside this load (a webhook, another sync).
RETRIES_ALONE = 2
# What a concurrent batch of the same load can cause, and a run of the same batch alone does not.
RACE_ERRORS = (psycopg.errors.DeadlockDetected, psycopg.errors.UniqueViolation)


def _is_race(error: Exception) -> bool:
    # Errors arrive as Django's, caused by psycopg's (the batch's own statements run on psycopg's cursor but inside
    # Django's error wrapper); a raw psycopg error is accepted too.
    return isinstance(error, RACE_ERRORS) or isinstance(error.__cause__, RACE_ERRORS)


class BatchUpsert(Protocol):
    def __call__(self, *, workspace: Workspace, records: list[OrderRecord], touched: set[int]) -> UpsertResult: ...


def orders_upsert_connections() -> int:
    """Connections a bulk orders load may use now: ``ORDERS_UPSERT_CONNECTIONS`` on PostgreSQL outside a
    transaction, else 1 (the sequential path on the caller's connection)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    return max(1, settings.ORDERS_UPSERT_CONNECTIONS)


def orders_upsert_parallel(
    *,
    workspace: Workspace,
    batches: Iterable[list[OrderRecord]],
    connections: int,
    upsert_batch: BatchUpsert,
    touched: set[int],
) -> UpsertResult:
    """Upsert ``batches`` (read lazily) on ``connections`` threads; add every customer whose orders changed to
    ``touched``. A single batch is written here, on the caller's connection, as on the sequential path."""
    iterator = iter(batches)
    first = next(iterator, None)
    if first is None:
        return UpsertResult()
    second = next(iterator, None)
    if second is None:
        if len(first) >= 1000:
            analyze_stale_lookup_tables()
        return upsert_batch(workspace=workspace, records=_latest_per_key(first), touched=touched)
    load = _ParallelLoad(workspace=workspace, upsert_batch=upsert_batch, connections=connections)
    return load.run(chain([first, second], iterator), touched=touched)


@dataclass(eq=False)
class _Batch:
    records: list[OrderRecord]
    keys: frozenset[tuple[str, str]]
    done: threading.Event = field(default_factory=threading.Event)


class _Gate:
    """Batches pass together; a retry passes alone, once the batches that passed have finished (and none new
    passes while it waits)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._running = 0
        self._alone_waiting = 0
        self._alone = False

    @contextmanager
    def together(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._alone and not self._alone_waiting)
            self._running += 1
        try:
            yield
        finally:
            with self._condition:
                self._running -= 1
                self._condition.notify_all()

    @contextmanager
    def alone(self) -> Iterator[None]:
        with self._condition:
            self._alone_waiting += 1
            self._condition.wait_for(lambda: not self._alone and not self._running)
            self._alone_waiting -= 1
            self._alone = True
        try:
            yield
        finally:
            with self._condition:
                self._alone = False
                self._condition.notify_all()


class _ParallelLoad:
    def __init__(self, *, workspace: Workspace, upsert_batch: BatchUpsert, connections: int) -> None:
        self.workspace = workspace
        self.upsert_batch = upsert_batch
        self.connections = connections
        # The hand-off holds one batch: with one in each thread and the one being read, connections + 2 batches
        # are in memory at most, however long the input.
        self.handoff: queue.Queue[_Batch | None] = queue.Queue(maxsize=1)
        self.gate = _Gate()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.result = UpsertResult()
        self.touched: set[int] = set()
        self.errors: list[BaseException] = []

    def run(self, batches: Iterable[list[OrderRecord]], *, touched: set[int]) -> UpsertResult:
        threads = [
            threading.Thread(target=self._work, name=f"orders-upsert-{number}", daemon=True)
            for number in range(self.connections)
        ]
        for thread in threads:
            thread.start()
        try:
            self._hand_out(batches)
        except BaseException:
            self.stop.set()  # the input failed: the batches handed out but not started are dropped
            raise
        finally:
            for _ in threads:
                self.handoff.put(None)
            for thread in threads:
                thread.join()
        if self.errors:
            first, *others = self.errors
            for other in others:
                first.add_note(f"another batch of the same load failed too: {other!r}")
            raise first
        touched |= self.touched
        return self.result

    def _hand_out(self, batches: Iterable[list[OrderRecord]]) -> None:
        in_flight: list[_Batch] = []
        for records in batches:
            if self.stop.is_set():
                return
            latest = _latest_per_key(records)
            batch = _Batch(records=latest, keys=frozenset((r.source, r.external_id) for r in latest))
            in_flight = [earlier for earlier in in_flight if not earlier.done.is_set()]
            for earlier in in_flight:
                if not earlier.keys.isdisjoint(batch.keys):
                    earlier.done.wait()  # the same order twice: written in the input's order, as sequentially
            if len(records) >= 1000:
                analyze_stale_lookup_tables()  # here, once per batch, not in each thread
            in_flight.append(batch)
            self.handoff.put(batch)

    def _work(self) -> None:
        try:
            with scope(workspace=self.workspace):
                while (batch := self.handoff.get()) is not None:
                    try:
                        if not self.stop.is_set():
                            self._upsert(batch)
                    except BaseException as error:  # raised to the caller once every thread has stopped
                        with self.lock:
                            self.errors.append(error)
                        self.stop.set()
                    finally:
                        batch.done.set()
        finally:
            connection.close()  # this thread's own connection

    def _upsert(self, batch: _Batch) -> None:
        for attempt in range(1 + RETRIES_ALONE):
            # Customers a failed attempt added to its set may have been rolled back with it: a new set each time.
            touched: set[int] = set()
            with self.gate.alone() if attempt else self.gate.together():
                if attempt and self.stop.is_set():
                    return
                try:
                    result = self.upsert_batch(workspace=self.workspace, records=batch.records, touched=touched)
                except (DatabaseError, psycopg.Error) as error:
                    if attempt == RETRIES_ALONE or not _is_race(error):
                        raise
                    logger.info("orders upsert: a batch of %d orders runs again alone (%s)", len(batch.records), error)
                    continue
            with self.lock:
                self.result += result
                self.touched |= touched
            return
