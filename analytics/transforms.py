"""Pure pandas/numpy transforms: DataFrames in, DataFrames out. No database access; the SQL that feeds them lives
in ``analytics.services`` (rollups) and ``analytics.selectors`` (reads). Output columns named after DailyMetrics
columns take their names from ``analytics.models``."""

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import combinations

import numpy as np
import pandas as pd

from analytics.models import DAILY_CUSTOMER_FIELDS, DAILY_SESSION_FIELDS

ACTIVE_WINDOW_DAYS = 365
MAX_REACH_DAYS = 1100  # longest range the dashboard allows (3 years): reach arrays need no more entries
SESSION_GAP = pd.Timedelta(minutes=30)
BROWSING_TYPES = ("page_viewed", "product_viewed", "added_to_cart", "checkout_started")
STOREFRONT_TYPES = (*BROWSING_TYPES, "order_placed")
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


# --- order days -------------------------------------------------------------------------------------------------


def order_day_flags(order_days: pd.DataFrame, *, window_days: int = ACTIVE_WINDOW_DAYS) -> pd.DataFrame:
    """Classify each (customer, local day with orders) row of a customer's *full* order history.

    Input columns: customer_id, day (datetime.date), revenue, orders. Output adds: rank (1 = first order day),
    gap (days since the previous order day, NaN for the first), activates (no order day in the previous
    window: the customer becomes active), lapse_day (the day the customer stops being active because no order
    day follows within the window, else NaT).
    """
    frame = order_days.copy()
    frame["day"] = pd.to_datetime(frame["day"])
    frame = frame.sort_values(["customer_id", "day"]).reset_index(drop=True)
    grouped = frame.groupby("customer_id")["day"]
    frame["rank"] = grouped.cumcount() + 1
    previous = grouped.shift(1)
    following = grouped.shift(-1)
    frame["gap"] = (frame["day"] - previous).dt.days
    frame["activates"] = frame["gap"].isna() | (frame["gap"] >= window_days)
    next_gap = (following - frame["day"]).dt.days
    ends = next_gap.isna() | (next_gap >= window_days)
    frame["lapse_day"] = (frame["day"] + pd.Timedelta(days=window_days)).where(ends)
    return frame


def daily_customer_metrics(flags: pd.DataFrame) -> pd.DataFrame:
    """Per day: customer counts, new/returning split and the gap histograms, from ``order_day_flags`` output."""
    columns = [*DAILY_CUSTOMER_FIELDS, "customers_activated"]
    if flags.empty:
        return pd.DataFrame(columns=columns)
    frame = flags.assign(is_new=flags["rank"] == 1)
    grouped = frame.groupby("day")
    out = pd.DataFrame(
        {
            "customers_ordered": grouped.size(),
            "new_customers": grouped["is_new"].sum(),
            "new_customer_revenue": frame[frame.is_new].groupby("day")["revenue"].sum(),
            "new_customer_orders": frame[frame.is_new].groupby("day")["orders"].sum(),
            "returning_customer_revenue": frame[~frame.is_new].groupby("day")["revenue"].sum(),
            "returning_customer_orders": frame[~frame.is_new].groupby("day")["orders"].sum(),
            "customers_activated": grouped["activates"].sum(),
        }
    )
    out["returning_customers"] = out["customers_ordered"] - out["new_customers"]
    out["second_order_reach"] = _reach_arrays(frame[frame["rank"] == 2])
    out["later_order_reach"] = _reach_arrays(frame[frame["rank"] >= 3])
    for column in ("second_order_reach", "later_order_reach"):
        out[column] = out[column].apply(lambda value: value if isinstance(value, list) else [])
    out = out.fillna(0)
    return out[columns]


def _reach_arrays(frame: pd.DataFrame) -> pd.Series:
    """Per day, R where R[k] = order days that day whose previous order day is more than k days earlier.

    A range starting k days before the day counts R[k] of them as customers coming back from before it, so a
    range's distinct customers cost one array lookup per day. Trailing zeros are dropped.
    """
    if frame.empty:
        return pd.Series(dtype=object)
    result: dict = {}
    for day, gaps in frame.groupby("day")["gap"]:
        counts = np.bincount(np.minimum(gaps.to_numpy(dtype=int), MAX_REACH_DAYS))
        reach = len(gaps) - np.cumsum(counts)  # reach[k] = gaps > k
        result[day] = [int(v) for v in reach[: int(np.max(gaps.to_numpy())) if len(gaps) else 0][:MAX_REACH_DAYS]]
    return pd.Series(result, dtype=object)


def daily_lapses(flags: pd.DataFrame) -> pd.Series:
    """Customers whose activity window closes on each day (they are no longer counted as active from then)."""
    lapses = flags["lapse_day"].dropna()
    return lapses.value_counts().sort_index()


def range_customer_counts(days: Iterable[Mapping], *, start: dt.date) -> dict[str, int]:
    """Distinct customers who ordered in a range, and how many of them had ordered before the range or ordered
    more than once, from daily rollups (each with date, new_customers, second_order_reach, later_order_reach).

    A customer is counted at the first of their order days inside the range: a day's second/later order day
    counts when its gap reaches back before ``start`` (gap > day - start), and every new customer counts.
    A second order day always makes its customer a repeat customer; a later one only when it is the customer's
    first order day in the range.
    """
    new = returning = repeat = 0
    for row in days:
        offset = (row["date"] - start).days
        new += row["new_customers"]
        second, later = row["second_order_reach"], row["later_order_reach"]
        second_before = second[offset] if offset < len(second) else 0
        later_before = later[offset] if offset < len(later) else 0
        returning += second_before + later_before
        repeat += (second[0] if second else 0) + later_before
    return {"customers": new + returning, "new": new, "returning": returning, "repeat": repeat}


# --- sessions ---------------------------------------------------------------------------------------------------


def sessionize(events: pd.DataFrame, *, tz: str, gap: pd.Timedelta = SESSION_GAP) -> pd.DataFrame:
    """Group storefront events into sessions: one visitor's events with gaps shorter than ``gap``.

    Input columns: visitor, type, occurred_at (aware). Sessions without a browsing event (an order that arrived
    by webhook with no tracked visit) are dropped: they are not visits. Output: one row per session with
    start (local), day, seconds, page_views and the furthest funnel step reached.
    """
    columns = [
        "visitor",
        "start",
        "day",
        "seconds",
        "page_views",
        "has_product_view",
        "has_cart",
        "has_checkout",
        "has_order",
    ]
    if events.empty:
        return pd.DataFrame(columns=columns)
    frame = events.copy()
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True).dt.tz_convert(tz)
    frame = frame.sort_values(["visitor", "occurred_at"])
    new_session = (frame["visitor"] != frame["visitor"].shift()) | (frame["occurred_at"].diff() >= gap)
    frame["session"] = new_session.cumsum()
    for flag, types in {
        "is_browsing": BROWSING_TYPES,
        "is_page": ("page_viewed", "product_viewed"),
        "has_product_view": ("product_viewed",),
        "has_cart": ("added_to_cart",),
        "has_checkout": ("checkout_started",),
        "has_order": ("order_placed",),
    }.items():
        frame[flag] = frame["type"].isin(types)
    grouped = frame.groupby("session")
    sessions = pd.DataFrame(
        {
            "visitor": grouped["visitor"].first(),
            "start": grouped["occurred_at"].min(),
            "end": grouped["occurred_at"].max(),
            "is_browsing": grouped["is_browsing"].any(),
            "page_views": grouped["is_page"].sum(),
            "has_product_view": grouped["has_product_view"].any(),
            "has_cart": grouped["has_cart"].any(),
            "has_checkout": grouped["has_checkout"].any(),
            "has_order": grouped["has_order"].any(),
        }
    )
    sessions = sessions[sessions["is_browsing"]]
    sessions["seconds"] = (sessions["end"] - sessions["start"]).dt.total_seconds().astype(int)
    sessions["day"] = sessions["start"].dt.date
    return sessions[columns].reset_index(drop=True)


def daily_session_metrics(sessions: pd.DataFrame) -> pd.DataFrame:
    columns = DAILY_SESSION_FIELDS
    if sessions.empty:
        return pd.DataFrame(columns=columns)
    grouped = sessions.groupby("day")
    return pd.DataFrame(
        {
            "sessions": grouped.size(),
            "sessions_with_product_view": grouped["has_product_view"].sum(),
            "sessions_with_cart": grouped["has_cart"].sum(),
            "sessions_with_checkout": grouped["has_checkout"].sum(),
            "sessions_with_order": grouped["has_order"].sum(),
            "session_seconds": grouped["seconds"].sum(),
            "page_views": grouped["page_views"].sum(),
        }
    )[columns]


# --- chart tables -----------------------------------------------------------------------------------------------


def resample_daily(frame: pd.DataFrame, *, grain: str, columns: list[str]) -> pd.DataFrame:
    """Sum daily rows (a ``date`` column) into day, week (starting Monday) or month periods."""
    if frame.empty:
        return pd.DataFrame(columns=["period", *columns])
    data = frame.assign(date=pd.to_datetime(frame["date"])).set_index("date")[columns].astype(float)
    rule = {"day": "D", "week": "W-SUN", "month": "MS"}[grain]
    out = data.resample(rule, label="left" if grain == "month" else "right").sum()
    if grain == "week":
        out.index = out.index - pd.Timedelta(days=6)
    out.index = out.index.date
    out.index.name = "period"
    return out.reset_index()


def weekday_hour_matrix(days: pd.DataFrame, *, column: str = "events_by_hour") -> pd.DataFrame:
    """7 x 24 totals (Monday first) from daily rows holding 24 hourly counts in ``column``."""
    matrix = np.zeros((7, 24))
    for date, hours in zip(days["date"], days[column], strict=True):
        if hours:
            matrix[pd.Timestamp(date).weekday()] += np.asarray(hours, dtype=float)
    return pd.DataFrame(matrix, index=WEEKDAYS, columns=list(range(24)))


def cohort_retention(cohorts: pd.DataFrame) -> pd.DataFrame:
    """Share of each first-order-month cohort ordering in month 0, 1, 2... (rows: cohort, columns: months since)."""
    if cohorts.empty:
        return pd.DataFrame()
    frame = cohorts.copy()
    cohort = pd.to_datetime(frame["cohort_month"])
    month = pd.to_datetime(frame["month"])
    frame["offset"] = (month.dt.year - cohort.dt.year) * 12 + (month.dt.month - cohort.dt.month)
    frame["cohort"] = cohort.dt.strftime("%Y-%m")
    counts = frame.pivot_table(index="cohort", columns="offset", values="customers", aggfunc="sum")
    size = counts[0] if 0 in counts.columns else counts.max(axis=1)
    retention = counts.div(size, axis=0)
    retention.insert(0, "cohort_size", size)
    return retention.sort_index()


def funnel_steps(totals: Mapping[str, float]) -> pd.DataFrame:
    steps = [
        ("Visit", "sessions"),
        ("Product view", "sessions_with_product_view"),
        ("Add to cart", "sessions_with_cart"),
        ("Checkout", "sessions_with_checkout"),
        ("Order", "sessions_with_order"),
    ]
    rows = []
    first = float(totals.get("sessions") or 0)
    previous = first
    for label, key in steps:
        value = float(totals.get(key) or 0)
        rows.append(
            {
                "step": label,
                "sessions": int(value),
                "share_of_visits": value / first if first else 0.0,
                "share_of_previous_step": value / previous if previous else 0.0,
            }
        )
        previous = value
    return pd.DataFrame(rows)


def top_items_with_trend(current: pd.DataFrame, previous: pd.DataFrame, *, key: str, limit: int = 10) -> pd.DataFrame:
    """Top ``key`` values by revenue in the current period with units and the change against the previous one."""
    if current.empty:
        return pd.DataFrame(columns=[key, "revenue", "units", "orders", "previous_revenue", "change"])
    now = current.groupby(key)[["revenue", "units", "orders"]].sum()
    before = previous.groupby(key)["revenue"].sum() if not previous.empty else pd.Series(dtype=float)
    now["previous_revenue"] = before.reindex(now.index).fillna(0.0)
    now["change"] = np.where(
        now["previous_revenue"] > 0, now["revenue"] / now["previous_revenue"].replace(0, np.nan) - 1, np.nan
    )
    return now.sort_values("revenue", ascending=False).head(limit).reset_index()


def seasonal_matrix(product_days: pd.DataFrame) -> pd.DataFrame:
    """Average units per month of the year for each category (rows), January to December (columns)."""
    if product_days.empty:
        return pd.DataFrame()
    frame = product_days.copy()
    dates = pd.to_datetime(frame["date"])
    frame["month"] = dates.dt.month
    frame["year_month"] = dates.dt.to_period("M")
    frame["category"] = frame["category"].replace("", "Uncategorised")
    per_month = frame.groupby(["category", "year_month", "month"])["units"].sum().reset_index()
    table = per_month.pivot_table(index="category", columns="month", values="units", aggfunc="mean").fillna(0)
    table = table.reindex(columns=range(1, 13), fill_value=0)
    table.columns = [dt.date(2000, m, 1).strftime("%b") for m in table.columns]
    return table


def bought_together(lines: pd.DataFrame, *, limit: int = 10) -> pd.DataFrame:
    """Pairs of products that share an order, with how many orders, support and lift.

    Input: order_id, product (a label). Lift > 1 means the pair appears together more often than chance.
    """
    columns = ["product_a", "product_b", "orders", "support", "lift"]
    if lines.empty:
        return pd.DataFrame(columns=columns)
    baskets = lines.drop_duplicates().groupby("order_id")["product"].apply(lambda s: sorted(set(s)))
    total = len(baskets)
    singles: Counter = Counter()
    pairs: Counter = Counter()
    for basket in baskets:
        singles.update(basket)
        pairs.update(combinations(basket, 2))
    rows = [
        {
            "product_a": a,
            "product_b": b,
            "orders": n,
            "support": n / total,
            "lift": (n / total) / ((singles[a] / total) * (singles[b] / total)),
        }
        for (a, b), n in pairs.items()
    ]
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(rows).sort_values(["orders", "lift"], ascending=False).head(limit).reset_index(drop=True)


def touches_before_order(events: pd.DataFrame) -> pd.DataFrame:
    """For each order, the storefront views and email clicks the customer made since their previous order.

    Input columns: customer_id, type, occurred_at. Output: one row per order_placed with views and clicks.
    """
    if events.empty:
        return pd.DataFrame(columns=["customer_id", "occurred_at", "views", "clicks"])
    frame = events.sort_values(["customer_id", "occurred_at"]).copy()
    frame["is_order"] = frame["type"] == "order_placed"
    # Number the stretch between orders: events up to and including an order belong to that order.
    frame["stretch"] = frame.groupby("customer_id")["is_order"].transform(lambda s: s.shift(fill_value=False).cumsum())
    frame["is_view"] = frame["type"].isin(["page_viewed", "product_viewed"])
    frame["is_click"] = frame["type"] == "email_clicked"
    grouped = frame.groupby(["customer_id", "stretch"])
    out = pd.DataFrame(
        {"views": grouped["is_view"].sum(), "clicks": grouped["is_click"].sum(), "orders": grouped["is_order"].sum()}
    )
    return out[out["orders"] > 0].reset_index()[["customer_id", "views", "clicks"]]
