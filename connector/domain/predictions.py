"""The `predicted` model: what a shop's order history says comes next for each customer.

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way") for how many orders a
customer will place and whether they are still a customer; Gamma-Gamma (Fader, Hardie & Lee
2005, "RFM and CLV: using iso-value curves") for what their orders will be worth. The rules,
inputs and fields are documented in docs/rules.md, "Predictions".

Pure: numpy only (no scipy: the Lambda bundle's size), no clock, no I/O. `now` is passed.

Inputs are whole UTC days. d_now is the UTC date of the last instant before `now` (an order at
exactly `now` falls on the next day, so it is not counted). For a customer: x = number of distinct
order dates after their first, t_x = (last - first date) / 7 and T = (d_now - first date) / 7 in
weeks, m = the mean over the repeat dates of each date's amount total.

How it is used (the wiring):

    d_now = prediction_day(now)
    one = customer_inputs([(placed_at, amount), ...], now)          # one customer's valid orders
    shop = ShopInputs.from_customers([one, ...], d_now)               # or, for a whole shop at once:
    shop = shop_inputs_from_orders(customer_index, placed_us, amounts, now_us)
    result = predict_shop(shop)            # fit both models, check them, predict every customer
    result.status, result.reason, result.bgnbd, result.gamma_gamma, result.churn_bands()
    result.customer(i)                     # CustomerPrediction, every field None when not `ok`
    predict_customers(result.bgnbd, result.gamma_gamma, shop)  # stored parameters, other inputs
    predict_one(bgnbd, gamma_gamma, one, d_now)                # one customer (explain)

Both fits work on customers grouped by identical inputs (250,000 customers over two years: about
170,000 groups), terms that depend on x alone are summed once per distinct x. Integer order counts make the BG/NBD likelihood exact
without a gamma function (ln Gamma(r + x) - ln Gamma(r) is a sum of x logarithms); Gamma-Gamma's
needs ln Gamma of non-integers, computed with `math.lgamma` once per distinct x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Iterable, Sequence

import numpy as np

# --- the rules -------------------------------------------------------------------------------

STATUS_OK = "ok"
STATUS_INSUFFICIENT = "insufficient_data"

MIN_CUSTOMERS = 500
MIN_REPEATERS = 100  # customers with a repeat order (x >= 1)
MIN_THREE_DATES = 20  # customers with 3 or more order dates (x >= 2)
MIN_HISTORY_DAYS = 180  # from the shop's first order date to d_now
RECENT_ORDER_DAYS = 30  # an order within the last 30 days: d_now - last order date < 30

HORIZON_90 = 90  # days
HORIZON_365 = 365
CHURN_DAYS = 90  # churn_risk = P(no order in the next 90 days)
NEXT_ORDER_LIMIT = 365  # next_order_date is None beyond this many days
CHURN_BANDS: tuple[tuple[str, float], ...] = (("low", 0.33), ("medium", 0.66), ("high", math.inf))
A_NEAR_ONE = 1e-3  # |a - 1| must exceed this: E[X(t)] divides by a - 1

# The optimisers' box, on parameters whose units are scaled away (time in units of the mean T,
# amounts in units of the mean m): a fit that ends within BOUND_MARGIN of it "hit a bound".
PARAM_LOW, PARAM_HIGH = 1e-4, 1e4
BOUND_MARGIN = 1.001
WARM_START_GROUPS = 10_000  # a larger BG/NBD fit starts from a fit on about this many of its groups

DAY = timedelta(days=1)
MICRO = timedelta(microseconds=1)
DAY_MICROS = 86_400 * 1_000_000
EPOCH_DAY = date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    r: float
    alpha: float  # in weeks
    a: float
    b: float


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    p: float
    q: float
    v: float  # in the shop's currency

    @property
    def mean_order_value(self) -> float:
        """The population mean p*v/(q-1): E[M] for a customer with no repeat order."""
        return self.p * self.v / (self.q - 1)


# --- inputs ----------------------------------------------------------------------------------

def prediction_day(now: datetime) -> date:
    """d_now: the UTC date of the last instant before `now`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return (now.astimezone(timezone.utc) - MICRO).date()


@dataclass(frozen=True, slots=True)
class CustomerInputs:
    """One customer's model inputs, in whole days (weeks are days / 7).

    `x_m` is the number of repeat dates whose amount is known (an order in a currency that could
    not be converted has none: such a date is left out of m, never read as 0); it is x otherwise.
    `m` is None when x_m is 0.
    """

    x: int
    t_x_days: int
    age_days: int  # T in days: d_now - first order date
    x_m: int
    m: float | None
    first_day: date
    last_day: date

    @property
    def t_x(self) -> float:
        return self.t_x_days / 7

    @property
    def T(self) -> float:  # noqa: N802 (the model's own name)
        return self.age_days / 7


def customer_inputs(orders: Iterable[tuple[datetime, Decimal | float | None]], now: datetime) -> CustomerInputs | None:
    """A customer's inputs from their valid orders as (placed_at, amount or None), at `now`.

    Orders placed at or after `now` are left out; None when nothing is left.
    """
    d_now = prediction_day(now)
    totals: dict[date, float | None] = {}
    for placed_at, amount in orders:
        if placed_at >= now:
            continue
        day = placed_at.astimezone(timezone.utc).date()
        so_far = totals.get(day, 0.0)
        totals[day] = None if amount is None or so_far is None else so_far + float(amount)
    if not totals:
        return None
    days = sorted(totals)
    repeat = [totals[d] for d in days[1:]]
    known = [v for v in repeat if v is not None]
    return CustomerInputs(
        x=len(repeat), t_x_days=(days[-1] - days[0]).days, age_days=(d_now - days[0]).days,
        x_m=len(known), m=(sum(known) / len(known)) if known else None,
        first_day=days[0], last_day=days[-1],
    )


@dataclass(frozen=True)
class ShopInputs:
    """Every customer's inputs as arrays (one row per customer), at d_now."""

    d_now: date
    x: np.ndarray  # int64
    t_x_days: np.ndarray  # int64
    age_days: np.ndarray  # int64
    x_m: np.ndarray  # int64
    m: np.ndarray  # float64, NaN where x_m == 0

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @classmethod
    def from_customers(cls, customers: Sequence[CustomerInputs], d_now: date) -> "ShopInputs":
        return cls(
            d_now,
            np.array([c.x for c in customers], dtype=np.int64),
            np.array([c.t_x_days for c in customers], dtype=np.int64),
            np.array([c.age_days for c in customers], dtype=np.int64),
            np.array([c.x_m for c in customers], dtype=np.int64),
            np.array([math.nan if c.m is None else c.m for c in customers], dtype=np.float64),
        )


def shop_inputs_from_orders(customer: np.ndarray, placed_us: np.ndarray, amount: np.ndarray,
                            now_us: int) -> ShopInputs:
    """Every customer's inputs from a shop's valid orders, all at once.

    `customer`: each order's customer as an integer 0..n-1 (row i of the result is customer i; a
    customer with no order before now gets x = 0 and age -1, see `has_orders`); `placed_us`: UTC
    microseconds since the epoch; `amount`: float, NaN when unknown; `now_us`: `now` likewise.
    """
    cust = np.asarray(customer, dtype=np.int64)
    n = int(cust.max()) + 1 if cust.size else 0
    placed = np.asarray(placed_us, dtype=np.int64)
    amt = np.asarray(amount, dtype=np.float64)
    before = placed < now_us
    if not before.all():
        cust, placed, amt = cust[before], placed[before], amt[before]
    day = placed // DAY_MICROS
    d_now_n = (now_us - 1) // DAY_MICROS
    d_now = date.fromordinal(EPOCH_DAY + int(d_now_n))

    # one sort on one integer key: (customer, date)
    first = int(day.min()) if day.size else 0
    span = d_now_n - first + 1
    key = cust * span + (day - first)
    order = np.argsort(key)
    key, amt = key[order], amt[order]
    cust, day = np.divmod(key, span)
    day += first
    new_date = np.ones(key.shape[0], dtype=bool)
    new_date[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(new_date)
    date_cust, date_day = cust[starts], day[starts]
    date_total = np.add.reduceat(amt, starts) if starts.size else np.zeros(0)  # NaN if any unknown
    first_of_cust = np.ones(date_cust.shape[0], dtype=bool)
    first_of_cust[1:] = date_cust[1:] != date_cust[:-1]
    cstarts = np.flatnonzero(first_of_cust)
    who = date_cust[cstarts]

    x = np.zeros(n, dtype=np.int64)
    t_x = np.zeros(n, dtype=np.int64)
    age = np.full(n, -1, dtype=np.int64)
    x_m = np.zeros(n, dtype=np.int64)
    m = np.full(n, np.nan)
    dates_per = np.diff(np.append(cstarts, date_cust.shape[0]))
    first_day = date_day[cstarts]
    last_day = date_day[cstarts + dates_per - 1]
    x[who] = dates_per - 1
    t_x[who] = last_day - first_day
    age[who] = d_now_n - first_day
    repeat = ~first_of_cust & ~np.isnan(date_total)
    counts = np.bincount(date_cust[repeat], minlength=n)
    sums = np.bincount(date_cust[repeat], weights=date_total[repeat], minlength=n)
    x_m[:] = counts
    with np.errstate(invalid="ignore", divide="ignore"):
        m[:] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return ShopInputs(d_now, x, t_x, age, x_m, m)


def has_orders(shop: ShopInputs) -> np.ndarray:
    """Rows of `shop_inputs_from_orders` whose customer has an order before now."""
    return shop.age_days >= 0


# --- BG/NBD ----------------------------------------------------------------------------------

def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """A sum of products without BLAS: numpy's `@` hands long vectors to a threaded BLAS, whose
    threads made these fits many times slower on a busy 2-core machine."""
    return float(np.multiply(a, b).sum())


@dataclass(frozen=True)
class _Groups:
    """Customers grouped by identical (x, t_x, T): the likelihood's distinct terms."""

    x: np.ndarray
    t_x_days: np.ndarray
    age_days: np.ndarray
    count: np.ndarray
    inverse: np.ndarray  # customer -> group

    @property
    def t_x(self) -> np.ndarray:
        return self.t_x_days / 7

    @property
    def T(self) -> np.ndarray:  # noqa: N802
        return self.age_days / 7


def _group(x: np.ndarray, t_x_days: np.ndarray, age_days: np.ndarray) -> _Groups:
    span = int(age_days.max()) + 1 if age_days.size else 1
    key = (x * span + t_x_days) * span + age_days
    unique, first, inverse, count = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    return _Groups(x[first], t_x_days[first], age_days[first], count.astype(np.float64), inverse.reshape(-1))


def _bgnbd_objective(groups: _Groups, scale: float, total: float):
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
        ll = _dot(per_x, cum(np.log(r + k)) + cum(np.log(b + k)) - cum(np.log(a + b + k))) + w_total * r * ln_alpha
        g_r = _dot(per_x, cum(1 / (r + k))) + w_total * ln_alpha
        g_alpha = w_total * r / alpha
        inv_ab = cum(1 / (a + b + k))
        g_a = -_dot(per_x, inv_ab)
        g_b = _dot(per_x, cum(1 / (b + k)) - inv_ab)
        # x = 0: -r ln(alpha + T)
        c0 = alpha + T0
        ln_c0 = np.log(c0)
        ll -= r * _dot(w0, ln_c0)
        g_r -= _dot(w0, ln_c0)
        g_alpha -= r * _dot(w0, 1 / c0)
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
        ll += _dot(wr, both)
        g_r -= (_dot(ww3, ln_c) + _dot(ww4, ln_d))
        g_alpha -= (_dot(ww3, n * inv_table[Tr]) + _dot(ww4, n * inv_table[t_xr]))
        g_a += float(ww4.sum()) / a
        inv_bx = np.divide(1.0, b + xs - 1, where=xs > 0, out=np.zeros_like(xs))
        g_b -= _dot(np.bincount(xr, weights=ww4, minlength=max_x + 1), inv_bx)
        grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
        return -ll / total, -grad / total

    return f_and_grad


def _minimise(fg, z0: np.ndarray, max_iter: int = 200, gtol: float = 1e-9) -> tuple[np.ndarray, bool]:
    """Quasi-Newton on log-parameters inside the box [PARAM_LOW, PARAM_HIGH]: a first Hessian from
    finite differences of the analytic gradient (again whenever a step fails), BFGS updates of it in
    between, each step made positive definite and followed by a backtracking line search.
    Returns (z, converged)."""
    lo, hi = math.log(PARAM_LOW), math.log(PARAM_HIGH)
    z = np.clip(np.asarray(z0, dtype=np.float64), lo, hi)
    f, g = fg(z)
    if not (math.isfinite(f) and np.all(np.isfinite(g))):
        return z, False

    def fd_hessian(z: np.ndarray, g: np.ndarray) -> np.ndarray:
        h = 1e-6
        hess = np.empty((z.size, z.size))
        for i in range(z.size):
            zi = z.copy()
            zi[i] += h
            hess[:, i] = (fg(zi)[1] - g) / h
        return (hess + hess.T) / 2

    hess = fd_hessian(z, g)
    fresh = True
    for _ in range(max_iter):
        blocked = ((z <= lo) & (g > 0)) | ((z >= hi) & (g < 0))
        free = ~blocked
        if not free.any() or np.max(np.abs(g[free])) < gtol:
            return z, True
        sub = hess[np.ix_(free, free)]
        if not np.all(np.isfinite(sub)):
            sub = np.eye(int(free.sum()))
        vals, vecs = np.linalg.eigh(sub)
        vals = np.maximum(np.abs(vals), 1e-8 * max(1.0, float(np.max(np.abs(vals)))))
        step = np.zeros_like(z)
        step[free] = -vecs @ ((vecs.T @ g[free]) / vals)
        norm = float(np.linalg.norm(step))
        if norm > 2.0:
            step *= 2.0 / norm
        t = 1.0
        while t > 1e-12:
            zn = np.clip(z + t * step, lo, hi)
            fn, gn = fg(zn)
            if math.isfinite(fn) and fn <= f + 1e-4 * float(g @ (zn - z)) and np.all(np.isfinite(gn)):
                break
            t /= 2
        else:
            if not fresh:  # the updated Hessian led nowhere: measure it again, from here
                hess, fresh = fd_hessian(z, g), True
                continue
            return z, bool(np.max(np.abs(g[free])) < 1e-6)
        if f - fn < 1e-15 * max(1.0, abs(f)) and np.max(np.abs(gn[free])) < 1e-6:
            return zn, True
        s, y = zn - z, gn - g
        sy = float(s @ y)
        if sy > 1e-12 * float(np.linalg.norm(s) * np.linalg.norm(y)):  # BFGS update of the Hessian
            hs = hess @ s
            hess = hess - np.outer(hs, hs) / float(s @ hs) + np.outer(y, y) / sy
        fresh = False
        z, f, g = zn, fn, gn
    return z, False


def _on_bound(values: Sequence[float]) -> bool:
    return any(v <= PARAM_LOW * BOUND_MARGIN or v >= PARAM_HIGH / BOUND_MARGIN for v in values)


def fit_bgnbd(x: np.ndarray, t_x_days: np.ndarray, age_days: np.ndarray) -> tuple[BgNbdParams | None, str | None]:
    """BG/NBD by maximum likelihood: (params, None), or (None or params, the problem)."""
    groups = _group(np.asarray(x, np.int64), np.asarray(t_x_days, np.int64), np.asarray(age_days, np.int64))
    total = float(groups.count.sum())
    scale = max(_dot(groups.age_days, groups.count) / 7 / total, 1 / 7)  # time unit: the mean T
    start = np.log([1.0, 1.0, 0.5, 1.0])
    if groups.x.size > 4 * WARM_START_GROUPS:
        # a head start on every k-th group (in key order), then the fit on all of them
        k = groups.x.size // WARM_START_GROUPS
        sample = _Groups(groups.x[::k], groups.t_x_days[::k], groups.age_days[::k], groups.count[::k],
                         groups.inverse)
        start, _ = _minimise(_bgnbd_objective(sample, scale, float(sample.count.sum())), start, gtol=1e-6)
    z, converged = _minimise(_bgnbd_objective(groups, scale, total), start)
    r, alpha_s, a, b = np.exp(z)
    params = BgNbdParams(float(r), float(alpha_s * scale), float(a), float(b))
    if _on_bound([r, alpha_s, a, b]):
        return params, "the BG/NBD fit hit a bound of its parameters"
    if not converged:
        return params, "the BG/NBD fit did not converge"
    if abs(a - 1) <= A_NEAR_ONE:
        return params, "the BG/NBD fit gave a = 1 (within 0.001)"
    return params, None


# --- Gamma-Gamma -----------------------------------------------------------------------------

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
    sum_x_ln_mx = _dot(xf, np.log(m) + np.log(xf))  # sum of x ln m + x ln x
    sum_ln_m = float(np.log(m).sum())
    n = float(x.size)
    lgamma = np.vectorize(math.lgamma, otypes=[float])
    digamma = np.vectorize(_digamma, otypes=[float])

    def f_and_grad(z: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, v = np.exp(z)
        y_u = p * xs_f
        ln_vmx = np.log(v + mx)
        inv_vmx = 1 / (v + mx)
        s_x_ln, s_ln = _dot(xf, ln_vmx), float(ln_vmx.sum())
        ll = (_dot(count_f, lgamma(y_u + q) - lgamma(y_u)) - n * math.lgamma(q) + n * q * math.log(v)
              + p * sum_x_ln_mx - sum_ln_m - p * s_x_ln - q * s_ln)
        psi_yq = digamma(y_u + q)
        g_p = _dot(count_f * xs_f, psi_yq - digamma(y_u)) + sum_x_ln_mx - s_x_ln
        g_q = _dot(count_f, psi_yq) - n * _digamma(q) + n * math.log(v) - s_ln
        g_v = n * q / v - p * _dot(xf, inv_vmx) - q * float(inv_vmx.sum())
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
    z, converged = _minimise(fg, np.log([1.0, 2.0, 1.0]))
    p, q, v_s = np.exp(z)
    params = GammaGammaParams(float(p), float(q), float(v_s * scale))
    if _on_bound([p, q, v_s]):
        return params, "the Gamma-Gamma fit hit a bound of its parameters"
    if not converged:
        return params, "the Gamma-Gamma fit did not converge"
    if q <= 1:
        return params, "the Gamma-Gamma fit gave q <= 1 (no finite mean order value)"
    return params, None


# --- predictions -----------------------------------------------------------------------------

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


def expected_order_value(gg: GammaGammaParams, x_m: np.ndarray, m: np.ndarray) -> np.ndarray:
    """E[M | x_m, m] = p (v + x_m m) / (p x_m + q - 1): the population mean p v / (q - 1) when x_m = 0."""
    x_m = np.asarray(x_m, dtype=np.float64)
    m = np.where(x_m > 0, np.nan_to_num(np.asarray(m, dtype=np.float64)), 0.0)
    return gg.p * (gg.v + x_m * m) / (gg.p * x_m + gg.q - 1)


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
    groups = _group(x, t_x_days, age_days)
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


def _customer_prediction(f: CustomerArrays, i: int, d_now: date) -> CustomerPrediction:
    days = int(f.next_order_days[i])
    return CustomerPrediction(
        float(f.p_alive[i]), float(f.expected_orders_90d[i]), float(f.expected_orders_365d[i]),
        float(f.predicted_clv_365d[i]), float(f.churn_risk[i]), str(f.churn_band[i]),
        None if days < 0 else d_now + timedelta(days=days),
    )


def predict_one(bg: BgNbdParams, gg: GammaGammaParams, inputs: CustomerInputs, d_now: date) -> CustomerPrediction:
    """One customer's fields from a shop's fitted (or stored) parameters: what `explain` shows."""
    fields = predict_customers(bg, gg, ShopInputs.from_customers([inputs], d_now))
    return _customer_prediction(fields, 0, d_now) if fields.finite() else UNKNOWN


@dataclass(frozen=True)
class ShopPredictions:
    """A shop's fit at d_now: status `ok` or `insufficient_data` (with the reason), the parameters
    (None when not ok), and every customer's fields (None when not ok)."""

    d_now: date
    status: str
    reason: str | None
    customers: int
    bgnbd: BgNbdParams | None = None
    gamma_gamma: GammaGammaParams | None = None
    fields: CustomerArrays | None = field(default=None, repr=False)

    def customer(self, i: int) -> CustomerPrediction:
        return UNKNOWN if self.fields is None else _customer_prediction(self.fields, i, self.d_now)

    def churn_bands(self) -> dict[str, int]:
        counts = {name: 0 for name, _ in CHURN_BANDS}
        if self.fields is not None:
            names, n = np.unique(self.fields.churn_band, return_counts=True)
            counts.update({str(k): int(v) for k, v in zip(names, n)})
        return counts


def data_problem(shop: ShopInputs) -> str | None:
    """The minimum-data rule: the first unmet condition, or None."""
    rows = has_orders(shop)
    customers = int(rows.sum())
    x = shop.x[rows]
    if customers < MIN_CUSTOMERS:
        return f"{customers} customers with orders, fewer than {MIN_CUSTOMERS}"
    repeaters = int((x >= 1).sum())
    if repeaters < MIN_REPEATERS:
        return f"{repeaters} customers with a repeat order, fewer than {MIN_REPEATERS}"
    three = int((x >= 2).sum())
    if three < MIN_THREE_DATES:
        return f"{three} customers with 3 or more order dates, fewer than {MIN_THREE_DATES}"
    history = int(shop.age_days[rows].max())
    if history < MIN_HISTORY_DAYS:
        return f"{history} days from the shop's first order, fewer than {MIN_HISTORY_DAYS}"
    since_last = int((shop.age_days[rows] - shop.t_x_days[rows]).min())
    if since_last >= RECENT_ORDER_DAYS:
        return f"no order in the last {RECENT_ORDER_DAYS} days (the last is {since_last} days old)"
    return None


def predict_shop(shop: ShopInputs) -> ShopPredictions:
    """Fit both models on a shop's inputs, check them and predict every customer.

    Rows without an order (see `has_orders`) get fields too but are not fitted on; the caller
    leaves them out. Never NaN or infinity: any doubt gives `insufficient_data` and the reason.
    """
    rows = has_orders(shop)
    customers = int(rows.sum())

    def insufficient(reason: str) -> ShopPredictions:
        return ShopPredictions(shop.d_now, STATUS_INSUFFICIENT, reason, customers)

    problem = data_problem(shop)
    if problem:
        return insufficient(problem)
    bg, problem = fit_bgnbd(shop.x[rows], shop.t_x_days[rows], shop.age_days[rows])
    if problem:
        return insufficient(problem)
    gg, problem = fit_gamma_gamma(shop.x_m[rows], shop.m[rows])
    if problem:
        return insufficient(problem)
    assert bg is not None and gg is not None
    fields = predict_customers(bg, gg, shop)
    if not fields.finite():
        return insufficient("some predictions are not finite numbers")
    return ShopPredictions(shop.d_now, STATUS_OK, None, customers, bg, gg, fields)
