"""Plotly figure builders (pure: a DataFrame in, a figure out) and the registry of dashboard charts.

Each chart is a table (a selector, also what its CSV export holds) and a figure drawn from that table. Layouts
are kept small and legends horizontal so the figures stay readable on a phone.
"""

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from analytics import selectors, transforms
from analytics.selectors import DateRange
from crm.models import Workspace

PALETTE = ["#3b5bdb", "#12b886", "#f59f00", "#e64980", "#7048e8", "#1098ad", "#fa5252", "#82c91e"]


def base_layout(**extra) -> dict:
    layout = {
        "margin": {"l": 48, "r": 16, "t": 16, "b": 40},
        "height": 320,
        "autosize": True,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        "legend": {"orientation": "h", "y": -0.18, "x": 0},
        "colorway": PALETTE,
        "hovermode": "x unified",
        "xaxis": {"gridcolor": "#eef0f3"},
        "yaxis": {"gridcolor": "#eef0f3", "rangemode": "tozero"},
    }
    layout.update(extra)
    return layout


def new_figure(*traces) -> go.Figure:
    """A figure whose property assignments skip plotly's validators: the builders below set only known
    properties (tests/analytics/test_charts.py re-validates every chart), and validation is most of the time a
    chart fragment spends in Python."""
    return go.Figure(data=list(traces) or None, _validate=False)


def figure_json(figure: go.Figure) -> str:
    """JSON for a <script type="application/json"> block; "</" is escaped so no label can close the tag."""
    return json.dumps(json.loads(figure.to_json())).replace("</", "<\\/")


# --- figure builders ---------------------------------------------------------------------------------------------


def revenue_figure(table: pd.DataFrame, *, currency: str) -> go.Figure:
    figure = new_figure()
    figure.add_bar(x=table["period"], y=table["revenue"], name=f"Revenue ({currency})", marker_color=PALETTE[0])
    figure.add_scatter(
        x=table["period"],
        y=table["orders"],
        name="Orders",
        yaxis="y2",
        mode="lines+markers",
        line={"color": PALETTE[2]},
    )
    figure.update_layout(
        **base_layout(yaxis2={"overlaying": "y", "side": "right", "showgrid": False, "rangemode": "tozero"})
    )
    return figure


def new_vs_returning_figure(table: pd.DataFrame, *, currency: str) -> go.Figure:
    figure = new_figure()
    figure.add_bar(x=table["period"], y=table["new_customer_revenue"], name="New customers", marker_color=PALETTE[1])
    figure.add_bar(
        x=table["period"], y=table["returning_customer_revenue"], name="Returning customers", marker_color=PALETTE[0]
    )
    figure.add_bar(x=table["period"], y=table["guest_revenue"], name="Guest checkouts", marker_color="#adb5bd")
    figure.update_layout(**base_layout(barmode="stack", yaxis={"title": currency, "rangemode": "tozero"}))
    return figure


def cohort_figure(table: pd.DataFrame) -> go.Figure:
    months = [c for c in table.columns if c not in ("cohort", "cohort_size")]
    z = (table[months].to_numpy(dtype=float) * 100).round(1)
    labels = [f"{cohort} ({int(size)})" for cohort, size in zip(table["cohort"], table["cohort_size"], strict=True)]
    figure = new_figure(
        go.Heatmap(
            z=z,
            x=[f"M{m}" for m in months],
            y=labels,
            colorscale="Blues",
            zmin=0,
            zmax=max(
                30.0, float(pd.Series(z[:, 1:].ravel()).max() if z.shape[1] > 1 and pd.notna(z[:, 1:]).any() else 30.0)
            ),
            text=[[("" if pd.isna(v) else f"{v:.0f}%") for v in row] for row in z],
            texttemplate="%{text}",
            hovertemplate="%{y}, %{x}: %{z:.1f}%<extra></extra>",
            colorbar={"title": "%", "thickness": 10},
        )
    )
    figure.update_layout(
        **base_layout(
            height=max(320, 26 * len(labels) + 80),
            hovermode="closest",
            yaxis={"autorange": "reversed"},
            margin={"l": 110, "r": 16, "t": 16, "b": 40},
        )
    )
    return figure


def funnel_figure(table: pd.DataFrame) -> go.Figure:
    figure = new_figure(
        go.Funnel(
            y=table["step"],
            x=table["sessions"],
            textinfo="value+percent initial",
            marker={"color": PALETTE[: len(table)]},
        )
    )
    figure.update_layout(**base_layout(hovermode="closest", margin={"l": 100, "r": 16, "t": 16, "b": 24}))
    return figure


def activity_figure(table: pd.DataFrame) -> go.Figure:
    hours = [c for c in table.columns if c != "weekday"]
    figure = new_figure(
        go.Heatmap(
            z=table[hours].to_numpy(),
            x=[f"{int(h):02d}" for h in hours],
            y=table["weekday"],
            colorscale="YlOrRd",
            hovertemplate="%{y} %{x}:00 — %{z}<extra></extra>",
            colorbar={"thickness": 10},
        )
    )
    figure.update_layout(
        **base_layout(
            hovermode="closest",
            yaxis={"autorange": "reversed"},
            xaxis={"title": "Hour of day (workspace time)", "dtick": 2},
        )
    )
    return figure


def top_items_figure(table: pd.DataFrame, *, key: str, currency: str) -> go.Figure:
    ordered = table.iloc[::-1]
    labels = [str(v)[:40] for v in ordered[key]]
    changes = ["new" if pd.isna(c) else f"{c:+.0%}" for c in ordered["change"]]
    figure = new_figure(
        go.Bar(
            x=ordered["revenue"],
            y=labels,
            orientation="h",
            marker_color=PALETTE[0],
            text=changes,
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}<br>" + currency + " %{x:,.2f}<br>vs previous period: %{text}<extra></extra>",
        )
    )
    figure.update_layout(
        **base_layout(
            hovermode="closest", height=max(320, 28 * len(labels) + 60), margin={"l": 160, "r": 48, "t": 16, "b": 32}
        )
    )
    return figure


def seasonal_figure(table: pd.DataFrame) -> go.Figure:
    months = [c for c in table.columns if c != "category"]
    figure = new_figure(
        go.Heatmap(
            z=table[months].to_numpy(dtype=float).round(1),
            x=months,
            y=table["category"],
            colorscale="Greens",
            hovertemplate="%{y}, %{x}: %{z} units a month<extra></extra>",
            colorbar={"thickness": 10},
        )
    )
    figure.update_layout(**base_layout(hovermode="closest", margin={"l": 110, "r": 16, "t": 16, "b": 40}))
    return figure


def engagement_figure(table: pd.DataFrame) -> go.Figure:
    figure = new_figure()
    figure.add_scatter(x=table["period"], y=table["pages_per_session"], name="Pages per session", mode="lines")
    figure.add_scatter(
        x=table["period"], y=table["minutes_per_session"], name="Minutes on site per session", mode="lines", yaxis="y2"
    )
    figure.update_layout(
        **base_layout(
            yaxis={"title": "pages", "rangemode": "tozero", "gridcolor": "#eef0f3", "tickformat": ".1f"},
            yaxis2={
                "title": "minutes",
                "overlaying": "y",
                "side": "right",
                "showgrid": False,
                "rangemode": "tozero",
                "tickformat": ".0f",
            },
        )
    )
    return figure


def rfm_figure(table: pd.DataFrame, *, currency: str, key: str = "rfm_group") -> go.Figure:
    figure = new_figure()
    figure.add_bar(x=table[key], y=table["revenue"], name=f"Revenue ({currency})", marker_color=PALETTE[0])
    figure.add_scatter(
        x=table[key],
        y=table["conversion"] * 100,
        name="% who ordered",
        yaxis="y2",
        mode="markers",
        marker={"size": 10, "color": PALETTE[3]},
    )
    figure.update_layout(
        **base_layout(
            hovermode="closest",
            yaxis2={"overlaying": "y", "side": "right", "showgrid": False, "range": [0, 105], "ticksuffix": "%"},
        )
    )
    return figure


def forecast_figure(history: pd.DataFrame, forecast: pd.DataFrame, *, currency: str) -> go.Figure:
    figure = new_figure()
    figure.add_scatter(
        x=history["date"], y=history["revenue"], name="Revenue so far", mode="lines", line={"color": PALETTE[0]}
    )
    if not forecast.empty:
        figure.add_scatter(
            x=forecast["date"], y=forecast["high"], mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip"
        )
        figure.add_scatter(
            x=forecast["date"],
            y=forecast["low"],
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor="rgba(18,184,134,0.2)",
            name="80% band",
        )
        figure.add_scatter(
            x=forecast["date"],
            y=forecast["expected"],
            name="Forecast",
            mode="lines",
            line={"color": PALETTE[1], "dash": "dash"},
        )
    figure.update_layout(**base_layout(yaxis={"title": f"{currency} a day", "rangemode": "tozero"}))
    return figure


# --- tables (what the CSV exports hold) ------------------------------------------------------------------------


def revenue_table(workspace: Workspace, date_range: DateRange, grain: str) -> pd.DataFrame:
    frame = selectors.daily_frame(workspace=workspace, date_range=date_range)
    table = transforms.resample_daily(frame, grain=grain, columns=["revenue", "orders"])
    table["aov"] = (table["revenue"] / table["orders"].where(table["orders"] > 0)).round(2)
    return table


def new_vs_returning_table(workspace: Workspace, date_range: DateRange, grain: str) -> pd.DataFrame:
    frame = selectors.daily_frame(workspace=workspace, date_range=date_range)
    frame["returning_customers"] = frame["customers_ordered"] - frame["new_customers"]
    frame["guest_revenue"] = frame["revenue"] - frame["new_customer_revenue"] - frame["returning_customer_revenue"]
    return transforms.resample_daily(
        frame,
        grain=grain,
        columns=[
            "new_customer_revenue",
            "returning_customer_revenue",
            "guest_revenue",
            "new_customers",
            "returning_customers",
        ],
    )


def cohort_table(workspace: Workspace, date_range: DateRange, grain: str) -> pd.DataFrame:
    first = (date_range.end.replace(day=1) - dt.timedelta(days=330)).replace(day=1)
    retention = transforms.cohort_retention(selectors.cohort_frame(workspace=workspace, since=first))
    if retention.empty:
        return pd.DataFrame()
    retention = retention.reindex(columns=["cohort_size", *range(0, 12)])
    retention.columns = ["cohort_size", *range(0, 12)]
    return retention.reset_index()


def funnel_table(workspace: Workspace, date_range: DateRange, grain: str) -> pd.DataFrame:
    frame = selectors.daily_frame(workspace=workspace, date_range=date_range)
    if not frame["sessions"].sum():
        return pd.DataFrame()
    return transforms.funnel_steps(frame.sum(numeric_only=True).to_dict())


def activity_table(workspace: Workspace, date_range: DateRange, grain: str) -> pd.DataFrame:
    frame = selectors.daily_frame(
        workspace=workspace, date_range=date_range, fields=["date", "events_by_hour", "orders_by_hour"]
    )
    matrix = transforms.weekday_hour_matrix(frame, column="events_by_hour")
    if not matrix.to_numpy().sum():
        matrix = transforms.weekday_hour_matrix(frame, column="orders_by_hour")
    if not matrix.to_numpy().sum():
        return pd.DataFrame()
    matrix.index.name = "weekday"
    return matrix.astype(int).reset_index()


def _top_table(workspace: Workspace, date_range: DateRange, key: str) -> pd.DataFrame:
    current = selectors.product_frame(workspace=workspace, date_range=date_range)
    previous = selectors.product_frame(workspace=workspace, date_range=date_range.previous())
    for frame in (current, previous):
        frame["category"] = frame["category"].replace("", "Uncategorised")
    table = transforms.top_items_with_trend(current, previous, key=key)
    return table.round({"revenue": 2, "previous_revenue": 2, "change": 4})


def products_table(workspace: Workspace, date_range: DateRange, grain: str) -> pd.DataFrame:
    return _top_table(workspace, date_range, "title")


def categories_table(workspace: Workspace, date_range: DateRange, grain: str) -> pd.DataFrame:
    return _top_table(workspace, date_range, "category")


def seasonal_table(workspace: Workspace, date_range: DateRange, grain: str) -> pd.DataFrame:
    since = DateRange(start=date_range.end - dt.timedelta(days=3 * 365), end=date_range.end)
    table = transforms.seasonal_matrix(selectors.product_frame(workspace=workspace, date_range=since))
    if table.empty:
        return table
    table.index.name = "category"
    return table.round(1).reset_index()


def engagement_table(workspace: Workspace, date_range: DateRange, grain: str) -> pd.DataFrame:
    frame = selectors.daily_frame(workspace=workspace, date_range=date_range)
    if not frame["sessions"].sum():
        return pd.DataFrame()
    table = transforms.resample_daily(frame, grain=grain, columns=["sessions", "page_views", "session_seconds"])
    sessions = table["sessions"].where(table["sessions"] > 0)
    table["pages_per_session"] = (table["page_views"] / sessions).round(2)
    table["minutes_per_session"] = (table["session_seconds"] / 60 / sessions).round(2)
    return table


def rfm_table(workspace: Workspace, date_range: DateRange, grain: str) -> pd.DataFrame:
    table = selectors.rfm_group_figures(workspace=workspace, date_range=date_range)
    return table.round({"revenue": 2, "conversion": 4})


def segments_table(workspace: Workspace, date_range: DateRange, grain: str) -> pd.DataFrame:
    table = selectors.segment_figures(workspace=workspace, date_range=date_range)
    return table.round({"revenue": 2, "conversion": 4})


@dataclass(frozen=True, kw_only=True)
class Chart:
    name: str
    title: str
    help: str
    table: Callable[[Workspace, DateRange, str], pd.DataFrame]
    figure: Callable[..., go.Figure]
    empty: str
    uses_grain: bool = False
    wide: bool = False
    needs_currency: bool = False


NO_ORDERS = "No orders in this period yet."
NO_VISITS = (
    "No storefront visits recorded yet. Add the tracking snippet from Integrations to your store to see "
    "sessions, funnels and time on site."
)

CHARTS: dict[str, Chart] = {
    chart.name: chart
    for chart in [
        Chart(
            name="revenue",
            title="Revenue",
            help="Net revenue and orders per period.",
            table=revenue_table,
            figure=revenue_figure,
            empty=NO_ORDERS,
            uses_grain=True,
            wide=True,
            needs_currency=True,
        ),
        Chart(
            name="new-vs-returning",
            title="New vs returning",
            table=new_vs_returning_table,
            help="Revenue from customers' first-order day, from returning customers and from guest checkouts.",
            figure=new_vs_returning_figure,
            empty=NO_ORDERS,
            uses_grain=True,
            needs_currency=True,
        ),
        Chart(
            name="cohorts",
            title="Cohort retention",
            help="Share of each first-order-month cohort (size in brackets) who ordered again N months later.",
            table=cohort_table,
            figure=cohort_figure,
            empty="Cohorts appear once customers have ordered.",
        ),
        Chart(
            name="funnel",
            title="Funnel",
            table=funnel_table,
            figure=funnel_figure,
            empty=NO_VISITS,
            help="Sessions that reached each step: visit, product view, add to cart, checkout, order.",
        ),
        Chart(
            name="activity",
            title="When customers are active",
            table=activity_table,
            figure=activity_figure,
            help="Storefront events (or orders, without tracking) by weekday and hour, in the workspace timezone.",
            empty=NO_ORDERS,
        ),
        Chart(
            name="products",
            title="Top products",
            table=products_table,
            needs_currency=True,
            figure=lambda table, currency: top_items_figure(table, key="title", currency=currency),
            help="Best sellers by revenue; the label is the change against the previous period.",
            empty=NO_ORDERS,
        ),
        Chart(
            name="categories",
            title="Top categories",
            table=categories_table,
            needs_currency=True,
            figure=lambda table, currency: top_items_figure(table, key="category", currency=currency),
            help="Categories by revenue; the label is the change against the previous period.",
            empty=NO_ORDERS,
        ),
        Chart(
            name="seasonal",
            title="Seasonal demand",
            table=seasonal_table,
            figure=seasonal_figure,
            help="Average units sold per calendar month, by category, over the last three years.",
            empty=NO_ORDERS,
        ),
        Chart(
            name="engagement",
            title="Pages per session and time on site",
            table=engagement_table,
            figure=engagement_figure,
            uses_grain=True,
            empty=NO_VISITS,
            help="Average page and product views per session, and minutes from a session's first to last event.",
        ),
        Chart(
            name="rfm",
            wide=True,
            title="Conversion and revenue by RFM group",
            table=rfm_table,
            needs_currency=True,
            figure=rfm_figure,
            help="Revenue in the period per RFM group, and the share of the group who ordered (preset periods are "
            "updated every 15 minutes).",
            empty="RFM groups appear after the nightly scoring (Segments) has run.",
        ),
        Chart(
            name="segments",
            wide=True,
            title="Conversion and revenue by segment",
            table=segments_table,
            needs_currency=True,
            figure=lambda table, currency: rfm_figure(table, currency=currency, key="segment"),
            help="Revenue in the period from each segment's members, and the share of members who ordered (preset "
            "periods are updated every 15 minutes).",
            empty="Create segments under Segments to compare them here.",
        ),
    ]
}


def render_chart(
    *, workspace: Workspace, name: str, date_range: DateRange, grain: str
) -> tuple[pd.DataFrame, str | None]:
    """The chart's table and its figure as JSON (None when the table is empty)."""
    chart = CHARTS[name]
    table = chart.table(workspace, date_range, grain)
    if table.empty or not table.select_dtypes("number").fillna(0).abs().to_numpy().sum():
        return table, None
    kwargs = {"currency": workspace.currency} if chart.needs_currency else {}
    return table, figure_json(chart.figure(table, **kwargs))
