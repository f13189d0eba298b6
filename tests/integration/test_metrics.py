"""GET /metrics after a known sequence of really signed webhooks and sync runs, on both engines."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from connector import config
from connector.web.app import create_app
from connector.errors import FatalDestinationError
from connector.logs import JsonFormatter
from connector.web.metrics import metrics_of
from connector.storage.outbox import replay
from connector.domain.ports import Destination
from connector.services.sync import SyncWorker
from tests.conftest import NOW
from tests.fakes.senders import SECRETS, ShopifySender, shops_toml

PLACED = NOW - timedelta(days=3)


class ScriptedDestination(Destination):
    """Refuses every call while `refuse` is set; records what it was asked."""

    type_name = "scripted"
    default_rate_per_minute = 60_000
    max_batch = 100

    def __init__(self):
        self.refuse = False
        self.calls = 0

    def upsert_contacts(self, updates):
        self.calls += 1
        if self.refuse:
            raise FatalDestinationError("400 Bad Request: invalid property", status=400, destination="log")
        return []


def scrape(client) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one scrape."""
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain; version=")  # the Prometheus text format
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.get_data(as_text=True)) for s in family.samples}


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def send_known_sequence(client) -> None:
    shopify = ShopifySender()
    ann = shopify.order(7001, "ann@example.com", "120.00", PLACED)
    answers = [
        client.post("/webhooks/shopify", data=ann.body, headers=ann.headers),  # accepted
        client.post("/webhooks/shopify", data=ann.body, headers=ann.headers),  # duplicate
    ]
    bob = shopify.order(7002, "bob@example.com", "30.00", PLACED)
    answers.append(client.post("/webhooks/shopify", data=bob.body, headers=bob.headers))  # accepted
    test_order = shopify.order(7003, "cy@example.com", "10.00", PLACED, test=True)
    answers.append(client.post("/webhooks/shopify", data=test_order.body, headers=test_order.headers))  # ignored
    tampered = shopify.order(7004, "dee@example.com", "10.00", PLACED)
    answers.append(client.post("/webhooks/shopify", data=tampered.body.replace(b"10.00", b"1.00"),
                               headers=tampered.headers))  # 401
    malformed = shopify.signed(b'{"id": ', "orders/create")
    answers.append(client.post("/webhooks/shopify", data=malformed.body, headers=malformed.headers))  # 400
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 401, 400]
    assert [a.get_json().get("status") for a in answers[:4]] == ["accepted", "duplicate", "accepted", "ignored"]


def test_webhook_answers_are_counted_by_platform_code_and_status(app):
    client = app.test_client()
    send_known_sequence(client)
    samples = scrape(client)
    webhooks = {labels: v for (name, labels), v in samples.items() if name == "stagesync_webhooks_total"}
    assert webhooks == {
        tuple(sorted(dict(shop="shopify", platform="shopify", code=code, status=status).items())): n
        for code, status, n in [("200", "accepted", 2), ("200", "duplicate", 1), ("200", "ignored", 1),
                                ("401", "bad_signature", 1), ("400", "malformed", 1)]}
    assert value(samples, "stagesync_http_request_duration_seconds_count",
                 method="POST", route="/webhooks/<shop_id>", status="2xx") == 4
    assert value(samples, "stagesync_http_request_duration_seconds_bucket",
                 method="POST", route="/webhooks/<shop_id>", status="4xx", le="+Inf") == 2


def test_database_levels_are_read_at_scrape_time_for_every_configured_shop(app):
    client = app.test_client()
    send_known_sequence(client)
    samples = scrape(client)
    assert value(samples, "stagesync_database_up") == 1
    assert value(samples, "stagesync_orders_stored", shop="shopify") == 2  # the test order is not stored
    assert value(samples, "stagesync_orders_stored", shop="woocommerce") == 0
    assert value(samples, "stagesync_outbox_depth", shop="shopify", destination="log") == 2  # ann and bob
    assert value(samples, "stagesync_outbox_depth", shop="standard", destination="log") == 0
    assert value(samples, "stagesync_dead_letters", shop="shopify", destination="log") == 0
    assert value(samples, "stagesync_sync_last_success_timestamp_seconds", shop="shopify", destination="log") is None


def test_sync_requests_dead_letters_and_last_success_are_counted(app, platform_store, platform_shops):
    client = app.test_client()
    send_known_sequence(client)
    destination = ScriptedDestination()
    worker = SyncWorker(platform_store, platform_shops, clock=lambda: NOW, sleep=lambda s: None,
                        destination_factory=lambda *_: destination, metrics=metrics_of(app), shops={"shopify"})

    destination.refuse = True
    assert worker.drain().dead == 2
    samples = scrape(client)
    assert value(samples, "stagesync_sync_requests_total", shop="shopify", destination="log", outcome="fatal") == 1
    assert value(samples, "stagesync_sync_dead_letters_total", shop="shopify", destination="log") == 2
    assert value(samples, "stagesync_dead_letters", shop="shopify", destination="log") == 2
    assert value(samples, "stagesync_outbox_depth", shop="shopify", destination="log") == 0

    destination.refuse = False
    with platform_store.transaction() as conn:
        assert replay(conn, NOW, "shopify") == 2
    assert worker.drain().sent == 2
    samples = scrape(client)
    assert value(samples, "stagesync_sync_requests_total", shop="shopify", destination="log", outcome="ok") == 1
    assert value(samples, "stagesync_dead_letters", shop="shopify", destination="log") == 0
    assert value(samples, "stagesync_sync_last_success_timestamp_seconds",
                 shop="shopify", destination="log") == NOW.timestamp()


def test_each_app_counts_in_its_own_registry(platform_shops, platform_store):
    first = create_app(platform_shops, store=platform_store, clock=lambda: NOW)
    second = create_app(platform_shops, store=platform_store, clock=lambda: NOW)
    delivery = ShopifySender().order(7001, "ann@example.com", "120.00", PLACED)
    first.test_client().post("/webhooks/shopify", data=delivery.body, headers=delivery.headers)
    assert value(scrape(first.test_client()), "stagesync_webhooks_total", shop="shopify", platform="shopify",
                 code="200", status="accepted") == 1
    assert value(scrape(second.test_client()), "stagesync_webhooks_total", shop="shopify", platform="shopify",
                 code="200", status="accepted") is None


def test_a_scrape_reports_an_unreachable_database_instead_of_failing(tmp_path):
    settings = config.parse(shops_toml(f"sqlite:///{tmp_path}/missing/dir/stagesync.db"), env={})
    samples = scrape(create_app(settings).test_client())
    assert value(samples, "stagesync_database_up") == 0


def test_webhook_log_lines_carry_shop_platform_and_request_id_as_json_fields(app, caplog):
    client = app.test_client()
    delivery = ShopifySender().order(7001, "ann.lee@example.com", "120.00", PLACED)
    with caplog.at_level(logging.INFO, logger="stagesync.http"):
        client.post("/webhooks/shopify", data=delivery.body, headers={**delivery.headers, "X-Request-Id": "req-42"})
        bad = dict(delivery.headers, **{"X-Shopify-Hmac-Sha256": "bm9wZQ=="})
        client.post("/webhooks/shopify", data=delivery.body, headers={**bad, "X-Request-Id": "req-43"})
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "stagesync.http"]
    entries = [json.loads(line) for line in lines]
    assert [(e["shop"], e["platform"], e["request_id"], e["answer"]) for e in entries] == [
        ("shopify", "shopify", "req-42", 200), ("shopify", "shopify", "req-43", 401)]
    assert entries[0]["status"] == "accepted" and entries[0]["topic"] == "orders/updated"
    for line in lines:
        assert "ann.lee@example.com" not in line and SECRETS["shopify"] not in line
        assert delivery.headers["X-Shopify-Hmac-Sha256"] not in line
