"""Fault injection: the sync worker against a local fake vendor that goes down, then answers too
slowly, then throttles (429 with Retry-After, and 500s), then recovers.

The worker (`connector.services.sync.SyncWorker`) talks real HTTP to the fake vendor, on both engines. Time
is a logical clock: real time plus whatever the worker chose to wait. The worker's `sleep` only
moves that clock forward, the loop below jumps it to the next due retry when nothing is due, and
the vendor stamps each request's arrival with it. So backoffs of minutes take no real time, and
`max_requests_in_window` measures exactly what the rate limiter let through. The only real waits
are the vendor's slow answers, which must outlast the destination's real read timeout.

Phases follow the vendor's request count, not the clock, so every run meets the same faults.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from werkzeug.wrappers import Request

from connector import config
from connector.storage import outbox
from connector.services.ingest import receive
from connector.services.properties import desired_properties
from connector.storage.store import Store
from connector.services.sync import SyncWorker
from tests.fakes.vendor_server import FakeVendor, Recorded, _json, omnisend_vendor
from tests.fakes.senders import SECRETS, ShopifySender

CONTACTS = 24
RATE_PER_MINUTE = 600  # one request every 0.1 s
READ_TIMEOUT = 0.4  # seconds; the slow phase answers after SLOW_SECONDS
SLOW_SECONDS = 0.8
RETRY_AFTER = 2  # seconds, on the 429s
REAL_TIME_LIMIT = 40  # seconds of real time for one drain, whatever happens


def phase(n: int) -> str:
    """What the vendor does with its n-th request (1-based)."""
    if n <= 6:
        return "down"  # 503 to everything
    if n <= 10:
        return "slow"  # answers only after the client gave up
    if n <= 25:
        return ("500", "429", "ok")[n % 3]  # throttling, with server errors in between
    return "ok"


class LogicalClock:
    """Real time plus what the worker slept or the test skipped; never waits for real."""

    def __init__(self):
        self.started_real = time.monotonic()
        self.started = datetime.now(timezone.utc)
        self.skipped = 0.0
        self.lock = threading.Lock()

    def seconds(self) -> float:
        with self.lock:
            return time.monotonic() - self.started_real + self.skipped

    def now(self) -> datetime:
        return self.started + timedelta(seconds=self.seconds())

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.skipped += max(0.0, seconds)

    def advance_to(self, moment: datetime) -> None:
        self.sleep((moment - self.now()).total_seconds())


class PhasedVendor(FakeVendor):
    """A fake vendor whose faults follow its request count, stamping arrivals with the logical clock."""

    def __init__(self, base: FakeVendor, clock: LogicalClock, phases=phase):
        super().__init__(routes=base.routes, faults=base.faults)
        self.clock, self.phases = clock, phases

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self.lock:
            recorded = Recorded(request.method, request.path, dict(request.headers), request.get_data(),
                                self.clock.seconds())
            self.requests.append(recorded)
            mode = self.phases(len(self.requests))
        recorded.mode = mode
        if mode == "down":
            response = _json({"error": "down for maintenance"}, 503)
        elif mode == "500":
            response = _json({"error": "internal error"}, 500)
        elif mode == "429":
            response = _json({"error": "too many requests"}, 429, {"Retry-After": str(RETRY_AFTER)})
        else:
            if mode == "slow":
                time.sleep(SLOW_SECONDS)  # real: the client's real read timeout must expire first
            response = self._answer(request, 1.0, 1.0)  # the routes, no random fault
        recorded.answered = response.status_code
        return response(environ, start_response)


TOML = """
database_url = "{database_url}"
[[shops]]
id = "acme"
platform = "shopify"
webhook_secret = "{secret}"
currency = "EUR"
  [[shops.destinations]]
  type = "{kind}"
  base_url = "{base_url}"
  rate_per_minute = {rate}
  timeout = {timeout}
  properties = {{ lifecycle_stage = "rfm", orders = "orders_total" }}
  {options}
"""


def settings_for(database_url: str, kind: str, base_url: str, rate: int = RATE_PER_MINUTE, options: str = ""):
    return config.parse(TOML.format(database_url=database_url, secret=SECRETS["shopify"], kind=kind,
                                    base_url=base_url, rate=rate, timeout=READ_TIMEOUT, options=options), env={})


def seed(store: Store, settings, contacts: int) -> None:
    """`contacts` customers with one or two orders each, through the webhook pipeline."""
    shop, sender = settings.shops["acme"], ShopifySender()
    now = datetime.now(timezone.utc)
    for n in range(contacts):
        for k in range(1 + n % 2):
            delivery = sender.order(10_000 + 10 * n + k, f"contact{n}@example.com", "30.00",
                                    now - timedelta(days=5 + 40 * k))
            assert receive(store, shop, delivery.headers, delivery.body, now).status == "accepted"


def drain(worker: SyncWorker, store: Store, clock: LogicalClock) -> None:
    """Run the worker until the outbox is empty, jumping the clock to each next due retry."""
    deadline = time.monotonic() + REAL_TIME_LIMIT
    while time.monotonic() < deadline:
        if worker.run_once().claimed:
            continue
        with store.read() as conn:
            due = outbox.next_due(conn)
        if due is None:
            return
        clock.advance_to(due)
    raise TimeoutError(f"the outbox did not drain within {REAL_TIME_LIMIT} s of real time")


@pytest.fixture
def store(database_url):
    opened = Store.open(database_url)
    yield opened
    opened.close()


def test_an_outage_then_slow_answers_then_throttling_lose_nothing_and_keep_to_the_rate(store, database_url):
    clock = LogicalClock()
    with PhasedVendor(omnisend_vendor(), clock) as vendor:
        settings = settings_for(database_url, "omnisend", vendor.url, options='api_key = "test-omnisend-key"')
        seed(store, settings, CONTACTS)
        # One contact per call, so that every contact is a request of its own (POST /contacts).
        worker = SyncWorker(store, settings, clock=clock.now, sleep=clock.sleep, max_claim=1)
        drain(worker, store, clock)

    modes = [r.mode for r in vendor.requests]
    assert {"down", "slow", "500", "429", "ok"} <= set(modes), "a fault phase was never reached"
    with store.read() as conn:
        assert store.outbox_depth(conn) == 0 and outbox.dead_letters(conn) == []
        states = store.load_states(conn, "acme")
    # Nothing lost: every contact holds exactly what its stored stages say.
    shop = settings.shops["acme"]
    expected = {key: desired_properties(state, shop, shop.destinations[0]) for key, state in states.items()}
    assert len(expected) == CONTACTS and vendor.state["contacts"] == expected
    # Nothing sent out of the rate: at most rate x window requests in any sliding window (+1: the
    # limiter spaces the starts of requests, their arrivals jitter by a few milliseconds)...
    for window in (0.5, 1.0, 2.0, 60.0):
        assert vendor.max_requests_in_window(window) <= RATE_PER_MINUTE * window / 60 + 1, window
    # ...and nothing before the Retry-After of a 429 has passed.
    after_429 = [(a.at, b.at) for a, b in zip(vendor.requests, vendor.requests[1:]) if a.answered == 429]
    assert after_429 and all(later - at >= RETRY_AFTER for at, later in after_429)


def test_requests_of_one_call_are_spaced_to_the_rate_too(store, database_url):
    clock = LogicalClock()
    hook = FakeVendor()
    hook.route("POST", r"/hook", lambda vendor, request, match: _json({"ok": True}))
    with PhasedVendor(hook, clock, phases=lambda n: "ok") as vendor:
        url = f"{vendor.url}/hook"
        settings = settings_for(database_url, "webhook", url,
                                options=f'url = "{url}"\n  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"')
        seed(store, settings, CONTACTS)
        drain(SyncWorker(store, settings, clock=clock.now, sleep=clock.sleep), store, clock)
    assert len(vendor.requests) == CONTACTS and json.loads(vendor.requests[0].body)["shop"] == "acme"
    assert vendor.max_requests_in_window(1.0) <= RATE_PER_MINUTE / 60 + 1
