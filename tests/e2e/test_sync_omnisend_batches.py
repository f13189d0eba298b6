"""The sync worker against the local fake Omnisend over real HTTP: a batch is read back until finished,
a contact Omnisend refused inside it becomes a dead letter with Omnisend's reason, the others are synced
(api-docs.omnisend.com/reference/post_batches: "Creating batches is an asynchronous process")."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from connector import config
from connector.services import evaluation
from connector.storage import outbox
from connector.domain.orders import Order
from connector.storage.store import Store
from connector.services.sync import SyncWorker
from tests.fakes.vendor_server import omnisend_vendor

TOML = """
[[shops]]
id = "acme"
platform = "shopify"
webhook_secret = "s"
  [[shops.destinations]]
  type = "omnisend"
  api_key = "batch-test-key"
  base_url = "{url}"
  rate_per_minute = 6000
"""


def test_a_contact_refused_inside_a_batch_is_a_dead_letter_with_omnisends_reason(database_url):
    now = datetime.now(timezone.utc)
    emails = ["ann@example.com", "bad@example.com", "cy@example.com"]
    with omnisend_vendor() as vendor:
        vendor.state["refuse"] = {"bad@example.com": "identifiers[0].id: the email domain cannot receive mail"}
        settings = config.parse(TOML.format(url=vendor.url), env={})
        settings = settings.__class__(database_url=database_url, shops=settings.shops)
        store = Store.open(database_url)
        with store.transaction() as conn:
            store.upsert_orders(conn, [Order.build(shop_id="acme", order_id=str(i), email=email, total=Decimal("30"),
                                                   placed_at=now - timedelta(days=3)) for i, email in enumerate(emails)])
        evaluation.recompute(store, settings.shops["acme"], now)
        stats = SyncWorker(store, settings).drain()
        with store.read() as conn:
            letters = outbox.dead_letters(conn, "acme")
        store.close()
    assert (stats.sent, stats.dead) == (2, 1)
    assert set(vendor.state["contacts"]) == {"ann@example.com", "cy@example.com"}
    [letter] = letters
    assert letter.customer_key == "bad@example.com" and letter.status == 400
    assert "cannot receive mail" in letter.error and "bad@example.com" not in letter.error
    reads = [r.path for r in vendor.requests if r.method == "GET"]
    assert reads == ["/batches/b-1", "/batches/b-1", "/batches/b-1/items"]  # in progress, finished, its items
