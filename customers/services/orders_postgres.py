"""The PostgreSQL path of the orders upsert: set-based SQL over a staging table.

One batch is COPYed as it arrives (orders and lines, customer and product references still as external ids) into
two temporary tables; everything else is a handful of statements, whatever the batch size:

1. stale records (``updated_at`` not newer than what is stored) leave the staging table;
2. the stored rows of the remaining orders are locked (their current customers need their stats refreshed too);
3. customers that the orders name but that do not exist yet are created through ``customers_bulk_upsert``;
4. one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` resolves customers (a merged-away customer's orders go to
   the survivor) and writes the orders; its ``WHERE`` repeats the staleness test, so a newer row committed by a
   concurrent writer in the meantime still wins;
5. the lines of updated orders are replaced and the order events inserted (``ON CONFLICT DO NOTHING``), both
   straight from the staging tables joined to the upserted ids.

Python only turns records into COPY rows: no per-row lookups, no model instances, no JSON built in Python.
"""

import datetime as dt
from collections.abc import Sequence

from django.db import connection
from psycopg import sql

from crm.db import local_settings
from crm.models import Workspace
from customers.models import ORDER_UPSERT_FIELDS, EventType, OrderStatus
from customers.records import CustomerRecord, OrderRecord, UpsertResult

# (name, type) of the staging tables. Values arrive as the source sent them; normalisation that SQL does as well as
# Python (net total, line totals, lengths) happens in the INSERT.
ORDER_STAGE = [
    ("position", "integer"),
    ("source", "text"),
    ("external_id", "text"),
    ("customer_external_id", "text"),
    ("email", "text"),
    ("number", "text"),
    ("status", "text"),
    ("financial_status", "text"),
    ("fulfillment_status", "text"),
    ("currency", "text"),
    ("subtotal", "numeric"),
    ("discount_total", "numeric"),
    ("discount_codes", "text[]"),  # normalised (trimmed, upper case): what the order stores
    ("event_discount_codes", "text[]"),  # as sent: what the order_placed event records
    ("shipping_total", "numeric"),
    ("tax_total", "numeric"),
    ("total", "numeric"),
    ("refunded_total", "numeric"),
    ("placed_at", "timestamptz"),
    ("cancelled_at", "timestamptz"),
    ("refunded_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("items", "integer"),
]
LINE_STAGE = [
    ("position", "integer"),
    ("order_position", "integer"),
    ("product_external_id", "text"),
    ("external_id", "text"),
    ("title", "text"),
    ("sku", "text"),
    ("category", "text"),
    ("quantity", "integer"),
    ("unit_price", "numeric"),
    ("discount", "numeric"),
    ("total", "numeric"),
]

LOOKUP_TABLES = ("customers_customer", "customers_order", "customers_product")
# What the customer stats refresh at the end of a load reads.
STATS_TABLES = ("customers_order", "customers_orderline")
# The columns those statements join and filter on. ANALYZE of these alone samples the same rows but skips the wide
# text and JSON columns: about 5x cheaper on the customer table (autovacuum still analyses every column later).
ANALYZE_COLUMNS = {
    "customers_customer": ("id", "workspace_id", "source", "external_id", "email", "merged_into_id", "erased_at"),
    "customers_order": ("id", "workspace_id", "source", "external_id", "customer_id", "status", "placed_at"),
    "customers_product": ("id", "workspace_id", "source", "external_id"),
    "customers_orderline": ("id", "workspace_id", "order_id", "product_id", "category", "customer_id", "placed_at"),
}


# Which customer an order belongs to: its customer's id in the same source (a merged-away customer resolves to the
# survivor), else, for a guest checkout, the oldest live customer with its email, else the guest customer created
# for that email earlier.
_INSERT_ORDERS = """
    WITH upserted AS (
        INSERT INTO customers_order (
            workspace_id, source, external_id, customer_id, number, email, status, financial_status,
            fulfillment_status, currency, subtotal, discount_total, discount_codes, shipping_total, tax_total, total,
            refunded_total, net_total, placed_at, cancelled_at, refunded_at, source_updated_at, created_at, updated_at
        )
        SELECT %(ws)s, s.source, s.external_id,
               CASE WHEN s.customer_external_id <> '' THEN COALESCE(c.merged_into_id, c.id)
                    ELSE COALESCE(by_email.id, guest.merged_into_id, guest.id) END,
               s.number, s.email, s.status, s.financial_status, s.fulfillment_status, s.currency, s.subtotal,
               s.discount_total, to_jsonb(s.discount_codes), s.shipping_total, s.tax_total, s.total, s.refunded_total,
               CASE WHEN s.status = 'cancelled' THEN 0 ELSE GREATEST(s.total - s.refunded_total, 0) END,
               s.placed_at, s.cancelled_at, s.refunded_at, s.updated_at, %(now)s, %(now)s
        FROM tmp_order_stage s
        LEFT JOIN customers_customer c
               ON s.customer_external_id <> '' AND c.workspace_id = %(ws)s AND c.source = s.source
              AND c.external_id = s.customer_external_id
        LEFT JOIN LATERAL (
            SELECT e.id FROM customers_customer e
            WHERE s.customer_external_id = '' AND s.email <> '' AND e.workspace_id = %(ws)s AND e.email = s.email
              AND e.merged_into_id IS NULL AND e.erased_at IS NULL
            ORDER BY e.id LIMIT 1
        ) by_email ON true
        LEFT JOIN LATERAL (
            SELECT g.id, g.merged_into_id FROM customers_customer g
            WHERE s.customer_external_id = '' AND s.email <> '' AND g.workspace_id = %(ws)s AND g.source = s.source
              AND g.external_id = 'email:' || s.email
            LIMIT 1  -- keeps the subquery a gated per-row lookup: flattened into a join it compares every pair
        ) guest ON true
        ORDER BY s.position
        ON CONFLICT (workspace_id, source, external_id) DO UPDATE SET {updates}
        WHERE customers_order.source_updated_at IS NULL OR EXCLUDED.source_updated_at IS NULL
           OR EXCLUDED.source_updated_at > customers_order.source_updated_at
        RETURNING id, source, external_id, customer_id, placed_at, status = 'cancelled' AS is_cancelled,
                  (xmax = 0) AS inserted
    )
    INSERT INTO tmp_order_upserted (id, position, source, customer_id, placed_at, is_cancelled, inserted)
    SELECT u.id, s.position, u.source, u.customer_id, u.placed_at, u.is_cancelled, u.inserted
    FROM upserted u JOIN tmp_order_stage s ON s.source = u.source AND s.external_id = u.external_id
"""

_INSERT_LINES = """
    INSERT INTO customers_orderline (
        workspace_id, order_id, product_id, external_id, title, sku, category, quantity, unit_price, discount, total,
        customer_id, placed_at, is_order_cancelled
    )
    SELECT %(ws)s, u.id, p.id, l.external_id, left(l.title, 255), l.sku,
           CASE WHEN l.category <> '' THEN l.category ELSE COALESCE(p.category, '') END,
           l.quantity, l.unit_price, l.discount, COALESCE(l.total, l.unit_price * l.quantity - l.discount),
           u.customer_id, u.placed_at, u.is_cancelled
    FROM tmp_line_stage l
    JOIN tmp_order_upserted u ON u.position = l.order_position
    LEFT JOIN customers_product p
           ON l.product_external_id <> '' AND p.workspace_id = %(ws)s AND p.source = u.source
          AND p.external_id = l.product_external_id
    ORDER BY l.position
"""

# The same three events (and external ids, so replays add nothing) as the portable path records.
_INSERT_EVENTS = f"""
    INSERT INTO customers_event (
        workspace_id, customer_id, anonymous_id, type, occurred_at, properties, source, external_id, created_at
    )
    SELECT %(ws)s, u.customer_id, '', e.type, e.occurred_at, e.properties, s.source, e.external_id, %(now)s
    FROM tmp_order_upserted u
    JOIN tmp_order_stage s ON s.position = u.position
    CROSS JOIN LATERAL (
        SELECT jsonb_build_object(
            'order_id', u.id, 'number', s.number, 'total', s.total::text, 'currency', s.currency
        ) AS base
    ) b
    CROSS JOIN LATERAL (
        SELECT 1 AS rank, '{EventType.ORDER_PLACED.value}' AS type, s.placed_at AS occurred_at,
               b.base || jsonb_build_object('items', s.items, 'discount_codes', to_jsonb(s.event_discount_codes))
                   AS properties,
               'order_placed:' || s.external_id AS external_id
        UNION ALL
        SELECT 2, '{EventType.ORDER_CANCELLED.value}', COALESCE(s.cancelled_at, s.updated_at, %(now)s), b.base,
               'order_cancelled:' || s.external_id
        WHERE s.status = '{OrderStatus.CANCELLED.value}'
        UNION ALL
        SELECT 3, '{EventType.ORDER_REFUNDED.value}', COALESCE(s.refunded_at, s.updated_at, %(now)s),
               b.base || jsonb_build_object('refunded', s.refunded_total::text),
               'order_refunded:' || s.external_id || ':' || s.refunded_total::text
        WHERE s.refunded_total > 0
    ) e
    WHERE u.customer_id IS NOT NULL
    ORDER BY u.position, e.rank
    ON CONFLICT (workspace_id, source, external_id) DO NOTHING
"""


def analyze_stale_lookup_tables(tables: Sequence[str] = LOOKUP_TABLES) -> None:
    """ANALYZE the tables the next statements join against when they have at least doubled since their last
    ANALYZE (autovacuum may not have come by yet during a long load). Planned on statistics that say a workspace
    has no customers or orders, a join may scan the whole workspace once per staged row, and the stats refresh that
    ends a load may read every order line once per customer."""
    with connection.cursor() as cursor:
        # Live rows against the row count the last ANALYZE saw: an ANALYZE of some columns updates the latter but,
        # unlike a full one, does not reset n_mod_since_analyze.
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s) "
            "AND n_live_tup > GREATEST(1000, 2 * (SELECT reltuples FROM pg_class WHERE oid = relid))",
            [list(tables)],
        )
        for (table,) in cursor.fetchall():
            cursor.execute(
                sql.SQL("ANALYZE {} ({})").format(
                    sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, ANALYZE_COLUMNS[table]))
                )
            )


def orders_upsert_batch_postgres(
    *, workspace: Workspace, records: list[OrderRecord], touched: set[int], now: dt.datetime
) -> UpsertResult:
    """Upsert one batch (one record per key, in a transaction); add every customer whose orders changed to
    ``touched``."""
    params = {"ws": workspace.id, "now": now}
    # The sorts by position (orders and lines keep the records' order) stay in memory; JIT compilation costs more
    # than it saves on statements that mostly write. A caller's transaction gets its own settings back.
    # psycopg's own cursor (for COPY), its errors turned into Django's as the ORM's would be, so callers catch one
    # kind (a sync page that fails as a batch is landed record by record).
    with (
        local_settings(work_mem="64MB", jit="off"),
        connection.cursor() as wrapper,
        connection.wrap_database_errors,
    ):
        cursor = wrapper.cursor
        _stage(cursor, "tmp_order_stage", ORDER_STAGE, _order_rows(records))
        _stage(cursor, "tmp_line_stage", LINE_STAGE, _line_rows(records))

        cursor.execute(
            """DELETE FROM tmp_order_stage s USING customers_order o
               WHERE o.workspace_id = %(ws)s AND o.source = s.source AND o.external_id = s.external_id
                 AND o.source_updated_at IS NOT NULL AND s.updated_at IS NOT NULL
                 AND s.updated_at <= o.source_updated_at""",
            params,
        )
        if cursor.rowcount == len(records):
            _drop(cursor)
            return UpsertResult(skipped_stale=len(records))
        cursor.execute(
            """SELECT o.customer_id FROM customers_order o
               JOIN tmp_order_stage s ON o.workspace_id = %(ws)s AND o.source = s.source
                                     AND o.external_id = s.external_id
               ORDER BY o.id FOR UPDATE OF o""",
            params,
        )
        touched.update(customer_id for (customer_id,) in cursor.fetchall() if customer_id is not None)
        _create_missing_customers(cursor, workspace=workspace)

        cursor.execute(
            "CREATE TEMP TABLE tmp_order_upserted (id bigint, position integer, source text, customer_id bigint, "
            "placed_at timestamptz, is_cancelled boolean, inserted boolean) ON COMMIT DROP"
        )
        updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in ORDER_UPSERT_FIELDS)
        cursor.execute(_INSERT_ORDERS.format(updates=updates), params)
        cursor.execute(
            "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted), "
            "array_agg(DISTINCT customer_id) FILTER (WHERE customer_id IS NOT NULL) FROM tmp_order_upserted"
        )
        created, updated, customer_ids = cursor.fetchone()
        touched.update(customer_ids or ())
        if updated:
            cursor.execute(
                "DELETE FROM customers_orderline l USING tmp_order_upserted u "
                "WHERE l.order_id = u.id AND NOT u.inserted"
            )
        cursor.execute(_INSERT_LINES, params)
        cursor.execute(_INSERT_EVENTS, params)
        _drop(cursor)
    return UpsertResult(created=created, updated=updated, skipped_stale=len(records) - created - updated)


def _order_rows(records: list[OrderRecord]):
    cancelled = OrderStatus.CANCELLED.value
    for position, r in enumerate(records):
        codes = r.discount_codes
        yield (
            position,
            r.source,
            r.external_id,
            r.customer_external_id or "",
            (r.email or "").strip().lower(),
            r.number,
            cancelled if r.cancelled_at else r.status,
            r.financial_status,
            r.fulfillment_status,
            r.currency,
            r.subtotal,
            r.discount_total,
            [code.strip().upper() for code in codes if code.strip()] if codes else [],
            list(codes),
            r.shipping_total,
            r.tax_total,
            r.total,
            r.refunded_total,
            r.placed_at,
            r.cancelled_at,
            r.refunded_at,
            r.updated_at,
            sum(line.quantity for line in r.lines),
        )


def _line_rows(records: list[OrderRecord]):
    position = 0
    for order_position, r in enumerate(records):
        for line in r.lines:
            yield (
                position,
                order_position,
                line.product_external_id or "",
                line.external_id,
                line.title,
                line.sku,
                line.category,
                line.quantity,
                line.unit_price,
                line.discount,
                line.total,
            )
            position += 1


def _stage(cursor, table: str, columns: Sequence[tuple[str, str]], rows) -> None:
    cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
    cursor.execute(
        sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(
            sql.Identifier(table),
            sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in columns),
        )
    )
    with cursor.copy(sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table))) as copy:
        for values in rows:
            copy.write_row(values)


def _drop(cursor) -> None:
    # ON COMMIT DROP is not enough when the caller holds an outer transaction over several batches.
    cursor.execute("DROP TABLE IF EXISTS tmp_order_stage, tmp_line_stage, tmp_order_upserted")


def _create_missing_customers(cursor, *, workspace: Workspace) -> None:
    """A guest order or an order of a customer the sync has not brought yet still belongs to someone: create them
    (the last record naming a customer gives its email), as the portable path does."""
    cursor.execute(
        """SELECT DISTINCT ON (s.source, s.customer_external_id) s.source, s.customer_external_id, s.email
           FROM tmp_order_stage s
           WHERE s.customer_external_id <> '' AND NOT EXISTS (
               SELECT 1 FROM customers_customer c
               WHERE c.workspace_id = %(ws)s AND c.source = s.source AND c.external_id = s.customer_external_id)
           ORDER BY s.source, s.customer_external_id, s.position DESC""",
        {"ws": workspace.id},
    )
    missing = [
        CustomerRecord(source=source, external_id=external_id, email=email)
        for source, external_id, email in cursor.fetchall()
    ]
    cursor.execute(
        """SELECT DISTINCT s.source, s.email FROM tmp_order_stage s
           WHERE s.customer_external_id = '' AND s.email <> ''
             AND NOT EXISTS (
                 SELECT 1 FROM customers_customer e
                 WHERE e.workspace_id = %(ws)s AND e.email = s.email AND e.merged_into_id IS NULL
                   AND e.erased_at IS NULL)
             AND NOT EXISTS (
                 SELECT 1 FROM customers_customer g
                 WHERE g.workspace_id = %(ws)s AND g.source = s.source AND g.external_id = 'email:' || s.email)""",
        {"ws": workspace.id},
    )
    missing += [
        CustomerRecord(source=source, external_id=f"email:{email}", email=email) for source, email in cursor.fetchall()
    ]
    if missing:
        from customers.services.ingestion import customers_bulk_upsert  # ingestion imports the orders module

        customers_bulk_upsert(workspace=workspace, records=missing)
