"""A contact the destination can never hold (Mailchimp: members need an email,
https://mailchimp.com/developer/marketing/api/list-members/add-or-update-list-member/) is skipped once with
its reason, not dead-lettered at every recompute (real SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from connector.services import evaluation
from connector.storage import outbox
from connector.domain.orders import Order
from tests.conftest import NOW
from tests.integration.test_sync import FakeDestination, clock, shop_settings, worker  # noqa: F401


class EmailOnly(FakeDestination):
    def cannot_hold(self, email, phone):
        return None if email else "members need an email; this customer has a phone only"


def _orders(store, *specs):
    with store.transaction() as conn:
        store.upsert_orders(conn, [Order.build(shop_id="acme", order_id=f"o{i}", total=Decimal("40"), email=email,
                                               phone=phone, placed_at=NOW - timedelta(days=days))
                                   for i, (email, phone, days) in enumerate(specs)])


def test_a_phone_only_customer_is_skipped_once_with_its_reason_and_never_dead_lettered(store, shop_settings, clock,
                                                                                      caplog):
    fake = EmailOnly()
    shop = shop_settings.shops["acme"]
    _orders(store, (None, "+33612345678", 5), ("ann@example.com", None, 5))
    evaluation.recompute(store, shop, NOW)
    with caplog.at_level(logging.INFO, logger="stagesync.sync"):
        stats = worker(store, shop_settings, fake, clock).drain()
        assert (stats.sent, stats.skipped, stats.dead) == (1, 1, 0)
        assert [u.email for batch in fake.upserts for u in batch] == ["ann@example.com"]
        # Later recomputes move the phone-only customer on: still skipped, not logged again, never dead.
        for days in (40, 200):
            clock.now = NOW + timedelta(days=days)
            evaluation.recompute(store, shop, clock.now)
            worker(store, shop_settings, fake, clock).drain()
    skips = [r for r in caplog.records if "skipped" in r.getMessage() and "phone only" in r.getMessage()]
    assert len(skips) == 1
    assert all(u.phone is None for batch in fake.upserts for u in batch)
    with store.read() as conn:
        assert outbox.dead_letters(conn, "acme") == []
