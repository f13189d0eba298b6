"""Refused webhook deliveries through real HTTP (Flask's test client), on both engines: a WARNING
line with the reason and never the secret or the body, the count kept for intake health, and
/metrics series whose labels come from fixed sets whatever a request carries."""

from __future__ import annotations

import logging
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from adapters.platforms import PLATFORMS
from connector.services.intake_health import OTHER_TOPIC, REASONS, UNKNOWN_SHOP, intake_health
from tests.conftest import NOW
from tests.fakes.senders import SECRETS, ShopifySender

PLACED = NOW - timedelta(days=3)


def samples(client) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted labels: value}} of one scrape."""
    found: dict[str, dict[tuple, float]] = {}
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return found


def test_a_bad_signature_is_a_warning_with_its_reason_and_is_counted(client, platform_store, caplog):
    delivery = ShopifySender().order(7001, "ann.lee@example.com", "120.00", PLACED)
    with caplog.at_level(logging.INFO, logger="stagesync.http"):
        answer = client.post("/webhooks/shopify", data=delivery.body.replace(b"120.00", b"1.00"),
                             headers=delivery.headers)
    assert answer.status_code == 401
    (record,) = [r for r in caplog.records if r.name == "stagesync.http"]
    assert record.levelno == logging.WARNING and "rejected=bad_signature" in record.getMessage()
    assert "shop=shopify" in record.getMessage()
    for text in ("ann.lee@example.com", SECRETS["shopify"], delivery.headers["X-Shopify-Hmac-Sha256"], "120.00"):
        assert text not in record.getMessage()
    health = intake_health(platform_store, "shopify", NOW)
    assert health.rejected == {"bad_signature": 1} and health.last_accepted == {}
    with platform_store.read() as conn:
        assert platform_store.stored_orders(conn, "shopify", ["7001"]) == {}


def test_unknown_shops_malformed_and_oversized_bodies_are_counted_by_reason(client, platform_store, caplog):
    shopify = ShopifySender()
    with caplog.at_level(logging.WARNING, logger="stagesync.http"):
        assert client.post("/webhooks/nosuchshop", data=b"{}").status_code == 404
        assert client.post("/webhooks/another-one", data=b"{}").status_code == 404
        malformed = shopify.signed(b'{"id": ', "orders/create")
        assert client.post("/webhooks/shopify", data=malformed.body, headers=malformed.headers).status_code == 400
        assert client.post("/webhooks/shopify", data=b"x" * (1024 * 1024 + 1)).status_code == 413
    assert intake_health(platform_store, UNKNOWN_SHOP, NOW).rejected == {"unknown_shop": 2}
    assert intake_health(platform_store, "shopify", NOW).rejected == {"malformed": 1, "too_large": 1}
    warned = [r.getMessage() for r in caplog.records if r.name == "stagesync.http"]
    assert [m.split("rejected=")[1].split()[0] for m in warned] == ["unknown_shop", "unknown_shop", "malformed",
                                                                   "too_large"]
    assert "shop=nosuchshop" in warned[0]


def test_an_accepted_delivery_notes_its_topic(client, platform_store):
    delivery = ShopifySender().order(7001, "ann@example.com", "120.00", PLACED)
    assert client.post("/webhooks/shopify", data=delivery.body, headers=delivery.headers).status_code == 200
    assert intake_health(platform_store, "shopify", NOW).last_accepted == {"orders/updated": NOW}


def test_intake_gauges_and_counters_are_in_the_scrape(client, platform_store):
    good = ShopifySender().order(7001, "ann@example.com", "120.00", PLACED)
    client.post("/webhooks/shopify", data=good.body, headers=good.headers)
    bad = ShopifySender().order(7002, "bob@example.com", "20.00", PLACED)
    client.post("/webhooks/shopify", data=bad.body, headers=dict(bad.headers, **{"X-Shopify-Hmac-Sha256": "bm9wZQ=="}))
    client.post("/webhooks/nosuchshop", data=b"{}")
    found = samples(client)
    last = found["stagesync_webhook_last_accepted_timestamp_seconds"]
    assert last == {(("shop", "shopify"), ("topic", "orders/updated")): NOW.timestamp()}
    rejected = found["stagesync_webhook_rejected_24h"]
    assert rejected[(("reason", "bad_signature"), ("shop", "shopify"))] == 1
    assert rejected[(("reason", "unknown_shop"), ("shop", UNKNOWN_SHOP))] == 1
    assert rejected[(("reason", "malformed"), ("shop", "woocommerce"))] == 0  # every shop and reason, zeros too
    assert found["stagesync_orders_missed_24h"][(("shop", "shopify"),)] == 0
    counted = found["stagesync_webhook_rejections_total"]
    assert counted == {(("reason", "bad_signature"), ("shop", "shopify")): 1,
                       (("reason", "unknown_shop"), ("shop", UNKNOWN_SHOP)): 1}


def test_odd_shop_ids_and_topics_add_no_series(client, platform_shops):
    before = samples(client)
    odd = ShopifySender()
    for topic in ("orders/../../etc", "x" * 300, "orders/paid\" 1 # {x=\"y\"}"):
        delivery = odd.signed({"id": 1}, "orders/create")
        headers = dict(delivery.headers, **{"X-Shopify-Topic": topic})
        client.post("/webhooks/shopify", data=delivery.body, headers=headers)
    for shop_id in ("evil\"} 1\nx{a=\"", "a" * 200, "SHOPIFY", "%2e%2e"):
        client.post(f"/webhooks/{shop_id}", data=b"{}")
    after = samples(client)
    shops = set(platform_shops.shops) | {UNKNOWN_SHOP}
    topics = {t for name in PLATFORMS for t in getattr(PLATFORMS[name], "TOPICS", ())} | {OTHER_TOPIC}
    for name in ("stagesync_webhook_last_accepted_timestamp_seconds", "stagesync_webhook_rejected_24h",
                 "stagesync_orders_missed_24h", "stagesync_webhook_rejections_total", "stagesync_webhooks_total"):
        for labels in after.get(name, {}):
            values = dict(labels)
            assert values["shop"] in shops
            assert values.get("topic", OTHER_TOPIC) in topics
            assert values.get("reason", "bad_signature") in REASONS
    assert set(after["stagesync_webhook_rejected_24h"]) == set(before["stagesync_webhook_rejected_24h"])
    assert len(after["stagesync_webhook_rejections_total"]) <= len(shops) * len(REASONS)
