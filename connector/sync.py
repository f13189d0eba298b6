"""The sync worker: drains the outbox into the destinations (email tools).

For each claimed batch (one shop, one destination): compute each contact's desired properties
from its stored state, skip contacts whose properties equal what the destination acknowledged
last and who have no new stage change, send the rest through the destination's single or batch
upsert, then the stage-change events. Requests to one destination account are spaced to its
rate limit across every worker (a slot reserved in the database). Transient failures (429, 5xx,
timeouts) are retried at once with tenacity's jittered exponential backoff, honouring Retry-After,
then rescheduled with a growing delay; permanent refusals, and items out of attempts, become
dead letters that `stagesync deadletters --replay` re-queues. Delivery is at-least-once; every
upsert is idempotent and every event carries a stable id.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from connector import outbox
from connector.config import DestinationSettings, Settings, ShopSettings
from connector.errors import DestinationError, RetriableDestinationError, scrub
from connector.ports import ContactUpdate, Destination, StageChange
from connector.properties import desired_properties, identity
from connector.store import Store, from_micros

log = logging.getLogger("stagesync.sync")

MAX_ATTEMPTS = 10  # then the item becomes a dead letter
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 3600.0
IMMEDIATE_RETRIES = 3  # attempts within one call, before rescheduling
IMMEDIATE_MAX_WAIT_SECONDS = 30.0
EVENT_MAX_AGE = timedelta(days=7)  # older stage changes are written as properties, sent as no event
POLL_SECONDS = 1.0


@dataclass
class SyncStats:
    claimed: int = 0
    sent: int = 0  # contacts written
    skipped: int = 0  # already as desired
    events: int = 0
    retried: int = 0
    dead: int = 0
    requests: int = 0

    def add(self, other: "SyncStats") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Work:
    """One claimed item with what must be sent for it."""

    item: outbox.Item
    properties: dict
    last_change_id: int
    events: list[StageChange] = field(default_factory=list)
    forget: bool = False


def default_destination_factory(settings: DestinationSettings) -> Destination:
    from adapters.destinations import create

    return create(settings)


class SyncWorker:
    """Drains the outbox. Safe to run many at once, in one process or many, on PostgreSQL."""

    def __init__(self, store: Store, settings: Settings, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 sleep: Callable[[float], None] = time.sleep,
                 destination_factory: Callable[[DestinationSettings], Destination] = default_destination_factory,
                 worker_id: str | None = None, shops: set[str] | None = None, max_claim: int | None = None):
        self.store = store
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.destination_factory = destination_factory
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 10_000}"
        self.shops = shops
        self.max_claim = max_claim
        self._destinations: dict[tuple[str, str], Destination] = {}

    # --- loops ---------------------------------------------------------------------------------

    def drain(self) -> SyncStats:
        """`stagesync sync`: work until nothing is due now."""
        total = SyncStats()
        while (stats := self.run_once()).claimed:
            total.add(stats)
        return total

    def run_forever(self, stop: threading.Event) -> None:
        """`stagesync worker`: work until `stop` is set, polling when idle."""
        while not stop.is_set():
            try:
                if self.run_once().claimed:
                    continue
            except Exception:  # noqa: BLE001 - a worker keeps going; the item's lease expires
                log.exception("sync batch failed; retrying after a pause")
            stop.wait(POLL_SECONDS)

    # --- one batch -----------------------------------------------------------------------------

    def _destination(self, shop: ShopSettings, settings: DestinationSettings) -> Destination:
        key = (shop.id, settings.name)
        if key not in self._destinations:
            self._destinations[key] = self.destination_factory(settings)
        return self._destinations[key]

    def run_once(self) -> SyncStats:
        stats = SyncStats()
        now = self.clock()
        with self.store.transaction() as conn:
            items = outbox.claim(self.store, conn, self.worker_id, now, self.max_claim or 1000, self.shops)
        if not items:
            return stats
        stats.claimed = len(items)
        shop = self.settings.shops.get(items[0].shop_id)
        dest_settings = next((d for d in shop.destinations if d.name == items[0].destination), None) if shop else None
        if shop is None or dest_settings is None:
            with self.store.transaction() as conn:
                for item in items:
                    outbox.bury(conn, item, None, f"destination {item.destination!r} of shop {item.shop_id!r} "
                                                  f"is no longer configured")
            stats.dead += len(items)
            return stats
        destination = self._destination(shop, dest_settings)
        batch = items[:destination.max_batch] if len(items) > destination.max_batch else items
        if len(batch) < len(items):
            with self.store.transaction() as conn:
                for item in items[len(batch):]:
                    outbox.release(conn, item)
        work = self._prepare(batch, shop, dest_settings, destination, now)
        stats.skipped = len(batch) - len(work)
        if work:
            self._send(work, shop, dest_settings, destination, stats)
        return stats

    def _prepare(self, items, shop: ShopSettings, dest: DestinationSettings, destination: Destination,
                 now: datetime) -> list[_Work]:
        """Decide what each item needs; finish at once those already as desired."""
        todo: list[_Work] = []
        with self.store.transaction() as conn:
            for item in items:
                state = self.store.load_state(conn, shop.id, item.customer_key)
                ack = outbox.acknowledged(conn, item)
                properties = desired_properties(state, shop, dest)
                last_change_id = ack.last_change_id if ack else 0
                events: list[StageChange] = []
                if state is not None:
                    changes = outbox.changes_after(conn, shop.id, item.customer_key, last_change_id)
                    last_change_id = changes[-1].id if changes else last_change_id
                    if dest.events and destination.supports_events:
                        events = [self._event(shop, item.customer_key, c, properties) for c in changes
                                  if c.from_stage is not None and from_micros(c.at) >= now - EVENT_MAX_AGE]
                if state is None and ack is None:
                    outbox.finish(conn, item)  # never written anywhere: nothing to clear
                elif ack is not None and ack.properties == properties and not events:
                    if last_change_id != ack.last_change_id:
                        outbox.acknowledge(self.store, conn, item, properties, last_change_id, now)
                    else:
                        outbox.finish(conn, item)
                else:
                    todo.append(_Work(item, properties, last_change_id, events, forget=state is None))
        return todo

    @staticmethod
    def _event(shop: ShopSettings, key: str, change, properties: dict) -> StageChange:
        email, phone = identity(key)
        return StageChange(
            event_id=f"stagesync-{shop.id}-{change.id}", email=email, phone=phone, model=change.model,
            from_stage=shop.label(change.from_stage) if change.from_stage else None,
            to_stage=shop.label(change.to_stage), at=from_micros(change.at), properties=properties)

    def _send(self, work: list[_Work], shop: ShopSettings, dest: DestinationSettings, destination: Destination,
              stats: SyncStats) -> None:
        updates = [ContactUpdate(*identity(w.item.customer_key), properties=w.properties) for w in work]
        failures: dict[int, Exception] = {}
        try:
            for failure in self._call(shop, dest, destination, destination.requests_for(len(updates)),
                                      lambda: destination.upsert_contacts(updates), stats):
                failures[failure.index] = failure.error
            events = [(i, e) for i, w in enumerate(work) if i not in failures for e in w.events]
            if events:
                sent = self._call(shop, dest, destination, len(events),
                                  lambda: destination.send_events([e for _, e in events]), stats)
                for failure in sent:
                    failures.setdefault(events[failure.index][0], failure.error)
                stats.events += len(events) - len(sent)
        except DestinationError as exc:
            failures = {i: exc for i in range(len(work))}
        now = self.clock()
        with self.store.transaction() as conn:
            for index, w in enumerate(work):
                error = failures.get(index)
                if error is None:
                    outbox.acknowledge(self.store, conn, w.item, w.properties, w.last_change_id, now, w.forget)
                    stats.sent += 1
                elif isinstance(error, RetriableDestinationError) and w.item.attempts + 1 < MAX_ATTEMPTS:
                    outbox.reschedule(conn, w.item, now + timedelta(seconds=self._backoff(w.item.attempts, error)),
                                      error.status, scrub(str(error)))
                    stats.retried += 1
                else:
                    status = getattr(error, "status", None)
                    outbox.bury(conn, w.item, status, scrub(str(error)))
                    stats.dead += 1
                    log.warning("dead letter shop=%s destination=%s status=%s error=%s", shop.id, dest.name,
                                status, scrub(str(error)))

    def _call(self, shop: ShopSettings, dest: DestinationSettings, destination: Destination, cost: int,
              call: Callable[[], list], stats: SyncStats) -> list:
        """One vendor call within the account's rate limit, retried at once on transient failures."""
        import tenacity

        rate = dest.rate_per_minute or destination.default_rate_per_minute
        spacing = int(60_000_000 / rate)

        def attempt() -> list:
            with self.store.transaction() as conn:
                start = outbox.reserve_slot(self.store, conn, f"{shop.id}/{dest.name}", self.clock(), spacing,
                                            max(cost, 1))
            wait = (start - self.clock()).total_seconds()
            if wait > 0:
                self.sleep(wait)
            stats.requests += cost
            return call()

        def wait_for(state: tenacity.RetryCallState) -> float:
            backoff = tenacity.wait_exponential_jitter(initial=1, max=IMMEDIATE_MAX_WAIT_SECONDS)(state)
            error = state.outcome.exception() if state.outcome else None
            return max(backoff, getattr(error, "retry_after", None) or 0)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RetriableDestinationError),
            stop=tenacity.stop_after_attempt(IMMEDIATE_RETRIES), wait=wait_for, sleep=self.sleep, reraise=True,
            before_sleep=lambda s: log.info("retrying shop=%s destination=%s after %s", shop.id, dest.name,
                                            scrub(str(s.outcome.exception()))))
        return retrying(attempt)

    @staticmethod
    def _backoff(attempts: int, error: RetriableDestinationError) -> float:
        delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempts + IMMEDIATE_RETRIES))
        return max(delay * random.uniform(0.5, 1.0), error.retry_after or 0)


def replay_dead_letters(store: Store, now: datetime, shop_id: str | None = None) -> int:
    with store.transaction() as conn:
        return outbox.replay(conn, now, shop_id)

