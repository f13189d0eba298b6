"""Storage on a real SQLite file and a real PostgreSQL server (every test runs on both)."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from connector.services import evaluation
from connector.domain.orders import Order
from connector.storage.schema import customers, orders, outbox, stage_changes
from connector.domain.stages import customer_figures
from connector.storage.engine import HEAD_REVISION
from connector.storage.store import Store
from tests.conftest import NOW


def order(order_id, days_ago=1.0, total="50.00", email="jane@example.com", updated=None, **kw) -> Order:
    return Order.build(shop_id="acme", order_id=order_id, placed_at=NOW - timedelta(days=days_ago),
                       total=Decimal(total), email=email,
                       updated_at=None if updated is None else NOW - timedelta(hours=updated), **kw)


def count(store, table, **where) -> int:
    with store.read() as conn:
        query = select(func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        return conn.execute(query).scalar_one()


def test_migrations_bring_a_new_database_to_head_and_are_idempotent(database_url):
    store = Store.open(database_url)
    store.migrate()
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD_REVISION
    store.close()


def test_replaying_the_same_order_changes_nothing(store):
    with store.transaction() as conn:
        assert store.upsert_order(conn, order("1", updated=5))
        assert not store.upsert_order(conn, order("1", updated=5))
    assert count(store, orders) == 1


def test_an_older_version_never_overwrites_a_newer_one(store):
    newer = order("1", total="80.00", updated=1)
    older = order("1", total="50.00", updated=3)
    with store.transaction() as conn:
        store.upsert_order(conn, newer)
        assert not store.upsert_order(conn, older)
        assert store.customer_figures(conn, "acme", "jane@example.com", NOW).total_spent == Decimal("80")


def test_a_bulk_load_inserts_new_orders_and_rewrites_only_newer_versions(store):
    with store.transaction() as conn:
        store.upsert_orders(conn, [order("1", total="10.00", updated=5), order("2", total="20.00", updated=1)])
        changed = store.upsert_orders(conn, [
            order("1", total="80.00", updated=2),  # newer than stored: rewritten
            order("2", total="99.00", updated=3),  # older than stored: left alone
            order("3", total="30.00", updated=1),  # new
        ])
        totals = dict(conn.execute(select(orders.c.order_id, orders.c.total).order_by(orders.c.order_id)).all())
    assert changed == 2
    assert totals == {"1": 80_000_000, "2": 20_000_000, "3": 30_000_000}


def test_a_cancellation_that_arrives_before_the_creation_still_ends_cancelled(store):
    with store.transaction() as conn:
        store.upsert_order(conn, order("1", updated=1, status="cancelled"))
        store.upsert_order(conn, order("1", updated=2))  # the creation, delivered late
        assert store.customer_figures(conn, "acme", "jane@example.com", NOW).orders_total == 0


def test_a_refund_is_recorded_once_and_lowers_the_amount(store):
    with store.transaction() as conn:
        store.upsert_order(conn, order("1", total="100.00", updated=5))
        assert store.record_refund(conn, "acme", "1", "r1", Decimal("30"), NOW)[0]
        assert not store.record_refund(conn, "acme", "1", "r1", Decimal("30"), NOW)[0]
        figures = store.customer_figures(conn, "acme", "jane@example.com", NOW)
        assert figures.total_spent == Decimal("70")
        # A later version of the order that does not list the refund yet keeps it.
        store.upsert_order(conn, order("1", total="100.00", updated=1))
        assert store.customer_figures(conn, "acme", "jane@example.com", NOW).total_spent == Decimal("70")
        store.record_refund(conn, "acme", "1", "r2", Decimal("70"), NOW)
        assert store.customer_figures(conn, "acme", "jane@example.com", NOW).orders_total == 0


def test_a_deleted_order_stops_counting(store):
    with store.transaction() as conn:
        store.upsert_order(conn, order("1", updated=5))
        assert store.delete_order(conn, "acme", "1", NOW) == "jane@example.com"
        assert store.customer_figures(conn, "acme", "jane@example.com", NOW).orders_total == 0
        assert store.delete_order(conn, "acme", "unknown", NOW) is None


def test_a_delivery_id_is_new_only_once(store):
    with store.transaction() as conn:
        assert store.record_delivery(conn, "acme", "d-1", "orders/create", NOW)
        assert not store.record_delivery(conn, "acme", "d-1", "orders/create", NOW)
        assert store.record_delivery(conn, "other", "d-1", "orders/create", NOW)


def test_database_figures_equal_the_pure_figures_for_every_customer(store):
    rng = random.Random(3)
    made = []
    for n in range(600):
        made.append(Order.build(
            shop_id="acme", order_id=n, placed_at=NOW - timedelta(seconds=rng.randint(-30 * 86400, 800 * 86400)),
            total=Decimal(rng.randint(0, 30000)) / 100, email=f"c{rng.randint(1, 60)}@example.com",
            status=rng.choice(["placed"] * 8 + ["cancelled", "refunded"]),
            refunded=Decimal(rng.choice([0, 0, 0, 5])), test=rng.random() < 0.05,
        ))
    with store.transaction() as conn:
        store.upsert_orders(conn, made)
    with store.read() as conn:
        rows = {r.customer_key: r.figures for r in store.customer_rows(conn, "acme", NOW)}
    for key in {o.customer_key for o in made}:
        assert rows[key] == customer_figures([o for o in made if o.customer_key == key], NOW), key


def test_window_edges_are_exact_to_the_second_in_sql(store):
    with store.transaction() as conn:
        store.upsert_orders(conn, [
            order("in", email="a@example.com", days_ago=365 - 1 / 86400),
            order("edge", email="b@example.com", days_ago=365),
            order("out", email="c@example.com", days_ago=365 + 1 / 86400),
        ])
        f = {k: store.customer_figures(conn, "acme", k, NOW).orders_365d for k in
             ("a@example.com", "b@example.com", "c@example.com")}
    assert f == {"a@example.com": 1, "b@example.com": 0, "c@example.com": 0}


def test_recompute_writes_only_what_changed_and_keeps_the_since_date(store, shop):
    with store.transaction() as conn:
        store.upsert_orders(conn, [order("1", days_ago=10),
                                   order("2", days_ago=5, total="80.00", email="bob@example.com")])
    first = evaluation.recompute(store, shop, NOW)
    assert (first.customers, first.written, first.stage_changes) == (2, 2, 4)
    again = evaluation.recompute(store, shop, NOW)
    assert (again.written, again.stage_changes, again.queued) == (0, 0, 0)
    # Five weeks later neither is recent; Jane (45 days, AOV 50 < shop AOV 65) needs nurturing.
    later = evaluation.recompute(store, shop, NOW + timedelta(days=35))
    assert later.written == 2
    with store.read() as conn:
        state = store.load_state(conn, "acme", "jane@example.com")
    assert (state.rfm, state.rfm_since) == ("needs_nurturing", (NOW + timedelta(days=35)).date().isoformat())
    assert state.phases_since == NOW.date().isoformat()  # still "conversion" since the first evaluation
    assert count(store, stage_changes, model="rfm") == 4


def test_recompute_queues_each_changed_customer_once_per_destination(store, shop):
    with store.transaction() as conn:
        store.upsert_orders(conn, [order("1"), order("2", email="bob@example.com")])
    evaluation.recompute(store, shop, NOW)
    evaluation.recompute(store, shop, NOW + timedelta(days=60))
    assert count(store, outbox) == 2  # coalesced: still one pending row per contact
    with store.read() as conn:
        assert store.outbox_depth(conn, "acme") == 2


def test_evaluate_customers_stores_and_queues_what_changed(store, shop):
    with store.transaction() as conn:
        store.upsert_order(conn, order("1", updated=1))
        changed = evaluation.evaluate_customers(store, conn, shop, ["jane@example.com"], NOW)
        assert changed == {"jane@example.com"}
        state = store.load_state(conn, "acme", "jane@example.com")
        assert (state.rfm, state.phases) == ("recent", "conversion")
        assert evaluation.evaluate_customers(store, conn, shop, ["jane@example.com"], NOW) == set()
    assert count(store, customers) == 1 and count(store, outbox) == 1


def test_redacting_a_customer_removes_orders_state_and_history(store, shop):
    with store.transaction() as conn:
        store.upsert_orders(conn, [order("1"), order("2", email="bob@example.com")])
    evaluation.recompute(store, shop, NOW)
    with store.transaction() as conn:
        assert store.redact_customer(conn, "acme", ["jane@example.com"], ["1"]) == {"jane@example.com"}
    assert count(store, orders) == 1 and count(store, customers) == 1
    assert count(store, stage_changes, customer_key="jane@example.com") == 0
    with store.transaction() as conn:
        store.redact_shop(conn, "acme")
    assert count(store, orders) == count(store, customers) == count(store, outbox) == 0


def test_a_recompute_at_a_future_instant_queues_the_sync_for_now(store, shop):
    from datetime import datetime, timezone

    from connector.storage.values import to_micros

    wall_clock = datetime.now(timezone.utc)
    with store.transaction() as conn:
        store.upsert_order(conn, order("1", days_ago=-1000))  # placed "now" relative to a far future instant
    evaluation.recompute(store, shop, wall_clock + timedelta(days=40))
    with store.read() as conn:
        due = conn.execute(select(outbox.c.due_at)).scalar_one()
    assert due <= to_micros(datetime.now(timezone.utc))


def test_an_existing_database_is_upgraded_in_place_keeping_its_orders(tmp_path):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from connector.storage.engine import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:  # a database as the first release left it
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(text("INSERT INTO orders (shop_id, order_id, placed_at, total, refunded, status, test, valid, "
                          "amount) VALUES ('acme', '1', 0, 5000000, 0, 'placed', 0, 1, 5000000)"))
        conn.execute(text("INSERT INTO data_requests (shop_id, customer_key, request_id, received_at) "
                          "VALUES ('acme', 'jane@example.com', '9', 0)"))
    engine.dispose()
    store = Store.open(url)
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD_REVISION
        assert conn.exec_driver_sql("SELECT amount FROM orders").scalar() == 5000000
        assert "ix_orders_figures" in {r[1] for r in conn.exec_driver_sql("PRAGMA index_list('orders')")}
        assert conn.exec_driver_sql("SELECT email, phone, request_id FROM data_requests").one() == \
            ("jane@example.com", None, "9")  # 0010: the identity a request named, in its own column
    store.close()
