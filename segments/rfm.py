"""RFM scoring as pure functions on DataFrames (no database here; the SQL that feeds them is in segments.selectors).

Scores
    R (recency: days since the last order), F (frequency: orders) and M (monetary: net amount spent) are each scored
    1-5 as quintiles within the workspace: a customer's score is ``ceil(5 * rank / n)`` where ``rank`` is the 1-based
    position from worst to best among the ``n`` buyers, and tied customers share the lowest rank of their tie
    (``method="min"``). So 5 = the best 20%, equal values always get the same score, and a big tie (say everyone
    with one order) sits at the score where the tie starts. Fewer days since the last order is better.
    Customers with no order in the window are not ranked: scores 0 and group "Prospects".

Groups
    From R and FM = round-half-up((F + M) / 2), looked up in ``DEFAULT_GROUP_MAP`` below (Shopify's eleven groups).
    A workspace can override single cells (``RfmSettings.group_map``, keys ``"R,FM"``).
"""

import math

import numpy as np
import pandas as pd

PROSPECTS = "Prospects"
CHAMPIONS = "Champions"
LOYAL = "Loyal"
ACTIVE = "Active"
NEEDS_ATTENTION = "Needs attention"
NEW = "New"
PROMISING = "Promising"
AT_RISK = "At risk"
PREVIOUSLY_LOYAL = "Previously loyal"
ALMOST_LOST = "Almost lost"
DORMANT = "Dormant"

# Display order (best first) and one line on who is in each group.
GROUPS: dict[str, str] = {
    CHAMPIONS: "Very recent purchases, many orders and the most spend.",
    LOYAL: "Recent purchases, many orders and high spend.",
    ACTIVE: "Very recent purchases, some orders, moderate spend.",
    NEW: "Very recent first purchases, few orders, low spend.",
    PROMISING: "Recent purchases, few orders, low spend.",
    NEEDS_ATTENTION: "Middling recency, some orders, moderate spend.",
    AT_RISK: "No recent purchases, but a strong history of orders and spend.",
    PREVIOUSLY_LOYAL: "No recent purchases, but a very strong history of orders and spend.",
    ALMOST_LOST: "No recent purchases, few orders, lower spend.",
    DORMANT: "Long gone, few orders, low spend.",
    PROSPECTS: "No orders yet (in the scoring window).",
}
GROUP_NAMES: tuple[str, ...] = tuple(GROUPS)

# THE map from (R, FM) to group. Rows are R = 5 (bought most recently) down to 1; columns are FM = 1 .. 5.
#
#            FM=1          FM=2             FM=3             FM=4        FM=5
_TABLE = {
    5: (NEW,          NEW,             ACTIVE,          CHAMPIONS,  CHAMPIONS),
    4: (PROMISING,    PROMISING,       ACTIVE,          LOYAL,      LOYAL),
    3: (ALMOST_LOST,  NEEDS_ATTENTION, NEEDS_ATTENTION, LOYAL,      LOYAL),
    2: (ALMOST_LOST,  ALMOST_LOST,     AT_RISK,         AT_RISK,    PREVIOUSLY_LOYAL),
    1: (DORMANT,      DORMANT,         AT_RISK,         AT_RISK,    PREVIOUSLY_LOYAL),
}  # fmt: skip
DEFAULT_GROUP_MAP: dict[tuple[int, int], str] = {
    (recency, fm): group for recency, row in _TABLE.items() for fm, group in enumerate(row, start=1)
}


def fm_score(frequency: int, monetary: int) -> int:
    """(F + M) / 2 rounded half up: (4, 5) -> 5, (1, 2) -> 2."""
    return math.floor((frequency + monetary) / 2 + 0.5)


def group_map_with_overrides(overrides: dict[str, str] | None) -> dict[tuple[int, int], str]:
    """The default map with a workspace's overridden cells (``{"R,FM": group}``; unknown groups are ignored)."""
    mapping = dict(DEFAULT_GROUP_MAP)
    for key, group in (overrides or {}).items():
        try:
            recency, fm = (int(part) for part in key.split(","))
        except ValueError:
            continue
        if (recency, fm) in mapping and group in GROUPS and group != PROSPECTS:
            mapping[(recency, fm)] = group
    return mapping


def quintile_scores(values: pd.Series, *, higher_is_better: bool = True) -> pd.Series:
    """1-5 quintile scores; ties share the lowest rank of their tie so equal values always score the same."""
    if values.empty:
        return pd.Series([], dtype="int64", index=values.index)
    ranks = values.rank(method="min", ascending=higher_is_better)
    count = len(values)
    return np.ceil(5 * ranks / count).clip(1, 5).astype("int64")


def score_customers(frame: pd.DataFrame, *, group_map: dict[tuple[int, int], str] | None = None) -> pd.DataFrame:
    """Score customers.

    ``frame`` columns: ``customer_id``, ``days_since_last_order`` (NaN when no order in the window), ``orders``,
    ``revenue``. Returns a frame with ``customer_id, recency, frequency, monetary, group`` in the same order.
    """
    mapping = group_map or DEFAULT_GROUP_MAP
    result = pd.DataFrame({"customer_id": frame["customer_id"].to_numpy()}, index=frame.index)
    result["recency"] = 0
    result["frequency"] = 0
    result["monetary"] = 0
    result["group"] = PROSPECTS
    buyers = frame["orders"].fillna(0).gt(0) & frame["days_since_last_order"].notna()
    if buyers.any():
        scored = frame.loc[buyers]
        recency = quintile_scores(scored["days_since_last_order"].astype("float64"), higher_is_better=False)
        frequency = quintile_scores(scored["orders"].astype("float64"))
        monetary = quintile_scores(scored["revenue"].astype("float64"))
        fm = np.floor((frequency + monetary) / 2 + 0.5).astype("int64")
        lookup = pd.Series(mapping)
        keys = pd.MultiIndex.from_arrays([recency.to_numpy(), fm.to_numpy()])
        result.loc[buyers, "recency"] = recency.to_numpy()
        result.loc[buyers, "frequency"] = frequency.to_numpy()
        result.loc[buyers, "monetary"] = monetary.to_numpy()
        result.loc[buyers, "group"] = lookup.reindex(keys).to_numpy()
    return result


def summarise(scored: pd.DataFrame, stats: pd.DataFrame) -> tuple[dict, dict]:
    """Per-group and per-(R, F)-cell totals for the RFM page, from ``score_customers`` output joined with ``stats``.

    Returns ``(groups, grid)`` as JSON-ready dicts (see ``RfmSnapshot``).
    """
    joined = scored.assign(
        revenue=stats["revenue"].fillna(0).astype("float64").to_numpy(),
        orders=stats["orders"].fillna(0).astype("int64").to_numpy(),
        days=stats["days_since_last_order"].astype("float64").to_numpy(),
    )
    groups: dict[str, dict] = {}
    for group, part in joined.groupby("group", sort=False):
        groups[str(group)] = {
            "customers": int(len(part)),
            "revenue": round(float(part["revenue"].sum()), 2),
            "orders": int(part["orders"].sum()),
            "days_since_last_order_sum": float(part["days"].fillna(0).sum()),
            "with_orders": int(part["days"].notna().sum()),
        }
    grid: dict[str, dict] = {}
    buyers = joined[joined["recency"] > 0]
    for (recency, frequency), part in buyers.groupby(["recency", "frequency"]):
        grid[f"{int(recency)},{int(frequency)}"] = {
            "customers": int(len(part)),
            "revenue": round(float(part["revenue"].sum()), 2),
        }
    return groups, grid
