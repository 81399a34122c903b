"""A bulk orders load on several PostgreSQL connections at once (customers/services/orders_parallel.py).

These tests commit (``transactional_db``): the threads write on connections of their own, which see only committed
rows. Batches are shrunk to 50 orders so a few hundred orders make several batches.
"""

import dataclasses
import datetime as dt
import threading
import time
from decimal import Decimal
from operator import itemgetter

import psycopg.errors
import pytest
from django.db import DataError, connection, transaction
from django.db import connections as database_connections
from django_scopes import scope

from customers import services
from customers.models import Cart, CartStatus, Customer, Event, Order, OrderLine
from customers.records import CartRecord, CustomerRecord, OrderLineRecord, OrderRecord, ProductRecord
from customers.services import ingestion
from customers.services import orders as orders_module
from tests.factories import WorkspaceFactory

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
BATCH = 50


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(orders_module, "POSTGRES_BATCH_SIZE", BATCH)


@pytest.fixture
def spy(monkeypatch):
    """Records, for each batch written, the thread, the connection and the order keys; ``before`` runs first."""

    class Spy:
        calls: list[dict] = []
        before = None
        lock = threading.Lock()

    real = orders_module._orders_upsert_batch

    def upsert_batch(*, workspace, records, touched):
        call = {
            "thread": threading.current_thread().name,
            "connection": database_connections["default"],  # this thread's own
            "keys": [r.external_id for r in records],
        }
        with Spy.lock:
            Spy.calls.append(call)
        if Spy.before:
            Spy.before(records)
        call["started"] = time.monotonic()
        try:
            return real(workspace=workspace, records=records, touched=touched)
        finally:
            call["finished"] = time.monotonic()

    Spy.calls = []
    monkeypatch.setattr(orders_module, "_orders_upsert_batch", upsert_batch)
    return Spy


def new_store(prefix: str):
    workspace = WorkspaceFactory(slug=f"{prefix}-store")
    with scope(workspace=workspace):
        services.products_bulk_upsert(
            workspace=workspace,
            records=[
                ProductRecord(source="shopify", external_id=f"p{n}", title=f"Product {n}", category=f"Category {n % 3}")
                for n in range(5)
            ],
        )
        services.customers_bulk_upsert(
            workspace=workspace,
            records=[
                CustomerRecord(source="shopify", external_id=f"c{n}", email=f"c{n}@example.com", updated_at=T0)
                for n in range(60)
            ],
        )
    return workspace


def order(n: int, **overrides) -> OrderRecord:
    values = {
        "source": "shopify",
        "external_id": f"o{n}",
        "customer_external_id": f"c{n % 60}",
        "placed_at": T0 + dt.timedelta(hours=n),
        "number": f"#{1000 + n}",
        "total": Decimal(10 + n % 17),
        "updated_at": T0 + dt.timedelta(hours=n),
        "lines": tuple(
            OrderLineRecord(product_external_id=f"p{(n + k) % 6}", title=f"Line {k}", unit_price=Decimal(3 + k))
            for k in range(1 + n % 3)
        ),
    }
    return OrderRecord(**{**values, **overrides})


def varied_orders() -> list[OrderRecord]:
    """400 orders: customers that exist, customers and guests that do not yet, cancellations, refunds, an unknown
    product, and 30 orders whose newer version comes two batches later."""
    records = []
    for n in range(370):
        overrides: dict = {}
        if n % 23 == 0:
            overrides["customer_external_id"] = f"new{n % 4}"
            overrides["email"] = f"new{n % 4}@example.com"
        elif n % 19 == 0:
            overrides.update(customer_external_id="", email=f"guest{n % 5}@example.com")
        elif n % 29 == 0:
            overrides.update(customer_external_id="", email="c7@example.com")  # a guest checkout of c7
        if n % 11 == 0:
            overrides.update(status="cancelled", cancelled_at=T0 + dt.timedelta(hours=n + 1))
        if n % 13 == 0:
            overrides.update(refunded_total=Decimal("4"), refunded_at=T0 + dt.timedelta(hours=n + 2))
        records.append(order(n, **overrides))
    for n in range(30):  # o0..o29 (batch 0) again, newer, in batches 2 to 7
        records.insert(
            120 + 9 * n,
            order(n, total=Decimal(200 + n), refunded_total=Decimal("5"), updated_at=T0 + dt.timedelta(days=30)),
        )
    return records


def snapshot(workspace):
    """What a load leaves behind, as plain values keyed by external ids (row ids and write times differ from one
    load to another)."""
    with scope(workspace=workspace):
        customer_key = dict(Customer.objects.values_list("id", "external_id"))
        order_key = dict(Order.objects.values_list("id", "external_id"))
        # Customers an order load creates became customers when it ran.
        created = {key for key in customer_key.values() if key.startswith(("new", "late", "email:"))}
        customer_values = itemgetter(
            "external_id", "email", "orders_count", "total_spent", "average_order_value", "first_order_at",
            "last_order_at", "top_categories",
        )  # fmt: skip
        customers = sorted(customer_values(row) for row in Customer.objects.values())
        order_values = itemgetter(
            "external_id", "number", "email", "status", "total", "refunded_total", "net_total", "placed_at",
            "cancelled_at", "source_updated_at",
        )  # fmt: skip
        orders = sorted((*order_values(row), customer_key.get(row["customer_id"])) for row in Order.objects.values())
        lines = sorted(
            (order_key[order_id], external_id, title, product_id is not None, category, quantity, total)
            for order_id, external_id, title, product_id, category, quantity, total in OrderLine.objects.values_list(
                "order_id", "external_id", "title", "product_id", "category", "quantity", "total"
            )
        )
        events = sorted(
            (
                customer_key.get(customer_id),
                type_,
                external_id,
                None if type_ == "customer_created" and customer_key.get(customer_id) in created else occurred_at,
                sorted((key, value) for key, value in properties.items() if key not in {"order_id", "cart_id"}),
            )
            for customer_id, type_, external_id, occurred_at, properties in Event.objects.exclude(
                type="cart_abandoned"  # the carts' set-up, not the load
            ).values_list("customer_id", "type", "external_id", "occurred_at", "properties")
        )
        carts = sorted(
            (external_id, status, order_key.get(recovered_order_id))
            for external_id, status, recovered_order_id in Cart.objects.values_list(
                "external_id", "status", "recovered_order_id"
            )
        )
    return {"customers": customers, "orders": orders, "lines": lines, "events": events, "carts": carts}


def load(workspace, records, settings, *, connections: int):
    settings.ORDERS_UPSERT_CONNECTIONS = connections
    with scope(workspace=workspace):
        return services.orders_bulk_upsert(workspace=workspace, records=iter(records))


def add_carts(workspace):
    with scope(workspace=workspace):
        services.carts_bulk_upsert(
            workspace=workspace,
            records=[
                CartRecord(
                    source="shopify",
                    external_id=f"cart{n}",
                    customer_external_id=f"c{n}",
                    started_at=T0 + dt.timedelta(hours=n),
                    updated_at=T0 + dt.timedelta(hours=n),
                )
                for n in (3, 4, 5)
            ],
        )
        assert services.carts_mark_abandoned(workspace=workspace, older_than=dt.timedelta(hours=1)) == 3
        Cart.objects.filter(external_id="cart4").update(status=CartStatus.OPEN)


def backends_of_this_database() -> int:
    """Connections to the test database other than this thread's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def wait_for_no_other_backends() -> int:
    # A closed connection's backend leaves pg_stat_activity a moment after the client hung up.
    for _ in range(50):
        if (count := backends_of_this_database()) == 0:
            return 0
        time.sleep(0.05)
    return count


def test_a_parallel_load_leaves_exactly_what_a_sequential_one_does(
    transactional_db, postgres_only, settings, small_batches, spy
):
    # given two stores with the same catalogue, customers and carts
    sequential, parallel = new_store("sequential"), new_store("parallel")
    add_carts(sequential)
    add_carts(parallel)
    records = varied_orders()

    # when one is loaded a batch at a time and the other on two connections
    sequential_result = load(sequential, records, settings, connections=1)
    sequential_calls, spy.calls = spy.calls, []
    # The first two batches of the parallel load must be in flight together, or this waits 10 s and fails.
    barrier = threading.Barrier(2, timeout=10)
    spy.before = lambda records: barrier.wait() if len(spy.calls) <= 2 else None
    parallel_result = load(parallel, records, settings, connections=2)

    # then they hold the same orders, lines, events, customer stats and converted carts
    assert {call["thread"] for call in sequential_calls} == {"MainThread"}
    assert {call["thread"] for call in spy.calls} == {"orders-upsert-0", "orders-upsert-1"}
    assert len(spy.calls) == len(sequential_calls) == 8
    assert parallel_result == sequential_result
    assert (parallel_result.created, parallel_result.updated, parallel_result.skipped_stale) == (370, 30, 0)
    expected = snapshot(sequential)
    assert snapshot(parallel) == expected
    assert len(expected["orders"]) == 370
    assert sum(1 for row in expected["customers"] if row[0].startswith(("new", "email:guest"))) == 9
    assert expected["carts"] == [
        ("cart3", "recovered", "o3"),
        ("cart4", "converted", "o4"),
        ("cart5", "recovered", "o5"),
    ]
    with scope(workspace=parallel):
        assert Order.objects.get(external_id="o7").total == Decimal("207.00")

    # and a replay on two connections changes nothing
    replay = load(parallel, records, settings, connections=2)
    assert (replay.created, replay.updated, replay.skipped_stale) == (0, 0, 400)  # the older versions too
    assert snapshot(parallel) == expected
    assert wait_for_no_other_backends() == 0


@pytest.mark.parametrize("newer_in_first_batch", [True, False])
def test_the_same_order_in_two_batches_newest_wins_as_sequentially(
    transactional_db, postgres_only, settings, small_batches, spy, newer_in_first_batch
):
    # given o5 in the first batch and again in the second, one version newer than the other, and the first
    # batch slow to finish
    sequential, parallel = new_store("sequential"), new_store("parallel")
    older = order(5, customer_external_id="c29", total=Decimal("50"), updated_at=T0 + dt.timedelta(days=1))
    newer = order(
        5,
        customer_external_id="c29",
        total=Decimal("70"),
        refunded_total=Decimal("7"),
        lines=(OrderLineRecord(title="Only line", unit_price=Decimal("70")),),
        updated_at=T0 + dt.timedelta(days=2),
    )
    first, second = (newer, older) if newer_in_first_batch else (older, newer)
    records = [order(n) for n in range(100, 149)] + [first] + [order(n) for n in range(150, 199)] + [second]
    spy.before = lambda records: time.sleep(0.5) if "o100" in [r.external_id for r in records] else None

    # when
    load(sequential, records, settings, connections=1)
    spy.calls = []
    result = load(parallel, records, settings, connections=2)

    # then the second batch started only once the first had committed, and the newest version won
    first_call, second_call = sorted(spy.calls, key=lambda call: call["started"])
    assert first_call["keys"][0] == "o100" and second_call["keys"][0] == "o150"
    assert second_call["started"] > first_call["finished"]
    assert first_call["thread"] != "MainThread" and second_call["thread"] != "MainThread"
    assert (result.created, result.updated, result.skipped_stale) == (
        (99, 0, 1) if newer_in_first_batch else (99, 1, 0)
    )
    assert snapshot(parallel) == snapshot(sequential)
    with scope(workspace=parallel):
        stored = Order.objects.get(external_id="o5")
        assert (stored.total, stored.net_total) == (Decimal("70.00"), Decimal("63.00"))
        assert list(OrderLine.objects.filter(order=stored).values_list("title", "total")) == [
            ("Only line", Decimal("70.00"))
        ]
        assert Event.objects.filter(external_id="order_placed:o5").count() == 1
        assert list(Event.objects.filter(external_id__startswith="order_refunded:o5").values_list("external_id")) == [
            ("order_refunded:o5:7",)
        ]
        assert Customer.objects.get(external_id="c29").total_spent == Decimal("63.00")  # o5 is its only order

    # and replaying the load changes nothing
    before = snapshot(parallel)
    replay = load(parallel, records, settings, connections=2)
    assert (replay.created, replay.updated) == (0, 0)
    assert snapshot(parallel) == before


def test_a_missing_customer_named_by_concurrent_batches_is_created_once(
    transactional_db, postgres_only, settings, small_batches, spy, monkeypatch
):
    # given a customer and a guest that do not exist yet, each named by one order in each of four batches, and the
    # first two batches deciding to create them at the same moment
    workspace = new_store("parallel")
    records = []
    for n in range(200):
        if n % BATCH == 7:
            records.append(order(n, customer_external_id="late", email="late@example.com"))
        elif n % BATCH == 9:
            records.append(order(n, customer_external_id="", email="Guest@Example.com"))
        else:
            records.append(order(n))
    real_customers_bulk_upsert = ingestion.customers_bulk_upsert
    barrier = threading.Barrier(2, timeout=10)
    creations = []

    def customers_bulk_upsert(*, workspace, records):
        records = list(records)
        creations.append(sorted(r.external_id for r in records))
        if len(creations) <= 2:
            barrier.wait()
        return real_customers_bulk_upsert(workspace=workspace, records=records)

    monkeypatch.setattr(ingestion, "customers_bulk_upsert", customers_bulk_upsert)

    # when
    result = load(workspace, records, settings, connections=2)

    # then both batches tried to create them, each exists once and owns its four orders
    assert creations == [["email:guest@example.com", "late"], ["email:guest@example.com", "late"]]
    assert result.created == 200
    with scope(workspace=workspace):
        late = Customer.objects.get(source="shopify", external_id="late")
        guest = Customer.objects.get(source="shopify", external_id="email:guest@example.com")
        assert Customer.objects.filter(email__in=["late@example.com", "guest@example.com"]).count() == 2
        assert sorted(late.orders.values_list("external_id", flat=True)) == ["o107", "o157", "o57", "o7"]
        assert sorted(guest.orders.values_list("external_id", flat=True)) == ["o109", "o159", "o59", "o9"]
        assert (late.orders_count, guest.orders_count) == (4, 4)
        assert Event.objects.filter(type="customer_created", customer__in=[late, guest]).count() == 2
        assert Event.objects.filter(type="order_placed").count() == 200


def test_a_deadlock_between_two_batches_is_retried_alone(
    transactional_db, postgres_only, settings, small_batches, spy, monkeypatch
):
    # given two batches that both create the same two new customers, in opposite orders, at the same moment
    workspace = new_store("parallel")
    records = [order(n) for n in range(100)]
    for n in (3, 53):
        records[n] = order(n, customer_external_id="", email="x@example.com")
        records[n + 1] = order(n + 1, customer_external_id="", email="y@example.com")
    real_customers_bulk_upsert = ingestion.customers_bulk_upsert
    barrier = threading.Barrier(2, timeout=10)
    lock = threading.Lock()
    creations = []

    def customers_bulk_upsert(*, workspace, records):
        # Each creates one customer, waits until the other has created the other one, then creates the second.
        with lock:
            records = sorted(records, key=lambda r: r.external_id, reverse=len(creations) % 2 == 1)
            creations.append([r.external_id for r in records])
            together = len(creations) <= 2
        first = real_customers_bulk_upsert(workspace=workspace, records=records[:1])
        if together:
            barrier.wait()
        return first + real_customers_bulk_upsert(workspace=workspace, records=records[1:])

    monkeypatch.setattr(ingestion, "customers_bulk_upsert", customers_bulk_upsert)

    # when: PostgreSQL aborts one of them after deadlock_timeout
    result = load(workspace, records, settings, connections=2)

    # then the aborted batch ran again, alone, and nothing is missing or doubled
    assert creations == [
        ["email:x@example.com", "email:y@example.com"],
        ["email:y@example.com", "email:x@example.com"],
    ]
    assert len(spy.calls) == 3
    retried = spy.calls[2]
    assert retried["keys"] in (spy.calls[0]["keys"], spy.calls[1]["keys"])
    assert retried["started"] > max(spy.calls[0]["finished"], spy.calls[1]["finished"])
    assert (result.created, result.updated, result.skipped_stale) == (100, 0, 0)
    with scope(workspace=workspace):
        x = Customer.objects.get(external_id="email:x@example.com")
        y = Customer.objects.get(external_id="email:y@example.com")
        assert sorted(x.orders.values_list("external_id", flat=True)) == ["o3", "o53"]
        assert sorted(y.orders.values_list("external_id", flat=True)) == ["o4", "o54"]
        assert (x.orders_count, y.orders_count) == (2, 2)
        assert Order.objects.count() == 100
        assert OrderLine.objects.count() == sum(len(r.lines) for r in records)
        assert Event.objects.filter(type="order_placed").count() == 100
        assert Event.objects.filter(type="customer_created", customer__in=[x, y]).count() == 2


def test_a_failing_batch_reaches_the_caller_and_every_thread_connection_is_closed(
    transactional_db, postgres_only, settings, small_batches, spy
):
    # given a load whose third batch holds an order the database refuses (a currency longer than 3 letters)
    workspace = new_store("parallel")
    records = [order(n) for n in range(300)]
    records[120] = dataclasses.replace(records[120], currency="EURO")
    assert wait_for_no_other_backends() == 0

    # when
    # (as Django's DataError, caused by psycopg's, as on the sequential path)
    with pytest.raises(DataError, match="character varying\\(3\\)") as raised:
        load(workspace, records, settings, connections=2)
    assert isinstance(raised.value.__cause__, psycopg.errors.StringDataRightTruncation)

    # then that batch wrote nothing, the two before it (started first) are whole, and the threads closed their
    # connections
    with scope(workspace=workspace):
        assert not Order.objects.filter(external_id__in=[f"o{n}" for n in range(100, 150)]).exists()
        assert Order.objects.filter(external_id__in=[f"o{n}" for n in range(100)]).count() == 100
        assert Order.objects.count() % BATCH == 0
    assert {call["thread"] for call in spy.calls} <= {"orders-upsert-0", "orders-upsert-1"}
    assert all(call["connection"].connection is None for call in spy.calls)
    assert wait_for_no_other_backends() == 0


def test_an_error_raised_in_a_thread_is_the_one_the_caller_gets(
    transactional_db, postgres_only, settings, small_batches, spy
):
    workspace = new_store("parallel")
    failure = RuntimeError("the store sent something unexpected")

    def fail_on_the_second_batch(records):
        if records[0].external_id == "o50":
            raise failure

    spy.before = fail_on_the_second_batch

    with pytest.raises(RuntimeError) as raised:
        load(workspace, [order(n) for n in range(200)], settings, connections=2)

    assert raised.value is failure
    assert wait_for_no_other_backends() == 0
    with scope(workspace=workspace):
        assert Customer.objects.get(external_id="c0").orders_count == 0  # no stats refresh after a failed load


@pytest.mark.parametrize(
    ("inside_transaction", "connections"), [(True, 2), (False, 1)], ids=["in-transaction", "one-connection"]
)
def test_inside_a_transaction_or_with_one_connection_the_batches_run_on_the_callers_connection(
    transactional_db, postgres_only, settings, small_batches, spy, inside_transaction, connections
):
    workspace = new_store("sequential")

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        with transaction.atomic() if inside_transaction else scope(workspace=workspace):
            result = load(workspace, [order(n) for n in range(200)], settings, connections=connections)
            with scope(workspace=workspace):
                assert Order.objects.count() == 200  # the caller sees its own uncommitted rows
            raise Abort

    assert result.created == 200
    assert [call["thread"] for call in spy.calls] == ["MainThread"] * 4
    assert {call["connection"] for call in spy.calls} == {database_connections["default"]}
    with scope(workspace=workspace):
        assert Order.objects.count() == (0 if inside_transaction else 200)  # rolled back with the caller's


def test_the_input_is_read_as_the_threads_take_batches(transactional_db, postgres_only, settings, small_batches, spy):
    # given a stream of 1,000 orders (20 batches) and both threads held on their first batch
    workspace = new_store("parallel")
    pulled = 0

    def stream():
        nonlocal pulled
        for n in range(1000):
            pulled += 1
            yield order(n)

    barrier = threading.Barrier(2, timeout=10)
    seen = []

    def hold_the_first_two(records):
        if len(spy.calls) <= 2:
            barrier.wait()
            time.sleep(0.5)  # time for the calling thread to read all it will read ahead
            seen.append(pulled)

    spy.before = hold_the_first_two

    # when
    settings.ORDERS_UPSERT_CONNECTIONS = 2
    with scope(workspace=workspace):
        result = services.orders_bulk_upsert(workspace=workspace, records=stream())

    # then only four batches had been read: one in each thread, one handed over, one waiting to be
    assert seen == [4 * BATCH, 4 * BATCH]
    assert (result.created, pulled) == (1000, 1000)
