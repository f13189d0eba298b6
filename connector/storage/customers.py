"""Queries on customers: their figures aggregated from orders, locks, redaction, and lookups."""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Iterable, Iterator, Sequence

from sqlalchemy import Connection, delete, or_, select, update

from connector.domain.stages import CustomerFigures
from connector.storage.schema import (
    customer_predictions, customer_refs, customers, data_requests, deliveries, orders, outbox, refunds, shop_figures,
    shop_predictions, stage_changes, sync_cursors, synced,
)
from connector.storage.statements import FIGURE_COLUMNS, figures_select
from connector.storage.values import (
    CustomerRow, StoredState, chunks, driver_rows, figures_from_row, micros_to_money, window_params,
)

# PostgreSQL, for the whole-shop aggregation's transaction: hash the groups in memory (85 MB for
# 200,000 customers; a hash may take work_mem x hash_mem_multiplier 2) rather than sort on disk, in
# one process (on 2 cores three partial hashes and their merge took longer and three times the
# memory), without JIT (0.2 s to compile, every run). See bench/RESULTS.md.
AGGREGATION_SETTINGS = ("work_mem = '64MB'", "max_parallel_workers_per_gather = 0", "jit = off")


class CustomerQueries:
    """The customer methods of `Store` (a mixin: `self` is the Store)."""

    def lock_customers(self, conn: Connection, shop_id: str, keys: Iterable[str]) -> None:
        """Hold these customers until the transaction ends, so that two deliveries for one customer
        evaluate it one after the other, the second seeing the first's order. PostgreSQL takes
        transaction-scoped advisory locks (in a fixed order: no deadlock); SQLite's writers are
        serialised already (BEGIN IMMEDIATE)."""
        if self.dialect != "postgresql":
            return
        ids = sorted(int.from_bytes(hashlib.blake2b(f"{shop_id}\x00{key}".encode(), digest_size=8).digest(), "big",
                                    signed=True) for key in set(keys))
        if ids:
            conn.execute(self.sql.lock, dict(lock_ids=ids))

    def redact_customer(self, conn: Connection, shop_id: str, identities: Iterable[str],
                        order_ids: Sequence[str] = (), customer_id: str | None = None) -> set[str]:
        """Forget a customer by every identity a redaction names: `identities` (their normalised
        email and E.164 phone: each a customer key), the platform's `customer_id` and `order_ids`.

        The orders keyed by an identity, carrying the customer id or listed are deleted with their
        refunds (and the spellings they hold), and every customer key they belonged to is forgotten
        with it: state, stage history, predictions, data requests. Another customer's order that
        only mentions the phone keeps counting, without the phone. Returns the customer keys that
        had anything stored; their outbox entries stay (the caller queues them) so that the sync
        worker clears the properties it wrote and then forgets them too.
        """
        keys = {key for key in identities if key}
        found = self.orders_named(conn, shop_id, keys, customer_id, order_ids)
        for chunk in chunks(sorted(found), 500):
            conn.execute(delete(refunds).where(refunds.c.shop_id == shop_id, refunds.c.order_id.in_(chunk)))
            conn.execute(delete(orders).where(orders.c.shop_id == shop_id, orders.c.order_id.in_(chunk)))
        phones = sorted(key for key in keys if "@" not in key)
        if phones:  # an order keyed by another customer's email that carries this phone: erase the phone
            conn.execute(update(orders).where(orders.c.shop_id == shop_id, orders.c.phone.in_(phones))
                         .values(phone=None))
        keys.update(key for key in found.values() if key)
        stored = {key for key in found.values() if key}
        if customer_id:  # a data request that named only the platform's customer id
            conn.execute(delete(data_requests).where(data_requests.c.shop_id == shop_id,
                                                     data_requests.c.customer_id == customer_id))
        for chunk in chunks(sorted(keys), 500):
            for table in (customers, synced, outbox):  # an identity never stored needs no clearing
                stored.update(conn.execute(select(table.c.customer_key).where(
                    table.c.shop_id == shop_id, table.c.customer_key.in_(chunk))).scalars())
            for table in (customers, stage_changes, data_requests, customer_predictions, customer_refs):
                conn.execute(delete(table).where(table.c.shop_id == shop_id, table.c.customer_key.in_(chunk)))
        return stored

    def redact_shop(self, conn: Connection, shop_id: str) -> None:
        for table in (orders, refunds, customers, stage_changes, shop_figures, deliveries, data_requests,
                      outbox, synced, sync_cursors, shop_predictions, customer_predictions, customer_refs):
            conn.execute(delete(table).where(table.c.shop_id == shop_id))

    def customer_rows(self, conn: Connection, shop_id: str, now: datetime) -> Iterator[CustomerRow]:
        """Every customer's figures at `now`, the customer-less group (key None) included."""
        for row in self.figure_rows(conn, shop_id, now):
            yield CustomerRow(row[0], figures_from_row(row))

    def figure_rows(self, conn: Connection, shop_id: str, now: datetime) -> list[tuple]:
        """What `customer_rows` gives, as the store's integers (amounts in millionths, instants in
        micros): `(customer_key, orders_365d, amount_365d, orders_total, total_spent, first_at,
        last_at, first_window_at, known_orders_365d)` tuples, the customer-less group (key None) included. On
        PostgreSQL with the `AGGREGATION_SETTINGS` of the connection's transaction."""
        if self.dialect == "postgresql":
            for setting in AGGREGATION_SETTINGS:
                conn.exec_driver_sql(f"SET LOCAL {setting}")
        window = window_params(shop_id, now)
        return driver_rows(conn, figures_select(shop_id, window["now_us"], window["start_us"]))

    def customer_figures(self, conn: Connection, shop_id: str, key: str, now: datetime) -> CustomerFigures | None:
        """One customer's figures at `now`; None when no order of theirs is stored."""
        return self.customer_figures_and_state(conn, shop_id, key, now)[0]

    def customer_figures_and_state(self, conn: Connection, shop_id: str, key: str,
                                   now: datetime) -> tuple[CustomerFigures | None, StoredState | None]:
        """`customer_figures` and `load_state` together."""
        figures, states = self.figures_and_states(conn, shop_id, [key], now)
        row, state = figures.get(key), states.get(key)
        return None if row is None else figures_from_row(row), None if state is None else StoredState(*state)

    def figures_and_states(self, conn: Connection, shop_id: str, keys: Sequence[str],
                           now: datetime) -> tuple[dict[str, tuple], dict[str, tuple]]:
        """Some customers' `figure_rows` (by key, for those with orders) and stored states (by key,
        as `state_rows` gives them, for those stored)."""
        params = dict(window_params(shop_id, now), customer_keys=list(keys))
        figures: dict[str, tuple] = {}
        states: dict[str, tuple] = {}
        for row in conn.execute(self.sql.customers_figures_and_states, params):
            figures[row[0]] = tuple(row[:FIGURE_COLUMNS])
            if row[FIGURE_COLUMNS] is not None:
                states[row[0]] = tuple(row[FIGURE_COLUMNS:])
        without_orders = [key for key in keys if key not in figures]
        if without_orders:  # a customer whose only order went to another: the state alone
            params["customer_keys"] = without_orders
            states.update((row[0], tuple(row[1:])) for row in conn.execute(self.sql.customers_states, params))
        return figures, states

    def window_totals(self, conn: Connection, shop_id: str, now: datetime) -> tuple[Decimal, int, int]:
        """(sum of known amounts, number, number with a known amount) of the shop's window orders at
        `now`, customer-less ones included."""
        orders_in_window, amount, known = conn.execute(self.sql.window_totals, window_params(shop_id, now)).one()
        return micros_to_money(amount), orders_in_window, known or 0

    def returning_spans(self, conn: Connection, shop_id: str, now: datetime) -> list[tuple[int, int]]:
        """(micros from first to last window order, window orders) of each customer with 2 or more."""
        return [tuple(row) for row in conn.execute(self.sql.returning_spans, window_params(shop_id, now))]

    def orders_named(self, conn: Connection, shop_id: str, keys: Iterable[str] = (), customer_id: str | None = None,
                     order_ids: Sequence[str] = ()) -> dict[str, str | None]:
        """order_id -> customer key of the orders keyed by one of `keys`, carrying the platform's
        `customer_id`, or listed in `order_ids`: every order a privacy request names."""
        found: dict[str, str | None] = {}
        named = [orders.c.customer_key.in_(sorted(keys))] if keys else []
        if customer_id:
            named.append(orders.c.customer_id == customer_id)
        wanted = [or_(*named)] if named else []
        wanted += [orders.c.order_id.in_(chunk) for chunk in chunks(sorted(set(order_ids)), 500)]
        for condition in wanted:
            found.update((row.order_id, row.customer_key) for row in conn.execute(
                select(orders.c.order_id, orders.c.customer_key).where(orders.c.shop_id == shop_id, condition)))
        return found

    def known_customer(self, conn: Connection, shop_id: str, key: str) -> bool:
        return conn.execute(select(customers.c.customer_key).where(
            customers.c.shop_id == shop_id, customers.c.customer_key == key)).first() is not None

    def customer_keys_without_orders(self, conn: Connection, shop_id: str) -> list[str]:
        """Customers in the state table with no order stored (seen through a sign-up, say)."""
        has_orders = select(orders.c.customer_key).where(
            orders.c.shop_id == shop_id, orders.c.customer_key == customers.c.customer_key).exists()
        return list(conn.execute(select(customers.c.customer_key).where(
            customers.c.shop_id == shop_id, ~has_orders)).scalars())

