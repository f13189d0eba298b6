"""Destinations get the address as the shop last spelled it; customers stay keyed by the normalised one
(real SQLite and PostgreSQL). Omnisend's email identifier is case-sensitive
(api-docs.omnisend.com/reference/contacts: "treats uppercase and lowercase letters as distinct")."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from connector.services import evaluation
from connector.domain.orders import Order, email_as_written
from tests.conftest import NOW
from tests.integration.test_sync import FakeDestination, clock, shop_settings, worker  # noqa: F401


def _order(store, order_id: str, email: str, days_ago: int) -> None:
    with store.transaction() as conn:
        store.upsert_orders(conn, [Order.build(shop_id="acme", order_id=order_id, email=email, total=Decimal("50"),
                                               placed_at=NOW - timedelta(days=days_ago))])


def test_the_spelling_is_kept_only_when_it_is_not_the_normalised_address():
    assert email_as_written("  Alice@Example.com ") == "Alice@Example.com"
    assert email_as_written("alice@example.com") is None
    assert email_as_written(None) is None
    order = Order.build(shop_id="acme", order_id="1", email="Alice@Example.com", total="1", placed_at=NOW)
    assert (order.customer_key, order.email_spelling) == ("alice@example.com", "Alice@Example.com")


def test_the_latest_orders_spelling_is_sent_and_a_new_spelling_is_sent_again(store, shop_settings, clock):
    fake = FakeDestination()
    shop = shop_settings.shops["acme"]
    _order(store, "1", "Alice@Example.com", 30)
    evaluation.recompute(store, shop, NOW)
    worker(store, shop_settings, fake, clock).drain()
    assert [u.email for u in fake.upserts[-1]] == ["Alice@Example.com"]

    _order(store, "0", "alice@EXAMPLE.com", 60)  # an older order does not change the spelling
    _order(store, "2", "ALICE@example.com", 2)
    evaluation.recompute(store, shop, NOW)
    worker(store, shop_settings, fake, clock).drain()
    assert [u.email for u in fake.upserts[-1]] == ["ALICE@example.com"]

    with store.transaction() as conn:  # nothing changed since: nothing is sent
        store.enqueue(conn, "acme", ["omnisend"], ["alice@example.com"], NOW)
    before = len(fake.upserts)
    worker(store, shop_settings, fake, clock).drain()
    assert len(fake.upserts) == before


def test_a_new_spelling_alone_is_sent_though_no_property_changed(store, shop_settings, clock):
    fake = FakeDestination()
    shop = shop_settings.shops["acme"]
    _order(store, "1", "bo@example.com", 3)
    evaluation.recompute(store, shop, NOW)
    worker(store, shop_settings, fake, clock).drain()
    with store.transaction() as conn:  # the same order, its address now spelled by the shop in capitals
        store.upsert_order(conn, Order.build(shop_id="acme", order_id="1", email="Bo@Example.com", total="50",
                                             placed_at=NOW - timedelta(days=3), updated_at=NOW))
        store.enqueue(conn, "acme", ["omnisend"], ["bo@example.com"], NOW)
    worker(store, shop_settings, fake, clock).drain()
    assert [u.email for u in fake.upserts[-1]] == ["Bo@Example.com"]
