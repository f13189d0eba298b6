"""Storage: engines, migrations and every query, for SQLite and PostgreSQL alike.

`Store.open(url)` connects and upgrades the schema in place (Alembic). Writes go through
`store.transaction()`; every function that writes takes that connection, so a caller composes
several writes into one atomic commit (a webhook's order, stages and outbox entry together).
Conversions between domain values (datetime, Decimal) and stored integers happen here only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from sqlalchemy import Connection, Engine, Executable, create_engine, delete, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from connector import statements
from connector.errors import StorageUnavailableError
from connector.group_commit import GroupCommit
from connector.orders import Order
from connector.schema import (
    customers, data_requests, deliveries, orders, outbox, refunds, shop_figures, stage_changes, sync_cursors, synced,
)
from connector.stages import WINDOW, Bands, CustomerFigures
from connector.statements import FIGURE_COLUMNS, STATE_COLUMNS, figures_select

HEAD_REVISION = "0004"
MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
GROUP_COMMIT_LANES = 2  # PostgreSQL: webhook transactions in flight per process (connector.group_commit)
# PostgreSQL, for the whole-shop aggregation's transaction: hash the groups in memory (85 MB for
# 200,000 customers; a hash may take work_mem x hash_mem_multiplier 2) rather than sort on disk, in
# one process (on 2 cores three partial hashes and their merge took longer and three times the
# memory), without JIT (0.2 s to compile, every run). See bench/RESULTS.md.
AGGREGATION_SETTINGS = ("work_mem = '64MB'", "max_parallel_workers_per_gather = 0", "jit = off")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = Decimal(1_000_000)
WINDOW_MICROS = int(WINDOW.total_seconds()) * 1_000_000


# --- conversions at the boundary ---------------------------------------------------------------

def to_micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


def money_to_micros(amount: Decimal) -> int:
    return int((amount * _MICRO).to_integral_value())


def micros_to_money(value: int | None) -> Decimal:
    return Decimal(value or 0).scaleb(-6)


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3, the driver stagesync ships with."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


# --- rows --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CustomerRow:
    """One customer's figures as aggregated by the database at some instant."""

    customer_key: str | None
    figures: CustomerFigures


@dataclass(frozen=True, slots=True)
class StoredState:
    rfm: str
    rfm_since: str
    phases: str
    phases_since: str
    orders_365d: int
    orders_total: int
    amount_365d: int
    total_spent: int
    first_order_at: int | None
    last_order_at: int | None

    def columns(self) -> dict:
        """The state as the `customers` columns that hold it (`dataclasses.asdict` would deep-copy
        each value: 7% of the storage time of a group of 20 webhooks, profiled)."""
        return {name: getattr(self, name) for name in self.__slots__}


def state_of(figures: CustomerFigures, rfm: str, phases: str, rfm_since: str, phases_since: str) -> StoredState:
    return StoredState(
        rfm=rfm, rfm_since=rfm_since, phases=phases, phases_since=phases_since,
        orders_365d=figures.orders_365d, orders_total=figures.orders_total,
        amount_365d=money_to_micros(figures.amount_365d), total_spent=money_to_micros(figures.total_spent),
        first_order_at=None if figures.first_at is None else to_micros(figures.first_at),
        last_order_at=None if figures.last_at is None else to_micros(figures.last_at),
    )


def figures_of(state: StoredState, first_window_at: datetime | None = None) -> CustomerFigures:
    return CustomerFigures(
        orders_365d=state.orders_365d, amount_365d=micros_to_money(state.amount_365d),
        orders_total=state.orders_total, total_spent=micros_to_money(state.total_spent),
        first_at=from_micros(state.first_order_at), last_at=from_micros(state.last_order_at),
        first_window_at=first_window_at,
    )


@dataclass(frozen=True, slots=True)
class OrderWrite:
    """What `Store.store_order` did: whether it changed anything, and the customer the order
    belonged to before (None when it was not stored): a re-assigned order touches both."""

    changed: bool
    previous_key: str | None


# --- the store ---------------------------------------------------------------------------------

class Store:
    """A database of one stagesync installation (all shops)."""

    def __init__(self, engine: Engine, reader: Engine | None = None):
        self.engine = engine
        self.reader = reader or engine  # SQLite: a second engine whose reads take no write lock
        self.sql = statements.for_dialect(engine.dialect.name)
        # Webhooks arriving together share a transaction. SQLite has one writer anyway; PostgreSQL
        # runs a few transactions at once, so that their round trips overlap.
        self.commits = GroupCommit(self, lanes=1 if engine.dialect.name == "sqlite" else GROUP_COMMIT_LANES)
        self._shop_figures_read: dict[str, tuple[float, tuple[Decimal, int, Bands] | None]] = {}

    @classmethod
    def open(cls, url: str, *, migrate: bool = True, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
             pre_ping: bool = True) -> "Store":
        """Connect; `busy_timeout_ms` bounds how long SQLite waits for another writer's lock.

        `pre_ping` tests each pooled PostgreSQL connection before use (one round trip). The webhook
        receiver turns it off: a connection that died fails its statement, the pool drops it, and
        the answer is a 503 that the platform retries.
        """
        url = normalise_url(url)
        if url.startswith("sqlite"):
            store = cls(_sqlite_engine(url, immediate=True, busy_timeout_ms=busy_timeout_ms),
                        _sqlite_engine(url, immediate=False, busy_timeout_ms=busy_timeout_ms))
        else:
            store = cls(create_engine(url, pool_pre_ping=pre_ping, pool_size=5, max_overflow=5))
        if migrate:
            store.migrate()
        return store

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()
        if self.reader is not self.engine:
            self.reader.dispose()

    def migrate(self) -> None:
        """Upgrade the schema to the newest revision (a no-op, with no Alembic import, when current)."""
        try:
            with self.engine.connect() as conn:
                current = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            if current == HEAD_REVISION:
                return
        except DBAPIError:
            pass  # no alembic_version table yet: a new database
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.transaction() as conn:
            if self.dialect == "postgresql":  # several processes may start at once
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7243540)")
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One atomic unit of writes; a database that does not answer raises StorageUnavailableError."""
        with _unavailable_as_error(), self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (on SQLite, one that takes no write lock)."""
        with _unavailable_as_error(), self.reader.connect() as conn:
            yield conn

    def analyze(self, *tables: str) -> None:
        """After a bulk write (import, backfill, recompute), refresh PostgreSQL's statistics of these
        tables at once rather than when autovacuum gets to it: until then the planner takes the
        shop's rows for a handful and scans them all for a webhook's few orders and customers."""
        if self.dialect == "postgresql" and tables:
            with self.transaction() as conn:
                conn.exec_driver_sql("ANALYZE " + ", ".join(tables))

    def ping(self) -> bool:
        try:
            with self.reader.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - any failure means "not healthy"
            return False

    # --- writes: orders ------------------------------------------------------------------------

    def _insert(self, table):
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def upsert_order(self, conn: Connection, order: Order) -> bool:
        """Store `order` unless the stored version is as new or newer. True when something changed."""
        return self.store_order(conn, order).changed

    def store_order(self, conn: Connection, order: Order) -> OrderWrite:
        """`store_orders` for one order."""
        return self.store_orders(conn, [order])[0]

    def store_orders(self, conn: Connection, batch: Sequence[Order]) -> list[OrderWrite]:
        """Store each order of `batch` (one shop's, distinct ids) unless the stored version is as
        new or newer, and say whose order each was before: two statements for the batch.

        A version without `updated_at` replaces only a version without `updated_at` either.
        Refunds recorded on their own (`record_refund`) still count: refunded = max of both.
        """
        if not batch:
            return []
        ids = dict(shop_id=batch[0].shop_id, order_ids=[o.order_id for o in batch])
        stored: dict[str, tuple[int | None, str | None]] = {}
        recorded: dict[str, int] = {}
        for order_id, is_stored, updated_at, key, refunds_recorded in conn.execute(self.sql.order_versions, ids):
            if is_stored:
                stored[order_id] = (updated_at, key)
            else:
                recorded[order_id] = refunds_recorded
        previous: list[str | None] = []
        values = []
        for order in batch:
            updated_at, previous_key = stored.get(order.order_id, (None, None))
            previous.append(previous_key)
            if order.order_id in stored and not _is_newer(order, updated_at):
                continue
            refunds_recorded = recorded.get(order.order_id)
            if refunds_recorded and money_to_micros(order.refunded) < refunds_recorded:
                order = dataclasses.replace(order, refunded=micros_to_money(refunds_recorded))
            values.append(_order_values(order))
        written = set(conn.execute(self.sql.upsert_order, values).scalars()) if values else set()
        return [OrderWrite(order.order_id in written, key) for order, key in zip(batch, previous)]

    def upsert_orders(self, conn: Connection, batch: Sequence[Order]) -> int:
        """Bulk load (CSV import, backfill) with the rules of `upsert_order`; returns rows changed.

        New orders go in with one multi-row insert; a stored order is rewritten only when the
        incoming version is newer (the same rule as `upsert_order`, decided here in bulk).
        """
        if not batch:
            return 0
        stored = self.stored_versions(conn, batch[0].shop_id, [o.order_id for o in batch])
        fresh = [o for o in batch if o.order_id not in stored]
        changed = self.insert_new_orders(conn, fresh)
        newer = [o for o in batch if o.order_id in stored and _is_newer(o, stored[o.order_id])]
        for chunk in chunks(newer):
            changed += sum(written.changed for written in self.store_orders(conn, chunk))
        return changed

    def stored_versions(self, conn: Connection, shop_id: str, order_ids: Sequence[str]) -> dict[str, int | None]:
        """order_id -> stored updated_at (micros or None), for the given ids that are stored."""
        found: dict[str, int | None] = {}
        for chunk in chunks(order_ids, 500):
            found.update(conn.execute(select(orders.c.order_id, orders.c.updated_at).where(
                orders.c.shop_id == shop_id, orders.c.order_id.in_(chunk))).all())
        return found

    def insert_new_orders(self, conn: Connection, batch: Sequence[Order]) -> int:
        """Insert orders not stored yet; orders already stored are left alone."""
        if not batch:
            return 0
        statement = self._insert(orders).on_conflict_do_nothing(index_elements=[orders.c.shop_id, orders.c.order_id])
        conn.execute(statement, [_order_values(o) for o in batch])
        return len(batch)

    def stored_orders(self, conn: Connection, shop_id: str, order_ids: Sequence[str]) -> dict[str, Order]:
        """order_id -> the stored version, for the given ids that are stored."""
        found: dict[str, Order] = {}
        for chunk in chunks(order_ids, 500):
            for row in conn.execute(select(orders).where(orders.c.shop_id == shop_id, orders.c.order_id.in_(chunk))):
                found[row.order_id] = _order_from_row(row)
        return found

    def delete_order(self, conn: Connection, shop_id: str, order_id: str, updated_at: datetime | None) -> str | None:
        """Mark an order deleted (it stops counting). Returns its customer key; None when unknown."""
        stored = conn.execute(select(orders).where(
            orders.c.shop_id == shop_id, orders.c.order_id == order_id)).first()
        if stored is None:
            return None
        at = to_micros(updated_at) if updated_at else None
        conn.execute(update(orders).where(orders.c.shop_id == shop_id, orders.c.order_id == order_id).values(
            status="deleted", valid=False, amount=0,
            updated_at=max(filter(None, (at, stored.updated_at)), default=None)))
        return stored.customer_key

    def record_refund(self, conn: Connection, shop_id: str, order_id: str, refund_id: str,
                      amount: Decimal, created_at: datetime | None) -> tuple[bool, str | None]:
        """Record a refund once; re-derive the order's validity and amount. (new?, customer_key)."""
        inserted = conn.execute(self._insert(refunds).values(
            shop_id=shop_id, order_id=order_id, refund_id=refund_id, amount=money_to_micros(amount),
            created_at=to_micros(created_at) if created_at else None,
        ).on_conflict_do_nothing().returning(refunds.c.refund_id)).first() is not None
        stored = conn.execute(select(orders).where(orders.c.shop_id == shop_id, orders.c.order_id == order_id)).first()
        if not inserted or stored is None:
            return bool(inserted), stored.customer_key if stored else None
        recorded = conn.execute(select(func.sum(refunds.c.amount)).where(
            refunds.c.shop_id == shop_id, refunds.c.order_id == order_id)).scalar_one()
        if recorded > stored.refunded:
            order = _order_from_row(stored)
            order = dataclasses.replace(order, refunded=micros_to_money(recorded))
            conn.execute(update(orders).where(orders.c.shop_id == shop_id, orders.c.order_id == order_id).values(
                refunded=recorded, valid=order.is_valid, amount=money_to_micros(order.amount)))
        return True, stored.customer_key

    def record_delivery(self, conn: Connection, shop_id: str, delivery_id: str, topic: str, now: datetime) -> bool:
        """True the first time a delivery id is seen for the shop; False for a duplicate."""
        return bool(self.record_deliveries(conn, shop_id, [(delivery_id, topic)], now))

    def record_deliveries(self, conn: Connection, shop_id: str, batch: Sequence[tuple[str, str]],
                          now: datetime) -> set[str]:
        """Record (delivery_id, topic) pairs (distinct ids); return the ids seen for the first time."""
        if not batch:
            return set()
        received_at = to_micros(now)
        return set(conn.execute(self.sql.record_delivery, [
            dict(shop_id=shop_id, delivery_id=delivery_id, topic=topic, received_at=received_at)
            for delivery_id, topic in batch]).scalars())

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

    def delivery_seen(self, shop_id: str, delivery_id: str) -> bool:
        with self.read() as conn:
            return conn.execute(select(deliveries.c.delivery_id).where(
                deliveries.c.shop_id == shop_id, deliveries.c.delivery_id == delivery_id)).first() is not None

    def record_data_request(self, conn: Connection, shop_id: str, key: str, request_id: str | None, now: datetime) -> None:
        conn.execute(data_requests.insert().values(
            shop_id=shop_id, customer_key=key, request_id=request_id, received_at=to_micros(now)))

    def redact_customer(self, conn: Connection, shop_id: str, key: str | None, order_ids: Sequence[str] = ()) -> None:
        """Delete a customer's orders, refunds, state and history (their outbox entries stay, to
        clear the synced properties)."""
        ids = set(order_ids)
        if key is not None:
            ids.update(conn.execute(select(orders.c.order_id).where(
                orders.c.shop_id == shop_id, orders.c.customer_key == key)).scalars())
        for chunk in chunks(sorted(ids), 500):
            conn.execute(delete(refunds).where(refunds.c.shop_id == shop_id, refunds.c.order_id.in_(chunk)))
            conn.execute(delete(orders).where(orders.c.shop_id == shop_id, orders.c.order_id.in_(chunk)))
        if key is not None:
            for table in (customers, stage_changes, data_requests):
                conn.execute(delete(table).where(table.c.shop_id == shop_id, table.c.customer_key == key))

    def redact_shop(self, conn: Connection, shop_id: str) -> None:
        for table in (orders, refunds, customers, stage_changes, shop_figures, deliveries, data_requests,
                      outbox, synced, sync_cursors):
            conn.execute(delete(table).where(table.c.shop_id == shop_id))

    # --- reads: figures ------------------------------------------------------------------------

    def customer_rows(self, conn: Connection, shop_id: str, now: datetime) -> Iterator[CustomerRow]:
        """Every customer's figures at `now`, the customer-less group (key None) included."""
        for row in self.figure_rows(conn, shop_id, now):
            yield CustomerRow(row[0], _figures_from_row(row))

    def figure_rows(self, conn: Connection, shop_id: str, now: datetime) -> list[tuple]:
        """What `customer_rows` gives, as the store's integers (amounts in millionths, instants in
        micros): `(customer_key, orders_365d, amount_365d, orders_total, total_spent, first_at,
        last_at, first_window_at)` tuples, the customer-less group (key None) included. On
        PostgreSQL with the `AGGREGATION_SETTINGS` of the connection's transaction."""
        if self.dialect == "postgresql":
            for setting in AGGREGATION_SETTINGS:
                conn.exec_driver_sql(f"SET LOCAL {setting}")
        window = _window(shop_id, now)
        return _driver_rows(conn, figures_select(shop_id, window["now_us"], window["start_us"]))

    def customer_figures(self, conn: Connection, shop_id: str, key: str, now: datetime) -> CustomerFigures | None:
        """One customer's figures at `now`; None when no order of theirs is stored."""
        return self.customer_figures_and_state(conn, shop_id, key, now)[0]

    def customer_figures_and_state(self, conn: Connection, shop_id: str, key: str,
                                   now: datetime) -> tuple[CustomerFigures | None, StoredState | None]:
        """`customer_figures` and `load_state` together."""
        figures, states = self.figures_and_states(conn, shop_id, [key], now)
        row, state = figures.get(key), states.get(key)
        return None if row is None else _figures_from_row(row), None if state is None else StoredState(*state)

    def figures_and_states(self, conn: Connection, shop_id: str, keys: Sequence[str],
                           now: datetime) -> tuple[dict[str, tuple], dict[str, tuple]]:
        """Some customers' `figure_rows` (by key, for those with orders) and stored states (by key,
        as `state_rows` gives them, for those stored)."""
        params = dict(_window(shop_id, now), customer_keys=list(keys))
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

    def window_totals(self, conn: Connection, shop_id: str, now: datetime) -> tuple[Decimal, int]:
        """(sum of amounts, number) of the shop's window orders at `now`, customer-less ones included."""
        orders_in_window, amount = conn.execute(self.sql.window_totals, _window(shop_id, now)).one()
        return micros_to_money(amount), orders_in_window

    def returning_spans(self, conn: Connection, shop_id: str, now: datetime) -> list[tuple[int, int]]:
        """(micros from first to last window order, window orders) of each customer with 2 or more."""
        return [tuple(row) for row in conn.execute(self.sql.returning_spans, _window(shop_id, now))]

    def customer_orders(self, conn: Connection, shop_id: str, key: str) -> list[Order]:
        rows = conn.execute(select(orders).where(orders.c.shop_id == shop_id, orders.c.customer_key == key)
                            .order_by(orders.c.placed_at))
        return [_order_from_row(row) for row in rows]

    def known_customer(self, conn: Connection, shop_id: str, key: str) -> bool:
        return conn.execute(select(customers.c.customer_key).where(
            customers.c.shop_id == shop_id, customers.c.customer_key == key)).first() is not None

    def customer_keys_without_orders(self, conn: Connection, shop_id: str) -> list[str]:
        """Customers in the state table with no order stored (seen through a sign-up, say)."""
        has_orders = select(orders.c.customer_key).where(
            orders.c.shop_id == shop_id, orders.c.customer_key == customers.c.customer_key).exists()
        return list(conn.execute(select(customers.c.customer_key).where(
            customers.c.shop_id == shop_id, ~has_orders)).scalars())

    # --- shop figures --------------------------------------------------------------------------

    def save_shop_figures(self, conn: Connection, shop_id: str, window_amount: Decimal, window_orders: int,
                          bands: Bands, now: datetime) -> None:
        self._shop_figures_read.pop(shop_id, None)
        conn.execute(self.sql.save_shop_figures, dict(
            shop_id=shop_id, window_amount=money_to_micros(window_amount), window_orders=window_orders,
            recent_days=bands.recent, nurture_days=bands.nurture, risk_days=bands.risk,
            adaptive=bands.adaptive, computed_at=to_micros(now)))

    def load_shop_figures(self, conn: Connection, shop_id: str,
                          max_age: float = 0) -> tuple[Decimal, int, Bands] | None:
        """The shop figures stored by the last evaluation of the whole shop. With `max_age`
        (seconds), figures this Store read at most that long ago are reused without a query: a
        recompute run by another process is then seen up to `max_age` later."""
        read_at, figures = self._shop_figures_read.get(shop_id, (None, None))
        if read_at is not None and time.monotonic() - read_at <= max_age:
            return figures
        row = conn.execute(self.sql.load_shop_figures, dict(shop_id=shop_id)).first()
        figures = None if row is None else (
            micros_to_money(row.window_amount), row.window_orders,
            Bands(row.recent_days, row.nurture_days, row.risk_days, row.adaptive))
        self._shop_figures_read[shop_id] = (time.monotonic(), figures)
        return figures

    # --- customer states -----------------------------------------------------------------------

    def load_states(self, conn: Connection, shop_id: str) -> dict[str, StoredState]:
        return {key: StoredState(*state) for key, state in self.state_rows(conn, shop_id).items()}

    def state_rows(self, conn: Connection, shop_id: str) -> dict[str, tuple]:
        """customer_key -> stored state as a tuple of the `StoredState` fields, for every stored customer."""
        rows = _driver_rows(conn, select(customers.c.customer_key, *STATE_COLUMNS).where(customers.c.shop_id == shop_id))
        return {row[0]: row[1:] for row in rows}

    def load_state(self, conn: Connection, shop_id: str, key: str) -> StoredState | None:
        row = conn.execute(self.sql.load_state, dict(shop_id=shop_id, customer_key=key)).first()
        return None if row is None else StoredState(*row)

    def load_states_for(self, conn: Connection, shop_id: str, keys: Sequence[str]) -> dict[str, StoredState]:
        found: dict[str, StoredState] = {}
        for chunk in chunks(keys):
            rows = conn.execute(self.sql.customers_states, dict(shop_id=shop_id, customer_keys=list(chunk)))
            found.update((row[0], StoredState(*row[1:])) for row in rows)
        return found

    def save_states(self, conn: Connection, shop_id: str, states: Mapping[str, StoredState], now: datetime,
                    unless_evaluated_after: datetime | None = None) -> None:
        """Upsert states evaluated at `now`. With `unless_evaluated_after`, a row that a webhook
        re-evaluated after that wall-clock instant is newer than this batch and is left alone."""
        if not states:
            return
        now_us = to_micros(now)
        guard = {} if unless_evaluated_after is None else dict(newest_us=max(now_us, to_micros(unless_evaluated_after)))
        rows = [dict(shop_id=shop_id, customer_key=key, evaluated_at=now_us, **guard, **state.columns())
                for key, state in states.items()]
        statement = self.sql.save_state if unless_evaluated_after is None else self.sql.save_state_unless_newer
        for chunk in chunks(rows, 5_000):
            conn.execute(statement, chunk)

    def add_stage_changes(self, conn: Connection, shop_id: str,
                          changes: Iterable[tuple[str, str, str | None, str]], now: datetime) -> None:
        """Append (customer_key, model, from_stage, to_stage) rows to the stage history."""
        at = to_micros(now)
        rows = [dict(shop_id=shop_id, customer_key=k, model=m, from_stage=f, to_stage=t, at=at) for k, m, f, t in changes]
        for chunk in chunks(rows, 5_000):
            conn.execute(self.sql.add_stage_change, chunk)

    # --- platform API cursors (backfill checkpoints, poll cursors) -----------------------------

    def load_cursor(self, conn: Connection, shop_id: str, kind: str) -> str | None:
        return conn.execute(select(sync_cursors.c.cursor).where(
            sync_cursors.c.shop_id == shop_id, sync_cursors.c.kind == kind)).scalar()

    def save_cursor(self, conn: Connection, shop_id: str, kind: str, cursor: str | None, now: datetime) -> None:
        statement = self._insert(sync_cursors).values(shop_id=shop_id, kind=kind, cursor=cursor,
                                                     updated_at=to_micros(now))
        conn.execute(statement.on_conflict_do_update(
            index_elements=[sync_cursors.c.shop_id, sync_cursors.c.kind],
            set_=dict(cursor=statement.excluded.cursor, updated_at=statement.excluded.updated_at)))

    # --- outbox --------------------------------------------------------------------------------

    def enqueue(self, conn: Connection, shop_id: str, destinations: Sequence[str], keys: Iterable[str],
                now: datetime) -> None:
        """Mark these contacts as needing a sync to each destination (coalesces with pending ones;
        a dead letter for the same contact is revived, since there is something new to send)."""
        now_us = to_micros(now)
        rows = [dict(shop_id=shop_id, destination=d, customer_key=k, state="pending", due_at=now_us, attempts=0,
                     queued_at=now_us) for k in keys for d in destinations]
        for chunk in chunks(rows, 5_000):
            conn.execute(self.sql.enqueue, chunk)

    def outbox_depth(self, conn: Connection, shop_id: str | None = None) -> int:
        query = select(func.count()).select_from(outbox).where(outbox.c.state == "pending")
        if shop_id:
            query = query.where(outbox.c.shop_id == shop_id)
        return conn.execute(query).scalar_one()


# --- helpers -----------------------------------------------------------------------------------

def _sqlite_engine(url: str, *, immediate: bool, busy_timeout_ms: int) -> Engine:
    engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" below issue BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA synchronous=FULL")  # a 200 to a webhook means the order survives a crash
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # Writers take the lock up front: no deadlocked lock upgrade between two writers.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextlib.contextmanager
def _unavailable_as_error() -> Iterator[None]:
    """A database that does not answer becomes StorageUnavailableError (HTTP 503, CLI exit 1)."""
    try:
        yield
    except DBAPIError as exc:
        if exc.connection_invalidated or _is_unavailable(exc):
            raise StorageUnavailableError(f"database unavailable: {type(exc.orig).__name__}") from exc
        raise


def _is_unavailable(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(s in text for s in ("could not connect", "connection refused", "server closed", "terminating connection",
                                   "database is locked", "unable to open database", "disk i/o error",
                                   "connection is closed"))


def _window(shop_id: str, now: datetime) -> dict:
    now_us = to_micros(now)
    return dict(shop_id=shop_id, now_us=now_us, start_us=now_us - WINDOW_MICROS)


def _driver_rows(conn: Connection, statement: Executable) -> list[tuple]:
    """Every row of `statement`, run by SQLAlchemy (transaction, errors) but fetched as the
    driver's own tuples: for whole-shop reads, where building Row objects costs more than the query."""
    result = conn.execute(statement)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()



def chunks(items: Sequence, size: int = 500) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _is_newer(order: Order, stored_updated_at: int | None) -> bool:
    """Whether `order` replaces a stored version: only a strictly newer `updated_at` does.

    Replays of the same version, and versions without `updated_at` (CSV rows), change nothing.
    """
    return order.updated_at is not None and (stored_updated_at is None or to_micros(order.updated_at) > stored_updated_at)


def _order_values(order: Order) -> dict:
    return dict(
        shop_id=order.shop_id, order_id=order.order_id, customer_key=order.customer_key,
        email=order.email, phone=order.phone, customer_id=order.customer_id,
        placed_at=to_micros(order.placed_at),
        updated_at=None if order.updated_at is None else to_micros(order.updated_at),
        total=money_to_micros(order.total), refunded=money_to_micros(order.refunded),
        status=order.status, test=order.test, currency=order.currency,
        valid=order.is_valid, amount=money_to_micros(order.amount), amount_known=order.amount_known,
    )


def _order_from_row(row) -> Order:
    return Order(
        shop_id=row.shop_id, order_id=row.order_id, placed_at=from_micros(row.placed_at),
        total=micros_to_money(row.total), refunded=micros_to_money(row.refunded), status=row.status,
        test=row.test, email=row.email, phone=row.phone, customer_id=row.customer_id, currency=row.currency,
        updated_at=from_micros(row.updated_at), amount_known=row.amount_known,
    )


def _figures_from_row(row) -> CustomerFigures:
    """A row of `statements.figures_select` (a driver tuple or a Row, in that column order)."""
    _, orders_365d, amount_365d, orders_total, total_spent, first_at, last_at, first_window_at = row[:FIGURE_COLUMNS]
    return CustomerFigures(
        orders_365d=orders_365d, amount_365d=micros_to_money(amount_365d),
        orders_total=orders_total, total_spent=micros_to_money(total_spent),
        first_at=from_micros(first_at), last_at=from_micros(last_at), first_window_at=from_micros(first_window_at),
    )


def canonical_json(value: Mapping) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
