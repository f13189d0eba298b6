"""Queries on orders and refunds: versioned upserts, bulk loads, deletions, refunds recorded apart."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Sequence

from sqlalchemy import Connection, func, select, update

from connector.domain.orders import Order
from connector.storage.schema import orders, refunds
from connector.storage.values import chunks, driver_rows, from_micros, micros_to_money, money_to_micros, to_micros

@dataclass(frozen=True, slots=True)
class OrderWrite:
    """What `Store.store_order` did: whether it changed anything, and the customer the order
    belonged to before (None when it was not stored): a re-assigned order touches both."""

    changed: bool
    previous_key: str | None



class OrderQueries:
    """The order methods of `Store` (a mixin: `self` is the Store)."""

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
            values.append(order_values(order))
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
        statement = self.insert_for(orders).on_conflict_do_nothing(index_elements=[orders.c.shop_id, orders.c.order_id])
        conn.execute(statement, [order_values(o) for o in batch])
        return len(batch)

    def stored_orders(self, conn: Connection, shop_id: str, order_ids: Sequence[str]) -> dict[str, Order]:
        """order_id -> the stored version, for the given ids that are stored."""
        found: dict[str, Order] = {}
        for chunk in chunks(order_ids, 500):
            for row in conn.execute(select(orders).where(orders.c.shop_id == shop_id, orders.c.order_id.in_(chunk))):
                found[row.order_id] = order_from_row(row)
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
        inserted = conn.execute(self.insert_for(refunds).values(
            shop_id=shop_id, order_id=order_id, refund_id=refund_id, amount=money_to_micros(amount),
            created_at=to_micros(created_at) if created_at else None,
        ).on_conflict_do_nothing().returning(refunds.c.refund_id)).first() is not None
        stored = conn.execute(select(orders).where(orders.c.shop_id == shop_id, orders.c.order_id == order_id)).first()
        if not inserted or stored is None:
            return bool(inserted), stored.customer_key if stored else None
        recorded = conn.execute(select(func.sum(refunds.c.amount)).where(
            refunds.c.shop_id == shop_id, refunds.c.order_id == order_id)).scalar_one()
        if recorded > stored.refunded:
            order = order_from_row(stored)
            order = dataclasses.replace(order, refunded=micros_to_money(recorded))
            conn.execute(update(orders).where(orders.c.shop_id == shop_id, orders.c.order_id == order_id).values(
                refunded=recorded, valid=order.is_valid, amount=money_to_micros(order.amount)))
        return True, stored.customer_key

    def customer_orders(self, conn: Connection, shop_id: str, key: str) -> list[Order]:
        rows = conn.execute(select(orders).where(orders.c.shop_id == shop_id, orders.c.customer_key == key)
                            .order_by(orders.c.placed_at))
        return [order_from_row(row) for row in rows]


def history_orders(conn: Connection, shop_id: str, now: datetime) -> list[tuple]:
    """(customer_key, placed_at, valid, amount, amount_known) of every order of the shop placed at
    or before `now`, oldest first, as the driver's tuples (instants and amounts in micros): what a
    replay of the shop's stage history reads (connector/services/replay.py)."""
    return driver_rows(conn, select(orders.c.customer_key, orders.c.placed_at, orders.c.valid, orders.c.amount,
                                    orders.c.amount_known)
                       .where(orders.c.shop_id == shop_id, orders.c.placed_at <= to_micros(now))
                       .order_by(orders.c.placed_at))


def orders_stored(conn: Connection) -> dict[str, int]:
    """shop_id -> number of orders stored (for the metrics)."""
    return dict(conn.execute(select(orders.c.shop_id, func.count()).group_by(orders.c.shop_id)).all())


def _is_newer(order: Order, stored_updated_at: int | None) -> bool:
    """Whether `order` replaces a stored version: only a strictly newer `updated_at` does.

    Replays of the same version, and versions without `updated_at` (CSV rows), change nothing.
    """
    return order.updated_at is not None and (stored_updated_at is None or to_micros(order.updated_at) > stored_updated_at)


def order_values(order: Order) -> dict:
    return dict(
        shop_id=order.shop_id, order_id=order.order_id, customer_key=order.customer_key,
        email=order.email, email_spelling=order.email_spelling, phone=order.phone, customer_id=order.customer_id,
        placed_at=to_micros(order.placed_at),
        updated_at=None if order.updated_at is None else to_micros(order.updated_at),
        total=money_to_micros(order.total), refunded=money_to_micros(order.refunded),
        status=order.status, test=order.test, currency=order.currency,
        valid=order.is_valid, amount=money_to_micros(order.amount), amount_known=order.amount_known,
    )


def order_from_row(row) -> Order:
    return Order(
        shop_id=row.shop_id, order_id=row.order_id, placed_at=from_micros(row.placed_at),
        total=micros_to_money(row.total), refunded=micros_to_money(row.refunded), status=row.status,
        test=row.test, email=row.email, phone=row.phone, customer_id=row.customer_id, currency=row.currency,
        updated_at=from_micros(row.updated_at), email_spelling=row.email_spelling, amount_known=row.amount_known,
    )

