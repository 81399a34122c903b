"""The reports page: the questions merchants ask, each answered from the chosen period's rows.

Each report returns a short answer in words and the table behind it (also its CSV export). These read raw rows
for one period only, so they are slower than the dashboard; they are loaded one by one with htmx.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db.models import Max, Q

from analytics import selectors, transforms
from analytics.selectors import DateRange
from analytics.services import local_bounds
from crm.models import Workspace
from customers.models import Cart, CartStatus, Event, Order, OrderLine, OrderStatus, Product

MAX_ROWS = 200_000


@dataclass(frozen=True, kw_only=True)
class ReportAnswer:
    summary: str
    table: pd.DataFrame


def least_visited(workspace: Workspace, date_range: DateRange) -> ReportAnswer:
    lower, upper = local_bounds(workspace, date_range.start, date_range.end)
    rows = Event.objects.filter(
        workspace=workspace, type__in=["page_viewed", "product_viewed"], occurred_at__gte=lower, occurred_at__lt=upper
    ).values_list("type", "properties")[:MAX_ROWS]
    frame = pd.DataFrame.from_records(rows, columns=["type", "properties"])
    products = pd.DataFrame.from_records(
        Product.objects.filter(workspace=workspace).values_list("external_id", "title"), columns=["key", "title"]
    )
    if frame.empty and products.empty:
        return ReportAnswer(summary="No page or product views recorded in this period.", table=pd.DataFrame())
    frame["key"] = frame["properties"].apply(
        lambda p: str(p.get("product_id") or p.get("product_external_id") or "") if isinstance(p, dict) else ""
    )
    frame["path"] = frame["properties"].apply(
        lambda p: str(p.get("path") or p.get("url") or "") if isinstance(p, dict) else ""
    )
    product_views = frame[frame["type"] == "product_viewed"].groupby("key").size()
    products["views"] = products["key"].map(product_views).fillna(0).astype(int)
    product_rows = products.assign(kind="product", name=products["title"])[["kind", "name", "views"]]
    pages = frame[(frame["type"] == "page_viewed") & (frame["path"] != "")].groupby("path").size()
    page_rows = pd.DataFrame({"kind": "page", "name": pages.index, "views": pages.to_numpy()})
    table = pd.concat([product_rows.sort_values("views").head(15), page_rows.sort_values("views").head(10)])
    unseen = int((products["views"] == 0).sum())
    summary = (
        f"{unseen} of {len(products)} products had no views at all in this period."
        if len(products)
        else "No products synced yet; pages are listed by views."
    )
    return ReportAnswer(summary=summary, table=table.reset_index(drop=True))


def touches_before_order(workspace: Workspace, date_range: DateRange) -> ReportAnswer:
    lower, upper = local_bounds(workspace, date_range.start, date_range.end)
    buyers = Order.objects.filter(
        workspace=workspace, placed_at__gte=lower, placed_at__lt=upper, customer__isnull=False
    ).values("customer_id")
    rows = Event.objects.filter(
        workspace=workspace,
        customer_id__in=buyers,
        type__in=["page_viewed", "product_viewed", "email_clicked", "order_placed"],
        occurred_at__gte=lower - dt.timedelta(days=90),
        occurred_at__lt=upper,
    ).values_list("customer_id", "type", "occurred_at")[:MAX_ROWS]
    touches = transforms.touches_before_order(
        pd.DataFrame.from_records(rows, columns=["customer_id", "type", "occurred_at"])
    )
    if touches.empty:
        return ReportAnswer(summary="No tracked orders in this period.", table=pd.DataFrame())
    buckets = pd.cut(touches["views"], bins=[-1, 0, 2, 5, 10, np.inf], labels=["0", "1–2", "3–5", "6–10", "11+"])
    table = touches.groupby(buckets, observed=False).agg(orders=("views", "size"), average_clicks=("clicks", "mean"))
    table.index.name = "views_before_order"
    summary = (
        f"A typical order follows {touches['views'].median():.0f} page/product views "
        f"(average {touches['views'].mean():.1f}) and {touches['clicks'].mean():.2f} email clicks "
        "since the customer's previous order (looking back up to 90 days)."
    )
    return ReportAnswer(summary=summary, table=table.round(2).reset_index())


def abandoned_carts(workspace: Workspace, date_range: DateRange) -> ReportAnswer:
    lower, upper = local_bounds(workspace, date_range.start, date_range.end)
    carts = Cart.objects.filter(workspace=workspace, started_at__gte=lower, started_at__lt=upper)
    rows = pd.DataFrame.from_records(carts.values_list("status", "value"), columns=["status", "value"])
    if rows.empty:
        return ReportAnswer(summary="No carts were started in this period.", table=pd.DataFrame())
    rows["value"] = rows["value"].astype(float)
    left = rows[rows["status"].isin([CartStatus.ABANDONED, CartStatus.RECOVERED])]
    came_back = rows[rows["status"] == CartStatus.RECOVERED]
    table = pd.DataFrame(
        [
            {"carts": "started", "count": len(rows), "value": rows["value"].sum()},
            {"carts": "added to cart and left", "count": len(left), "value": left["value"].sum()},
            {"carts": "came back and ordered", "count": len(came_back), "value": came_back["value"].sum()},
            {
                "carts": "still open",
                "count": int((rows["status"] == CartStatus.OPEN).sum()),
                "value": rows.loc[rows["status"] == CartStatus.OPEN, "value"].sum(),
            },
        ]
    ).round(2)
    share = len(came_back) / len(left) if len(left) else 0
    summary = (
        f"{len(left)} of {len(rows)} carts were left without ordering; {len(came_back)} of those "
        f"({share:.0%}) came back and ordered."
    )
    return ReportAnswer(summary=summary, table=table)


def discount_codes(workspace: Workspace, date_range: DateRange) -> ReportAnswer:
    lower, upper = local_bounds(workspace, date_range.start, date_range.end)
    orders = Order.objects.filter(workspace=workspace, placed_at__gte=lower, placed_at__lt=upper).exclude(
        status=OrderStatus.CANCELLED
    )
    frame = pd.DataFrame.from_records(
        orders.values_list("customer_id", "discount_codes", "net_total", "discount_total", "placed_at")[:MAX_ROWS],
        columns=["customer_id", "code", "revenue", "discount", "placed_at"],
    )
    if frame.empty:
        return ReportAnswer(summary="No orders in this period.", table=pd.DataFrame())
    frame["code"] = frame["code"].apply(lambda codes: codes if isinstance(codes, list) and codes else ["(no code)"])
    frame = frame.explode("code")
    frame[["revenue", "discount"]] = frame[["revenue", "discount"]].astype(float)
    # "Ordered again": the customer has a later order than the one with the code (up to today).
    last_orders = dict(
        Order.objects.filter(
            workspace=workspace, customer_id__in=orders.filter(customer__isnull=False).values("customer_id")
        )
        .exclude(status=OrderStatus.CANCELLED)
        .values("customer_id")
        .annotate(last=Max("placed_at"))
        .values_list("customer_id", "last")
    )
    frame["ordered_again"] = [
        bool(customer == customer and last_orders.get(int(customer)) and last_orders[int(customer)] > placed)
        for customer, placed in zip(frame["customer_id"], frame["placed_at"], strict=True)
    ]
    table = (
        frame.groupby("code")
        .agg(
            orders=("revenue", "size"),
            revenue=("revenue", "sum"),
            average_order_value=("revenue", "mean"),
            discount_given=("discount", "sum"),
            customers=("customer_id", "nunique"),
            share_ordering_again=("ordered_again", "mean"),
        )
        .sort_values("orders", ascending=False)
    )
    table["revenue_per_discount"] = table["revenue"] / table["discount_given"].replace(0, np.nan)
    codes = table.drop(index="(no code)", errors="ignore")
    if codes.empty:
        summary = "No discount codes were used in this period."
    else:
        best = codes["orders"].idxmax()
        loyal = codes["share_ordering_again"].idxmax()
        summary = (
            f"{best} brought the most orders ({int(codes.loc[best, 'orders'])}); customers who used {loyal} "
            f"were the most likely to order again ({codes.loc[loyal, 'share_ordering_again']:.0%})."
        )
    return ReportAnswer(summary=summary, table=table.round(2).reset_index())


def activity(workspace: Workspace, date_range: DateRange) -> ReportAnswer:
    frame = selectors.daily_frame(
        workspace=workspace, date_range=date_range, fields=["date", "events_by_hour", "orders_by_hour"]
    )
    matrix = transforms.weekday_hour_matrix(frame, column="events_by_hour")
    what = "storefront events"
    if not matrix.to_numpy().sum():
        matrix, what = transforms.weekday_hour_matrix(frame, column="orders_by_hour"), "orders"
    if not matrix.to_numpy().sum():
        return ReportAnswer(summary="No activity recorded in this period.", table=pd.DataFrame())
    weekday = matrix.sum(axis=1).idxmax()
    hour = int(matrix.sum(axis=0).idxmax())
    cell = matrix.stack().idxmax()
    summary = (
        f"Busiest day: {weekday}; busiest hour: {hour:02d}:00–{hour + 1:02d}:00; the single busiest slot is "
        f"{cell[0]} {int(cell[1]):02d}:00 (by {what}, {workspace.timezone} time)."
    )
    matrix.index.name = "weekday"
    return ReportAnswer(summary=summary, table=matrix.astype(int).reset_index())


def bought_together(workspace: Workspace, date_range: DateRange) -> ReportAnswer:
    lower, upper = local_bounds(workspace, date_range.start, date_range.end)
    lines = (
        OrderLine.objects.filter(Q(order__placed_at__gte=lower, order__placed_at__lt=upper), workspace=workspace)
        .exclude(order__status=OrderStatus.CANCELLED)
        .values_list("order_id", "title")[:MAX_ROWS]
    )
    table = transforms.bought_together(pd.DataFrame.from_records(lines, columns=["order_id", "product"]))
    if table.empty:
        return ReportAnswer(
            summary="No orders with two or more different products in this period.", table=pd.DataFrame()
        )
    top = table.iloc[0]
    summary = (
        f"Most often together: {top['product_a']} and {top['product_b']} ({int(top['orders'])} orders, "
        f"{top['lift']:.1f}× more often than chance)."
    )
    return ReportAnswer(summary=summary, table=table.round(4))


@dataclass(frozen=True, kw_only=True)
class Report:
    name: str
    question: str
    build: Callable[[Workspace, DateRange], ReportAnswer]


REPORTS: dict[str, Report] = {
    report.name: report
    for report in [
        Report(name="least-visited", question="Which pages and products get the fewest visitors?", build=least_visited),
        Report(
            name="touches-before-order",
            question="How many views and clicks come before an order?",
            build=touches_before_order,
        ),
        Report(
            name="abandoned-carts",
            question="How many added to cart and left, and how many of those came back?",
            build=abandoned_carts,
        ),
        Report(name="discount-codes", question="Which discount codes convert best?", build=discount_codes),
        Report(name="activity", question="When in the day and week are customers most active?", build=activity),
        Report(name="bought-together", question="Which products are bought together?", build=bought_together),
    ]
}
