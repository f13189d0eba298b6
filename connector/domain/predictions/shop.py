"""A shop's predictions: the minimum-data rule, both fits checked, every customer predicted, and
the summary (status, reason, parameters, churn bands)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from connector.domain.predictions.bgnbd import BgNbdParams, fit_bgnbd
from connector.domain.predictions.customers import (
    CHURN_BANDS, UNKNOWN, CustomerArrays, CustomerPrediction, customer_prediction, predict_customers,
)
from connector.domain.predictions.gamma_gamma import GammaGammaParams, fit_gamma_gamma
from connector.domain.predictions.inputs import ShopInputs, has_orders

STATUS_OK = "ok"
STATUS_INSUFFICIENT = "insufficient_data"

MIN_CUSTOMERS = 500
MIN_REPEATERS = 100  # customers with a repeat order (x >= 1)
MIN_THREE_DATES = 20  # customers with 3 or more order dates (x >= 2)
MIN_HISTORY_DAYS = 180  # from the shop's first order date to d_now
RECENT_ORDER_DAYS = 30  # an order within the last 30 days: d_now - last order date < 30


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
        return UNKNOWN if self.fields is None else customer_prediction(self.fields, i, self.d_now)

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
