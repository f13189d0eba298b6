"""The models' inputs, in whole UTC days: one customer's, a shop's as arrays, and customers grouped
by identical inputs.

d_now is the UTC date of the last instant before `now` (an order at exactly `now` falls on the
next day, so it is not counted). For a customer: x = number of distinct order dates after their
first, t_x = (last - first date) / 7 and T = (d_now - first date) / 7 in weeks, m = the mean over
the repeat dates of each date's amount total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Iterable, Sequence

import numpy as np

DAY = timedelta(days=1)
MICRO = timedelta(microseconds=1)
DAY_MICROS = 86_400 * 1_000_000
EPOCH_DAY = date(1970, 1, 1).toordinal()


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


@dataclass(frozen=True)
class Groups:
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


def group_inputs(x: np.ndarray, t_x_days: np.ndarray, age_days: np.ndarray) -> Groups:
    """Customers grouped by identical inputs: both the BG/NBD fit and the predictions work per group."""
    span = int(age_days.max()) + 1 if age_days.size else 1
    key = (x * span + t_x_days) * span + age_days
    unique, first, inverse, count = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    return Groups(x[first], t_x_days[first], age_days[first], count.astype(np.float64), inverse.reshape(-1))
