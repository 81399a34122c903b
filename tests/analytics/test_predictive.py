"""The models recover the parameters of data simulated from them, and their predictions match simulation."""

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
from django_scopes import scope

from analytics import predictive
from analytics.models import ModelFit
from analytics.predictive import BgNbdParams, GammaGammaParams
from analytics.predictive_services import predictions_fit
from customers.models import Customer
from tests.factories import CustomerFactory, OrderFactory

TRUE_BGNBD = BgNbdParams(r=0.25, alpha=4.0, a=0.8, b=2.5)  # close to FHL's CDNOW estimates (weeks)
TRUE_GG = GammaGammaParams(p=6.0, q=3.8, v=15.0)  # close to Fader & Hardie's CDNOW Gamma-Gamma estimates


def test_bgnbd_recovers_simulated_parameters():
    rng = np.random.default_rng(11)
    T = rng.uniform(26, 78, size=8000)  # noqa: N806
    x, t_x = predictive.simulate_bgnbd(TRUE_BGNBD, T=T, rng=rng)

    fitted = predictive.bgnbd_fit(x, t_x, T)

    assert fitted.r == pytest.approx(TRUE_BGNBD.r, rel=0.15)
    assert fitted.alpha == pytest.approx(TRUE_BGNBD.alpha, rel=0.2)
    assert fitted.a == pytest.approx(TRUE_BGNBD.a, rel=0.3)
    assert fitted.b == pytest.approx(TRUE_BGNBD.b, rel=0.35)


def test_gamma_gamma_recovers_simulated_parameters():
    rng = np.random.default_rng(12)
    x = rng.integers(1, 8, size=6000).astype(float)
    m = predictive.simulate_gamma_gamma(TRUE_GG, x=x, rng=rng)

    fitted = predictive.gamma_gamma_fit(x, m)

    assert fitted.p == pytest.approx(TRUE_GG.p, rel=0.15)
    assert fitted.q == pytest.approx(TRUE_GG.q, rel=0.2)
    assert fitted.v == pytest.approx(TRUE_GG.v, rel=0.3)
    # and the implied mean purchase value γp/(q−1) is close to the truth (6 × 15 / 2.8 = 32.1)
    assert fitted.v * fitted.p / (fitted.q - 1) == pytest.approx(90 / 2.8, rel=0.05)


def test_expected_purchases_and_purchase_probability_match_simulated_futures():
    # given customers simulated up to T, then 13 more weeks of the same process
    rng = np.random.default_rng(13)
    n, horizon = 8000, 13.0
    T = rng.uniform(20, 78, size=n)  # noqa: N806
    # one path per customer, split at T into the observed history and the future
    lam = rng.gamma(TRUE_BGNBD.r, 1 / TRUE_BGNBD.alpha, n)
    drop = rng.beta(TRUE_BGNBD.a, TRUE_BGNBD.b, n)
    x, t_x, future = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T[i] + horizon:
                break
            if t <= T[i]:
                x[i] += 1
                t_x[i] = t
            else:
                future[i] += 1
            if rng.random() < drop[i]:
                break

    expected = predictive.expected_purchases(TRUE_BGNBD, horizon, x, t_x, T)
    buying = predictive.probability_of_purchase(TRUE_BGNBD, horizon, x, t_x, T)

    assert expected.mean() == pytest.approx(future.mean(), rel=0.08)
    assert buying.mean() == pytest.approx((future > 0).mean(), rel=0.08)
    for repeats in (0, 1, 2):
        chosen = x == repeats
        assert expected[chosen].mean() == pytest.approx(future[chosen].mean(), rel=0.15)


def test_probability_alive_is_one_without_repeats_and_falls_with_silence():
    alive = predictive.probability_alive(TRUE_BGNBD, x=[0, 3, 3], t_x=[0, 50, 5], T=[60, 52, 60])
    # no repeat purchase: BG/NBD has no dropout yet
    assert alive[0] == 1.0
    # 1 / (1 + a/(b+x-1) · ((α+T)/(α+t_x))^(r+x)) = 1 / (1 + 0.8/4.5 · (56/54)^3.25)
    assert alive[1] == pytest.approx(1 / (1 + 0.8 / 4.5 * (56 / 54) ** 3.25))
    assert alive[1] == pytest.approx(0.8333, abs=1e-4)
    # silent for 55 weeks after the last purchase: 1 / (1 + 0.8/4.5 · (64/9)^3.25) ≈ 0.0094
    assert alive[2] == pytest.approx(1 / (1 + 0.8 / 4.5 * (64 / 9) ** 3.25))


def test_too_little_history_is_said_instead_of_predicting(workspace):
    for day in range(5):
        OrderFactory(workspace=workspace, placed_at=dt.datetime(2025, 1, 1 + day, tzinfo=dt.UTC))

    with scope(workspace=workspace):
        fit = predictions_fit(workspace=workspace)

    assert fit.status == ModelFit.Status.TOO_LITTLE_HISTORY
    assert "5 customers with orders (at least 100 needed)" in fit.message
    with scope(workspace=workspace):
        assert not Customer.objects.filter(probability_alive__isnull=False).exists()


def test_fit_writes_predictions_back_to_customers(workspace):
    # given 160 customers whose orders are simulated from known models over the last 78 weeks
    rng = np.random.default_rng(21)
    today = workspace.today()
    n = 160
    T = rng.uniform(30, 78, size=n)  # noqa: N806
    x, t_x = predictive.simulate_bgnbd(TRUE_BGNBD, T=T, rng=rng)
    customers = [CustomerFactory(workspace=workspace) for _ in range(n)]
    for customer, age, repeats, last in zip(customers, T, x, t_x, strict=True):
        first = dt.datetime.combine(today - dt.timedelta(days=int(age * 7)), dt.time(12), tzinfo=dt.UTC)
        times = [first] + [first + dt.timedelta(days=int(last * 7 * (k + 1) / repeats)) for k in range(int(repeats))]
        for when in sorted(set(times)):
            total = Decimal(str(round(float(rng.gamma(6, 5)), 2)))
            OrderFactory(workspace=workspace, customer=customer, placed_at=when, total=total, net_total=total)

    with scope(workspace=workspace):
        fit = predictions_fit(workspace=workspace)
        rows = list(
            Customer.objects.filter(workspace=workspace).values(
                "probability_alive",
                "expected_orders_90d",
                "predicted_clv",
                "predicted_next_order_at",
                "churn_risk",
                "clv_tier",
            )
        )

    assert fit.status == ModelFit.Status.FITTED, fit.message
    assert set(fit.bgnbd_params) >= {"r", "alpha", "a", "b"}
    assert len(fit.forecast) == 90
    assert all(day["low"] <= day["expected"] <= day["high"] for day in fit.forecast)
    assert all(0 <= row["probability_alive"] <= 1 for row in rows)
    assert all(row["predicted_clv"] >= 0 and row["predicted_next_order_at"] for row in rows)
    assert {row["churn_risk"] for row in rows} <= {"low", "medium", "high"}
    tiers = [row["clv_tier"] for row in rows]
    # top 20% high, next 30% medium, the rest low
    assert tiers.count("high") == 32 and tiers.count("medium") == 48 and tiers.count("low") == 80
