"""Queries for the `predicted` model: a shop's valid orders as the model's inputs, each shop's
stored fit (date, status, parameters) and each customer's stored predicted fields."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from sqlalchemy import Connection, delete, insert, select

from connector.storage.schema import customer_predictions, orders, shop_predictions
from connector.storage.values import chunks, driver_rows, to_micros

if TYPE_CHECKING:
    import numpy as np

# The stored columns of a customer's prediction, in order (a stored row is a tuple of these).
PREDICTION_COLUMNS = ("p_alive", "churn_risk", "churn_band", "expected_orders_90d", "expected_orders_365d",
                      "predicted_clv_365d", "next_order_date")
PARAMETERS = ("r", "alpha", "a", "b", "p", "q", "v")


@dataclass(frozen=True)
class ShopOrders:
    """A shop's valid orders with a customer, placed before `now`: `keys[customer[i]]` placed
    order i at `placed_us[i]` (UTC micros) for `amount[i]` (the shop's currency, a float)."""

    keys: list[str]
    customer: "np.ndarray"
    placed_us: "np.ndarray"
    amount: "np.ndarray"


def valid_orders(conn: Connection, shop_id: str, now: datetime) -> ShopOrders:
    """The model's orders (docs/rules.md, 'Predictions'), read from the covering index."""
    import numpy as np  # not at import time: the webhook path imports this module, never calls this

    rows = driver_rows(conn, select(orders.c.customer_key, orders.c.placed_at, orders.c.amount)
                       .where(orders.c.shop_id == shop_id, orders.c.valid.is_(True),
                              orders.c.customer_key.is_not(None), orders.c.placed_at < to_micros(now))
                       .order_by(orders.c.customer_key))
    keys: list[str] = []
    customer = np.empty(len(rows), dtype=np.int64)
    previous = None
    for i, row in enumerate(rows):
        if row[0] != previous:
            keys.append(row[0])
            previous = row[0]
        customer[i] = len(keys) - 1
    placed = np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows))
    amount = np.fromiter((row[2] for row in rows), dtype=np.float64, count=len(rows)) / 1_000_000
    return ShopOrders(keys, customer, placed, amount)


def save_fit(conn: Connection, shop_id: str, values: Mapping) -> None:
    """Replace the shop's stored fit with `values` (the `shop_predictions` columns but shop_id)."""
    conn.execute(delete(shop_predictions).where(shop_predictions.c.shop_id == shop_id))
    conn.execute(insert(shop_predictions).values(shop_id=shop_id, **values))


def load_fit(conn: Connection, shop_id: str):
    """The shop's stored fit (a `shop_predictions` row), or None before its first recompute."""
    return conn.execute(select(shop_predictions).where(shop_predictions.c.shop_id == shop_id)).first()


def stored_predictions(conn: Connection, shop_id: str, keys: Sequence[str] | None = None) -> dict[str, tuple]:
    """customer_key -> stored fields (`PREDICTION_COLUMNS`), for every customer or for `keys`."""
    columns = [customer_predictions.c.customer_key, *(customer_predictions.c[name] for name in PREDICTION_COLUMNS)]
    base = select(*columns).where(customer_predictions.c.shop_id == shop_id)
    if keys is None:
        return {row[0]: tuple(row[1:]) for row in driver_rows(conn, base)}
    found: dict[str, tuple] = {}
    for chunk in chunks(list(keys)):
        found.update((row[0], tuple(row[1:])) for row in conn.execute(
            base.where(customer_predictions.c.customer_key.in_(list(chunk)))))
    return found


def replace_predictions(conn: Connection, shop_id: str, rows: Mapping[str, tuple], gone: Iterable[str]) -> None:
    """Store `rows` (customer_key -> fields) and delete the predictions of the `gone` customers."""
    table = customer_predictions
    for chunk in chunks(sorted(set(rows) | set(gone)), 500):
        conn.execute(delete(table).where(table.c.shop_id == shop_id, table.c.customer_key.in_(list(chunk))))
    values = [dict(shop_id=shop_id, customer_key=key, **dict(zip(PREDICTION_COLUMNS, fields)))
              for key, fields in rows.items()]
    for chunk in chunks(values, 5_000):
        conn.execute(insert(table), list(chunk))
