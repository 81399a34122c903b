"""Counting a compiled segment (issue: under 150 ms over 1,000,000 customers) vs a multi-query Python baseline.

The store: customers with denormalised stats and RFM groups, one order with one line per customer on average (ten
categories), and email-open events. Rows measured:
- a rule over customer columns (RFM group and total spent): the usual shape, served by the customer indexes;
- the marketer's rule from the issue (bought in a category in the last 90 days AND (RFM group is At risk OR no
  email opened in 60 days)), one SQL statement with EXISTS subqueries.
The baseline answers the same rule the way a naive implementation would: one query per condition, ids combined
as Python sets.
"""

import time

from django.db import connection
from django.utils import timezone

from bench.common import median_ms, row, throwaway_workspace
from bench.segments_rfm import _days_ago_sql, _random, _whole, analyze, fill_customers, fill_orders, insert_series

FULL_CUSTOMERS = 1_000_000
GROUPS = ["Champions", "Loyal", "Active", "New", "Promising", "Needs attention", "At risk", "Previously loyal",
          "Almost lost", "Dormant", "Prospects"]  # fmt: skip


def _fill(workspace, customers: int) -> None:
    from customers.models import Customer, Event, Order, OrderLine

    r = _random()
    group_case = "CASE " + " ".join(f"WHEN g %% 11 = {i} THEN '{name}'" for i, name in enumerate(GROUPS)) + " END"
    spent = f"round(CAST({r} * 1000 AS NUMERIC), 2)" if connection.vendor == "postgresql" else f"round({r} * 1000, 2)"
    now = timezone.now()
    id_range = fill_customers(
        workspace,
        customers,
        extra={
            "rfm_group": group_case,
            "total_spent": spent,
            "orders_count": "g %% 7",
            "last_order_at": _days_ago_sql(400),
        },
        extra_params={"last_order_at": [now]},
    )
    fill_orders(workspace, customers, id_range, max_days=365)
    with connection.cursor() as cursor:
        order_table = connection.ops.quote_name(Order._meta.db_table)
        cursor.execute(f"SELECT MIN(id) FROM {order_table} WHERE workspace_id = %s", [workspace.pk])  # noqa: S608
        first_order = cursor.fetchone()[0]
    of_order = f"FROM {order_table} o WHERE o.id = %s + g - 1"  # the line's copies of its order's fields
    insert_series(
        OrderLine,
        customers,
        {
            "workspace_id": "%s",
            "order_id": "(%s + g - 1)",
            "category": "'Category ' || (g %% 10)",
            "title": "'Item'",
            "customer_id": f"(SELECT o.customer_id {of_order})",
            "placed_at": f"(SELECT o.placed_at {of_order})",
            "is_order_cancelled": f"(SELECT o.status = 'cancelled' {of_order})",
        },
        {
            "workspace_id": [workspace.pk],
            "order_id": [first_order],
            "customer_id": [first_order],
            "placed_at": [first_order],
            "is_order_cancelled": [first_order],
        },
    )
    low, high = id_range
    insert_series(
        Event,
        customers,
        {
            "workspace_id": "%s",
            "customer_id": f"(%s + {_whole(f'%s * {r}')})",
            "type": "'email_opened'",
            "occurred_at": _days_ago_sql(200),
            "source": "'crm'",
        },
        {"workspace_id": [workspace.pk], "customer_id": [low, high - low + 1], "occurred_at": [now]},
    )
    analyze(Customer, Order, OrderLine, Event)


def _baseline_count(workspace, category: str) -> int:
    """The same rule as several queries whose ids are combined in Python."""
    from customers.models import Customer, Event, OrderLine
    from segments.compiler import last_days_cutoff

    bought = set(
        OrderLine.objects.filter(
            workspace=workspace, category__iexact=category, order__placed_at__gte=last_days_cutoff(workspace, 90)
        )
        .exclude(order__status="cancelled")
        .values_list("order__customer_id", flat=True)
    )
    at_risk = set(Customer.objects.filter(workspace=workspace, rfm_group="At risk").values_list("pk", flat=True))
    opened = set(
        Event.objects.filter(
            workspace=workspace, type="email_opened", occurred_at__gte=last_days_cutoff(workspace, 60)
        ).values_list("customer_id", flat=True)
    )
    everyone = set(Customer.objects.filter(workspace=workspace).values_list("pk", flat=True))
    return len(bought & (at_risk | (everyone - opened)))


def _baseline_columns(workspace) -> int:
    """The column rule as one query per condition, ids intersected in Python."""
    from customers.models import Customer

    live = Customer.objects.filter(workspace=workspace, merged_into__isnull=True, erased_at__isnull=True)
    at_risk = set(live.filter(rfm_group="At risk").values_list("pk", flat=True))
    spent = set(live.filter(total_spent__gt=500).values_list("pk", flat=True))
    return len(at_risk & spent)


def run(args) -> list[dict]:
    from segments.compiler import condition as c
    from segments.compiler import exact_count, rules_queryset
    from segments.compiler import group as g

    customers = max(2000, int(FULL_CUSTOMERS * args.scale))
    target = "< 150 ms at 1M customers"
    with throwaway_workspace("bench-count") as workspace:
        started = time.perf_counter()
        _fill(workspace, customers)
        setup_s = time.perf_counter() - started

        columns = g("all", c("rfm_group", "is", value="At risk"), c("total_spent", "gt", value="500"))
        marketer = g(
            "all",
            c("bought_category", "did", value="Category 3", days=90),
            g("any", c("rfm_group", "is", value="At risk"), c("email_opened", "did_not", days=60)),
        )
        results = []
        for label, rules in (("column rule (RFM group AND spent)", columns), ("marketer's rule (2 EXISTS)", marketer)):
            count = exact_count(rules_queryset(rules, workspace=workspace))
            compiled = median_ms(
                lambda rules=rules: exact_count(rules_queryset(rules, workspace=workspace)), repeat=args.repeat
            )
            results.append((label, rules, count, compiled))

        assert _baseline_columns(workspace) == results[0][2], "compiled column count differs from the baseline"
        column_baseline = median_ms(lambda: _baseline_columns(workspace), repeat=max(1, min(args.repeat, 3)))
        expected = _baseline_count(workspace, "Category 3")
        assert expected == results[1][2], f"compiled count {results[1][2]} != baseline {expected}"
        baseline = median_ms(lambda: _baseline_count(workspace, "Category 3"), repeat=max(1, min(args.repeat, 3)))
    return [
        row(f"segment count: {results[0][0]} -> {results[0][2]:,} (setup {setup_s:.0f} s)", n=customers,
            median=results[0][3], baseline=column_baseline, target=target),
        row(f"segment count: {results[1][0]} -> {results[1][2]:,}", n=customers, median=results[1][3],
            baseline=baseline, target=target),
    ]  # fmt: skip
