"""PostgreSQL fast path for the bulk upserts: COPY rows into a temporary table, then one
``INSERT ... SELECT ... ON CONFLICT`` into the real table.

The ORM's bulk_create spends most of its time building model instances and SQL parameters in Python; COPY streams
plain tuples. Used by ``customers.services`` when the connection is PostgreSQL; the ORM path stays for SQLite.
The temporary table lives for one transaction (ON COMMIT DROP), which copy_upsert opens if none is open.
"""

from collections.abc import Iterable, Sequence

from django.db import connection, transaction
from psycopg import sql
from psycopg.types.json import Jsonb


def _temp_table(cursor, table: str, columns: Sequence[str]) -> sql.Identifier:
    temp = sql.Identifier(f"tmp_{table}")
    cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(temp))
    cursor.execute(
        sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
            temp, sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table)
        )
    )
    return temp


def _copy(cursor, target: sql.Identifier, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(target, sql.SQL(", ").join(map(sql.Identifier, columns)))
    with cursor.copy(statement) as copy:
        for values in rows:
            copy.write_row(values)


def jsonb(value) -> Jsonb:
    return Jsonb(value)


def copy_insert(*, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Plain COPY into ``table`` (no conflict handling): for rows that cannot exist yet, such as replaced lines."""
    with connection.cursor() as wrapper, connection.wrap_database_errors:
        _copy(wrapper.cursor, sql.Identifier(table), columns, rows)


def copy_upsert(
    *,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence],
    conflict_columns: Sequence[str],
    update_columns: Sequence[str] = (),
    returning: Sequence[str] = (),
) -> list[tuple]:
    """Upsert ``rows`` into ``table``; with no ``update_columns`` conflicting rows are left alone (DO NOTHING)."""
    # psycopg's own cursor (for COPY), its errors turned into Django's as the ORM's would be.
    with transaction.atomic(), connection.cursor() as wrapper, connection.wrap_database_errors:
        cursor = wrapper.cursor
        temp = _temp_table(cursor, table, columns)
        _copy(cursor, temp, columns, rows)
        column_list = sql.SQL(", ").join(map(sql.Identifier, columns))
        if update_columns:
            action = sql.SQL("DO UPDATE SET {}").format(
                sql.SQL(", ").join(
                    sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in update_columns
                )
            )
        else:
            action = sql.SQL("DO NOTHING")
        statement = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) {}").format(
            sql.Identifier(table),
            column_list,
            column_list,
            temp,
            sql.SQL(", ").join(map(sql.Identifier, conflict_columns)),
            action,
        )
        if returning:
            statement = statement + sql.SQL(" RETURNING {}").format(sql.SQL(", ").join(map(sql.Identifier, returning)))
        cursor.execute(statement)
        result = cursor.fetchall() if returning else []
        cursor.execute(sql.SQL("DROP TABLE {}").format(temp))
        return result
