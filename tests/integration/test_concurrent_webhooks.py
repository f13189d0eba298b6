"""Deliveries for one customer that arrive at the same moment, on both engines.

Each delivery re-evaluates its customer inside its own transaction. When two run at once, the
second must see the first's order, or the stored state (and what is synced) misses an order
until the next daily recompute. Small shops hide a race here: every webhook rewrites the shop's
figures row, which serialises them all; so the shop is put past that threshold first.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from connector import config
from connector.services.evaluation import SMALL_SHOP_WINDOW_ORDERS
from connector.services.ingest import receive
from connector.storage.schema import customers, orders
from connector.domain.stages import Bands
from tests.conftest import NOW
from tests.fakes.senders import ShopifySender, shops_toml

ROUNDS = 10
AT_ONCE = 4


def test_orders_of_one_customer_arriving_at_once_all_count_in_its_state(store, database_url):
    shop = config.parse(shops_toml(database_url), env={}).shops["shopify"]
    with store.transaction() as conn:  # a shop whose webhooks use the stored figures (a large shop)
        store.save_shop_figures(conn, shop.id, Decimal("50000"), SMALL_SHOP_WINDOW_ORDERS, Bands(40, 90, 180, False),
                                NOW)
    sender = ShopifySender(clock=NOW)
    stale = []
    for round_ in range(ROUNDS):
        email = f"buyer{round_}@example.com"
        deliveries = [sender.order(10_000 + AT_ONCE * round_ + k, email, "20.00", NOW - timedelta(days=k + 1))
                      for k in range(AT_ONCE)]
        start = threading.Barrier(AT_ONCE)

        def deliver(delivery):
            start.wait()
            receive(store, shop, delivery.headers, delivery.body, NOW)

        threads = [threading.Thread(target=deliver, args=(d,)) for d in deliveries]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        with store.read() as conn:
            stored = conn.execute(select(customers.c.orders_total).where(customers.c.customer_key == email)).scalar()
            real = conn.execute(select(func.count()).select_from(orders).where(orders.c.customer_key == email)).scalar()
        if stored != real:
            stale.append((email, stored, real))
    assert not stale, f"{len(stale)} of {ROUNDS} customers' states miss orders (email, stored, real): {stale[:3]}"

