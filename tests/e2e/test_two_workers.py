"""Two `stagesync worker` processes on one PostgreSQL, one destination account: no contact is
sent by both at once, every contact arrives, and together they keep to the account's rate."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from connector import config
from connector.services import evaluation
from connector.domain.orders import Order
from connector.storage.store import Store
from tests.conftest import fresh_database_url
from tests.e2e.server import STAGESYNC
from tests.fakes.vendor_server import Faults, FakeVendor, _json

CONTACTS = 60
RATE_PER_MINUTE = 600  # 10 a second, for both workers together
TOML = """
database_url = "{database_url}"
[[shops]]
id = "acme"
platform = "shopify"
webhook_secret = "s"
  [[shops.destinations]]
  type = "webhook"
  url = "{url}/hook"
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
  rate_per_minute = {rate}
"""


def test_two_worker_processes_share_the_rate_and_never_send_a_contact_twice_at_once(tmp_path, request):
    database_url = fresh_database_url("postgresql", tmp_path, request)
    # Every answer takes 0.15 s, so two sends of one contact at once would overlap in time.
    vendor = FakeVendor(faults=Faults(slow_share=1.0, slow_seconds=0.15))
    vendor.route("POST", r"/hook", lambda v, req, m: _json({"ok": True}))
    now = datetime.now(timezone.utc)
    with vendor:
        path = tmp_path / "stagesync.toml"
        path.write_text(TOML.format(database_url=database_url, url=vendor.url, rate=RATE_PER_MINUTE))
        settings = config.load(path)
        store = Store.open(database_url)
        with store.transaction() as conn:
            store.upsert_orders(conn, [Order.build(shop_id="acme", order_id=i, placed_at=now - timedelta(days=3),
                                                   total=Decimal(20), email=f"c{i}@example.com")
                                       for i in range(CONTACTS)])
        evaluation.recompute(store, settings.shops["acme"], now)
        workers = [subprocess.Popen([*STAGESYNC, "--config", str(path), "worker"], env=os.environ.copy(),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                with store.read() as conn:
                    if store.outbox_depth(conn) == 0:
                        break
                time.sleep(0.2)
        finally:
            for worker in workers:
                worker.terminate()
                worker.wait(timeout=20)
        store.close()

    sent = [(r.json["email"], r.at, r.finished) for r in vendor.requests if r.path == "/hook"]
    assert sorted(email for email, _, _ in sent) == sorted(f"c{i}@example.com" for i in range(CONTACTS))
    by_contact: dict[str, list] = {}
    for email, start, end in sent:
        by_contact.setdefault(email, []).append((start, end))
    assert all(len(spans) == 1 for spans in by_contact.values()), "a contact was sent twice"
    # Together within the rate: 10 a second (+1 for the jitter of arrivals at a window's edge).
    assert vendor.max_requests_in_window(1.0) <= RATE_PER_MINUTE // 60 + 1
    assert vendor.max_requests_in_window(6.0) <= RATE_PER_MINUTE // 10 + 1
