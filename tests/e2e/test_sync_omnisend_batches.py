"""The sync worker against the local fake Omnisend over real HTTP: a batch is read back until finished,
a contact Omnisend refused inside it becomes a dead letter with Omnisend's reason, the others are synced
(api-docs.omnisend.com/reference/post_batches: "Creating batches is an asynchronous process")."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from connector.services import evaluation
from connector.storage import outbox
from connector.domain.orders import Order
from connector.services.sync import SyncWorker
from tests.fakes.omnisend_shop import no_batch_waits, omnisend_shop, seed


def test_a_contact_refused_inside_a_batch_is_a_dead_letter_with_omnisends_reason(database_url):
    now = datetime.now(timezone.utc)
    emails = ["ann@example.com", "bad@example.com", "cy@example.com"]
    with omnisend_shop(database_url, rate_per_minute=6000) as env:
        vendor, settings, store = env.vendor, env.settings, env.store
        vendor.state["refuse"] = {"bad@example.com": "identifiers[0].id: the email domain cannot receive mail"}
        seed(store, [Order.build(shop_id="acme", order_id=str(i), email=email, total=Decimal("30"),
                                 placed_at=now - timedelta(days=3)) for i, email in enumerate(emails)])
        evaluation.recompute(store, settings.shops["acme"], now)
        stats = SyncWorker(store, settings, destination_factory=no_batch_waits).drain()
        with store.read() as conn:
            letters = outbox.dead_letters(conn, "acme")
    assert (stats.sent, stats.dead) == (2, 1)
    assert set(vendor.state["contacts"]) == {"ann@example.com", "cy@example.com"}
    [letter] = letters
    assert letter.customer_key == "bad@example.com" and letter.status == 400
    assert "cannot receive mail" in letter.error and "bad@example.com" not in letter.error
    reads = [r.path for r in vendor.requests if r.method == "GET"]
    assert reads == ["/batches/b-1", "/batches/b-1", "/batches/b-1/items"]  # in progress, finished, its items
