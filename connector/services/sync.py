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

from connector.storage import outbox
from connector.config import DestinationSettings, Settings, ShopSettings
from connector.errors import DestinationError, OutcomeUnknownError, RetriableDestinationError, scrub
from connector.domain.ports import ContactUpdate, Destination, ItemFailure, StageChange
from connector.services.properties import PREDICTED_FIELDS, desired_properties, identity
from connector.services.sync_stats import DestinationRun, SyncStats
from connector.storage.predictions import stored_predictions
from connector.storage.spellings import last_spellings
from connector.storage.store import Store
from connector.storage.values import from_micros

log = logging.getLogger("stagesync.sync")

MAX_ATTEMPTS = 10  # then the item becomes a dead letter
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 3600.0
IMMEDIATE_RETRIES = 3  # attempts within one call, before rescheduling
IMMEDIATE_MAX_WAIT_SECONDS = 30.0
# Acknowledged with the properties when the address sent is not the key itself (its spelling, see
# connector/storage/spellings.py), so that a new spelling is sent even when no property changed.
SPELLING_MARK = "@email"
# Acknowledged in place of properties for a contact the destination can never hold (Mailchimp and a
# phone-only customer): the reason is logged once, and the contact is not sent at each recompute.
SKIPPED_MARK = "@skipped"
EVENT_MAX_AGE = timedelta(days=7)  # older stage changes are written as properties, sent as no event
POLL_SECONDS = 1.0


@dataclass
class _Work:
    """One claimed item with what must be sent for it."""

    item: outbox.Item
    properties: dict
    last_change_id: int
    events: list[StageChange] = field(default_factory=list)
    forget: bool = False
    change_ids: list[int] = field(default_factory=list)  # the stage change of each event
    email: str | None = None  # the address as the shop last spelled it (None: a phone)
    acknowledged: dict | None = None  # what `synced` keeps once sent: properties (+ the spelling)


def default_destination_factory(settings: DestinationSettings, shop_id: str) -> Destination:
    from adapters.destinations import create

    return create(settings, shop=shop_id)


class SyncWorker:
    """Drains the outbox. Safe to run many at once, in one process or many, on PostgreSQL."""

    def __init__(self, store: Store, settings: Settings, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 sleep: Callable[[float], None] = time.sleep,
                 destination_factory: Callable[[DestinationSettings, str], Destination] = default_destination_factory,
                 worker_id: str | None = None, shops: set[str] | None = None, max_claim: int | None = None,
                 metrics=None, retry_initial_seconds: float = 1.0, backoff_base_seconds: float = BACKOFF_BASE_SECONDS):
        self.store = store
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.destination_factory = destination_factory
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 10_000}"
        self.shops = shops
        self.max_claim = max_claim
        self.retry_initial_seconds = retry_initial_seconds  # first wait between immediate retries
        self.backoff_base_seconds = backoff_base_seconds  # first delay of a rescheduled item
        if metrics is None:  # counts requests and dead letters for GET /metrics (connector.services.metrics)
            from connector.services.metrics import worker_metrics

            metrics = worker_metrics()
        self.metrics = metrics
        self._destinations: dict[tuple[str, str], Destination] = {}
        # (shop, destination) -> the refusal last logged: the same one again is not logged again until
        # the destination accepts a contact (a wrong key: one line, not one per contact or batch)
        self._refusal_logged: dict[tuple[str, str], str] = {}

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
            self._destinations[key] = self.destination_factory(settings, shop.id)
        return self._destinations[key]

    def run_once(self) -> SyncStats:
        """Claim what one vendor call can carry for the longest-waiting (shop, destination); send it."""
        stats = SyncStats()
        now = self.clock()
        with self.store.transaction() as conn:
            group = outbox.due_group(self.store, conn, now, self.shops)
        if group is None:
            return stats
        shop = self.settings.shops.get(group[0])
        dest_settings = next((d for d in shop.destinations if d.name == group[1]), None) if shop else None
        if shop is None or dest_settings is None:
            return self._bury_unconfigured(group, now, stats)
        destination = self._destination(shop, dest_settings)
        limit = min(destination.max_batch, self.max_claim or destination.max_batch)
        with self.store.transaction() as conn:
            items = outbox.claim(self.store, conn, self.worker_id, now, group, limit)
        stats.claimed = len(items)
        work = self._prepare(items, shop, dest_settings, destination, now) if items else []
        stats.skipped = len(items) - len(work)
        if work:
            self._send(work, shop, dest_settings, destination, stats)
        return stats

    def _bury_unconfigured(self, group: tuple[str, str], now: datetime, stats: SyncStats) -> SyncStats:
        with self.store.transaction() as conn:
            items = outbox.claim(self.store, conn, self.worker_id, now, group, 1000)
            for item in items:
                outbox.bury(conn, item, None, f"destination {item.destination!r} of shop {item.shop_id!r} "
                                              f"is no longer configured")
        stats.claimed = stats.dead = len(items)
        self.metrics.dead_letter(group[0], group[1], len(items))
        return stats

    def _prepare(self, items, shop: ShopSettings, dest: DestinationSettings, destination: Destination,
                 now: datetime) -> list[_Work]:
        """Decide what each item needs; finish at once those already as desired."""
        keys = [item.customer_key for item in items]
        todo: list[_Work] = []
        finished: list[outbox.Item] = []
        watermarks: list[tuple[outbox.Item, dict, int]] = []
        with self.store.transaction() as conn:
            states = self.store.load_states_for(conn, shop.id, keys)
            predicted = (stored_predictions(conn, shop.id, keys)
                         if set(dest.properties.values()) & set(PREDICTED_FIELDS) else {})
            acks = outbox.acknowledged(conn, shop.id, dest.name, keys)
            changes = outbox.changes_after(conn, shop.id, {k: acks[k].last_change_id if k in acks else 0 for k in keys})
            spellings = last_spellings(conn, shop.id, keys)
            for item in items:
                state, ack = states.get(item.customer_key), acks.get(item.customer_key)
                properties = desired_properties(state, shop, dest, predicted.get(item.customer_key))
                email = identity(item.customer_key)[0] and spellings.get(item.customer_key, item.customer_key)
                kept = properties if email in (None, item.customer_key) else {**properties, SPELLING_MARK: email}
                last_change_id = ack.last_change_id if ack else 0
                events: list[StageChange] = []
                if state is not None:
                    new_changes = changes[item.customer_key]
                    last_change_id = new_changes[-1].id if new_changes else last_change_id
                    if dest.events and destination.supports_events:
                        eventful = [c for c in new_changes
                                    if c.from_stage is not None and from_micros(c.at) >= now - EVENT_MAX_AGE]
                        events = [self._event(shop, item.customer_key, c, properties, email) for c in eventful]
                unholdable = destination.cannot_hold(*identity(item.customer_key))
                if unholdable:
                    mark = {SKIPPED_MARK: unholdable}
                    if state is not None and (ack is None or ack.properties != mark):
                        log.info("skipped shop=%s destination=%s: %s", shop.id, dest.name, unholdable)
                    if state is None:
                        watermarks.append((item, None, last_change_id))  # forget the skip
                    elif ack is None or ack.properties != mark or ack.last_change_id != last_change_id:
                        watermarks.append((item, mark, last_change_id))
                    else:
                        finished.append(item)
                elif state is None and ack is None:
                    finished.append(item)  # never written anywhere: nothing to clear
                elif ack is not None and ack.properties == kept and not events:
                    if last_change_id != ack.last_change_id:
                        watermarks.append((item, kept, last_change_id))
                    else:
                        finished.append(item)
                else:
                    todo.append(_Work(item, properties, last_change_id, events, forget=state is None,
                                      change_ids=[c.id for c in eventful] if events else [], email=email,
                                      acknowledged=kept))
            outbox.finish(conn, finished)
            outbox.acknowledge(self.store, conn, watermarks, now)
        return todo

    @staticmethod
    def _event(shop: ShopSettings, key: str, change, properties: dict, spelled: str | None = None) -> StageChange:
        email, phone = identity(key)
        email = spelled or email
        return StageChange(
            event_id=f"stagesync-{shop.id}-{change.id}", email=email, phone=phone, model=change.model,
            from_stage=shop.label(change.from_stage) if change.from_stage else None,
            to_stage=shop.label(change.to_stage), at=from_micros(change.at), properties=properties)

    def _send(self, work: list[_Work], shop: ShopSettings, dest: DestinationSettings, destination: Destination,
              stats: SyncStats) -> None:
        updates = [ContactUpdate(w.email, identity(w.item.customer_key)[1], properties=w.properties) for w in work]
        failures: dict[int, Exception] = {}
        unknown: dict[int, int] = {}  # work index -> the stage change whose event may have been received
        try:
            for failure in self._call(shop, dest, destination, destination.requests_for(len(updates)),
                                      lambda: destination.upsert_contacts(updates), stats):
                failures[failure.index] = failure.error
        except DestinationError as exc:
            failures = {i: exc for i in range(len(work))}
        # Each contact's events in order; once one of a contact's events failed, its later ones wait.
        events = [(i, n, e) for i, w in enumerate(work) if i not in failures for n, e in enumerate(w.events)]
        step = destination.max_event_batch  # one request a call, so every request gets its own slot
        for start in range(0, len(events), step):
            chunk = [(i, n, e) for i, n, e in events[start:start + step] if i not in failures]
            if not chunk:
                continue
            try:
                refused = self._call(shop, dest, destination, destination.requests_for_events(len(chunk)),
                                     lambda: destination.send_events([e for _, _, e in chunk]), stats)
            except DestinationError as exc:
                refused = [ItemFailure(k, exc) for k in range(len(chunk))]
            for failure in refused:
                index, n, _ = chunk[failure.index]
                failures.setdefault(index, failure.error)
                if isinstance(failure.error, OutcomeUnknownError):
                    unknown[index] = work[index].change_ids[n]
            stats.events += len(chunk) - len(refused)
        now = self.clock()
        refusals: dict[tuple[int | None, str], int] = {}  # (status, message) -> contacts refused for good
        retried_before = stats.retried
        with self.store.transaction() as conn:
            done = []
            remembered = []
            for index, w in enumerate(work):
                error = failures.get(index)
                if index in unknown:
                    # Never sent again automatically: the contact's properties and the events up to this one
                    # count as sent; the item is kept as a dead letter that says so (docs/architecture.md).
                    remembered.append((w.item, None if w.forget else w.acknowledged, unknown[index]))
                    message = f"event outcome unknown, not resent: {scrub(str(error))}"
                    outbox.bury(conn, w.item, getattr(error, "status", None), message)
                    stats.dead += 1
                    self.metrics.dead_letter(shop.id, dest.name)
                    log.warning("event outcome unknown shop=%s destination=%s error=%s", shop.id, dest.name,
                                scrub(str(error)))
                elif error is None:
                    done.append((w.item, None if w.forget else w.acknowledged, w.last_change_id))
                elif isinstance(error, RetriableDestinationError) and w.item.attempts + 1 < MAX_ATTEMPTS:
                    outbox.reschedule(conn, w.item, now + timedelta(seconds=self._backoff(w.item.attempts, error)),
                                      error.status, scrub(str(error)))
                    stats.retried += 1
                else:
                    status = getattr(error, "status", None)
                    reason = (status, scrub(str(error)))
                    outbox.bury(conn, w.item, *reason)
                    stats.dead += 1
                    self.metrics.dead_letter(shop.id, dest.name)
                    refusals[reason] = refusals.get(reason, 0) + 1
            last_failure = failures[max(failures)] if failures else None
            if last_failure is not None:
                outbox.note_error(self.store, conn, shop.id, dest.name, getattr(last_failure, "status", None),
                                  scrub(str(last_failure)), now)
            outbox.remember(self.store, conn, remembered, now)
            outbox.acknowledge(self.store, conn, done, now)
            stats.sent += len(done)
        run = stats.destinations.setdefault((shop.id, dest.name), DestinationRun())
        run.sent += len(done)
        run.refused += sum(refusals.values())
        run.retried += stats.retried - retried_before
        run.last_error = scrub(str(last_failure)) if last_failure is not None else run.last_error
        self._log_refusals(shop.id, dest.name, refusals, accepted=bool(done))

    def _log_refusals(self, shop_id: str, destination: str, refusals: dict[tuple[int | None, str], int],
                      accepted: bool) -> None:
        """One WARNING line per distinct refusal of a batch, and none for the one last logged for this
        destination until it accepts a contact again."""
        key = (shop_id, destination)
        if accepted:
            self._refusal_logged.pop(key, None)
        for (status, message), n in refusals.items():
            if self._refusal_logged.get(key) == message:
                continue
            self._refusal_logged[key] = message
            log.warning("dead letter(s) shop=%s destination=%s contacts=%s status=%s error=%s (the same refusal "
                        "is not logged again until the destination accepts a contact)", shop_id, destination, n,
                        status, message)

    def _call(self, shop: ShopSettings, dest: DestinationSettings, destination: Destination, cost: int,
              call: Callable[[], list], stats: SyncStats) -> list:
        """One vendor call within the account's rate limit, retried at once on transient failures."""
        import tenacity

        from adapters.http import JitteredBackoff

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
            try:
                result = call()
            except DestinationError as exc:
                outcome = "retriable" if isinstance(exc, RetriableDestinationError) else "fatal"
                self.metrics.sync_request(shop.id, dest.name, outcome, cost)
                raise
            self.metrics.sync_request(shop.id, dest.name, "ok", cost)
            return result

        def wait_for(state: tenacity.RetryCallState) -> float:
            # jitter: up to the first wait (1 s for the default first wait of 1 s)
            backoff = JitteredBackoff(self.retry_initial_seconds, IMMEDIATE_MAX_WAIT_SECONDS,
                                      jitter=self.retry_initial_seconds)(state)
            error = state.outcome.exception() if state.outcome else None
            return max(backoff, getattr(error, "retry_after", None) or 0)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RetriableDestinationError),
            stop=tenacity.stop_after_attempt(IMMEDIATE_RETRIES), wait=wait_for, sleep=self.sleep, reraise=True,
            before_sleep=lambda s: log.info("retrying shop=%s destination=%s after %s", shop.id, dest.name,
                                            scrub(str(s.outcome.exception()))))
        return retrying(attempt)

    def _backoff(self, attempts: int, error: RetriableDestinationError) -> float:
        delay = min(BACKOFF_CAP_SECONDS, self.backoff_base_seconds * 2 ** (attempts + IMMEDIATE_RETRIES))
        return max(delay * random.uniform(0.5, 1.0), error.retry_after or 0)


def replay_dead_letters(store: Store, now: datetime, shop_id: str | None = None) -> int:
    with store.transaction() as conn:
        return outbox.replay(conn, now, shop_id)

