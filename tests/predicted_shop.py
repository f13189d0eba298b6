"""The seeded shop of the `predicted` model's tests (wiring, win-back list, browser): its
configuration, order histories (a BG/NBD shop with enough data, simulated with a fixed seed, and a
tiny one below the minimum data rule), the seeding itself, and a dump of the tables it writes."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from connector.domain.orders import Order
from connector.services.evaluation import RecomputeResult, recompute
from connector.storage.schema import customer_predictions, customers, outbox, shop_predictions, stage_changes

Spec = tuple[str, str, datetime, Decimal]  # order id, email, placed_at, total
TOKEN = "test-admin-token"  # the admin_token of TOML
TOML = """
database_url = "{url}"
admin_token = "test-admin-token"
[[shops]]
id = "acme"
platform = "shopify"
webhook_secret = "s"
currency = "EUR"
  [[shops.destinations]]
  type = "log"
  properties = {{ stage = "rfm", alive = "p_alive", risk = "churn_risk", band = "churn_band", next90 = "expected_orders_90d", next365 = "expected_orders_365d", clv = "predicted_clv_365d", next_order = "next_order_date" }}
"""


def simulated_orders(now: datetime, customers: int = 700, seed: int = 11) -> list[Spec]:
    """The BG/NBD process (purchase rate ~ Gamma(r=0.9, alpha=6 weeks), dropout after each order
    ~ Beta(0.8, 2.5)) over two years before `now`, Gamma-distributed order values: enough for a fit."""
    rng = random.Random(seed)
    specs: list[Spec] = []
    for customer in range(customers):
        rate = rng.gammavariate(0.9, 1 / 6)  # orders a week
        drop = rng.betavariate(0.8, 2.5)
        spend = rng.gammavariate(6.0, 8.0)
        placed = now - timedelta(days=rng.uniform(1, 720))
        while placed < now:
            total = Decimal(f"{rng.gammavariate(4.0, spend / 4):.2f}")
            specs.append((f"p{len(specs) + 1}", f"buyer{customer}@example.com", placed, total))
            if rng.random() < drop:
                break
            gap = rng.expovariate(rate)  # weeks
            if gap > 110:  # beyond the two years: after now anyway
                break
            placed += timedelta(weeks=gap)
    return specs


def tiny_orders(now: datetime) -> list[Spec]:
    """20 one-order customers, no repeat order, every amount zero."""
    return [(f"t{i}", f"tiny{i}@example.com", now - timedelta(days=3 + i), Decimal("0.00")) for i in range(20)]


def store_orders(store, shop_id: str, specs: list[Spec]) -> None:
    with store.transaction() as conn:
        store.upsert_orders(conn, [Order.build(shop_id=shop_id, order_id=order_id, placed_at=placed, total=total,
                                               email=email, currency="EUR")
                                   for order_id, email, placed, total in specs])


def seed(store, shop, now: datetime) -> RecomputeResult:
    """The simulated shop's orders up to `now`, stored and recomputed at `now` (predictions fitted)."""
    store_orders(store, shop.id, simulated_orders(now))
    return recompute(store, shop, now)


def table_contents(store) -> dict[str, list]:
    """Every row of the tables a recompute or a `--at` replay could write."""
    with store.read() as conn:
        return {t.name: sorted(map(tuple, conn.execute(select(t)))) for t in
                (shop_predictions, customer_predictions, customers, outbox, stage_changes)}
