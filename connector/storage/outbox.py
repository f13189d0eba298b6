"""Queries on the outbox, the acknowledged properties and the rate slots (used by `connector.services.sync`).

Claiming is safe with many workers: PostgreSQL skips rows another worker holds
(FOR UPDATE SKIP LOCKED) and SQLite serialises writers (BEGIN IMMEDIATE). A claim is a lease:
a worker that dies releases its items when the lease runs out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Sequence

from sqlalchemy import Connection, and_, bindparam, delete, func, or_, select, update

from connector.storage.schema import destination_errors, outbox, rate_slots, stage_changes, synced
from connector.storage.engine import Database
from connector.storage.values import canonical_json, chunks, from_micros, to_micros

LEASE_MICROS = 5 * 60 * 1_000_000


@dataclass(frozen=True)
class Item:
    id: int
    shop_id: str
    destination: str
    customer_key: str
    attempts: int
    generation: int


@dataclass(frozen=True)
class Acknowledged:
    properties: dict
    last_change_id: int


@dataclass(frozen=True)
class DeadLetter:
    id: int
    shop_id: str
    destination: str
    customer_key: str
    attempts: int
    status: int | None
    error: str | None
    at: datetime


class OutboxQueries:
    """The outbox methods of `Store` (a mixin: `self` is the Store)."""

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


def _claimable(now_us: int):
    return and_(outbox.c.state == "pending", outbox.c.due_at <= now_us,
                or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now_us))


def due_group(store: Database, conn: Connection, now: datetime, shops: set[str] | None = None) -> tuple[str, str] | None:
    """The (shop, destination) whose oldest due item has waited longest; None when nothing is due."""
    query = select(outbox.c.shop_id, outbox.c.destination).where(_claimable(to_micros(now)))
    if shops is not None:
        query = query.where(outbox.c.shop_id.in_(sorted(shops)))
    row = conn.execute(query.order_by(outbox.c.due_at).limit(1)).first()
    return None if row is None else (row.shop_id, row.destination)


def claim(store: Database, conn: Connection, worker: str, now: datetime, group: tuple[str, str], limit: int) -> list[Item]:
    """Claim up to `limit` due items of one (shop, destination), oldest first, for `worker`."""
    now_us = to_micros(now)
    query = (select(outbox.c.id, outbox.c.shop_id, outbox.c.destination, outbox.c.customer_key,
                    outbox.c.attempts, outbox.c.generation)
             .where(_claimable(now_us), outbox.c.shop_id == group[0], outbox.c.destination == group[1])
             .order_by(outbox.c.due_at).limit(limit))
    if store.dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    items = [Item(*row) for row in conn.execute(query)]
    if items:
        conn.execute(update(outbox).where(outbox.c.id.in_([i.id for i in items]))
                     .values(claimed_by=worker, claimed_until=now_us + LEASE_MICROS))
    return items


def acknowledged(conn: Connection, shop_id: str, destination: str, keys: list[str]) -> dict[str, Acknowledged]:
    """What the destination acknowledged last, for each of these contacts that it holds."""
    found: dict[str, Acknowledged] = {}
    for chunk in chunks(keys):
        for row in conn.execute(select(synced.c.customer_key, synced.c.properties, synced.c.last_change_id).where(
                synced.c.shop_id == shop_id, synced.c.destination == destination, synced.c.customer_key.in_(chunk))):
            found[row.customer_key] = Acknowledged(json.loads(row.properties), row.last_change_id)
    return found


def changes_after(conn: Connection, shop_id: str, after: dict[str, int]) -> dict[str, list]:
    """Each contact's stage changes newer than its watermark (`after[key]`), oldest first."""
    found: dict[str, list] = {key: [] for key in after}
    keys = list(after)
    for chunk in chunks(keys):
        rows = conn.execute(select(stage_changes).where(
            stage_changes.c.shop_id == shop_id, stage_changes.c.customer_key.in_(chunk),
            stage_changes.c.id > min(after[k] for k in chunk)).order_by(stage_changes.c.id))
        for row in rows:
            if row.id > after[row.customer_key]:
                found[row.customer_key].append(row)
    return found


def acknowledge(store: Database, conn: Connection, done: list[tuple[Item, dict | None, int]], now: datetime) -> None:
    """The destination now holds these properties (None: the contact was cleared and is forgotten).

    Remembers them and finishes the items (unless re-queued meanwhile)."""
    if not done:
        return
    remember(store, conn, done, now)
    finish(conn, [item for item, _, _ in done])


def remember(store: Database, conn: Connection, done: list[tuple[Item, dict | None, int]], now: datetime) -> None:
    """Record what the destination holds for these contacts (as `acknowledge`), leaving the items as they are."""
    if not done:
        return
    shop_id, destination = done[0][0].shop_id, done[0][0].destination
    kept = [dict(shop_id=shop_id, destination=destination, customer_key=item.customer_key,
                 properties=canonical_json(properties), last_change_id=last_change_id, synced_at=to_micros(now))
            for item, properties, last_change_id in done if properties is not None]
    forgotten = [item.customer_key for item, properties, _ in done if properties is None]
    if kept:
        statement = store.insert_for(synced)
        conn.execute(statement.on_conflict_do_update(
            index_elements=[synced.c.shop_id, synced.c.destination, synced.c.customer_key],
            set_={k: statement.excluded[k] for k in ("properties", "last_change_id", "synced_at")}), kept)
    for chunk in chunks(forgotten):  # a redacted customer: nothing of theirs is kept
        conn.execute(delete(synced).where(synced.c.shop_id == shop_id, synced.c.destination == destination,
                                          synced.c.customer_key.in_(chunk)))


def finish(conn: Connection, items: list[Item]) -> None:
    """Delete the items, except those queued again while being sent: those are released instead."""
    if not items:
        return
    conn.execute(delete(outbox).where(outbox.c.id == bindparam("item_id"),
                                      outbox.c.generation == bindparam("item_generation")),
                 [{"item_id": i.id, "item_generation": i.generation} for i in items])
    for chunk in chunks([i.id for i in items]):
        conn.execute(update(outbox).where(outbox.c.id.in_(chunk)).values(claimed_by=None, claimed_until=None))


def reschedule(conn: Connection, item: Item, due: datetime, status: int | None, error: str) -> None:
    conn.execute(update(outbox).where(outbox.c.id == item.id).values(
        due_at=to_micros(due), attempts=outbox.c.attempts + 1, claimed_by=None, claimed_until=None,
        last_status=status, last_error=error[:2000]))


def bury(conn: Connection, item: Item, status: int | None, error: str) -> None:
    """A dead letter: kept with the vendor's answer until replayed (or re-queued by a new change)."""
    conn.execute(update(outbox).where(outbox.c.id == item.id).values(
        state="dead", attempts=outbox.c.attempts + 1, claimed_by=None, claimed_until=None,
        last_status=status, last_error=error[:2000]))


def note_error(store: Database, conn: Connection, shop_id: str, destination: str, status: int | None, error: str,
               now: datetime) -> None:
    """Keep a destination's last failed request: its status and message (already masked) and when."""
    insert = store.insert_for(destination_errors).values(shop_id=shop_id, destination=destination, status=status,
                                                         error=error[:2000], at=to_micros(now))
    conn.execute(insert.on_conflict_do_update(
        index_elements=[destination_errors.c.shop_id, destination_errors.c.destination],
        set_=dict(status=insert.excluded.status, error=insert.excluded.error, at=insert.excluded.at)))


def dead_letters(conn: Connection, shop_id: str | None = None) -> list[DeadLetter]:
    query = select(outbox).where(outbox.c.state == "dead").order_by(outbox.c.id)
    if shop_id:
        query = query.where(outbox.c.shop_id == shop_id)
    return [DeadLetter(r.id, r.shop_id, r.destination, r.customer_key, r.attempts, r.last_status, r.last_error,
                       from_micros(r.due_at)) for r in conn.execute(query)]


def replay(conn: Connection, now: datetime, shop_id: str | None = None, ids: list[int] | None = None) -> int:
    """Re-queue dead letters (all, one shop's, or the given ids) for an immediate new attempt."""
    query = update(outbox).where(outbox.c.state == "dead")
    if shop_id:
        query = query.where(outbox.c.shop_id == shop_id)
    if ids is not None:
        query = query.where(outbox.c.id.in_(ids))
    return conn.execute(query.values(state="pending", attempts=0, due_at=to_micros(now),
                                     claimed_by=None, claimed_until=None)).rowcount


def next_due(conn: Connection) -> datetime | None:
    value = conn.execute(select(func.min(outbox.c.due_at)).where(outbox.c.state == "pending")).scalar()
    return from_micros(value)


def reserve_slot(store: Database, conn: Connection, key: str, now: datetime, spacing_micros: int, cost: int) -> datetime:
    """Reserve `cost` consecutive request slots; returns when the first may start (maybe now)."""
    conn.execute(store.insert_for(rate_slots).values(key=key, next_free_at=0).on_conflict_do_nothing())
    now_us = to_micros(now)
    greatest = func.max if store.dialect == "sqlite" else func.greatest
    end = conn.execute(update(rate_slots).where(rate_slots.c.key == key)
                       .values(next_free_at=greatest(rate_slots.c.next_free_at, now_us) + spacing_micros * cost)
                       .returning(rate_slots.c.next_free_at)).scalar_one()
    return from_micros(end - spacing_micros * cost)


# --- levels (metrics, dashboard) ---------------------------------------------------------------

@dataclass
class QueueLevel:
    """One destination of one shop: items waiting, dead letters, and the last acknowledged write."""

    pending: int = 0
    dead: int = 0
    last_success: datetime | None = None
    last_error: str | None = None  # the last failed request's status and message (`note_error`)
    last_error_at: datetime | None = None
    last_error_status: int | None = None

    @property
    def failing(self) -> bool:
        """The last request was refused (a 4xx other than 429: retrying will not help) and nothing was
        acknowledged since: a person should look."""
        refused = self.last_error_status is not None and 400 <= self.last_error_status < 500 \
            and self.last_error_status != 429
        return refused and self.last_error_at is not None and (
            self.last_success is None or self.last_error_at > self.last_success)


def queue_levels(conn: Connection, shop_id: str | None = None) -> dict[tuple[str, str], QueueLevel]:
    """(shop, destination) -> QueueLevel, for every pair the outbox or the synced table knows."""
    levels: dict[tuple[str, str], QueueLevel] = {}
    counts = select(outbox.c.shop_id, outbox.c.destination, outbox.c.state, func.count()).group_by(
        outbox.c.shop_id, outbox.c.destination, outbox.c.state)
    last = select(synced.c.shop_id, synced.c.destination, func.max(synced.c.synced_at)).group_by(
        synced.c.shop_id, synced.c.destination)
    if shop_id is not None:
        counts = counts.where(outbox.c.shop_id == shop_id)
        last = last.where(synced.c.shop_id == shop_id)
    for shop, destination, state, n in conn.execute(counts):
        level = levels.setdefault((shop, destination), QueueLevel())
        if state == "dead":
            level.dead += n
        else:
            level.pending += n
    for shop, destination, at in conn.execute(last):
        levels.setdefault((shop, destination), QueueLevel()).last_success = from_micros(at)
    errors = select(destination_errors)
    if shop_id is not None:
        errors = errors.where(destination_errors.c.shop_id == shop_id)
    for row in conn.execute(errors):
        level = levels.setdefault((row.shop_id, row.destination), QueueLevel())
        shown = row.status is None or str(row.status) in row.error  # the message names its status already
        level.last_error = row.error if shown else f"{row.status} {row.error}"
        level.last_error_at, level.last_error_status = from_micros(row.at), row.status
    return levels
