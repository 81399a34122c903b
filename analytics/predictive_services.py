"""Fitting the predictive models for a workspace and writing the predictions back to its customers.

``predictions_fit(workspace=...)`` pulls one row per (customer, local order day) in bulk SQL, builds the
per-customer summary (x, t_x, T, m), fits BG/NBD and Gamma-Gamma by maximum likelihood, then writes
probability_alive, expected_orders_90d, predicted_clv, predicted_next_order_at, churn_risk and clv_tier in bulk,
and stores the parameters and a 90-day revenue forecast in ``ModelFit``.
"""

import datetime as dt
import logging
from decimal import Decimal

import numpy as np
import pandas as pd
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from analytics import predictive
from analytics.models import DailyMetrics, ModelFit
from crm.models import Workspace
from customers.models import Order, OrderStatus
from customers.services import customers_set_scores
from customers.services.scores import PREDICTION_FIELDS

logger = logging.getLogger(__name__)

MIN_CUSTOMERS = 100
MIN_REPEAT_CUSTOMERS = 30
MIN_HISTORY_DAYS = 90
HORIZON_DAYS = 90
CLV_TIER_SHARES = (0.2, 0.5)  # top 20% high, next 30% medium, the rest low
CHURN_ALIVE_HIGH, CHURN_ALIVE_MEDIUM = 0.3, 0.7


def customer_summary(order_days: pd.DataFrame, *, today: dt.date) -> pd.DataFrame:
    """(customer_id, day, revenue) rows -> one row per customer with x, t_x, T (weeks) and m (repeat average)."""
    frame = order_days.copy()
    frame["day"] = pd.to_datetime(frame["day"])
    frame = frame.sort_values(["customer_id", "day"])
    grouped = frame.groupby("customer_id")
    first = grouped["day"].min()
    last = grouped["day"].max()
    summary = pd.DataFrame(
        {
            "x": grouped.size() - 1,
            "t_x": (last - first).dt.days / predictive.DAYS_PER_WEEK,
            "T": (pd.Timestamp(today) - first).dt.days / predictive.DAYS_PER_WEEK,
            "first_day": first,
        }
    )
    position = grouped.cumcount()
    repeats = frame[position > 0]
    summary["m"] = repeats.groupby("customer_id")["revenue"].mean().reindex(summary.index)
    second = frame[position == 1].set_index("customer_id")["day"]
    summary["second_gap_days"] = (second.reindex(summary.index) - first).dt.days
    return summary


def _one_time_buyer_risk(summary: pd.DataFrame) -> pd.Series:
    """BG/NBD never lets a customer drop out before a repeat purchase, so P(alive) is 1 for every one-time buyer.
    Their risk is judged against the workspace's own pace instead: past the median first-to-second-order gap is
    medium, past twice that is high."""
    second_gaps = summary.loc[summary["x"] >= 1, "second_gap_days"].dropna()
    typical = float(second_gaps.median()) if len(second_gaps) else 90.0
    age_days = summary["T"] * predictive.DAYS_PER_WEEK
    return pd.Series(
        np.where(age_days > 2 * typical, "high", np.where(age_days > typical, "medium", "low")), index=summary.index
    )


def predictions_fit(*, workspace: Workspace, rng_seed: int = 7) -> ModelFit:
    today = workspace.today()
    tz = workspace.tzinfo
    rows = (
        Order.objects.filter(workspace=workspace, customer__isnull=False, customer__merged_into__isnull=True)
        .exclude(status=OrderStatus.CANCELLED)
        .annotate(day=TruncDate("placed_at", tzinfo=tz))
        .values("customer_id", "day")
        .annotate(revenue=Sum("net_total"), orders=Count("id"))
        .values_list("customer_id", "day", "revenue")
    )
    order_days = pd.DataFrame.from_records(rows, columns=["customer_id", "day", "revenue"])
    fit_values: dict = {
        "fitted_at": timezone.now(),
        "bgnbd_params": {},
        "gamma_gamma_params": {},
        "forecast": [],
        "average_predicted_clv": None,
        "expected_orders_90d": None,
    }
    if order_days.empty:
        return _save_fit(
            workspace,
            status=ModelFit.Status.TOO_LITTLE_HISTORY,
            customers=0,
            repeat_customers=0,
            history_days=0,
            message=too_little_message(0, 0, 0),
            **fit_values,
        )
    order_days["revenue"] = order_days["revenue"].astype(float)
    summary = customer_summary(order_days, today=today)
    customers = len(summary)
    repeaters = int((summary["x"] > 0).sum())
    history_days = int((pd.Timestamp(today) - summary["first_day"].min()).days)
    counts = {"customers": customers, "repeat_customers": repeaters, "history_days": history_days}
    if customers < MIN_CUSTOMERS or repeaters < MIN_REPEAT_CUSTOMERS or history_days < MIN_HISTORY_DAYS:
        return _save_fit(
            workspace,
            status=ModelFit.Status.TOO_LITTLE_HISTORY,
            message=too_little_message(customers, repeaters, history_days),
            **counts,
            **fit_values,
        )

    x, t_x, T = (summary[c].to_numpy(dtype=float) for c in ("x", "t_x", "T"))  # noqa: N806
    try:
        grouped = summary.groupby(["x", "t_x", "T"]).size().reset_index(name="n")
        bgnbd = predictive.bgnbd_fit(grouped["x"], grouped["t_x"], grouped["T"], weights=grouped["n"])
        positive = (summary["x"] > 0) & (summary["m"] > 0)
        gamma_gamma = predictive.gamma_gamma_fit(summary.loc[positive, "x"], summary.loc[positive, "m"])
        alive = predictive.probability_alive(bgnbd, x, t_x, T)
        horizon_weeks = HORIZON_DAYS / predictive.DAYS_PER_WEEK
        expected_90 = predictive.expected_purchases(bgnbd, horizon_weeks, x, t_x, T)
        population_mean = float(np.mean(order_days["revenue"][order_days["revenue"] > 0]))
        value = predictive.expected_average_value(
            gamma_gamma,
            x,
            summary["m"].fillna(0).to_numpy(),
            population_mean=population_mean if gamma_gamma.q <= 1 else None,
        )
        clv = predictive.customer_lifetime_value(bgnbd, value, x, t_x, T)
        band = predictive.forecast_band(bgnbd, value, x, t_x, T, days=HORIZON_DAYS, rng=np.random.default_rng(rng_seed))
    except (predictive.FitError, FloatingPointError, ValueError) as error:
        logger.warning("prediction fit failed for workspace %s: %s", workspace.id, error)
        return _save_fit(
            workspace,
            status=ModelFit.Status.FAILED,
            **counts,
            **fit_values,
            message=f"The models could not be fitted to this history ({error}). They will be tried again tonight.",
        )
    if not (np.all(np.isfinite(expected_90)) and np.all(np.isfinite(clv))):
        return _save_fit(
            workspace,
            status=ModelFit.Status.FAILED,
            **counts,
            **fit_values,
            message="The fitted models gave unusable predictions; they will be tried again tonight.",
        )

    summary["probability_alive"] = alive
    summary["expected_orders_90d"] = expected_90
    summary["predicted_clv"] = np.maximum(clv, 0)
    rate_per_week = (bgnbd.r + x) / (bgnbd.alpha + T)
    summary["next_order_days"] = np.minimum(predictive.DAYS_PER_WEEK / rate_per_week, 3650)
    churn = pd.Series(
        np.where(alive < CHURN_ALIVE_HIGH, "high", np.where(alive < CHURN_ALIVE_MEDIUM, "medium", "low")),
        index=summary.index,
    )
    one_time = summary["x"] == 0
    churn[one_time] = _one_time_buyer_risk(summary)[one_time]
    summary["churn_risk"] = churn
    ranks = summary["predicted_clv"].rank(ascending=False, method="first", pct=True)
    summary["clv_tier"] = np.where(
        ranks <= CLV_TIER_SHARES[0], "high", np.where(ranks <= CLV_TIER_SHARES[1], "medium", "low")
    )
    _write_predictions(workspace, summary)

    new_revenue = _recent_new_customer_revenue(workspace, today)
    start = today + dt.timedelta(days=1)
    forecast = [
        {
            "date": (start + dt.timedelta(days=i)).isoformat(),
            "expected": round(float(band["expected"][i]) + new_revenue, 2),
            "low": round(float(band["low"][i]) + new_revenue, 2),
            "high": round(float(band["high"][i]) + new_revenue, 2),
        }
        for i in range(HORIZON_DAYS)
    ]
    fit_values.update(
        bgnbd_params={"r": bgnbd.r, "alpha": bgnbd.alpha, "a": bgnbd.a, "b": bgnbd.b, "time_unit": "week"},
        gamma_gamma_params={"p": gamma_gamma.p, "q": gamma_gamma.q, "v": gamma_gamma.v},
        forecast=forecast,
        average_predicted_clv=Decimal(str(round(float(summary["predicted_clv"].mean()), 2))),
        expected_orders_90d=float(expected_90.sum()),
    )
    return _save_fit(workspace, status=ModelFit.Status.FITTED, message="", **counts, **fit_values)


def too_little_message(customers: int, repeaters: int, history_days: int) -> str:
    return (
        f"Too little history to predict yet: {customers} customers with orders (at least {MIN_CUSTOMERS} needed), "
        f"{repeaters} who ordered more than once (at least {MIN_REPEAT_CUSTOMERS}) and {history_days} days of "
        f"orders (at least {MIN_HISTORY_DAYS}). Predictions appear once there is enough, rather than guesses."
    )


def _recent_new_customer_revenue(workspace: Workspace, today: dt.date) -> float:
    """New customers are not in the BG/NBD population; the forecast adds their last-90-day daily average."""
    total = DailyMetrics.objects.filter(
        workspace=workspace, date__gt=today - dt.timedelta(days=HORIZON_DAYS), date__lte=today
    ).aggregate(total=Sum("new_customer_revenue"))["total"]
    return float(total or 0) / HORIZON_DAYS


def _save_fit(workspace: Workspace, **values) -> ModelFit:
    fit, _ = ModelFit.objects.update_or_create(workspace=workspace, defaults=values)
    return fit


def _write_predictions(workspace: Workspace, summary: pd.DataFrame) -> int:
    """Predictions are columns on Customer (segments filter on them); customers own the row, so they are written
    through ``customers_set_scores`` in one bulk call. Customers no longer in the fitted population (all orders
    cancelled, merged away) lose their old predictions (``reset_others``)."""
    now = timezone.now()
    rows = [
        (
            int(customer_id),
            float(row.probability_alive),
            float(row.expected_orders_90d),
            Decimal(str(round(float(row.predicted_clv), 2))),
            now + dt.timedelta(days=float(row.next_order_days)),
            row.churn_risk,
            row.clv_tier,
        )
        for customer_id, row in summary.iterrows()
    ]
    return customers_set_scores(workspace=workspace, fields=PREDICTION_FIELDS, rows=rows, reset_others=True)
