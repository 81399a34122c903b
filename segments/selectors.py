"""Reads for segments' pages and for other apps (campaigns use ``segment_list`` and ``segment_customers``)."""

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from django.db import connection
from django.db.models import QuerySet
from django.http import Http404

from crm.models import Workspace
from segments import compiler, rfm
from segments.models import RfmGroupChange, RfmSettings, RfmSnapshot, Segment, SegmentMembership, SegmentSize

# --------------------------------------------------------------------------------------------------------------
# Segments


def segment_list(*, workspace: Workspace) -> QuerySet[Segment]:
    return Segment.objects.filter(workspace=workspace).order_by("name")


def segment_get(*, workspace: Workspace, segment_id: int) -> Segment:
    """The segment, or 404 (the same answer for a missing id and for another workspace's)."""
    segment = Segment.objects.filter(workspace=workspace, pk=segment_id).first()
    if segment is None:
        raise Http404("No such segment")
    return segment


def segment_customers(*, workspace: Workspace, segment: Segment) -> QuerySet:
    """Who is in the segment now: a dynamic segment's compiled rule (live), a static segment's member list.

    A dynamic segment whose rule has become invalid (e.g. it refers to a deleted segment) is empty rather than
    an error, so a campaign never mails the wrong people.
    """
    from customers.models import Customer

    if segment.workspace_id != workspace.pk:
        return Customer.objects.none()
    if segment.is_dynamic:
        try:
            return compiler.rules_queryset(segment.rules, workspace=workspace, segment_id=segment.pk)
        except compiler.RuleError:
            return Customer.objects.none()
    members = SegmentMembership.objects.filter(workspace=workspace, segment=segment).values("customer_id")
    return compiler.base_customers(workspace=workspace).filter(pk__in=members)


def segment_size_history(*, workspace: Workspace, segment: Segment, limit: int = 90) -> list[SegmentSize]:
    rows = SegmentSize.objects.filter(workspace=workspace, segment=segment).order_by("-recorded_at")[:limit]
    return list(reversed(rows))


def segment_memberships_for_customer(*, workspace: Workspace, customer_id: int) -> QuerySet[SegmentMembership]:
    return (
        SegmentMembership.objects.filter(workspace=workspace, customer_id=customer_id)
        .select_related("segment")
        .order_by("segment__name")
    )


# --------------------------------------------------------------------------------------------------------------
# RFM


def rfm_settings_get(*, workspace: Workspace) -> RfmSettings:
    """The workspace's RFM settings (unsaved defaults when it never changed them)."""
    return RfmSettings.objects.filter(workspace=workspace).first() or RfmSettings(workspace=workspace)


def rfm_input_frame(*, workspace: Workspace, as_of: dt.datetime, window_days: int | None) -> pd.DataFrame:
    """One row per scoreable customer: current scores and group, and the order aggregates R, F and M come from.

    Columns: customer_id, old_recency, old_frequency, old_monetary, old_group, last_order_epoch (seconds, NaN when
    no order in the window), orders, revenue. One SQL statement; orders are aggregated in the database.
    """
    from customers.models import Customer, Order, OrderStatus

    customer_table = connection.ops.quote_name(Customer._meta.db_table)
    order_table = connection.ops.quote_name(Order._meta.db_table)
    if connection.vendor == "postgresql":
        epoch = "EXTRACT(EPOCH FROM MAX(o.placed_at))::float8"
        revenue = "SUM(o.net_total)::float8"
    else:
        epoch = "CAST(strftime('%%s', MAX(o.placed_at)) AS REAL)"
        revenue = "CAST(SUM(o.net_total) AS REAL)"
    params: list = [workspace.pk, OrderStatus.CANCELLED, as_of]
    window = ""
    if window_days:
        start = dt.datetime.combine(
            as_of.astimezone(workspace.tzinfo).date() - dt.timedelta(days=window_days), dt.time.min, workspace.tzinfo
        )
        window = "AND o.placed_at >= %s"
        params.append(start)
    params.append(workspace.pk)
    sql = f"""
        SELECT c.id, c.rfm_recency, c.rfm_frequency, c.rfm_monetary, c.rfm_group, a.last_epoch, a.orders, a.revenue
        FROM {customer_table} c
        LEFT JOIN (
            SELECT o.customer_id, {epoch} AS last_epoch, COUNT(*) AS orders, {revenue} AS revenue
            FROM {order_table} o
            WHERE o.workspace_id = %s AND o.customer_id IS NOT NULL AND o.status <> %s AND o.placed_at <= %s {window}
            GROUP BY o.customer_id
        ) a ON a.customer_id = c.id
        WHERE c.workspace_id = %s AND c.merged_into_id IS NULL AND c.erased_at IS NULL
        ORDER BY c.id
    """  # noqa: S608 - table names come from model metadata, values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    columns = [
        "customer_id",
        "old_recency",
        "old_frequency",
        "old_monetary",
        "old_group",
        "last_order_epoch",
        "orders",
        "revenue",
    ]
    frame = pd.DataFrame.from_records(rows, columns=columns)
    frame["last_order_epoch"] = pd.to_numeric(frame["last_order_epoch"], errors="coerce").astype("float64")
    frame["orders"] = pd.to_numeric(frame["orders"], errors="coerce").fillna(0).astype("int64")
    frame["revenue"] = pd.to_numeric(frame["revenue"], errors="coerce").fillna(0.0).astype("float64")
    return frame


def days_since(epochs: pd.Series, *, as_of: dt.datetime, workspace: Workspace) -> pd.Series:
    """Whole calendar days (workspace timezone) between each epoch and ``as_of``; NaN stays NaN."""
    as_of_day = pd.Timestamp(as_of.astimezone(workspace.tzinfo).date())
    local = pd.to_datetime(epochs, unit="s", utc=True).dt.tz_convert(workspace.timezone).dt.tz_localize(None)
    return (as_of_day - local.dt.normalize()).dt.days.astype("float64")


@dataclass(frozen=True, kw_only=True)
class RfmGroupRow:
    name: str
    description: str
    customers: int
    customer_share: float
    revenue: float
    revenue_share: float
    average_spend: float | None
    average_days_since_last_order: float | None
    change: int | None  # customers now minus a week ago; None without a snapshot that old


@dataclass(frozen=True, kw_only=True)
class RfmCell:
    recency: int
    frequency: int
    customers: int
    revenue: float
    share: float


@dataclass(frozen=True, kw_only=True)
class RfmOverview:
    snapshot: RfmSnapshot | None
    compared_with: RfmSnapshot | None
    groups: list[RfmGroupRow]
    grid_rows: list[list[RfmCell]]  # R = 5 first, F = 1..5 across
    total_customers: int
    total_revenue: float
    max_cell_customers: int


def rfm_overview(*, workspace: Workspace) -> RfmOverview:
    """What the RFM page shows: the latest rescore's snapshot, compared with the newest one at least a week older."""
    snapshot = RfmSnapshot.objects.filter(workspace=workspace).order_by("-taken_on").first()
    compared_with = None
    if snapshot is not None:
        compared_with = (
            RfmSnapshot.objects.filter(workspace=workspace, taken_on__lte=snapshot.taken_on - dt.timedelta(days=7))
            .order_by("-taken_on")
            .first()
        )
    groups_data = snapshot.groups if snapshot else {}
    previous = compared_with.groups if compared_with else {}
    total_customers = sum(g["customers"] for g in groups_data.values())
    total_revenue = sum(g["revenue"] for g in groups_data.values())
    groups = []
    for name, description in rfm.GROUPS.items():
        data = groups_data.get(name, {})
        customers = int(data.get("customers", 0))
        revenue = float(data.get("revenue", 0.0))
        with_orders = int(data.get("with_orders", 0))
        groups.append(
            RfmGroupRow(
                name=name,
                description=description,
                customers=customers,
                customer_share=customers / total_customers if total_customers else 0.0,
                revenue=revenue,
                revenue_share=revenue / total_revenue if total_revenue else 0.0,
                average_spend=revenue / customers if customers and name != rfm.PROSPECTS else None,
                average_days_since_last_order=(
                    data.get("days_since_last_order_sum", 0) / with_orders if with_orders else None
                ),
                change=(customers - int(previous.get(name, {}).get("customers", 0))) if compared_with else None,
            )
        )
    grid = snapshot.grid if snapshot else {}
    scored = sum(cell["customers"] for cell in grid.values()) or 0
    grid_rows = [
        [
            RfmCell(
                recency=recency,
                frequency=frequency,
                customers=int(grid.get(f"{recency},{frequency}", {}).get("customers", 0)),
                revenue=float(grid.get(f"{recency},{frequency}", {}).get("revenue", 0.0)),
                share=int(grid.get(f"{recency},{frequency}", {}).get("customers", 0)) / scored if scored else 0.0,
            )
            for frequency in range(1, 6)
        ]
        for recency in range(5, 0, -1)
    ]
    return RfmOverview(
        snapshot=snapshot,
        compared_with=compared_with,
        groups=groups,
        grid_rows=grid_rows,
        total_customers=total_customers,
        total_revenue=total_revenue,
        max_cell_customers=max((cell.customers for row in grid_rows for cell in row), default=0),
    )


def rfm_group_history(*, workspace: Workspace, customer_id: int, limit: int = 10) -> list[RfmGroupChange]:
    return list(
        RfmGroupChange.objects.filter(workspace=workspace, customer_id=customer_id).order_by("-changed_at", "-pk")[
            :limit
        ]
    )


# --------------------------------------------------------------------------------------------------------------
# For analytics: what each segment's members ordered in a period


@dataclass(frozen=True, kw_only=True)
class SegmentOrderFigures:
    segment: str
    members: int
    members_who_ordered: int
    revenue: float  # net revenue of the members' orders in the period (cancelled orders count nothing)


def segment_member_order_figures(
    *, workspace: Workspace, placed_from: dt.datetime, placed_before: dt.datetime, limit: int
) -> list[SegmentOrderFigures]:
    """Per segment (the ``limit`` largest by revenue): its members, how many of them placed an order in
    [placed_from, placed_before) and the net revenue of those orders. The period's orders are summed per customer
    once, then joined to the memberships, so each member costs a hash lookup, not a pass over their orders."""
    from customers.models import Order

    quote = connection.ops.quote_name
    sql = f"""
        WITH spend AS (
            SELECT o.customer_id, SUM(o.net_total) AS revenue
            FROM {quote(Order._meta.db_table)} o
            WHERE o.workspace_id = %s AND o.placed_at >= %s AND o.placed_at < %s AND o.status <> 'cancelled'
                AND o.customer_id IS NOT NULL
            GROUP BY o.customer_id
        )
        SELECT s.name, COUNT(*), COUNT(spend.customer_id), COALESCE(SUM(spend.revenue), 0) AS revenue
        FROM {quote(SegmentMembership._meta.db_table)} m
        JOIN {quote(Segment._meta.db_table)} s ON s.id = m.segment_id
        LEFT JOIN spend ON spend.customer_id = m.customer_id
        WHERE m.workspace_id = %s
        GROUP BY s.id, s.name
        ORDER BY revenue DESC, s.name
        LIMIT %s
    """  # noqa: S608 - table names from model meta, values parameterised
    with connection.cursor() as cursor:
        cursor.execute(sql, [workspace.pk, placed_from, placed_before, workspace.pk, limit])
        rows = cursor.fetchall()
    return [
        SegmentOrderFigures(segment=name, members=members, members_who_ordered=ordered, revenue=float(revenue))
        for name, members, ordered, revenue in rows
    ]
