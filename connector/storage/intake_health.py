"""Queries behind intake health (connector.services.intake_health): rejected webhook deliveries
counted by minute, the first and last verified delivery per topic, and the orders that `poll` or
`backfill` stored before any webhook brought them.

Every table here stays small: rejections are counted (one row per shop, reason and minute, pruned
after two days), topics come from a fixed list, and arrivals are noted only for recent orders and
pruned after a week.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from sqlalchemy import Connection, delete, func, select, update

from connector.storage.engine import Database
from connector.storage.schema import order_arrivals, orders, webhook_rejections, webhook_topics
from connector.storage.values import chunks, from_micros, to_micros

MINUTE_MICROS = 60 * 1_000_000


@dataclass(frozen=True)
class Arrival:
    """An order that `poll` or `backfill` stored before any webhook brought it."""

    shop_id: str
    order_id: str
    via: str  # poll | backfill
    arrived_at: datetime
    placed_at: datetime


# --- rejected deliveries -------------------------------------------------------------------------

def add_rejection(store: Database, conn: Connection, shop_id: str, reason: str, now: datetime,
                  keep_since: datetime) -> None:
    """Count one refused delivery in its minute; a new minute also drops this shop's and reason's
    minutes before `keep_since` (so the table never grows past two days of minutes)."""
    minute = to_micros(now) // MINUTE_MICROS * MINUTE_MICROS
    insert = store.insert_for(webhook_rejections).values(shop_id=shop_id, reason=reason, minute=minute, count=1)
    counted = conn.execute(insert.on_conflict_do_update(
        index_elements=[webhook_rejections.c.shop_id, webhook_rejections.c.reason, webhook_rejections.c.minute],
        set_=dict(count=webhook_rejections.c.count + 1)).returning(webhook_rejections.c.count)).scalar_one()
    if counted == 1:
        conn.execute(delete(webhook_rejections).where(
            webhook_rejections.c.shop_id == shop_id, webhook_rejections.c.reason == reason,
            webhook_rejections.c.minute < to_micros(keep_since)))


def rejections(conn: Connection, start: datetime, end: datetime,
               shop_id: str | None = None) -> dict[tuple[str, str], int]:
    """(shop_id, reason) -> deliveries refused in the minutes that began in (start, end]."""
    query = select(webhook_rejections.c.shop_id, webhook_rejections.c.reason,
                   func.sum(webhook_rejections.c.count)).where(
        webhook_rejections.c.minute > to_micros(start), webhook_rejections.c.minute <= to_micros(end)).group_by(
        webhook_rejections.c.shop_id, webhook_rejections.c.reason)
    if shop_id is not None:
        query = query.where(webhook_rejections.c.shop_id == shop_id)
    return {(shop, reason): int(n) for shop, reason, n in conn.execute(query)}


# --- verified deliveries per topic ---------------------------------------------------------------

def note_topic(store: Database, conn: Connection, shop_id: str, topic: str, now: datetime,
               stale_before: datetime) -> None:
    """Record a verified delivery of `topic`: its first ever, or a new last one when the stored one
    is older than `stale_before` (a busy topic's row is written about once a minute, not per delivery)."""
    moved = conn.execute(update(webhook_topics).where(
        webhook_topics.c.shop_id == shop_id, webhook_topics.c.topic == topic,
        webhook_topics.c.last_at < to_micros(stale_before)).values(last_at=to_micros(now))).rowcount
    if not moved:
        at = to_micros(now)
        conn.execute(store.insert_for(webhook_topics).values(
            shop_id=shop_id, topic=topic, first_at=at, last_at=at).on_conflict_do_nothing())


def topics(conn: Connection, shop_id: str | None = None) -> dict[tuple[str, str], tuple[datetime, datetime]]:
    """(shop_id, topic) -> (first, last) verified delivery."""
    query = select(webhook_topics)
    if shop_id is not None:
        query = query.where(webhook_topics.c.shop_id == shop_id)
    return {(r.shop_id, r.topic): (from_micros(r.first_at), from_micros(r.last_at)) for r in conn.execute(query)}


# --- orders first brought by poll or backfill ----------------------------------------------------

def note_arrivals(store: Database, conn: Connection, shop_id: str, placed: Sequence[tuple[str, datetime]],
                  via: str, now: datetime) -> int:
    """Before storing a page of (order_id, placed_at): note those not stored yet as first brought by
    `via`. Call it in the page's transaction, before the orders are written. Returns how many."""
    if not placed:
        return 0
    stored: set[str] = set()
    for chunk in chunks([order_id for order_id, _ in placed]):
        stored.update(conn.execute(select(orders.c.order_id).where(
            orders.c.shop_id == shop_id, orders.c.order_id.in_(chunk))).scalars())
    rows = [dict(shop_id=shop_id, order_id=order_id, via=via, arrived_at=to_micros(now), placed_at=to_micros(at))
            for order_id, at in dict(placed).items() if order_id not in stored]
    if rows:
        conn.execute(store.insert_for(order_arrivals).on_conflict_do_nothing(), rows)
    return len(rows)


def arrivals(conn: Connection, start: datetime, end: datetime, shop_id: str | None = None) -> list[Arrival]:
    """The orders first brought by poll or backfill in (start, end], oldest first."""
    query = select(order_arrivals).where(
        order_arrivals.c.arrived_at > to_micros(start), order_arrivals.c.arrived_at <= to_micros(end)).order_by(
        order_arrivals.c.arrived_at, order_arrivals.c.order_id)
    if shop_id is not None:
        query = query.where(order_arrivals.c.shop_id == shop_id)
    return [Arrival(r.shop_id, r.order_id, r.via, from_micros(r.arrived_at), from_micros(r.placed_at))
            for r in conn.execute(query)]


def prune_arrivals(conn: Connection, shop_id: str, before: datetime) -> None:
    conn.execute(delete(order_arrivals).where(
        order_arrivals.c.shop_id == shop_id, order_arrivals.c.arrived_at < to_micros(before)))
