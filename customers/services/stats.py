"""Denormalised customer stats (orders count, total spent, AOV, first/last order, top categories)."""

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Max, Min, Sum

from crm.db import local_settings
from crm.models import Workspace
from customers.models import (
    Customer,
    Order,
    OrderLine,
    OrderStatus,
)


def customer_stats_refresh(*, workspace: Workspace, customer_ids: Iterable[int] | None = None) -> int:
    """Recompute the denormalised order stats of some (or all) customers of a workspace in bulk.

    orders_count and total_spent count orders that are not cancelled, at their net value (total - refunds).
    """
    ids = None if customer_ids is None else list(customer_ids)
    if ids is not None and not ids:
        return 0
    if connection.vendor == "postgresql":
        return _customer_stats_refresh_postgres(workspace=workspace, customer_ids=ids)
    return _customer_stats_refresh_portable(workspace=workspace, customer_ids=ids)


def _top_categories(workspace: Workspace, customer_ids: list[int] | None) -> dict[int, list[str]]:
    lines = (
        OrderLine.objects.filter(workspace=workspace).exclude(category="").exclude(order__status=OrderStatus.CANCELLED)
    )
    if customer_ids is not None:
        lines = lines.filter(order__customer_id__in=customer_ids)
    top: dict[int, list[tuple[Decimal, str]]] = defaultdict(list)
    for customer_id, category, spent in lines.values_list("order__customer_id", "category").annotate(
        spent=Sum("total")
    ):
        if customer_id is not None:
            top[customer_id].append((spent or Decimal("0"), category))
    return {cid: [name for _, name in sorted(pairs, key=lambda p: (-p[0], p[1]))[:3]] for cid, pairs in top.items()}


def _customer_stats_refresh_portable(*, workspace: Workspace, customer_ids: list[int] | None) -> int:
    customers = Customer.objects.filter(workspace=workspace)
    if customer_ids is not None:
        customers = customers.filter(id__in=customer_ids)
    stats = {
        row["customer_id"]: row
        for row in Order.objects.filter(workspace=workspace, customer__in=customers)
        .exclude(status=OrderStatus.CANCELLED)
        .values("customer_id")
        .annotate(n=Count("id"), spent=Sum("net_total"), first=Min("placed_at"), last=Max("placed_at"))
    }
    categories = _top_categories(workspace, customer_ids)
    changed = []
    for customer in customers.only("id", "workspace_id"):
        row = stats.get(customer.id)
        customer.orders_count = row["n"] if row else 0
        customer.total_spent = (row["spent"] or Decimal("0")) if row else Decimal("0")
        customer.average_order_value = (
            (customer.total_spent / customer.orders_count).quantize(Decimal("0.01")) if row else Decimal("0")
        )
        customer.first_order_at = row["first"] if row else None
        customer.last_order_at = row["last"] if row else None
        customer.top_categories = categories.get(customer.id, [])
        changed.append(customer)
    Customer.objects.bulk_update(
        changed,
        ["orders_count", "total_spent", "average_order_value", "first_order_at", "last_order_at", "top_categories"],
        batch_size=500,
    )
    return len(changed)


# A per-customer lookup costs about as much as reading 20 of the workspace's orders (with their lines) in one scan:
# past that share the set-based statement (hash joins over the workspace) is cheaper.
ORDERS_SCANNED_PER_LOOKUP = 20


def _customer_stats_refresh_postgres(*, workspace: Workspace, customer_ids: list[int] | None) -> int:
    if customer_ids is None:
        # The nightly full refresh; fresh planner statistics keep it on hash joins.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE customers_order")
            cursor.execute("ANALYZE customers_orderline")
        return _customer_stats_refresh_postgres_all(workspace=workspace, customer_ids=None)
    if _workspace_orders_below(workspace=workspace, limit=len(customer_ids) * ORDERS_SCANNED_PER_LOOKUP):
        return _customer_stats_refresh_postgres_all(workspace=workspace, customer_ids=customer_ids)
    return _customer_stats_refresh_postgres_some(workspace=workspace, customer_ids=customer_ids)


def _workspace_orders_below(*, workspace: Workspace, limit: int) -> bool:
    """Whether the workspace has fewer than ``limit`` orders; reads at most ``limit`` index entries."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM customers_order WHERE workspace_id = %s LIMIT %s) o",
            [workspace.id, limit],
        )
        (count,) = cursor.fetchone()
    return count < limit


def _customer_stats_refresh_postgres_all(*, workspace: Workspace, customer_ids: list[int] | None) -> int:
    """Stats of every customer of the workspace, or of a large share of them, in one set-based statement.

    Nested loops are turned off for it: right after a bulk load the planner's statistics may still say the workspace
    has few orders, and a nested loop planned on that reads every order line once per customer. Hash joins read
    each table once whatever the statistics say. JIT compilation (triggered by the statement's cost) takes longer
    than it saves here.
    """
    # The customers are joined from an unnested array rather than filtered with ``= ANY(array)``: a filter over a
    # large array may be evaluated as a linear search per row.
    targets = (
        "SELECT c.id FROM customers_customer c WHERE c.workspace_id = %(ws)s"
        if customer_ids is None
        else "SELECT DISTINCT x.id FROM unnest(%(ids)s::bigint[]) AS x(id)"
    )
    sql = f"""
        WITH targets AS MATERIALIZED ({targets}),
        live_orders AS MATERIALIZED (
            SELECT o.id, o.customer_id, o.net_total, o.placed_at
            FROM customers_order o JOIN targets x ON x.id = o.customer_id
            WHERE o.workspace_id = %(ws)s AND o.status <> 'cancelled'
        ), stats AS (
            SELECT customer_id, COUNT(*) AS n, SUM(net_total) AS spent, MIN(placed_at) AS first_at,
                   MAX(placed_at) AS last_at
            FROM live_orders GROUP BY customer_id
        ), category_spend AS (
            SELECT o.customer_id, l.category, SUM(l.total) AS spent
            FROM customers_orderline l JOIN live_orders o ON o.id = l.order_id
            WHERE l.workspace_id = %(ws)s AND l.category <> ''
            GROUP BY o.customer_id, l.category
        ), ranked AS (
            SELECT customer_id, category,
                   ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY spent DESC, category) AS position
            FROM category_spend
        ), top AS (
            SELECT customer_id, jsonb_agg(category ORDER BY position) AS categories
            FROM ranked WHERE position <= 3 GROUP BY customer_id
        )
        UPDATE customers_customer c SET
            orders_count = COALESCE(s.n, 0),
            total_spent = COALESCE(s.spent, 0),
            average_order_value = CASE WHEN COALESCE(s.n, 0) > 0 THEN ROUND(s.spent / s.n, 2) ELSE 0 END,
            first_order_at = s.first_at,
            last_order_at = s.last_at,
            top_categories = COALESCE(t.categories, '[]'::jsonb)
        FROM targets x
        LEFT JOIN stats s ON s.customer_id = x.id
        LEFT JOIN top t ON t.customer_id = x.id
        WHERE c.id = x.id AND c.workspace_id = %(ws)s
          AND (c.orders_count, c.total_spent, c.first_order_at, c.last_order_at, c.top_categories)
              IS DISTINCT FROM (COALESCE(s.n, 0), COALESCE(s.spent, 0), s.first_at, s.last_at,
                                COALESCE(t.categories, '[]'::jsonb))
    """
    with local_settings(enable_nestloop="off", jit="off", work_mem="64MB"), connection.cursor() as cursor:
        cursor.execute(sql, {"ws": workspace.id, "ids": customer_ids})
        return cursor.rowcount


def _customer_stats_refresh_postgres_some(*, workspace: Workspace, customer_ids: list[int]) -> int:
    """Stats for a few thousand customers, one index-driven LATERAL lookup each.

    Written so that its plan does not depend on table statistics: right after a bulk load they are stale, and a
    set-based join planned on them can degrade to nested loops over whole tables. The lookups filter on the
    customer alone (whose workspace the outer WHERE checks): with a workspace condition too, the planner may pick
    the workspace index and read every order of the workspace once per customer.
    """
    sql = """
        UPDATE customers_customer c SET
            orders_count = s.n,
            total_spent = s.spent,
            average_order_value = CASE WHEN s.n > 0 THEN ROUND(s.spent / s.n, 2) ELSE 0 END,
            first_order_at = s.first_at,
            last_order_at = s.last_at,
            top_categories = t.categories
        FROM unnest(%(ids)s::bigint[]) AS x(id)
        CROSS JOIN LATERAL (
            SELECT COUNT(*) AS n, COALESCE(SUM(o.net_total), 0) AS spent, MIN(o.placed_at) AS first_at,
                   MAX(o.placed_at) AS last_at
            FROM customers_order o
            WHERE o.customer_id = x.id AND o.status <> 'cancelled'
        ) s
        CROSS JOIN LATERAL (
            SELECT COALESCE(jsonb_agg(category ORDER BY spent DESC, category), '[]'::jsonb) AS categories
            FROM (
                SELECT l.category, SUM(l.total) AS spent
                FROM customers_order o JOIN customers_orderline l ON l.order_id = o.id
                WHERE o.customer_id = x.id AND o.status <> 'cancelled' AND l.category <> ''
                GROUP BY l.category ORDER BY spent DESC, l.category LIMIT 3
            ) top3
        ) t
        WHERE c.id = x.id AND c.workspace_id = %(ws)s
          AND (c.orders_count, c.total_spent, c.first_order_at, c.last_order_at, c.top_categories)
              IS DISTINCT FROM (s.n, s.spent, s.first_at, s.last_at, t.categories)
    """
    # Right after a bulk load the planner may believe customers_order is tiny and scan it once per customer; these
    # lookups are index-driven by design, so say so for this statement only. The penalty that setting adds to every
    # plan's cost would also trigger JIT compilation, which takes longer than the statement.
    with local_settings(enable_seqscan="off", jit="off"), connection.cursor() as cursor:
        cursor.execute(sql, {"ws": workspace.id, "ids": customer_ids})
        return cursor.rowcount
