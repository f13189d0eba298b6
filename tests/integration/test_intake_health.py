"""Intake health on both engines: what poll brought that no webhook did, refused deliveries by
reason, the last verified delivery per topic, and the 24-hour window around a passed `now`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from connector.errors import SignatureError
from connector.services.backfill import backfill, poll
from connector.services.ingest import receive
from connector.services.intake_health import (
    MISSED_GRACE, UNKNOWN_SHOP, intake_health, note_accepted, note_rejected,
)
from connector.storage.schema import order_arrivals, webhook_rejections
from tests.conftest import NOW
from tests.fakes.platforms import FakeShopify, shopify_node
from tests.fakes.senders import ShopifySender
from tests.integration.test_backfill import SHOP, rsps, shopify  # noqa: F401 - rsps is a fixture

WEBHOOK_AT = NOW - timedelta(days=2)  # the shop's webhooks arrived from then on


def webhook(store, order_id: int, placed, at):
    delivery = ShopifySender(clock=at).order(order_id, f"buyer{order_id}@example.com", "40.00", placed)
    return receive(store, SHOP, delivery.headers, delivery.body, at)


def node(order_id: int, placed):
    return shopify_node(order_id, f"buyer{order_id}@example.com", "40.00", placed, placed)


def test_an_order_poll_brought_and_no_webhook_did_is_reported_missed(store, rsps):
    assert webhook(store, 1001, WEBHOOK_AT, WEBHOOK_AT).status == "accepted"
    FakeShopify(rsps, [node(1001, WEBHOOK_AT), node(1002, NOW - timedelta(hours=1))])
    assert poll(store, SHOP, NOW, client=shopify()).stored == 1  # 1002 is new, 1001 was stored by its webhook

    health = intake_health(store, "acme", NOW + timedelta(minutes=1))
    assert [(m.order_id, m.via, m.arrived_at) for m in health.missed] == [("1002", "poll", NOW)]
    assert health.last_accepted == {"orders/updated": WEBHOOK_AT} and health.webhooks_since == WEBHOOK_AT
    (line,) = health.problems()
    assert line.startswith("acme: 1 order(s) in the last 24 h came by poll, never by webhook (1002)")
    assert health.as_json()["missed"] == [{"order_id": "1002", "via": "poll", "arrived_at": "2026-06-01T12:00:00Z",
                                           "placed_at": "2026-06-01T11:00:00Z"}]


def test_a_webhook_arriving_after_poll_does_not_make_the_order_unmissed(store, rsps):
    """Chosen rule: an order is missed for how it first arrived; a late webhook (a retry of a failed
    delivery, or one stuck in the platform's queue) is itself worth a look."""
    webhook(store, 1001, WEBHOOK_AT, WEBHOOK_AT)
    placed = NOW - timedelta(hours=1)
    FakeShopify(rsps, [node(1002, placed)])
    poll(store, SHOP, NOW, client=shopify())
    assert webhook(store, 1002, placed, NOW + timedelta(minutes=2)).status in ("accepted", "duplicate")
    assert [m.order_id for m in intake_health(store, "acme", NOW + timedelta(minutes=3)).missed] == ["1002"]


def test_a_missed_order_counts_for_24_hours_after_poll_brought_it(store, rsps):
    webhook(store, 1001, WEBHOOK_AT, WEBHOOK_AT)
    FakeShopify(rsps, [node(1002, NOW - timedelta(hours=1))])
    poll(store, SHOP, NOW, client=shopify())
    assert intake_health(store, "acme", NOW - timedelta(microseconds=1)).missed == []  # not arrived yet
    assert len(intake_health(store, "acme", NOW).missed) == 1
    assert len(intake_health(store, "acme", NOW + timedelta(hours=24) - timedelta(microseconds=1)).missed) == 1
    assert intake_health(store, "acme", NOW + timedelta(hours=24)).missed == []


def test_orders_placed_before_webhooks_arrived_are_not_missed(store, rsps):
    """A first backfill brings the history, and a shop with no webhook at all (WiziShop) is fed by
    poll alone: neither is a webhook that went missing."""
    FakeShopify(rsps, [node(1001, NOW - timedelta(days=3)), node(1002, NOW - timedelta(hours=5))])
    backfill(store, SHOP, NOW - timedelta(hours=1), client=shopify())
    assert intake_health(store, "acme", NOW).missed == []  # no webhook ever: nothing was expected
    webhook(store, 1003, NOW - timedelta(hours=4), NOW - timedelta(hours=4))
    health = intake_health(store, "acme", NOW)
    assert health.missed == [] and health.problems() == []  # both were placed before the first webhook


def test_backfill_brings_a_missed_order_too(store, rsps):
    webhook(store, 1001, WEBHOOK_AT, WEBHOOK_AT)
    FakeShopify(rsps, [node(1001, WEBHOOK_AT), node(1002, NOW - timedelta(hours=3))])
    backfill(store, SHOP, NOW, client=shopify())
    assert [(m.order_id, m.via) for m in intake_health(store, "acme", NOW).missed] == [("1002", "backfill")]


def test_an_order_poll_finds_within_minutes_of_its_placing_is_not_missed(store, rsps):
    webhook(store, 1001, WEBHOOK_AT, WEBHOOK_AT)
    FakeShopify(rsps, [node(1002, NOW - MISSED_GRACE + timedelta(seconds=1)), node(1003, NOW - MISSED_GRACE)])
    poll(store, SHOP, NOW, client=shopify())
    missed = intake_health(store, "acme", NOW).missed
    assert [m.order_id for m in missed] == ["1003"]  # 1002's webhook may still be on its way


def test_refused_deliveries_are_counted_by_reason_in_the_24_hours_before_now(store):
    for _ in range(3):
        note_rejected(store, "acme", "bad_signature", NOW - timedelta(hours=2))
    note_rejected(store, "acme", "malformed", NOW - timedelta(hours=23, minutes=58))
    note_rejected(store, "acme", "malformed", NOW - timedelta(hours=24, minutes=2))  # before the window
    note_rejected(store, "acme", "too_large", NOW + timedelta(minutes=2))  # after `now`
    note_rejected(store, None, "unknown_shop", NOW - timedelta(minutes=30))
    health = intake_health(store, "acme", NOW)
    assert health.rejected == {"bad_signature": 3, "malformed": 1}
    assert intake_health(store, UNKNOWN_SHOP, NOW).rejected == {"unknown_shop": 1}
    lines = health.problems()
    assert lines == [
        "acme: 3 webhook deliveries refused in the last 24 h: bad or missing signature: the platform signs with "
        "another secret than the shop's webhook_secret",
        "acme: 1 webhook deliveries refused in the last 24 h: signed but malformed: the log's WARNING lines "
        "name the field"]
    assert intake_health(store, "acme", NOW + timedelta(hours=21)).rejected == {"bad_signature": 3, "too_large": 1}
    assert intake_health(store, "acme", NOW + timedelta(hours=21)).as_json()["rejected"] == {"bad_signature": 3,
                                                                                            "too_large": 1}
    with pytest.raises(ValueError, match="unknown rejection reason"):
        note_rejected(store, "acme", "whatever", NOW)


def test_refusals_are_kept_as_counts_per_minute_and_pruned_after_two_days(store):
    for seconds in range(0, 50, 5):  # ten refusals in one minute: one row
        note_rejected(store, "acme", "bad_signature", NOW + timedelta(seconds=seconds))
    with store.read() as conn:
        assert conn.execute(select(webhook_rejections.c.count)).scalars().all() == [10]
    note_rejected(store, "acme", "bad_signature", NOW + timedelta(days=2, minutes=1))  # a new minute prunes
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(webhook_rejections)).scalar_one() == 1


def test_the_last_verified_delivery_of_a_topic_is_noted_about_once_a_minute(store):
    note_accepted(store, SHOP, "orders/paid", NOW)
    note_accepted(store, SHOP, "orders/paid", NOW + timedelta(seconds=30))  # within the minute: not written
    note_accepted(store, SHOP, "no/such-topic", NOW)
    assert intake_health(store, "acme", NOW + timedelta(minutes=1)).last_accepted == {
        "orders/paid": NOW, "other": NOW}
    note_accepted(store, SHOP, "orders/paid", NOW + timedelta(minutes=1, seconds=1))
    health = intake_health(store, "acme", NOW + timedelta(minutes=2))
    assert health.last_accepted["orders/paid"] == NOW + timedelta(minutes=1, seconds=1)
    assert health.webhooks_since == NOW


def test_a_refused_signature_stores_nothing_of_the_order(store):
    delivery = ShopifySender().order(1009, "ann@example.com", "10.00", NOW - timedelta(hours=1))
    with pytest.raises(SignatureError):
        receive(store, SHOP, delivery.headers, delivery.body.replace(b"10.00", b"1.00"), NOW)
    assert intake_health(store, "acme", NOW).last_accepted == {}
    with store.read() as conn:
        assert store.stored_orders(conn, "acme", ["1009"]) == {}


def test_first_arrivals_are_noted_for_recent_orders_only_and_forgotten_after_a_week(store, rsps):
    FakeShopify(rsps, [node(1001, NOW - timedelta(days=8)), node(1002, NOW - timedelta(days=1))])
    backfill(store, SHOP, NOW, client=shopify())
    with store.read() as conn:
        assert conn.execute(select(order_arrivals.c.order_id)).scalars().all() == ["1002"]
    FakeShopify(rsps, [])
    poll(store, SHOP, NOW + timedelta(days=7, seconds=1), client=shopify())
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(order_arrivals)).scalar_one() == 0
