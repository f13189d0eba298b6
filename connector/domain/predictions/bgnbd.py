"""BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way") by maximum likelihood:
how many orders a customer will place and whether they are still a customer.

The fit works on customers grouped by identical inputs (250,000 customers over two years: about
170,000 groups); terms that depend on x alone are summed once per distinct x. Integer order
counts make the likelihood exact without a gamma function (ln Gamma(r + x) - ln Gamma(r) is a
sum of x logarithms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from connector.domain.predictions.inputs import Groups, group_inputs
from connector.domain.predictions.optimise import dot, minimise, on_bound

A_NEAR_ONE = 1e-3  # |a - 1| must exceed this: E[X(t)] divides by a - 1
WARM_START_GROUPS = 10_000  # a larger BG/NBD fit starts from a fit on about this many of its groups


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    r: float
    alpha: float  # in weeks
    a: float
    b: float


def _bgnbd_objective(groups: Groups, scale: float, total: float):
    """-(log-likelihood) / customers and its gradient, as functions of log(r, alpha, a, b).

    Terms that depend on x alone are summed once per distinct x (weighted by how many customers
    have it); only the two-branch term is evaluated per group, and only for repeat customers.
    """
    x, w = groups.x, groups.count
    max_x = int(x.max()) if x.size else 0
    k = np.arange(max_x, dtype=np.float64)
    per_x = np.bincount(x, weights=w, minlength=max_x + 1)  # W_x: customers with this x
    xs = np.arange(max_x + 1, dtype=np.float64)
    zero = x == 0
    T0, w0 = groups.age_days[zero] / 7 / scale, w[zero]  # noqa: N806
    rep = ~zero
    xr = x[rep]
    xrf = xr.astype(np.float64)
    t_xr, Tr, wr = groups.t_x_days[rep], groups.age_days[rep], w[rep]  # noqa: N806 (days: table indexes)
    weeks = np.arange(int(groups.age_days.max()) + 1 if x.size else 1) / 7 / scale  # day -> scaled weeks
    w_total = float(w.sum())

    def cum(values: np.ndarray) -> np.ndarray:  # sums over k < x, for x = 0..max_x
        return np.concatenate(([0.0], np.cumsum(values)))

    def f_and_grad(z: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(z)
        ln_alpha = math.log(alpha)
        # x-only terms: ln Gamma(r+x) - ln Gamma(r) + r ln alpha + ln B(a, b+x) - ln B(a, b)
        ll = dot(per_x, cum(np.log(r + k)) + cum(np.log(b + k)) - cum(np.log(a + b + k))) + w_total * r * ln_alpha
        g_r = dot(per_x, cum(1 / (r + k))) + w_total * ln_alpha
        g_alpha = w_total * r / alpha
        inv_ab = cum(1 / (a + b + k))
        g_a = -dot(per_x, inv_ab)
        g_b = dot(per_x, cum(1 / (b + k)) - inv_ab)
        # x = 0: -r ln(alpha + T)
        c0 = alpha + T0
        ln_c0 = np.log(c0)
        ll -= r * dot(w0, ln_c0)
        g_r -= dot(w0, ln_c0)
        g_alpha -= r * dot(w0, 1 / c0)
        # x > 0: logaddexp(-(r+x) ln(alpha+T), ln a - ln(b+x-1) - (r+x) ln(alpha+t_x))
        # (logarithms of alpha + a day count come from a table of every day count: a gather
        # instead of a logarithm per group)
        n = r + xrf
        table = alpha + weeks
        ln_table, inv_table = np.log(table), 1 / table
        ln_c, ln_d = ln_table[Tr], ln_table[t_xr]
        ln_bx = np.log(b + xs - 1, where=xs > 0, out=np.zeros_like(xs))
        a3 = -n * ln_c
        u = (math.log(a) - ln_bx[xr]) - n * (ln_d - ln_c)  # a4 - a3
        e = np.exp(-np.minimum(np.abs(u), 600.0))  # e^-600: negligible, and no slow subnormal numbers
        both = a3 + np.maximum(u, 0) + np.log1p(e)  # logaddexp(a3, a4)
        w3 = np.where(u > 0, e, 1.0) / (1 + e)  # exp(a3 - both)
        ww3 = wr * w3
        ww4 = wr - ww3
        ll += dot(wr, both)
        g_r -= (dot(ww3, ln_c) + dot(ww4, ln_d))
        g_alpha -= (dot(ww3, n * inv_table[Tr]) + dot(ww4, n * inv_table[t_xr]))
        g_a += float(ww4.sum()) / a
        inv_bx = np.divide(1.0, b + xs - 1, where=xs > 0, out=np.zeros_like(xs))
        g_b -= dot(np.bincount(xr, weights=ww4, minlength=max_x + 1), inv_bx)
        grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
        return -ll / total, -grad / total

    return f_and_grad


def fit_bgnbd(x: np.ndarray, t_x_days: np.ndarray, age_days: np.ndarray) -> tuple[BgNbdParams | None, str | None]:
    """BG/NBD by maximum likelihood: (params, None), or (None or params, the problem)."""
    groups = group_inputs(np.asarray(x, np.int64), np.asarray(t_x_days, np.int64), np.asarray(age_days, np.int64))
    total = float(groups.count.sum())
    scale = max(dot(groups.age_days, groups.count) / 7 / total, 1 / 7)  # time unit: the mean T
    start = np.log([1.0, 1.0, 0.5, 1.0])
    if groups.x.size > 4 * WARM_START_GROUPS:
        # a head start on every k-th group (in key order), then the fit on all of them
        k = groups.x.size // WARM_START_GROUPS
        sample = Groups(groups.x[::k], groups.t_x_days[::k], groups.age_days[::k], groups.count[::k],
                        groups.inverse)
        start, _ = minimise(_bgnbd_objective(sample, scale, float(sample.count.sum())), start, gtol=1e-6)
    z, converged = minimise(_bgnbd_objective(groups, scale, total), start)
    r, alpha_s, a, b = np.exp(z)
    params = BgNbdParams(float(r), float(alpha_s * scale), float(a), float(b))
    if on_bound([r, alpha_s, a, b]):
        return params, "the BG/NBD fit hit a bound of its parameters"
    if not converged:
        return params, "the BG/NBD fit did not converge"
    if abs(a - 1) <= A_NEAR_ONE:
        return params, "the BG/NBD fit gave a = 1 (within 0.001)"
    return params, None
