"""Bulk writes of the scores other apps compute for customers: RFM (segments' rescore) and predictions (analytics'
nightly fit). Those apps own the computation; the Customer row is ours, so they write through here.

One call writes one set of columns for many customers: the rows go into a temporary table (COPY on PostgreSQL,
executemany elsewhere) and one ``UPDATE ... FROM`` writes only the customers whose values differ (``IS DISTINCT
FROM``, so NULLs compare as values). Rows that did not change are not touched at all: no dead tuple, no index
entry, no WAL, which is what makes a nightly rescore of a million customers cheap when few scores moved.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import connection, transaction
from django.db.models import Field

from crm.models import Workspace
from customers.models import Customer

RFM_SCORE_FIELDS = ("rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_group", "rfm_scored_at")
PREDICTION_FIELDS = (
    "probability_alive",
    "expected_orders_90d",
    "predicted_clv",
    "predicted_next_order_at",
    "churn_risk",
    "clv_tier",
)
# The only columns this service writes: computed scores, never profile, consent or order stats.
SCORE_FIELDS = frozenset(RFM_SCORE_FIELDS + PREDICTION_FIELDS)

_TEMP_TABLE = "customers_scores_new"


def _check_fields(fields: Sequence[str], also_set: Mapping[str, Any]) -> None:
    names = [*fields, *also_set]
    if not fields:
        raise ValueError("customers_set_scores needs at least one field")
    unknown = sorted(set(names) - SCORE_FIELDS)
    if unknown:
        raise ValueError(f"not score fields: {', '.join(unknown)} (allowed: {', '.join(sorted(SCORE_FIELDS))})")
    if len(set(names)) != len(names):
        raise ValueError("a field is named twice")


def _field(name: str) -> Field:
    field = Customer._meta.get_field(name)
    assert isinstance(field, Field)  # noqa: S101 - score fields are concrete columns (checked against SCORE_FIELDS)
    return field


def _db_values(model_fields: Sequence[Field], values: Sequence[Any]) -> list[Any]:
    """Values as the backend stores them (SQLite keeps datetimes and decimals as text), so comparisons are exact."""
    return [field.get_db_prep_save(value, connection) for field, value in zip(model_fields, values, strict=True)]


def customers_set_scores(
    *,
    workspace: Workspace,
    fields: Sequence[str],
    rows: Iterable[Sequence[Any]],
    also_set: Mapping[str, Any] | None = None,
    reset_others: bool = False,
) -> int:
    """Write score columns for many customers of ``workspace``; returns how many customers changed.

    ``rows`` are ``(customer_id, value, ...)`` with one value per name in ``fields`` (plain Python values: int,
    float, Decimal, str, aware datetime or None). Only customers whose stored values differ are written. Ids of
    another workspace's customers are ignored.

    ``also_set`` gives columns one value on every changed row without being compared (``{"rfm_scored_at": now}``
    stamps when the scores last moved). With ``reset_others`` the customers of the workspace that are not in
    ``rows`` get each field's empty value (its default: NULL, "" or 0), e.g. predictions of customers who left the
    fitted population.
    """
    also_set = dict(also_set or {})
    _check_fields(fields, also_set)
    model_fields = [_field(name) for name in fields]
    quote = connection.ops.quote_name
    customer_table = quote(Customer._meta.db_table)
    temp = quote(_TEMP_TABLE)
    columns = [quote(field.attname) for field in model_fields]
    distinct = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    differs = " OR ".join(f"c.{column} {distinct} t.{column}" for column in columns)
    stamp_fields = [_field(name) for name in also_set]
    stamp_sql = "".join(f", {quote(field.attname)} = %s" for field in stamp_fields)
    stamp_params = [field.get_db_prep_save(also_set[field.name], connection) for field in stamp_fields]

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {temp}")
        # Same column types as the Customer table, so values are rounded/cast once on the way in and compare exactly.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {temp} AS SELECT id AS customer_id, {', '.join(columns)}"  # noqa: S608
            f" FROM {customer_table} WHERE 1 = 0"
        )
        if connection.vendor == "postgresql":
            copy_sql = f"COPY {temp} (customer_id, {', '.join(columns)}) FROM STDIN"
            with cursor.cursor.copy(copy_sql) as copy:  # type: ignore[attr-defined]
                for values in rows:
                    copy.write_row(values)
            # Fresh statistics let the planner pick an index lookup for a few rows and a hash join for millions.
            cursor.execute(f"ANALYZE {temp}")
        else:
            placeholders = ", ".join(["%s"] * (len(columns) + 1))
            cursor.executemany(
                f"INSERT INTO {temp} VALUES ({placeholders})",  # noqa: S608
                [[values[0], *_db_values(model_fields, values[1:])] for values in rows],
            )
        assignments = ", ".join(f"{column} = t.{column}" for column in columns)
        cursor.execute(
            f"UPDATE {customer_table} AS c SET {assignments}{stamp_sql} FROM {temp} AS t"  # noqa: S608
            f" WHERE c.id = t.customer_id AND c.workspace_id = %s AND ({differs})",
            [*stamp_params, workspace.pk],
        )
        changed = cursor.rowcount
        if reset_others:
            empties = [field.get_db_prep_save(field.get_default(), connection) for field in model_fields]
            resets = ", ".join(f"{column} = %s" for column in columns)
            not_empty = " OR ".join(f"c.{column} {distinct} %s" for column in columns)
            cursor.execute(
                f"UPDATE {customer_table} AS c SET {resets}{stamp_sql}"  # noqa: S608
                f" WHERE c.workspace_id = %s AND ({not_empty})"
                f" AND NOT EXISTS (SELECT 1 FROM {temp} AS t WHERE t.customer_id = c.id)",
                [*empties, *stamp_params, workspace.pk, *empties],
            )
            changed += cursor.rowcount
        cursor.execute(f"DROP TABLE {temp}")
    return changed
