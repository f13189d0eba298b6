"""Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves") by maximum
likelihood: what a customer's orders will be worth. Its likelihood needs ln Gamma of non-integers,
computed with `math.lgamma` once per distinct x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from connector.domain.predictions.optimise import dot, minimise, on_bound


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    p: float
    q: float
    v: float  # in the shop's currency

    @property
    def mean_order_value(self) -> float:
        """The population mean p*v/(q-1): E[M] for a customer with no repeat order."""
        return self.p * self.v / (self.q - 1)


def _digamma(value: float) -> float:
    result = 0.0
    while value < 6.0:
        result -= 1.0 / value
        value += 1.0
    f = 1.0 / (value * value)
    series = f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f / 132))))  # asymptotic expansion
    return result + math.log(value) - 0.5 / value - series


def _gg_objective(x: np.ndarray, m: np.ndarray, total: float):
    """-(log-likelihood) / customers and its gradient in log(p, q, v), on amounts already scaled.

    Per customer: ln Gamma(px+q) - ln Gamma(px) - ln Gamma(q) + q ln v + (px-1) ln m + px ln x
    - (px+q) ln(v + m x). The gamma functions are evaluated once per distinct x, the terms in
    ln m and ln x are sums computed once; only ln(v + m x) is evaluated per customer.
    """
    xs, count = np.unique(x, return_counts=True)
    xs_f, count_f = xs.astype(np.float64), count.astype(np.float64)
    xf = x.astype(np.float64)
    mx = m * xf
    sum_x_ln_mx = dot(xf, np.log(m) + np.log(xf))  # sum of x ln m + x ln x
    sum_ln_m = float(np.log(m).sum())
    n = float(x.size)
    lgamma = np.vectorize(math.lgamma, otypes=[float])
    digamma = np.vectorize(_digamma, otypes=[float])

    def f_and_grad(z: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, v = np.exp(z)
        y_u = p * xs_f
        ln_vmx = np.log(v + mx)
        inv_vmx = 1 / (v + mx)
        s_x_ln, s_ln = dot(xf, ln_vmx), float(ln_vmx.sum())
        ll = (dot(count_f, lgamma(y_u + q) - lgamma(y_u)) - n * math.lgamma(q) + n * q * math.log(v)
              + p * sum_x_ln_mx - sum_ln_m - p * s_x_ln - q * s_ln)
        psi_yq = digamma(y_u + q)
        g_p = dot(count_f * xs_f, psi_yq - digamma(y_u)) + sum_x_ln_mx - s_x_ln
        g_q = dot(count_f, psi_yq) - n * _digamma(q) + n * math.log(v) - s_ln
        g_v = n * q / v - p * dot(xf, inv_vmx) - q * float(inv_vmx.sum())
        grad = np.array([g_p * p, g_q * q, g_v * v])
        return -ll / total, -grad / total

    return f_and_grad


def fit_gamma_gamma(x_m: np.ndarray, m: np.ndarray) -> tuple[GammaGammaParams | None, str | None]:
    """Gamma-Gamma by maximum likelihood on the customers with x_m >= 1 and m > 0."""
    x_m = np.asarray(x_m, np.int64)
    m = np.asarray(m, np.float64)
    use = (x_m >= 1) & np.isfinite(m) & (m > 0)
    if not use.any():
        return None, "no repeat order with an amount above zero"
    xs, ms = x_m[use], m[use]
    scale = float(ms.mean())  # amount unit: the mean m
    fg = _gg_objective(xs, ms / scale, float(xs.size))
    z, converged = minimise(fg, np.log([1.0, 2.0, 1.0]))
    p, q, v_s = np.exp(z)
    params = GammaGammaParams(float(p), float(q), float(v_s * scale))
    if on_bound([p, q, v_s]):
        return params, "the Gamma-Gamma fit hit a bound of its parameters"
    if not converged:
        return params, "the Gamma-Gamma fit did not converge"
    if q <= 1:
        return params, "the Gamma-Gamma fit gave q <= 1 (no finite mean order value)"
    return params, None


def expected_order_value(gg: GammaGammaParams, x_m: np.ndarray, m: np.ndarray) -> np.ndarray:
    """E[M | x_m, m] = p (v + x_m m) / (p x_m + q - 1): the population mean p v / (q - 1) when x_m = 0."""
    x_m = np.asarray(x_m, dtype=np.float64)
    m = np.where(x_m > 0, np.nan_to_num(np.asarray(m, dtype=np.float64)), 0.0)
    return gg.p * (gg.v + x_m * m) / (gg.p * x_m + gg.q - 1)
