"""BG/NBD and Gamma-Gamma models (Fader, Hardie & Lee 2005; Fader & Hardie 2013), fitted by maximum likelihood.

Pure numpy/scipy: arrays in, parameters and predictions out. Per customer: x = repeat purchases (order days
after the first), t_x = time of the last purchase since the first, T = age (now since the first purchase), all
in weeks; m = average value of the repeat purchases.

BG/NBD: while active, purchases follow a Poisson process with rate λ ~ Gamma(r, α); after each repeat purchase
the customer drops out with probability p ~ Beta(a, b). Gamma-Gamma: a purchase's value ~ Gamma(p, ν), with
ν ~ Gamma(q, γ) across customers, independent of the purchase process.
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

DAYS_PER_WEEK = 7.0


@dataclass(frozen=True, kw_only=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True, kw_only=True)
class GammaGammaParams:
    p: float
    q: float
    v: float  # γ, the scale parameter of ν's gamma distribution


class FitError(ValueError):
    """The optimiser did not converge to usable parameters."""


# --- BG/NBD ------------------------------------------------------------------------------------------------------


def bgnbd_log_likelihood(r: float, alpha: float, a: float, b: float, x, t_x, T) -> np.ndarray:  # noqa: N803
    """Each customer's log-likelihood (FHL 2005, eq. 6), computed in logs so large x and T do not overflow."""
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)  # noqa: N806
    ln_a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    ln_a2 = betaln(a, b + x) - betaln(a, b)
    ln_a3 = -(r + x) * np.log(alpha + T)
    has_repeat = x > 0
    ln_a4 = np.where(
        has_repeat,
        np.log(a) - np.log(np.where(has_repeat, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    return ln_a1 + ln_a2 + np.logaddexp(ln_a3, ln_a4)


def _fit(negative_log_likelihood, start: np.ndarray) -> np.ndarray:
    best = None
    for method in ("L-BFGS-B", "Nelder-Mead"):
        result = minimize(
            negative_log_likelihood,
            start,
            method=method,
            options={"maxiter": 5000} if method == "Nelder-Mead" else {"maxiter": 1000},
        )
        if np.all(np.isfinite(result.x)) and np.isfinite(result.fun) and (best is None or result.fun < best.fun):
            best = result
        if best is not None and best.success:
            break
    if best is None:
        raise FitError("the likelihood could not be maximised")
    return np.exp(best.x)


def bgnbd_fit(x, t_x, T, *, weights=None) -> BgNbdParams:  # noqa: N803
    """Maximum-likelihood r, α, a, b. ``weights`` counts identical (x, t_x, T) rows, which are fitted once."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))  # noqa: N806
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    scale = float(np.average(T, weights=w)) or 1.0

    def negative(log_params: np.ndarray) -> float:
        r, alpha, a, b = np.exp(np.clip(log_params, -20, 20))
        value = -np.sum(w * bgnbd_log_likelihood(r, alpha, a, b, x, t_x, T)) / w.sum()
        return float(value) if np.isfinite(value) else 1e12

    r, alpha, a, b = _fit(negative, np.log([1.0, scale, 1.0, 1.0]))
    return BgNbdParams(r=float(r), alpha=float(alpha), a=float(a), b=float(b))


def _dropout_term(params: BgNbdParams, x, t_x, T) -> np.ndarray:  # noqa: N803
    """δ(x>0) · a/(b+x-1) · ((α+T)/(α+t_x))^(r+x), the odds of having dropped out after the last purchase."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    has_repeat = x > 0
    log_term = (
        np.log(a) - np.log(np.where(has_repeat, b + x - 1, 1.0)) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    )
    return np.where(has_repeat, np.exp(np.minimum(log_term, 700)), 0.0)


def probability_alive(params: BgNbdParams, x, t_x, T) -> np.ndarray:  # noqa: N803
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))  # noqa: N806
    return 1.0 / (1.0 + _dropout_term(params, x, t_x, T))


def expected_purchases(params: BgNbdParams, t: float, x, t_x, T) -> np.ndarray:  # noqa: N803
    """Expected purchases in the next ``t`` weeks (FHL 2005, eq. 10; valid on both sides of the pole at a = 1)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))  # noqa: N806
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1) < 1e-6:
        a = 1 + 1e-6
    ratio = (alpha + T) / (alpha + T + t)
    hyper = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    numerator = (a + b + x - 1) / (a - 1) * (1 - np.power(ratio, r + x) * hyper)
    return numerator / (1.0 + _dropout_term(params, x, t_x, T))


def probability_of_purchase(params: BgNbdParams, t: float, x, t_x, T) -> np.ndarray:  # noqa: N803
    """P(at least one purchase in the next t weeks): alive × (1 − NBD zero), since dropout only follows a purchase."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))  # noqa: N806
    alive = probability_alive(params, x, t_x, T)
    none_if_alive = np.power((params.alpha + T) / (params.alpha + T + t), params.r + x)
    return alive * (1 - none_if_alive)


# --- Gamma-Gamma -------------------------------------------------------------------------------------------------


def gamma_gamma_log_likelihood(p: float, q: float, v: float, x, m) -> np.ndarray:
    """Log-density of a customer's average repeat value m over x purchases (Fader & Hardie 2013, eq. 4)."""
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    return (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(v)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(v + m * x)
    )


def gamma_gamma_fit(x, m) -> GammaGammaParams:
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    keep = (x > 0) & (m > 0)
    x, m = x[keep], m[keep]
    if not len(x):
        raise FitError("no repeat purchases with a positive value")

    def negative(log_params: np.ndarray) -> float:
        p, q, v = np.exp(np.clip(log_params, -20, 20))
        value = -np.mean(gamma_gamma_log_likelihood(p, q, v, x, m))
        return float(value) if np.isfinite(value) else 1e12

    p, q, v = _fit(negative, np.log([1.0, 2.0, float(np.mean(m))]))
    return GammaGammaParams(p=float(p), q=float(q), v=float(v))


def expected_average_value(params: GammaGammaParams, x, m, *, population_mean: float | None = None) -> np.ndarray:
    """E[M | x, m]: a weighted mean of the population mean γp/(q−1) and the customer's own average."""
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    p, q, v = params.p, params.q, params.v
    prior = population_mean if population_mean is not None else (v * p / (q - 1) if q > 1 else float(np.mean(m)))
    own = np.where(x > 0, m, 0.0)
    return np.where(x > 0, (v + own * x) * p / (p * x + q - 1), prior)


def customer_lifetime_value(
    bgnbd: BgNbdParams,
    average_value: np.ndarray,
    x,
    t_x,
    T,
    *,  # noqa: N803
    months: int = 12,
    monthly_discount: float = 0.01,
) -> np.ndarray:
    """Discounted value of the purchases expected in each of the next ``months`` (30.4-day) months."""
    weeks_per_month = 30.4 / DAYS_PER_WEEK
    total = np.zeros_like(np.asarray(x, dtype=float))
    previous = np.zeros_like(total)
    for month in range(1, months + 1):
        cumulative = expected_purchases(bgnbd, month * weeks_per_month, x, t_x, T)
        total += (cumulative - previous) * average_value / (1 + monthly_discount) ** month
        previous = cumulative
    return total


# --- simulation (tests, and the forecast's uncertainty band) -----------------------------------------------------


def simulate_bgnbd(params: BgNbdParams, *, T: np.ndarray, rng: np.random.Generator):  # noqa: N803
    """Draw (x, t_x) for customers of ages T from the BG/NBD process."""
    n = len(T)
    lam = rng.gamma(params.r, 1.0 / params.alpha, size=n)
    drop = rng.beta(params.a, params.b, size=n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    now = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        index = np.flatnonzero(active)
        now[index] += rng.exponential(1.0 / lam[index])
        bought = index[now[index] <= T[index]]
        active[index[now[index] > T[index]]] = False
        x[bought] += 1
        t_x[bought] = now[bought]
        dropped = bought[rng.random(len(bought)) < drop[bought]]
        active[dropped] = False
    return x, t_x


def simulate_gamma_gamma(params: GammaGammaParams, *, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each customer's average over x purchase values drawn from Gamma(p, ν), ν ~ Gamma(q, γ); NaN when x = 0."""
    nu = rng.gamma(params.q, 1.0 / params.v, size=len(x))
    totals = np.where(x > 0, rng.gamma(np.maximum(params.p * x, 1e-9), 1.0 / nu), np.nan)
    return np.where(x > 0, totals / np.maximum(x, 1), np.nan)


def forecast_band(
    bgnbd: BgNbdParams,
    average_value: np.ndarray,
    x,
    t_x,
    T,
    *,  # noqa: N803
    days: int = 90,
    simulations: int = 200,
    rng: np.random.Generator,
    sample: int = 50_000,
) -> dict[str, np.ndarray]:
    """Daily revenue expected from existing customers over the next ``days``, with a 10–90% band.

    The centre is exact (differences of E[Y(t)]); the band comes from simulating who is still active and at
    what rate (their posterior), with a purchase count per day that is Poisson given that rate.
    """
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))  # noqa: N806
    steps = np.arange(0, days + 1) / DAYS_PER_WEEK
    cumulative = np.array(
        [np.sum(expected_purchases(bgnbd, t, x, t_x, T) * average_value) if t else 0.0 for t in steps]
    )
    expected = np.diff(cumulative)
    if len(x) > sample:
        chosen = rng.choice(len(x), size=sample, replace=False)
        scale = len(x) / sample
    else:
        chosen = np.arange(len(x))
        scale = 1.0
    alive_p = probability_alive(bgnbd, x[chosen], t_x[chosen], T[chosen])
    shape = bgnbd.r + x[chosen]
    rate = bgnbd.alpha + T[chosen]
    value = average_value[chosen]
    totals = np.empty((simulations, days))
    for s in range(simulations):
        alive = rng.random(len(chosen)) < alive_p
        daily_rate = np.where(alive, rng.gamma(shape, 1.0 / rate), 0.0) / DAYS_PER_WEEK
        mean = scale * np.sum(daily_rate * value)
        spread = np.sqrt(scale * np.sum(daily_rate * value**2))
        totals[s] = np.maximum(rng.normal(mean, spread, size=days), 0.0)
    simulated_mean = totals.mean(axis=0)
    ratio_low = np.quantile(totals, 0.1, axis=0) / np.where(simulated_mean > 0, simulated_mean, 1)
    ratio_high = np.quantile(totals, 0.9, axis=0) / np.where(simulated_mean > 0, simulated_mean, 1)
    return {"expected": expected, "low": expected * ratio_low, "high": expected * ratio_high}
