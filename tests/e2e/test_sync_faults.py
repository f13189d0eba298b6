"""The sync worker against a fake Omnisend that fails 30% of requests (500, or 429 with a
Retry-After) and answers some only after the client has given up: every change is delivered,
every contact ends right, and requests never exceed the configured rate."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from connector import config
from connector.services import evaluation
from connector.domain.orders import Order
from connector.storage.store import Store
from connector.services.sync import SyncWorker
from tests.fakes.vendor_server import Faults, omnisend_vendor

RATE_PER_MINUTE = 1200  # 20 a second
TOML = """
[[shops]]
id = "acme"
platform = "shopify"
webhook_secret = "s"
  [[shops.destinations]]
  type = "omnisend"
  api_key = "fault-test-key"
  base_url = "{url}"
  events = true
  timeout = 0.5
  rate_per_minute = {rate}
"""


def drain_until_empty(worker: SyncWorker, store: Store, deadline: float) -> None:
    while time.monotonic() < deadline:
        worker.drain()
        with store.read() as conn:
            if store.outbox_depth(conn) == 0:
                return
        time.sleep(0.05)  # items rescheduled after a failure come due again shortly
    raise TimeoutError("the outbox did not drain")


def test_flaky_slow_vendor_gets_every_change_within_the_rate(database_url):
    faults = Faults(error_share=0.3, retry_after=0.2, slow_share=0.1, slow_seconds=0.8, seed=7)
    now = datetime.now(timezone.utc)
    with omnisend_vendor(faults) as vendor:
        settings = config.parse(TOML.format(url=vendor.url, rate=RATE_PER_MINUTE), env={})
        settings = settings.__class__(database_url=database_url, shops=settings.shops)
        shop = settings.shops["acme"]
        store = Store.open(database_url)
        with store.transaction() as conn:
            store.upsert_orders(conn, [
                Order.build(shop_id="acme", order_id=i, placed_at=now - timedelta(days=5 + i % 30),
                            total=Decimal(10 + i % 90), email=f"c{i}@example.com") for i in range(120)])
        worker = SyncWorker(store, settings, max_claim=10, retry_initial_seconds=0.05, backoff_base_seconds=0.02)
        deadline = time.monotonic() + 90
        evaluation.recompute(store, shop, now)
        drain_until_empty(worker, store, deadline)
        later = now + timedelta(days=40)  # every customer moves on: a second wave, with events
        evaluation.recompute(store, shop, later)
        drain_until_empty(worker, store, deadline)
        snapshot = evaluation.snapshot(store, shop, later)
        store.close()

    failures = [r for r in vendor.requests if r.answered in (429, 500)]
    assert len(failures) > 10, "the fault injection did not happen"
    contacts = vendor.state["contacts"]
    assert {email: c["lifecycle_stage"] for email, c in contacts.items()} == {
        key: e.rfm for key, e in snapshot.evaluations.items()}
    assert len(vendor.state["events"]) >= 120  # at least the rfm change of every customer
    # Requests are spaced 60 / rate apart; one more than the per-second share allows for jitter in arrival.
    assert vendor.max_requests_in_window(1.0) <= RATE_PER_MINUTE // 60 + 1
