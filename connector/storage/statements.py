"""The statements a webhook runs, built once per dialect with bind parameters.

Building a SQLAlchemy statement (coercing each column and value, the `excluded` namespace of an
upsert) costs the application more CPU than running it: a webhook runs about ten statements, so
they are built here once per dialect and reused, and SQLAlchemy reuses their compiled form too.
`connector.storage.store` runs them; callers pass plain values named after the bind parameters.
"""

from __future__ import annotations

import functools

from sqlalchemy import (
    BigInteger, and_, bindparam, case, cast, false, func, null, or_, select, text, true, union_all,
)
from sqlalchemy.dialects import postgresql, sqlite

from connector.storage.schema import customers, deliveries, orders, outbox, refunds, shop_figures, stage_changes

# A customer's stored state, in the order of `connector.storage.store.StoredState`'s fields.
STATE_COLUMNS = tuple(c for c in customers.c if c.name not in ("shop_id", "customer_key", "evaluated_at"))


def figures_select(shop_id, now_us, start_us):
    """Every customer's figures at `now`, from one pass over the shop's orders (GROUP BY customer).

    Arguments are values or bind parameters. Invalid orders and orders after `now` count nowhere,
    but their customers still appear (with zero figures: a prospect) so that every known customer
    is evaluated. An order whose amount is not known (another currency, no rate) counts as an
    order but its amount is 0 and it is left out of `known_orders_365d`, the AOV's divisor.
    """
    counted = and_(orders.c.valid.is_(True), orders.c.placed_at <= now_us)
    in_window = and_(counted, orders.c.placed_at > start_us)
    return select(
        orders.c.customer_key,
        _int_sum(case((in_window, 1), else_=0)).label("orders_365d"),
        _int_sum(case((in_window, orders.c.amount), else_=0)).label("amount_365d"),
        _int_sum(case((counted, 1), else_=0)).label("orders_total"),
        _int_sum(case((counted, orders.c.amount), else_=0)).label("total_spent"),
        func.min(case((counted, orders.c.placed_at))).label("first_at"),
        func.max(case((counted, orders.c.placed_at))).label("last_at"),
        func.min(case((in_window, orders.c.placed_at))).label("first_window_at"),
        _int_sum(case((and_(in_window, orders.c.amount_known.is_(True)), 1), else_=0)).label("known_orders_365d"),
    ).where(orders.c.shop_id == shop_id).group_by(orders.c.customer_key)


def _int_sum(value):
    """SUM as an integer on both engines (PostgreSQL's SUM of a bigint is a numeric)."""
    return cast(func.sum(value), BigInteger)


FIGURE_COLUMNS = len(figures_select(None, 0, 0).selected_columns)  # customer_key and the 8 figures


class Statements:
    def __init__(self, dialect: str):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        shop_id, key = bindparam("shop_id"), bindparam("customer_key")
        order_ids, keys = bindparam("order_ids", expanding=True), bindparam("customer_keys", expanding=True)

        # In one round trip, rows (order_id, stored, updated_at, customer_key, refunds_recorded):
        # the stored version and customer of some orders (stored true), and the refunds recorded
        # for them (stored false; also for orders not stored yet: a refund may come first).
        self.order_versions = union_all(
            select(orders.c.order_id, true().label("stored"), orders.c.updated_at, orders.c.customer_key,
                   cast(null(), BigInteger).label("refunds_recorded")).where(
                orders.c.shop_id == shop_id, orders.c.order_id.in_(order_ids)),
            select(refunds.c.order_id, false(), cast(null(), BigInteger), cast(null(), orders.c.customer_key.type),
                   _int_sum(refunds.c.amount)).where(
                refunds.c.shop_id == shop_id, refunds.c.order_id.in_(order_ids)).group_by(refunds.c.order_id))

        # The rule of `connector.storage.store._is_newer`, checked again on the row itself: of two
        # concurrent deliveries of one order, the older version never overwrites the newer.
        upsert = insert(orders)
        incoming = upsert.excluded.updated_at
        self.upsert_order = upsert.on_conflict_do_update(
            index_elements=[orders.c.shop_id, orders.c.order_id],
            set_={c.name: upsert.excluded[c.name] for c in orders.c if not c.primary_key},
            where=and_(incoming.is_not(None), or_(orders.c.updated_at.is_(None), incoming > orders.c.updated_at)),
        ).returning(orders.c.order_id)

        self.record_delivery = insert(deliveries).on_conflict_do_nothing().returning(deliveries.c.delivery_id)
        # Advisory locks, taken in the order of the given ids (PostgreSQL only).
        self.lock = text("SELECT pg_advisory_xact_lock(lock_id) FROM unnest(CAST(:lock_ids AS bigint[])) AS lock_id")

        self.load_state = select(*STATE_COLUMNS).where(customers.c.shop_id == shop_id, customers.c.customer_key == key)
        # Some customers' figures with their stored states (a row for each customer with orders; its
        # state NULL when never stored), and the stored states alone (for those without orders).
        some_figures = figures_select(shop_id, bindparam("now_us"), bindparam("start_us")).where(
            orders.c.customer_key.in_(keys)).subquery()
        self.customers_figures_and_states = select(some_figures, *STATE_COLUMNS).select_from(some_figures.outerjoin(
            customers, and_(customers.c.shop_id == shop_id, customers.c.customer_key == some_figures.c.customer_key)))
        self.customers_states = select(customers.c.customer_key, *STATE_COLUMNS).where(
            customers.c.shop_id == shop_id, customers.c.customer_key.in_(keys))

        save = insert(customers)
        updated = {c.name: save.excluded[c.name] for c in (*STATE_COLUMNS, customers.c.evaluated_at)}
        index = [customers.c.shop_id, customers.c.customer_key]
        self.save_state = save.on_conflict_do_update(index_elements=index, set_=updated)
        # A batch evaluated earlier than a row's last evaluation leaves that row alone.
        self.save_state_unless_newer = save.on_conflict_do_update(
            index_elements=index, set_=updated, where=customers.c.evaluated_at <= bindparam("newest_us"))

        self.add_stage_change = stage_changes.insert()

        queue = insert(outbox)
        earliest = func.min if dialect == "sqlite" else func.least
        self.enqueue = queue.on_conflict_do_update(
            index_elements=[outbox.c.shop_id, outbox.c.destination, outbox.c.customer_key],
            set_=dict(state="pending", due_at=earliest(outbox.c.due_at, queue.excluded.due_at),
                      attempts=case((outbox.c.state == "dead", 0), else_=outbox.c.attempts),
                      queued_at=queue.excluded.queued_at, generation=outbox.c.generation + 1))

        # The shop's window (all its valid orders in the 365 days to `now`: count, amount, and
        # count of those with a known amount) and, for the adaptive
        # bands, the first and last window order of each returning customer.
        window = and_(orders.c.shop_id == shop_id, orders.c.valid.is_(True),
                      orders.c.placed_at <= bindparam("now_us"), orders.c.placed_at > bindparam("start_us"))
        self.window_totals = select(func.count(), func.coalesce(func.sum(orders.c.amount), 0),
                                    _int_sum(case((orders.c.amount_known.is_(True), 1), else_=0))).where(window)
        self.returning_spans = select(
            func.max(orders.c.placed_at) - func.min(orders.c.placed_at), func.count(),
        ).where(window, orders.c.customer_key.is_not(None)).group_by(orders.c.customer_key).having(func.count() >= 2)

        self.load_shop_figures = select(shop_figures).where(shop_figures.c.shop_id == shop_id)
        save_figures = insert(shop_figures)
        self.save_shop_figures = save_figures.on_conflict_do_update(
            index_elements=[shop_figures.c.shop_id],
            set_={c.name: save_figures.excluded[c.name] for c in shop_figures.c if not c.primary_key})


@functools.cache
def for_dialect(dialect: str) -> Statements:
    return Statements(dialect)
