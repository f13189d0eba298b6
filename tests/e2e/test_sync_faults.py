"""The sync worker against a fake Omnisend that fails 30% of requests (500, or 429 with a
Retry-After) and answers some only after the client has given up: every contact ends right, every
stage-change event is delivered once or recorded as of unknown outcome (never posted twice: Omnisend
does not de-duplicate real-time events, api-docs.omnisend.com/reference/post_events), and requests
never exceed the configured rate."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connector.services import evaluation
from connector.storage import outbox
from connector.domain.orders import Order
from connector.storage.store import Store
from connector.services.sync import SyncWorker
from tests.fakes.omnisend_shop import no_batch_waits, omnisend_shop, seed
from tests.fakes.vendor_server import Faults

RATE_PER_MINUTE = 1200  # 20 a second


def drain_until_empty(worker: SyncWorker, store: Store, deadline: float) -> None:
    while time.monotonic() < deadline:
        worker.drain()
        with store.read() as conn:
            if store.outbox_depth(conn) == 0:
                return
        time.sleep(0.05)  # items rescheduled after a failure come due again shortly
    raise TimeoutError("the outbox did not drain")


@pytest.mark.slow
def test_flaky_slow_vendor_gets_every_change_within_the_rate(database_url):
    faults = Faults(error_share=0.3, retry_after=0.2, slow_share=0.1, slow_seconds=0.8, seed=7)
    now = datetime.now(timezone.utc)
    with omnisend_shop(database_url, faults, events=True, timeout=0.5, rate_per_minute=RATE_PER_MINUTE) as env:
        vendor, settings, store = env.vendor, env.settings, env.store
        shop = settings.shops["acme"]
        seed(store, [Order.build(shop_id="acme", order_id=i, placed_at=now - timedelta(days=5 + i % 30),
                                 total=Decimal(10 + i % 90), email=f"c{i}@example.com") for i in range(120)])
        worker = SyncWorker(store, settings, max_claim=10, retry_initial_seconds=0.05, backoff_base_seconds=0.02,
                            destination_factory=no_batch_waits)
        deadline = time.monotonic() + 90
        evaluation.recompute(store, shop, now)
        drain_until_empty(worker, store, deadline)
        later = now + timedelta(days=40)  # every customer moves on: a second wave, with events
        evaluation.recompute(store, shop, later)
        drain_until_empty(worker, store, deadline)
        snapshot = evaluation.snapshot(store, shop, later)
        with store.read() as conn:
            unknown = [d for d in outbox.dead_letters(conn, "acme") if "outcome unknown" in (d.error or "")]

    failures = [r for r in vendor.requests if r.answered in (429, 500)]
    assert len(failures) > 10, "the fault injection did not happen"
    contacts = vendor.state["contacts"]
    assert {email: c["lifecycle_stage"] for email, c in contacts.items()} == {
        key: e.rfm for key, e in snapshot.evaluations.items()}
    # At least the rfm change of every customer: delivered, or recorded as possibly delivered.
    assert len(vendor.state["events"]) + len(unknown) >= 120
    posts = vendor.state["event_posts"]
    assert len(posts) == len(set(posts))  # no event reached Omnisend twice
    # Requests are spaced 60 / rate apart; one more than the per-second share allows for jitter in arrival.
    assert vendor.max_requests_in_window(1.0) <= RATE_PER_MINUTE // 60 + 1
