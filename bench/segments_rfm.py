"""RFM rescore in bulk vs a per-row ORM baseline (issue: 1,000,000 customers with 5,000,000 orders rescored and
written back in under 30 s on PostgreSQL; a figure for 100,000 customers at the default --scale 0.1).

The store is generated in SQL (generate_series on PostgreSQL, a recursive CTE on SQLite) so setting up 5M orders
takes seconds, not the benchmark's budget. Rows measured:
- first rescore: every customer gets scores, a group and a history row (the heaviest write);
- nightly rescore: the next days' runs (as_of moves a day), writing only what changed, with events for group moves;
- per-row ORM baseline: a sample of customers scored one at a time (aggregate query, save(), history row),
  extrapolated to the same n.
"""

import datetime as dt
import time

from django.db import connection
from django.db.models import Count, Max, Sum
from django.utils import timezone

from bench.common import row, throwaway_workspace

FULL_CUSTOMERS = 1_000_000
ORDERS_PER_CUSTOMER = 5
BASELINE_SAMPLE = 300


def _random() -> str:
    """A uniform random number in [0, 1) in this database's SQL."""
    if connection.vendor == "postgresql":
        return "random()"
    return "((abs(random()) %% 1000000) / 1000000.0)"


def insert_series(model, count: int, expressions: dict[str, str], params: dict[str, list]) -> None:
    """INSERT ``count`` rows of ``model`` from a number series ``g`` (1..count) in one statement.

    ``expressions`` gives SQL (over ``g``) for some columns, with ``params[column]`` for its placeholders; every
    other NOT NULL column gets its Django default (or now() for auto_now fields).
    """
    now = timezone.now()
    columns, selects, values = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        column = field.column
        if column in expressions:
            columns.append(column)
            selects.append(expressions[column])
            values.extend(params.get(column, []))
        elif not field.null:
            default = (
                now
                if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
                else field.get_default()
            )
            columns.append(column)
            selects.append("%s")
            values.append(field.get_db_prep_save(default, connection))
    table = connection.ops.quote_name(model._meta.db_table)
    column_sql = ", ".join(connection.ops.quote_name(c) for c in columns)
    select_sql = ", ".join(selects)
    if connection.vendor == "postgresql":
        sql = f"INSERT INTO {table} ({column_sql}) SELECT {select_sql} FROM generate_series(1, %s) AS s(g)"  # noqa: S608
        values.append(count)
    else:
        sql = (
            f"WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %s) "  # noqa: S608
            f"INSERT INTO {table} ({column_sql}) SELECT {select_sql} FROM s"
        )
        values.insert(0, count)
    with connection.cursor() as cursor:
        cursor.execute(sql, values)


def _whole(expression: str) -> str:
    """Round down to an integer (PostgreSQL's CAST rounds half up, which could step past the last id)."""
    if connection.vendor == "postgresql":
        return f"CAST(floor({expression}) AS BIGINT)"
    return f"CAST({expression} AS INTEGER)"  # SQLite's CAST truncates


def _days_ago_sql(max_days: int) -> str:
    if connection.vendor == "postgresql":
        return f"(%s::timestamptz - {_random()} * interval '{max_days} days')"
    seconds = f"CAST({_random()} * {max_days} * 86400 AS INTEGER)"
    return f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', %s, '-' || {seconds} || ' seconds')"


def fill_customers(workspace, count: int, extra: dict[str, str] | None = None, extra_params=None) -> tuple[int, int]:
    from customers.models import Customer

    expressions = {
        "workspace_id": "%s",
        "source": "'demo'",
        "external_id": "'b' || g",
        "email": "'c' || g || '@bench.test'",
        "first_name": "'Customer'",
        "last_name": "'' || g",
        "country": "CASE WHEN g %% 4 = 0 THEN 'FR' WHEN g %% 4 = 1 THEN 'DE' ELSE 'US' END",
        **(extra or {}),
    }
    params = {"workspace_id": [workspace.pk], **(extra_params or {})}
    insert_series(Customer, count, expressions, params)
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(Customer._meta.db_table)
        cursor.execute(f"SELECT MIN(id), MAX(id) FROM {table} WHERE workspace_id = %s", [workspace.pk])  # noqa: S608
        low, high = cursor.fetchone()
    return low, high


def fill_orders(
    workspace, count: int, customer_ids: tuple[int, int], *, max_days: int = 730, prefix: str = "o", now=None
) -> None:
    """Orders spread over customers with a skew (some buy often, many once, some never)."""
    from customers.models import Order

    low, high = customer_ids
    spread = high - low + 1
    r = _random()
    now = now or timezone.now()
    # 5.00 .. 200.00, spread by a multiplicative hash of g so total, subtotal and net_total agree without a second
    # pass over the table (an UPDATE of every order would rewrite each row and every index entry once more)
    amount = "(5 + ((CAST(g AS BIGINT) * 7919) %% 19501) / 100.0)"
    if connection.vendor == "postgresql":
        amount = f"CAST({amount} AS NUMERIC(14, 2))"
    expressions = {
        "workspace_id": "%s",
        "source": "'demo'",
        "external_id": f"'{prefix}' || g",
        "customer_id": f"(%s + {_whole(f'%s * {r} * {r}')})",
        "status": "'closed'",
        "placed_at": _days_ago_sql(max_days),
        "subtotal": amount,
        "total": amount,
        "net_total": amount,
    }
    params = {"workspace_id": [workspace.pk], "customer_id": [low, spread], "placed_at": [now]}
    insert_series(Order, count, expressions, params)


def analyze(*models) -> None:
    """VACUUM ANALYZE, as autovacuum would after a bulk load: fresh statistics, hint bits set and pages marked
    all-visible (so index-only scans need no table visit), instead of the first measured run paying for that."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for model in models:
                cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def _per_row_baseline(workspace, customer_ids: list[int], as_of: dt.datetime) -> float:
    """Seconds per customer scored one at a time with the ORM (thresholds computed once, which is generous)."""
    import numpy as np

    from customers.models import Customer, Order
    from segments import rfm
    from segments.models import RfmGroupChange

    sample = list(
        Order.objects.filter(workspace=workspace, customer__isnull=False)
        .exclude(status="cancelled")
        .values("customer_id")
        .annotate(last=Max("placed_at"), n=Count("id"), spent=Sum("net_total"))
        .order_by()
        .values_list("n", "spent")[:5000]
    )
    f_edges = np.quantile([s[0] for s in sample], [0.2, 0.4, 0.6, 0.8])
    m_edges = np.quantile([float(s[1]) for s in sample], [0.2, 0.4, 0.6, 0.8])
    r_edges = [400, 250, 120, 45]
    started = time.perf_counter()
    for customer_id in customer_ids:
        customer = Customer.objects.get(workspace=workspace, pk=customer_id)
        stats = (
            Order.objects.filter(workspace=workspace, customer=customer)
            .exclude(status="cancelled")
            .aggregate(last=Max("placed_at"), n=Count("id"), spent=Sum("net_total"))
        )
        if not stats["n"]:
            group, recency, frequency, monetary = rfm.PROSPECTS, 0, 0, 0
        else:
            days = (as_of - stats["last"]).days
            recency = 1 + sum(days < edge for edge in r_edges)
            frequency = 1 + int(np.searchsorted(f_edges, stats["n"], side="right"))
            monetary = 1 + int(np.searchsorted(m_edges, float(stats["spent"]), side="right"))
            group = rfm.DEFAULT_GROUP_MAP[(min(recency, 5), rfm.fm_score(min(frequency, 5), min(monetary, 5)))]
        if customer.rfm_group != group:
            RfmGroupChange.objects.create(
                workspace=workspace, customer=customer, from_group=customer.rfm_group, to_group=group, changed_at=as_of
            )
        customer.rfm_recency, customer.rfm_frequency, customer.rfm_monetary = recency, frequency, monetary
        customer.rfm_group, customer.rfm_scored_at = group, as_of
        customer.save(update_fields=["rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_group", "rfm_scored_at"])
    return (time.perf_counter() - started) / len(customer_ids)


def run(args) -> list[dict]:
    from customers.models import Customer, Order
    from segments import services

    customers = max(2000, int(FULL_CUSTOMERS * args.scale))
    orders = customers * ORDERS_PER_CUSTOMER
    target = "< 30 s at 1M customers / 5M orders (PostgreSQL)"
    with throwaway_workspace("bench-rfm") as workspace:
        started = time.perf_counter()
        id_range = fill_customers(workspace, customers)
        fill_orders(workspace, orders, id_range)
        analyze(Customer, Order)
        setup_s = time.perf_counter() - started
        as_of = timezone.now()

        started = time.perf_counter()
        first = services.rfm_rescore(workspace=workspace, as_of=as_of)
        assert first.updated == customers, "the first scoring writes every customer"
        first_ms = (time.perf_counter() - started) * 1000

        nightly_ms, nightly = [], []
        for day in range(1, max(2, min(args.repeat, 3)) + 1):
            # a day of trade: 1% of customers order again
            fill_orders(workspace, customers // 100, id_range, max_days=1, prefix=f"day{day}-",
                        now=as_of + dt.timedelta(days=day))  # fmt: skip
            started = time.perf_counter()
            nightly.append(services.rfm_rescore(workspace=workspace, as_of=as_of + dt.timedelta(days=day)))
            nightly_ms.append((time.perf_counter() - started) * 1000)
        nightly_ms.sort()
        # of which: the one read that aggregates every order per customer (what a nightly run cannot skip)
        from segments import selectors

        started = time.perf_counter()
        selectors.rfm_input_frame(workspace=workspace, as_of=as_of + dt.timedelta(days=3), window_days=None)
        read_ms = (time.perf_counter() - started) * 1000

        sample_ids = list(
            Customer.objects.filter(workspace=workspace).order_by("?").values_list("pk", flat=True)[:BASELINE_SAMPLE]
        )
        per_customer_s = _per_row_baseline(workspace, sample_ids, as_of + dt.timedelta(days=30))
        baseline_ms = per_customer_s * customers * 1000
    return [
        row(f"rfm rescore, first scoring ({orders:,} orders; setup {setup_s:.0f} s)", n=customers, median=first_ms,
            baseline=baseline_ms, target=target),
        row(f"rfm rescore, nightly (~{nightly[-1].updated:,} rows and {nightly[-1].events:,} group-change events)",
            n=customers, median=nightly_ms[len(nightly_ms) // 2], baseline=baseline_ms, target=target),
        row(f"  of which the read: {orders:,} orders aggregated per customer, into pandas", n=customers,
            median=read_ms),
    ]  # fmt: skip
