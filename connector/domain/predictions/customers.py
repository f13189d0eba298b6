"""Each customer's predicted fields from a shop's fitted (or stored) parameters: the chance they
are still a customer, expected orders and value, churn risk and band, the next order date."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from connector.domain.predictions.bgnbd import BgNbdParams
from connector.domain.predictions.gamma_gamma import GammaGammaParams, expected_order_value
from connector.domain.predictions.inputs import CustomerInputs, ShopInputs, group_inputs

HORIZON_90 = 90  # days
HORIZON_365 = 365
CHURN_DAYS = 90  # churn_risk = P(no order in the next 90 days)
NEXT_ORDER_LIMIT = 365  # next_order_date is None beyond this many days
CHURN_BANDS: tuple[tuple[str, float], ...] = (("low", 0.33), ("medium", 0.66), ("high", math.inf))


def p_alive(bg: BgNbdParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:  # noqa: N803
    """P(still a customer | x, t_x, T), weeks; 1 when x = 0."""
    x = np.asarray(x, dtype=np.float64)
    rep = x > 0
    with np.errstate(divide="ignore"):
        log_ratio = (math.log(bg.a) - np.log(bg.b + np.maximum(x - 1, 0))
                     + (bg.r + x) * (np.log(bg.alpha + T) - np.log(bg.alpha + t_x)))
    return np.where(rep, np.exp(-np.logaddexp(0.0, log_ratio)), 1.0)


def _hyp2f1_series(A: np.ndarray, B: np.ndarray, C: np.ndarray, z: np.ndarray,  # noqa: N803
                   max_terms: int = 200_000) -> np.ndarray:
    """2F1(A, B; C; z) for 0 <= z < 1 by its series, each row summed until its tail is negligible
    (rows that converge leave the loop); NaN for a row still not converged after max_terms."""
    total = np.ones_like(z)
    term = np.ones_like(z)
    active = np.arange(z.size)
    a_, b_, c_, z_ = A.copy(), B.copy(), C.copy(), z.copy()
    t_, s_ = term.copy(), total.copy()
    k = 0
    while active.size and k < max_terms:
        ratio = (a_ + k) * (b_ + k) / ((c_ + k) * (k + 1)) * z_
        t_ = t_ * ratio
        s_ = s_ + t_
        k += 1
        next_ratio = np.abs((a_ + k) * (b_ + k) / ((c_ + k) * (k + 1)) * z_)
        done = (next_ratio < 1) & (np.abs(t_) * next_ratio / (1 - np.minimum(next_ratio, 0.999999))
                                   <= 1e-15 * np.abs(s_))
        done |= t_ == 0
        if done.any():
            total[active[done]] = s_[done]
            keep = ~done
            active, a_, b_, c_, z_, t_, s_ = active[keep], a_[keep], b_[keep], c_[keep], z_[keep], t_[keep], s_[keep]
    total[active] = np.nan
    return total


def _orders_if_alive(bg: BgNbdParams, t: float, x: np.ndarray, T: np.ndarray) -> np.ndarray:  # noqa: N803
    """E[orders in the next t weeks | alive at T, x]: a function of (x, T) only.

    (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)], z = t/(alpha+T+t),
    with the hypergeometric function in its Euler form (1-z)^(a-1-r-x) 2F1(a+b-1-r, a-1; a+b+x-1; z),
    whose series converges at least as fast.
    """
    r, alpha, a, b = bg.r, bg.alpha, bg.a, bg.b
    xf = np.asarray(x, dtype=np.float64)
    z = t / (alpha + T + t)
    hyp = _hyp2f1_series(np.full_like(z, a + b - 1 - r), np.full_like(z, a - 1), a + b + xf - 1, z)
    return (a + b + xf - 1) / (a - 1) * (1 - np.exp((a - 1) * np.log1p(-z)) * hyp)


def expected_orders(bg: BgNbdParams, t: float, x: np.ndarray, t_x: np.ndarray,
                    T: np.ndarray) -> np.ndarray:  # noqa: N803
    """E[orders in the next t weeks | x, t_x, T] = p_alive * E[orders | alive]."""
    return _orders_if_alive(bg, t, x, T) * p_alive(bg, x, t_x, T)


def no_order_probability(bg: BgNbdParams, days: np.ndarray | float, x: np.ndarray, T: np.ndarray,  # noqa: N803
                         alive: np.ndarray) -> np.ndarray:
    """P(no order in the next `days` days) = 1 - p_alive + p_alive ((alpha+T)/(alpha+T+tau))^(r+x)."""
    tau = np.asarray(days, dtype=np.float64) / 7
    c = bg.alpha + T
    return 1 - alive + alive * np.exp((bg.r + x) * (np.log(c) - np.log(c + tau)))


def next_order_days(bg: BgNbdParams, x: np.ndarray, T: np.ndarray, alive: np.ndarray) -> np.ndarray:  # noqa: N803
    """The least whole number of days k >= 1 with P(no order in k days) <= 0.5; -1 beyond 365."""
    x = np.asarray(x, dtype=np.float64)
    c = bg.alpha + T
    with np.errstate(divide="ignore", invalid="ignore"):
        limit = 1 - 0.5 / alive  # (c/(c+tau))^(r+x) must fall to this
        tau = c * (np.exp(-np.log(limit) / (bg.r + x)) - 1)
        k = np.ceil(np.where(limit > 0, tau * 7, np.inf))
    k = np.where(np.isfinite(k), np.clip(k, 1, NEXT_ORDER_LIMIT + 1), NEXT_ORDER_LIMIT + 1)
    # the closed form can be a day off at the boundary: settle it with the probability itself
    for _ in range(2):
        lower = np.maximum(k - 1, 1)
        step_down = (k > 1) & (no_order_probability(bg, lower, x, T, alive) <= 0.5)
        k = np.where(step_down, lower, k)
    for _ in range(2):
        step_up = (k <= NEXT_ORDER_LIMIT) & (no_order_probability(bg, k, x, T, alive) > 0.5)
        k = np.where(step_up, k + 1, k)
    return np.where(k > NEXT_ORDER_LIMIT, -1, k).astype(np.int64)


def churn_band(risk: np.ndarray) -> np.ndarray:
    """low (< 0.33), medium (< 0.66) or high."""
    return np.where(risk < 0.33, "low", np.where(risk < 0.66, "medium", "high"))


@dataclass(frozen=True, slots=True)
class CustomerPrediction:
    p_alive: float | None = None
    expected_orders_90d: float | None = None
    expected_orders_365d: float | None = None
    predicted_clv_365d: float | None = None
    churn_risk: float | None = None
    churn_band: str | None = None
    next_order_date: date | None = None


UNKNOWN = CustomerPrediction()


@dataclass(frozen=True)
class CustomerArrays:
    """The fields for every row of a ShopInputs; next_order_days is -1 where the date is None."""

    p_alive: np.ndarray
    expected_orders_90d: np.ndarray
    expected_orders_365d: np.ndarray
    predicted_clv_365d: np.ndarray
    churn_risk: np.ndarray
    churn_band: np.ndarray
    next_order_days: np.ndarray

    def finite(self) -> bool:
        return all(bool(np.all(np.isfinite(a))) for a in (
            self.p_alive, self.expected_orders_90d, self.expected_orders_365d, self.predicted_clv_365d,
            self.churn_risk))


def predict_customers(bg: BgNbdParams, gg: GammaGammaParams, shop: ShopInputs) -> CustomerArrays:
    """Every field for every row of `shop`, from fitted (or stored) parameters.

    p_alive depends on (x, t_x, T); what a customer still alive at T does next depends on (x, T)
    only: the hypergeometric series are summed once per distinct (x, T).
    """
    x, t_x_days, age_days = shop.x, np.maximum(shop.t_x_days, 0), np.maximum(shop.age_days, 0)
    groups = group_inputs(x, t_x_days, age_days)
    xg, t_xg, Tg = groups.x.astype(np.float64), groups.t_x, groups.T
    span = int(groups.age_days.max()) + 1 if xg.size else 1
    _, first, by_xt = np.unique(groups.x * span + groups.age_days, return_index=True, return_inverse=True)
    by_xt = by_xt.reshape(-1)
    x2, T2 = xg[first], Tg[first]
    c2 = bg.alpha + T2
    stays_90 = np.exp((bg.r + x2) * (np.log(c2) - np.log(c2 + CHURN_DAYS / 7)))[by_xt]
    alive = p_alive(bg, xg, t_xg, Tg)
    e90 = _orders_if_alive(bg, HORIZON_90 / 7, x2, T2)[by_xt] * alive
    e365 = _orders_if_alive(bg, HORIZON_365 / 7, x2, T2)[by_xt] * alive
    risk = 1 - alive + alive * stays_90
    nxt = next_order_days(bg, xg, Tg, alive)
    inv = groups.inverse
    e365_c = e365[inv]
    risk_c = risk[inv]
    return CustomerArrays(alive[inv], e90[inv], e365_c, e365_c * expected_order_value(gg, shop.x_m, shop.m),
                          risk_c, churn_band(risk_c), nxt[inv])


def customer_prediction(f: CustomerArrays, i: int, d_now: date) -> CustomerPrediction:
    """Row `i` of `f` as one customer's fields, the next order date counted from `d_now`."""
    days = int(f.next_order_days[i])
    return CustomerPrediction(
        float(f.p_alive[i]), float(f.expected_orders_90d[i]), float(f.expected_orders_365d[i]),
        float(f.predicted_clv_365d[i]), float(f.churn_risk[i]), str(f.churn_band[i]),
        None if days < 0 else d_now + timedelta(days=days),
    )


def predict_one(bg: BgNbdParams, gg: GammaGammaParams, inputs: CustomerInputs, d_now: date) -> CustomerPrediction:
    """One customer's fields from a shop's fitted (or stored) parameters: what `explain` shows."""
    fields = predict_customers(bg, gg, ShopInputs.from_customers([inputs], d_now))
    return customer_prediction(fields, 0, d_now) if fields.finite() else UNKNOWN
