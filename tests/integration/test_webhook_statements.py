"""The webhook's hot path (connector.storage.statements, run by connector.storage.store), on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from connector.services import evaluation
from connector.domain.orders import Order
from connector.storage.schema import orders
from connector.domain.stages import Bands
from connector.storage.statements import STATE_COLUMNS
from connector.storage.orders import order_values, OrderWrite
from connector.storage.store import Store
from connector.storage.values import StoredState
from tests.conftest import NOW


def order(order_id, email="jane@example.com", days_ago=1.0, updated=None, total="50.00", **kw) -> Order:
    return Order.build(shop_id="acme", order_id=order_id, placed_at=NOW - timedelta(days=days_ago),
                       total=Decimal(total), email=email,
                       updated_at=None if updated is None else NOW - timedelta(hours=updated), **kw)


def test_state_columns_are_the_stored_state_fields_in_order():
    assert [c.name for c in STATE_COLUMNS] == [f.name for f in dataclasses.fields(StoredState)]


def test_the_upsert_itself_never_lets_an_older_version_overwrite_a_newer_one(store):
    """Two deliveries of one order racing: both read "not stored", the newer commits first. The
    older one's upsert must then change nothing, whatever its caller read before."""
    with store.transaction() as conn:
        assert store.store_order(conn, order("1", total="80.00", updated=1)).changed
        older = order_values(order("1", total="10.00", updated=5))
        assert conn.execute(store.sql.upsert_order, older).first() is None
        assert conn.execute(store.sql.upsert_order, order_values(order("1", total="10.00"))).first() is None
        total = conn.execute(select(orders.c.total).where(orders.c.order_id == "1")).scalar_one()
    assert total == 80_000_000


def test_store_order_names_the_customer_the_order_belonged_to(store):
    with store.transaction() as conn:
        assert store.store_order(conn, order("1", updated=5)) == OrderWrite(True, None)
        moved = store.store_order(conn, order("1", email="bob@example.com", updated=1))
        assert moved == OrderWrite(True, "jane@example.com")
        replay = store.store_order(conn, order("1", email="bob@example.com", updated=1))
        assert replay == OrderWrite(False, "bob@example.com")


def test_a_refund_recorded_before_its_order_still_counts(store):
    with store.transaction() as conn:
        store.record_refund(conn, "acme", "1", "r-1", Decimal("20.00"), None)
        store.store_order(conn, order("1", updated=1))
        figures = store.customer_figures(conn, "acme", "jane@example.com", NOW)
    assert figures.total_spent == Decimal("30")


def test_customer_figures_and_state_equal_the_whole_shop_figures_and_the_stored_state(store, shop):
    with store.transaction() as conn:
        store.store_order(conn, order("1", updated=1))
        store.store_order(conn, order("2", email="bob@example.com", updated=1))
        evaluation.evaluate_customers(store, conn, shop, ["jane@example.com"], NOW)
        store.save_states(conn, "acme", {"ann@example.com": store.load_state(conn, "acme", "jane@example.com")}, NOW)
        whole_shop = {r.customer_key: r.figures for r in store.customer_rows(conn, "acme", NOW)}
        for key in ("jane@example.com", "bob@example.com", "ann@example.com", "nobody@example.com"):
            expected = (whole_shop.get(key), store.load_state(conn, "acme", key))
            assert store.customer_figures_and_state(conn, "acme", key, NOW) == expected, key
    assert expected == (None, None)


@pytest.mark.parametrize("returning", [99, 100, 160])
def test_a_small_shops_figures_from_window_queries_equal_those_from_every_customer(store, shop, returning):
    """The webhook of a small shop refreshes its figures with two window queries; they must equal
    the figures the whole-shop evaluation builds from every customer's figures."""
    rng = random.Random(returning)
    made = [order(f"r{c}-{n}", email=f"c{c}@example.com", days_ago=rng.uniform(0, 360),
                  total=f"{rng.randint(0, 20000) / 100:.2f}") for c in range(returning) for n in range(3)]
    made += [order(f"o{n}", email=f"once{n}@example.com", days_ago=rng.uniform(0, 400),
                   status=rng.choice(["placed", "placed", "cancelled"])) for n in range(50)]
    made += [order(f"anon{n}", email=None, days_ago=rng.uniform(0, 400)) for n in range(10)]
    with store.transaction() as conn:
        store.upsert_orders(conn, made)
        quick = evaluation.current_shop_figures(store, conn, shop, NOW)
        rows = [(r.customer_key, r.figures) for r in store.customer_rows(conn, "acme", NOW)]
    assert quick == evaluation.build_shop_figures(rows, shop)
    assert quick.bands.adaptive is (returning >= 100)


def test_stored_shop_figures_are_reused_for_max_age_and_dropped_when_saved(store, database_url):
    other = Store.open(database_url, migrate=False)  # another process: the daily recompute
    try:
        with store.transaction() as conn:
            store.save_shop_figures(conn, "acme", Decimal("100"), 6_000, Bands(40, 90, 180), NOW)
        with store.read() as conn:
            assert store.load_shop_figures(conn, "acme", max_age=60)[1] == 6_000
        with other.transaction() as conn:
            other.save_shop_figures(conn, "acme", Decimal("200"), 7_000, Bands(30, 70, 140, True), NOW)
        with store.read() as conn:
            assert store.load_shop_figures(conn, "acme", max_age=60)[1] == 6_000  # within a minute: reused
            assert store.load_shop_figures(conn, "acme")[1] == 7_000  # max_age 0: read again
        with store.transaction() as conn:
            store.save_shop_figures(conn, "acme", Decimal("300"), 8_000, Bands(40, 90, 180), NOW)
        with store.read() as conn:
            assert store.load_shop_figures(conn, "acme", max_age=60)[1] == 8_000  # its own save: never stale
    finally:
        other.close()
