"""The sync worker against a real database (SQLite and PostgreSQL) and a recording fake destination."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest

from connector import config
from connector.services import evaluation
from connector.storage import outbox
from connector.errors import FatalDestinationError, RetriableDestinationError
from connector.domain.orders import Order
from connector.domain.ports import Destination, ItemFailure
from connector.services.sync import MAX_ATTEMPTS, SyncWorker
from tests.conftest import NOW

TOML = """
database_url = "sqlite://"
[[shops]]
id = "acme"
platform = "shopify"
webhook_secret = "s"
labels = "en"
  [[shops.destinations]]
  type = "omnisend"
  api_key = "k"
  events = true
  rate_per_minute = 600
  properties = { lifecycle_stage = "rfm", lifecycle_phase = "phases", orders = "orders_365d" }
"""


class FakeDestination(Destination):
    """Records every call; `script` holds exceptions or failure lists to return, in order."""

    type_name = "fake"
    default_rate_per_minute = 600
    max_batch = 100
    supports_events = True

    def __init__(self):
        self.upserts: list[list] = []
        self.events: list = []
        self.script: list = []
        self.in_flight: set[str] = set()
        self.overlaps = 0
        self.lock = threading.Lock()

    def _next(self):
        outcome = self.script.pop(0) if self.script else []
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def upsert_contacts(self, updates):
        with self.lock:
            keys = {u.email for u in updates}
            self.overlaps += len(keys & self.in_flight)
            self.in_flight |= keys
            self.upserts.append(list(updates))
        time.sleep(0.01)
        with self.lock:
            self.in_flight -= keys
        return self._next()

    def send_events(self, events):
        self.events.extend(events)
        return []


class Clock:
    def __init__(self):
        self.now = NOW

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def shop_settings(database_url):
    return config.parse(TOML.replace("sqlite://", database_url), env={})


@pytest.fixture
def fake():
    return FakeDestination()


@pytest.fixture
def clock():
    return Clock()


def worker(store, settings, fake, clock, **kw) -> SyncWorker:
    return SyncWorker(store, settings, clock=clock, sleep=clock.sleep, destination_factory=lambda *_: fake, **kw)


def add_orders(store, *specs):
    with store.transaction() as conn:
        store.upsert_orders(conn, [
            Order.build(shop_id="acme", order_id=f"{email}-{i}", placed_at=NOW - timedelta(days=days),
                        total=Decimal(total), email=email)
            for i, (email, days, total) in enumerate(specs)])


def test_changed_customers_reach_the_destination_in_one_batch_with_labels(store, shop_settings, fake, clock):
    shop = shop_settings.shops["acme"]
    add_orders(store, ("ann@example.com", 5, "100"), ("bob@example.com", 300, "10"))
    evaluation.recompute(store, shop, NOW)
    stats = worker(store, shop_settings, fake, clock).drain()
    assert (stats.sent, stats.requests) == (2, 1)
    written = {u.email: dict(u.properties) for u in fake.upserts[0]}
    assert written == {
        "ann@example.com": {"lifecycle_stage": "Recent customers",
                            "lifecycle_phase": "Conversion", "orders": 1},
        "bob@example.com": {"lifecycle_stage": "About to lose", "lifecycle_phase": "Disengagement", "orders": 1},
    }
    assert fake.events == []  # a first stage is a property, not an event


def test_an_unchanged_recompute_sends_nothing(store, shop_settings, fake, clock):
    shop = shop_settings.shops["acme"]
    add_orders(store, ("ann@example.com", 5, "100"))
    evaluation.recompute(store, shop, NOW)
    worker(store, shop_settings, fake, clock).drain()
    evaluation.recompute(store, shop, NOW)
    assert worker(store, shop_settings, fake, clock).drain().claimed == 0
    assert len(fake.upserts) == 1


def test_a_stage_change_sends_one_event_with_a_stable_id(store, shop_settings, fake, clock):
    shop = shop_settings.shops["acme"]
    add_orders(store, ("ann@example.com", 5, "100"))
    evaluation.recompute(store, shop, NOW)
    worker(store, shop_settings, fake, clock).drain()
    clock.now = NOW + timedelta(days=40)
    evaluation.recompute(store, shop, clock.now)  # 45 days after her order: no longer recent
    worker(store, shop_settings, fake, clock).drain()
    assert [(e.model, e.from_stage, e.to_stage) for e in fake.events] == [
        ("rfm", "Recent customers", "High potential")]
    assert fake.events[0].event_id.startswith("stagesync-acme-")
    assert dict(fake.upserts[-1][0].properties)["lifecycle_stage"] == "High potential"


def test_a_property_set_already_acknowledged_is_not_sent_again(store, shop_settings, fake, clock):
    shop = shop_settings.shops["acme"]
    add_orders(store, ("ann@example.com", 5, "100"))
    evaluation.recompute(store, shop, NOW)
    worker(store, shop_settings, fake, clock).drain()
    with store.transaction() as conn:  # queued again, nothing changed
        store.enqueue(conn, "acme", ["omnisend"], ["ann@example.com"], NOW)
    stats = worker(store, shop_settings, fake, clock).drain()
    assert (stats.claimed, stats.skipped, len(fake.upserts)) == (1, 1, 1)


def test_transient_failures_are_retried_honouring_retry_after(store, shop_settings, fake, clock):
    shop = shop_settings.shops["acme"]
    add_orders(store, ("ann@example.com", 5, "100"))
    evaluation.recompute(store, shop, NOW)
    fake.script = [RetriableDestinationError("429 slow down", status=429, retry_after=20),
                   RetriableDestinationError("503", status=503)]
    started = clock.now
    stats = worker(store, shop_settings, fake, clock).drain()
    assert stats.sent == 1 and len(fake.upserts) == 3
    assert clock.now - started >= timedelta(seconds=20)


def test_the_jitter_of_immediate_retries_is_at_most_the_first_wait(store, shop_settings, fake, clock):
    shop = shop_settings.shops["acme"]
    add_orders(store, ("ann@example.com", 5, "100"))
    evaluation.recompute(store, shop, NOW)
    fake.script = [RetriableDestinationError("503", status=503)] * 2
    started = clock.now
    stats = worker(store, shop_settings, fake, clock, retry_initial_seconds=0.01).drain()
    assert stats.sent == 1 and len(fake.upserts) == 3
    # waits of 0.01-0.02 s then 0.02-0.03 s, inside the rate's 0.1 s spacing: the rate alone sets the pace
    assert clock.now - started == timedelta(seconds=0.2)


def test_a_permanent_refusal_becomes_a_dead_letter_that_can_be_replayed(store, shop_settings, fake, clock):
    shop = shop_settings.shops["acme"]
    add_orders(store, ("ann@example.com", 5, "100"), ("bob@example.com", 5, "100"))
    evaluation.recompute(store, shop, NOW)
    fake.script = [[ItemFailure(0, FatalDestinationError("400 invalid email ann@example.com", status=400))]]
    stats = worker(store, shop_settings, fake, clock).drain()
    assert (stats.sent, stats.dead) == (1, 1)
    with store.read() as conn:
        [letter] = outbox.dead_letters(conn, "acme")
    assert letter.status == 400 and "ann@example.com" not in letter.error and "an***@ex***.com" in letter.error
    with store.transaction() as conn:
        assert outbox.replay(conn, clock.now, "acme") == 1
    assert worker(store, shop_settings, fake, clock).drain().sent == 1


def test_an_item_out_of_attempts_becomes_a_dead_letter(store, shop_settings, fake, clock):
    shop = shop_settings.shops["acme"]
    add_orders(store, ("ann@example.com", 5, "100"))
    evaluation.recompute(store, shop, NOW)
    fake.script = [RetriableDestinationError("500", status=500)] * 100
    w = worker(store, shop_settings, fake, clock)
    for _ in range(MAX_ATTEMPTS + 1):
        w.drain()
        clock.now += timedelta(hours=2)
    with store.read() as conn:
        assert [d.status for d in outbox.dead_letters(conn)] == [500]


def test_requests_are_spaced_to_the_rate_limit(store, shop_settings, fake, clock):
    shop = shop_settings.shops["acme"]
    add_orders(store, *[(f"c{i}@example.com", 5, "100") for i in range(250)])
    evaluation.recompute(store, shop, NOW)
    started = clock.now
    stats = worker(store, shop_settings, fake, clock).drain()
    assert stats.sent == 250 and stats.requests == 3
    # 600 a minute: one request every 0.1 s, so the third starts 0.2 s after the first.
    assert clock.now - started == timedelta(seconds=0.2)


def test_a_redacted_customer_has_the_properties_cleared(store, shop_settings, fake, clock):
    shop = shop_settings.shops["acme"]
    add_orders(store, ("ann@example.com", 5, "100"))
    evaluation.recompute(store, shop, NOW)
    worker(store, shop_settings, fake, clock).drain()
    with store.transaction() as conn:
        store.redact_customer(conn, "acme", ["ann@example.com"])
        store.enqueue(conn, "acme", ["omnisend"], ["ann@example.com"], NOW)
    worker(store, shop_settings, fake, clock).drain()
    assert dict(fake.upserts[-1][0].properties) == {"lifecycle_stage": None, "lifecycle_phase": None, "orders": None}


def test_two_workers_never_send_the_same_contact_at_once(store, shop_settings, fake):
    shop = shop_settings.shops["acme"]
    add_orders(store, *[(f"c{i}@example.com", 5, "100") for i in range(60)])
    evaluation.recompute(store, shop, NOW)
    fake.max_batch = 5
    workers = [SyncWorker(store, shop_settings, destination_factory=lambda *_: fake, worker_id=f"w{i}", max_claim=5)
               for i in range(2)]
    threads = [threading.Thread(target=w.drain) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = [u.email for batch in fake.upserts for u in batch]
    assert sorted(sent) == sorted(f"c{i}@example.com" for i in range(60))
    assert fake.overlaps == 0
