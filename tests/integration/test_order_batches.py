"""Order deliveries that arrive together share their statements (connector.services.ingest.write_order_deliveries):
the result must be what handling them one at a time gives, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from connector.services import evaluation
from connector.domain.inbound import Inbound, UpsertOrder
from connector.services.ingest import Receipt, Write, write_order_deliveries
from connector.domain.orders import Order
from connector.storage.schema import customers, deliveries, orders, outbox, stage_changes
from tests.conftest import NOW


def shop_order(shop_id, order_id, email, updated_hours_ago, total="50.00", days_ago=3.0) -> Order:
    return Order.build(shop_id=shop_id, order_id=order_id, placed_at=NOW - timedelta(days=days_ago),
                       total=Decimal(total), email=email, updated_at=NOW - timedelta(hours=updated_hours_ago))


def seed(store, shop):
    """Before the deliveries: an order of bob's that moves to ann, eve's only order that moves to
    dora, a newer version of carl's order, a refund recorded before its order, and a delivery
    already seen."""
    with store.transaction() as conn:
        store.store_orders(conn, [shop_order(shop.id, "5", "bob@example.com", 10),
                                  shop_order(shop.id, "6", "carl@example.com", 1, total="70.00"),
                                  shop_order(shop.id, "9", "eve@example.com", 10)])
        store.record_refund(conn, shop.id, "7", "r-7", Decimal("20.00"), None)
        store.record_delivery(conn, shop.id, "d-old", "orders/create", NOW)
        evaluation.evaluate_customers(store, conn, shop, ["bob@example.com", "carl@example.com", "eve@example.com"],
                                      NOW)


def deliveries_of(store, shop):
    """In arrival order: repeats of an order id and of a delivery id, a delivery without id, an
    older version, re-assigned orders, an order whose refund came first, and a known delivery."""
    made = [
        ("d1", shop_order(shop.id, "1", "jane@example.com", 5)),
        ("d2", shop_order(shop.id, "2", "bob@example.com", 5)),
        ("d3", shop_order(shop.id, "1", "jane@example.com", 1, total="80.00")),  # newer version of 1
        ("d4", shop_order(shop.id, "3", "jane@example.com", 5, days_ago=100)),
        ("d2", shop_order(shop.id, "2", "bob@example.com", 5)),  # the same delivery again
        (None, shop_order(shop.id, "4", "ann@example.com", 5)),
        ("d5", shop_order(shop.id, "5", "ann@example.com", 2)),  # bob's order, now ann's
        ("d6", shop_order(shop.id, "6", "carl@example.com", 3, total="10.00")),  # older than the stored one
        ("d7", shop_order(shop.id, "1", "jane@example.com", 9, total="5.00")),  # older than d1 and d3
        ("d8", shop_order(shop.id, "7", "dora@example.com", 4, total="60.00")),  # 20.00 refunded already
        ("d-old", shop_order(shop.id, "8", "dora@example.com", 4)),
        ("d9", shop_order(shop.id, "9", "dora@example.com", 2)),  # eve's only order: eve keeps a state, no order
    ]
    return [Write(store, shop, Inbound("orders/updated", delivery_id, (UpsertOrder(order),)), NOW)
            for delivery_id, order in made]


def stored(store, shop_id):
    """Every row the deliveries write, without the shop id."""
    def rows(table, *columns):
        query = select(*columns).where(table.c.shop_id == shop_id).order_by(*columns)
        return [tuple(row) for row in conn.execute(query)]

    with store.read() as conn:
        return {
            "orders": rows(orders, *(c for c in orders.c if c.name != "shop_id")),
            "customers": rows(customers, *(c for c in customers.c if c.name != "shop_id")),
            "outbox": rows(outbox, outbox.c.destination, outbox.c.customer_key, outbox.c.state),
            "deliveries": rows(deliveries, deliveries.c.delivery_id),
        }


def test_a_batch_stores_and_answers_what_one_delivery_at_a_time_does(store, shop):
    alone_shop = dataclasses.replace(shop, id="alone")
    for each in (shop, alone_shop):
        seed(store, each)

    with store.transaction() as conn:
        batch_receipts = write_order_deliveries(conn, deliveries_of(store, shop))
    alone_receipts = []
    for write in deliveries_of(store, alone_shop):
        with store.transaction() as conn:
            alone_receipts.append(write(conn))

    assert batch_receipts == alone_receipts
    assert [r.status for r in batch_receipts] == ["accepted"] * 4 + ["duplicate"] + ["accepted"] * 5 + [
        "duplicate", "accepted"]
    assert stored(store, shop.id) == stored(store, alone_shop.id)
    with store.read() as conn:
        jane = store.load_state(conn, shop.id, "jane@example.com")
        bob = store.load_state(conn, shop.id, "bob@example.com")
        dora = store.load_state(conn, shop.id, "dora@example.com")
        eve = store.load_state(conn, shop.id, "eve@example.com")
    assert (jane.orders_total, jane.total_spent) == (2, 130_000_000)  # d3's version of 1, not d1's or d7's
    assert bob.orders_total == 1  # order 5 went to ann
    assert dora.total_spent == 40_000_000 + 50_000_000  # the refund recorded first still counts; and eve's order
    assert (eve.orders_total, eve.rfm) == (0, "prospect")
    with store.read() as conn:  # her history says where she came from: her stored state was read
        moves = conn.execute(select(stage_changes.c.from_stage, stage_changes.c.to_stage).where(
            stage_changes.c.shop_id == shop.id, stage_changes.c.customer_key == "eve@example.com",
            stage_changes.c.model == "rfm").order_by(stage_changes.c.id)).all()
    assert [tuple(m) for m in moves] == [(None, "recent"), ("recent", "prospect")]
    # What the webhooks stored is what a from-scratch evaluation of the shop gives.
    assert evaluation.recompute(store, shop, NOW).written == 0


def test_store_orders_in_one_batch_equals_one_at_a_time(store, shop):
    def batch(shop_id):
        return [shop_order(shop_id, "1", "jane@example.com", 2), shop_order(shop_id, "5", "ann@example.com", 2),
                shop_order(shop_id, "6", "carl@example.com", 3), shop_order(shop_id, "7", "dora@example.com", 4)]

    for shop_id in ("together", "alone"):
        seed(store, dataclasses.replace(shop, id=shop_id))
    with store.transaction() as conn:
        together = store.store_orders(conn, batch("together"))
        alone = [store.store_order(conn, order) for order in batch("alone")]
    assert together == alone
    assert [(w.changed, w.previous_key) for w in together] == [
        (True, None), (True, "bob@example.com"), (False, "carl@example.com"), (True, None)]
    assert stored(store, "together")["orders"] == stored(store, "alone")["orders"]


def test_a_batch_of_one_shop_leaves_other_shops_alone(store, shop):
    with store.transaction() as conn:
        receipts = write_order_deliveries(conn, deliveries_of(store, shop)[:2])
    assert receipts == [Receipt("accepted", "orders/updated")] * 2
    assert stored(store, "elsewhere") == {"orders": [], "customers": [], "outbox": [], "deliveries": []}


def test_evaluate_customers_stores_what_recompute_would(store, shop):
    with store.transaction() as conn:
        store.store_orders(conn, [shop_order(shop.id, str(n), f"c{n % 7}@example.com", 1, days_ago=n * 11)
                                  for n in range(40)])
        store.record_delivery(conn, shop.id, "unrelated", "orders/create", NOW)
        changed = evaluation.evaluate_customers(store, conn, shop, [f"c{n}@example.com" for n in range(9)], NOW)
    assert changed == {f"c{n}@example.com" for n in range(9)}  # c7 and c8: no order, so prospects
    assert evaluation.recompute(store, shop, NOW).written == 0
