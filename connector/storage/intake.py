"""Queries on what arrives: webhook delivery ids (de-duplication), data requests, and the
platform API cursors (backfill checkpoints, poll cursors)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import NamedTuple, Sequence

from sqlalchemy import Connection, Row, delete, func, select

from connector.storage.schema import data_requests, deliveries, sync_cursors
from connector.storage.values import to_micros


class IntakeQueries:
    """The delivery, data request and cursor methods of `Store` (a mixin: `self` is the Store)."""

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

    def delivery_seen(self, shop_id: str, delivery_id: str) -> bool:
        with self.read() as conn:
            return conn.execute(select(deliveries.c.delivery_id).where(
                deliveries.c.shop_id == shop_id, deliveries.c.delivery_id == delivery_id)).first() is not None

    def prune_deliveries(self, conn: Connection, shop_id: str, before: datetime) -> int:
        """Forget the shop's delivery ids received before `before` (past every platform's retry
        window, connector.services.evaluation.DELIVERY_RETENTION); return how many."""
        return conn.execute(delete(deliveries).where(
            deliveries.c.shop_id == shop_id, deliveries.c.received_at < to_micros(before))).rowcount

    def record_data_request(self, conn: Connection, shop_id: str, key: str | None, request_id: str | None,
                            now: datetime, *, email: str | None = None, phone: str | None = None,
                            customer_id: str | None = None, orders_requested: Sequence[str] = ()) -> None:
        """Record a privacy data request, whatever it names (even nothing: it is still listed)."""
        conn.execute(data_requests.insert().values(
            shop_id=shop_id, customer_key=key, request_id=request_id, received_at=to_micros(now),
            email=email, phone=phone, customer_id=customer_id,
            orders_requested=json.dumps(list(orders_requested)) if orders_requested else None))

    # --- platform API cursors (backfill checkpoints, poll cursors) -----------------------------

    def load_cursor(self, conn: Connection, shop_id: str, kind: str) -> str | None:
        return conn.execute(select(sync_cursors.c.cursor).where(
            sync_cursors.c.shop_id == shop_id, sync_cursors.c.kind == kind)).scalar()

    def save_cursor(self, conn: Connection, shop_id: str, kind: str, cursor: str | None, now: datetime) -> None:
        statement = self.insert_for(sync_cursors).values(shop_id=shop_id, kind=kind, cursor=cursor,
                                                     updated_at=to_micros(now))
        conn.execute(statement.on_conflict_do_update(
            index_elements=[sync_cursors.c.shop_id, sync_cursors.c.kind],
            set_=dict(cursor=statement.excluded.cursor, updated_at=statement.excluded.updated_at)))


class DataRequest(NamedTuple):
    """One recorded privacy data request (any identity may be None)."""

    id: int
    request_id: str | None
    received_at: int  # micros
    customer_key: str | None
    email: str | None
    phone: str | None
    customer_id: str | None
    orders_requested: list[str]


def shop_data_requests(conn: Connection, shop_id: str, request_row: int | None = None,
                       limit: int | None = None) -> list[DataRequest]:
    """The shop's recorded data requests, newest first (or the one whose row `id` is `request_row`)."""
    query = select(data_requests.c.id, data_requests.c.request_id, data_requests.c.received_at,
                   data_requests.c.customer_key, data_requests.c.email, data_requests.c.phone,
                   data_requests.c.customer_id, data_requests.c.orders_requested).where(
        data_requests.c.shop_id == shop_id).order_by(data_requests.c.received_at.desc(), data_requests.c.id.desc())
    if request_row is not None:
        query = query.where(data_requests.c.id == request_row)
    if limit is not None:
        query = query.limit(limit)
    return [DataRequest(*row[:-1], json.loads(row.orders_requested) if row.orders_requested else [])
            for row in conn.execute(query)]


def count_data_requests(conn: Connection, shop_id: str) -> int:
    return conn.execute(select(func.count()).select_from(data_requests).where(
        data_requests.c.shop_id == shop_id)).scalar_one()


def data_requests_of(conn: Connection, shop_id: str, key: str) -> list[Row]:
    """A customer's recorded data requests: rows of (request_id, received_at)."""
    return list(conn.execute(select(data_requests.c.request_id, data_requests.c.received_at).where(
        data_requests.c.shop_id == shop_id, data_requests.c.customer_key == key)))
