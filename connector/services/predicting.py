"""The `predicted` model run on a shop: fitted and stored at each recompute, read back by every view.

- `refresh_predictions` (the daily `recompute`, `stagesync predict` without `--at`): fit the shop at
  `now`, store the fit (its day, status, reason and parameters) and each customer's fields as a
  destination is sent them; queue the customers whose sent fields changed, for the destinations
  that map a predicted field. Webhooks leave predictions alone (docs/rules.md, 'Predictions').
- `predictions_at` (export, explain, the dashboard, `predict --at`): read-only. Live, the stored
  parameters applied to every customer's inputs at `now`; replayed (`--at`, `?at=`), a fit at that
  instant. Either way every field is None when the shop's status is not `ok`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
from sqlalchemy import Connection

from connector.config import ShopSettings
from connector.domain.predictions import (
    STATUS_INSUFFICIENT, STATUS_OK, UNKNOWN, BgNbdParams, CustomerArrays, CustomerPrediction, GammaGammaParams,
    ShopInputs, customer_inputs, customer_prediction, predict_customers, predict_one, predict_shop, prediction_day,
    shop_inputs_from_orders,
)
from connector.storage import predictions as queries
from connector.storage.store import Store
from connector.storage.values import to_micros

PREDICTED_FIELDS = queries.PREDICTION_COLUMNS
ROUNDED = 2  # decimals of p_alive, churn_risk, expected orders and CLV as a destination is sent them


@dataclass
class ShopPredictionView:
    """A shop's predictions at `now`: the fit used (status, reason, parameters, the day it was
    fitted at) and every customer's fields and inputs, by customer key."""

    now: datetime
    d_now: object  # date: the day the inputs are counted at
    status: str
    reason: str | None
    customers: int
    bgnbd: BgNbdParams | None
    gamma_gamma: GammaGammaParams | None
    fitted_on: str | None  # YYYY-MM-DD of the fit (the stored one's, live)
    keys: list[str] = field(default_factory=list)
    inputs: ShopInputs | None = None
    fields: CustomerArrays | None = None
    index: dict[str, int] = field(default_factory=dict)

    def customer(self, key: str) -> CustomerPrediction:
        i = self.index.get(key)
        if self.fields is None or i is None:
            return UNKNOWN
        return customer_prediction(self.fields, i, self.d_now)

    def inputs_of(self, key: str) -> dict | None:
        """x, t_x, T (weeks) and m of a customer with an order before now, else None."""
        i = self.index.get(key)
        if self.inputs is None or i is None:
            return None
        s = self.inputs
        m = float(s.m[i])
        return {"x": int(s.x[i]), "t_x": float(s.t_x_days[i]) / 7, "T": float(s.age_days[i]) / 7,
                "m": None if np.isnan(m) else m}

    def churn_bands(self) -> dict[str, int]:
        counts = {"low": 0, "medium": 0, "high": 0}
        if self.fields is not None:
            for band, n in zip(*np.unique(self.fields.churn_band, return_counts=True)):
                counts[str(band)] = int(n)
        return counts


@dataclass
class PredictionRun:
    status: str
    reason: str | None
    written: int = 0
    queued: int = 0
    view: ShopPredictionView | None = field(default=None, repr=False)


def _inputs(conn: Connection, shop: ShopSettings, now: datetime) -> tuple[list[str], ShopInputs]:
    orders = queries.valid_orders(conn, shop.id, now)
    return orders.keys, shop_inputs_from_orders(orders.customer, orders.placed_us, orders.amount, to_micros(now))


def _view(now: datetime, keys: list[str], inputs: ShopInputs, status: str, reason: str | None,
          bg: BgNbdParams | None, gg: GammaGammaParams | None, fields: CustomerArrays | None,
          fitted_on: str | None) -> ShopPredictionView:
    return ShopPredictionView(now, inputs.d_now, status, reason, len(keys), bg, gg, fitted_on, keys, inputs, fields,
                              {key: i for i, key in enumerate(keys)})


def fit_at(store: Store, shop: ShopSettings, now: datetime, conn: Connection | None = None) -> ShopPredictionView:
    """Fit the shop on its valid orders before `now` and predict every customer. Nothing is written."""
    if conn is None:
        with store.read() as c:
            return fit_at(store, shop, now, c)
    keys, inputs = _inputs(conn, shop, now)
    fit = predict_shop(inputs)
    return _view(now, keys, inputs, fit.status, fit.reason, fit.bgnbd, fit.gamma_gamma, fit.fields,
                 fit.d_now.isoformat())


def predictions_at(store: Store, shop: ShopSettings, now: datetime, replay: bool = False) -> ShopPredictionView:
    """Read-only: with `replay`, a fit at `now`; otherwise the stored fit's parameters applied at
    `now` (a fit at `now` when the shop was never fitted)."""
    with store.read() as conn:
        stored = None if replay else queries.load_fit(conn, shop.id)
        if stored is None:
            return fit_at(store, shop, now, conn)
        keys, inputs = _inputs(conn, shop, now)
    if stored.status != STATUS_OK:
        return _view(now, keys, inputs, stored.status, stored.reason, None, None, None, stored.d_now)
    bg = BgNbdParams(stored.r, stored.alpha, stored.a, stored.b)
    gg = GammaGammaParams(stored.p, stored.q, stored.v)
    fields = predict_customers(bg, gg, inputs) if keys else None
    if fields is not None and not fields.finite():
        return _view(now, keys, inputs, STATUS_INSUFFICIENT, "some predictions are not finite numbers",
                     None, None, None, stored.d_now)
    return _view(now, keys, inputs, STATUS_OK, None, bg, gg, fields, stored.d_now)


def sent_fields(prediction: CustomerPrediction) -> tuple:
    """A customer's fields as stored and sent to destinations (`PREDICTED_FIELDS` order): the
    numbers rounded to 2 decimals, so that a day's drift does not resend every contact."""
    p = prediction
    return (round(p.p_alive, ROUNDED), round(p.churn_risk, ROUNDED), p.churn_band,
            round(p.expected_orders_90d, ROUNDED), round(p.expected_orders_365d, ROUNDED),
            round(p.predicted_clv_365d, ROUNDED), p.next_order_date.isoformat() if p.next_order_date else None)


def mapped_columns(shop: ShopSettings) -> dict[str, set[int]]:
    """Destination name -> the positions (in `PREDICTED_FIELDS`) of the predicted fields it writes,
    for the shop's destinations that write any."""
    found = {d.name: {i for i, name in enumerate(PREDICTED_FIELDS) if name in d.properties.values()}
             for d in shop.destinations}
    return {name: columns for name, columns in found.items() if columns}


def _differs(before: tuple | None, after: tuple | None, columns: set[int]) -> bool:
    if before is None or after is None:
        return (before is None) != (after is None)
    return any(before[i] != after[i] for i in columns)


def refresh_predictions(store: Store, shop: ShopSettings, now: datetime,
                        due: datetime | None = None, dry_run: bool = False) -> PredictionRun:
    """Fit the shop at `now` and store the fit and each customer's sent fields; queue, for each
    destination, the customers whose fields that it writes changed (due at `due`, default now or
    earlier). With `dry_run`, only count them: nothing stored, nothing queued."""
    view = fit_at(store, shop, now)
    rows = ({} if view.fields is None else
            {key: sent_fields(customer_prediction(view.fields, i, view.d_now)) for i, key in enumerate(view.keys)})
    fit = dict(d_now=view.d_now.isoformat(), computed_at=to_micros(now), status=view.status, reason=view.reason,
               customers=view.customers)
    if view.bgnbd is not None and view.gamma_gamma is not None:
        fit.update(r=view.bgnbd.r, alpha=view.bgnbd.alpha, a=view.bgnbd.a, b=view.bgnbd.b,
                   p=view.gamma_gamma.p, q=view.gamma_gamma.q, v=view.gamma_gamma.v)
    with store.read() as conn:
        stored = queries.stored_predictions(conn, shop.id)
    changed = {key: row for key, row in rows.items() if stored.get(key) != row}
    gone = [key for key in stored if key not in rows]
    queued = 0
    to_queue = {destination: [key for key in [*changed, *gone] if _differs(stored.get(key), rows.get(key), columns)]
                for destination, columns in mapped_columns(shop).items()}
    if dry_run:
        queued = sum(map(len, to_queue.values()))
    else:
        with store.transaction() as conn:
            queries.save_fit(conn, shop.id, fit)
            queries.replace_predictions(conn, shop.id, changed, gone)
            for destination, keys in to_queue.items():
                store.enqueue(conn, shop.id, [destination], keys, due or min(now, datetime.now(timezone.utc)))
                queued += len(keys)
    return PredictionRun(view.status, view.reason, len(changed) + len(gone), queued, view)


def summary(view: ShopPredictionView, shop_id: str, at: str) -> dict:
    """`stagesync predict --json`."""
    bg, gg = view.bgnbd, view.gamma_gamma
    return {
        "shop": shop_id, "at": at, "status": view.status, "reason": view.reason, "customers": view.customers,
        "bgnbd": {name: getattr(bg, name) if bg else None for name in ("r", "alpha", "a", "b")},
        "gamma_gamma": {name: getattr(gg, name) if gg else None for name in ("p", "q", "v")},
        "churn_bands": view.churn_bands(),
    }


def summary_lines(data: dict) -> list[str]:
    """`stagesync predict` as text."""
    lines = [f"shop {data['shop']} at {data['at']}: {data['status']}"
             + (f" ({data['reason']})" if data["reason"] else ""), f"customers with orders  {data['customers']:,}"]
    if data["status"] == STATUS_OK:
        bg, gg = data["bgnbd"], data["gamma_gamma"]
        lines.append("BG/NBD       " + ", ".join(f"{k} = {v:.4g}" for k, v in bg.items()))
        lines.append("Gamma-Gamma  " + ", ".join(f"{k} = {v:.4g}" for k, v in gg.items()))
        lines.append("churn bands  " + ", ".join(f"{k} {n:,}" for k, n in data["churn_bands"].items()))
    return lines


def prediction_fields(prediction: CustomerPrediction) -> dict:
    """A customer's fields by name, unrounded, the date as YYYY-MM-DD (export, explain, the pages)."""
    values = {name: getattr(prediction, name) for name in PREDICTED_FIELDS}
    values["next_order_date"] = prediction.next_order_date.isoformat() if prediction.next_order_date else None
    return values


def _details(status: str, reason: str | None, fitted_on: str | None, bg: BgNbdParams | None,
             gg: GammaGammaParams | None, prediction: CustomerPrediction, inputs: dict | None) -> dict:
    return {"status": status, "reason": reason, "fitted_on": fitted_on, "inputs": inputs,
            "bgnbd": None if bg is None else {k: getattr(bg, k) for k in ("r", "alpha", "a", "b")},
            "gamma_gamma": None if gg is None else {k: getattr(gg, k) for k in ("p", "q", "v")},
            **prediction_fields(prediction)}


def customer_details(view: ShopPredictionView, key: str) -> dict:
    """One customer's fields with the numbers behind them, from a whole-shop view."""
    return _details(view.status, view.reason, view.fitted_on, view.bgnbd, view.gamma_gamma, view.customer(key),
                    view.inputs_of(key))


def one_customer(store: Store, conn: Connection, shop: ShopSettings, key: str, orders, now: datetime,
                 replay: bool = False) -> dict:
    """One customer's predictions for the customer page: the stored parameters applied to their own
    valid orders (`orders`: their stored `Order`s) at `now`; replayed, a fit of the shop at `now`."""
    if replay:
        return customer_details(fit_at(store, shop, now, conn), key)
    stored = queries.load_fit(conn, shop.id)
    if stored is None:
        return _details(STATUS_INSUFFICIENT, "not fitted yet: the shop's next recompute fits it", None, None, None,
                        UNKNOWN, None)
    one = customer_inputs(((o.placed_at, o.amount) for o in orders if o.is_valid), now)
    inputs = None if one is None else {"x": one.x, "t_x": one.t_x, "T": one.T, "m": one.m}
    if stored.status != STATUS_OK:
        return _details(stored.status, stored.reason, stored.d_now, None, None, UNKNOWN, inputs)
    bg = BgNbdParams(stored.r, stored.alpha, stored.a, stored.b)
    gg = GammaGammaParams(stored.p, stored.q, stored.v)
    prediction = UNKNOWN if one is None else predict_one(bg, gg, one, prediction_day(now))
    return _details(STATUS_OK, None, stored.d_now, bg, gg, prediction, inputs)


def run_predict(store: Store, shop: ShopSettings, now: datetime, replay: bool = False) -> ShopPredictionView:
    """`stagesync predict`: with `replay` (`--at`), a fit at `now` and nothing written; otherwise
    the fit at `now` is stored as a recompute stores it (`refresh_predictions`)."""
    return fit_at(store, shop, now) if replay else refresh_predictions(store, shop, now).view
