"""`stagesync serve` as a real process: signed webhooks over real HTTP, then `stagesync export`."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.conftest import SLOW_ON_POSTGRESQL
from tests.e2e.server import Server, run
from tests.fakes.senders import SECRETS, SENDERS, shops_toml

NOW = datetime.now(timezone.utc).replace(microsecond=0)


# HTTP, gunicorn and logging: nothing engine-specific (the webhook path on PostgreSQL: tests/integration)
@pytest.mark.parametrize("database_url", SLOW_ON_POSTGRESQL, indirect=True)
def test_webhooks_over_http_become_stages_and_no_secret_or_email_is_logged(tmp_path, database_url):
    config = tmp_path / "stagesync.toml"
    config.write_text(shops_toml(database_url))
    shopify, woo = SENDERS["shopify"](), SENDERS["woocommerce"]()
    deliveries = [
        ("shopify", shopify.order(5001, "ann.lee@example.com", "120.00", NOW - timedelta(days=2))),
        ("shopify", shopify.order(5002, "ann.lee@example.com", "80.00", NOW - timedelta(days=60))),
        ("shopify", shopify.order(5003, "ann.lee@example.com", "95.00", NOW - timedelta(days=120))),
        ("shopify", shopify.order(5004, "bo.chen@example.com", "20.00", NOW - timedelta(days=200))),
        ("woocommerce", woo.order(6001, "cy.diaz@example.com", "45.00", NOW - timedelta(days=10))),
        ("woocommerce", woo.order(6002, "cy.diaz@example.com", "55.00", NOW - timedelta(days=50))),
    ]
    bad = shopify.order(5009, "eve.fox@example.com", "1.00", NOW)
    bad.body = bad.body.replace(b"1.00", b"9.00")
    with Server(config, tmp_path / "server.log", "--no-worker", env={"STAGESYNC_LOG_LEVEL": "DEBUG"}) as server:
        for shop_id, delivery in deliveries:
            answer = requests.post(f"{server.url}/webhooks/{shop_id}", data=delivery.body, headers=delivery.headers,
                                   timeout=30)
            assert (answer.status_code, answer.json()) == (200, {"status": "accepted"})
        assert requests.post(f"{server.url}/webhooks/shopify", data=bad.body, headers=bad.headers,
                             timeout=30).status_code == 401
        logs = server.logs()

    shopify_rows = {r["email"]: r for r in csv.DictReader(io.StringIO(run(config, "export", "--shop", "shopify").stdout))}
    assert shopify_rows["ann.lee@example.com"]["rfm"] == "champion"
    assert shopify_rows["ann.lee@example.com"]["orders_365d"] == "3"
    assert shopify_rows["bo.chen@example.com"]["rfm"] == "about_to_lose"
    assert "eve.fox@example.com" not in shopify_rows
    woo_rows = json.loads(run(config, "export", "--shop", "woocommerce", "--format", "json").stdout)
    assert [(r["email"], r["rfm"], r["phases"]) for r in woo_rows] == [("cy.diaz@example.com", "champion",
                                                                         "development")]  # F = 2, AOV = shop AOV

    assert "answer=200" in logs and "answer=401" in logs
    for secret_or_email in [*SECRETS.values(), "ann.lee@example.com", "bo.chen@example.com", "cy.diaz@example.com",
                            "eve.fox@example.com", *(d.headers.get("X-Shopify-Hmac-Sha256", "") for _, d in
                                                     deliveries if d.headers.get("X-Shopify-Hmac-Sha256"))]:
        assert secret_or_email not in logs, "a secret, signature or email was logged whole"


def test_gunicorn_refuses_a_chunked_body_over_one_mebibyte_and_verifies_utf8_standard_ids(tmp_path, database_url):
    config = tmp_path / "stagesync.toml"
    config.write_text(shops_toml(database_url))
    big = b'{"id": 1, "pad": "' + b"x" * (1024 * 1024) + b'"}'
    standard = SENDERS["standard"](clock=NOW)
    small = SENDERS["shopify"]().order(5101, "gil.ho@example.com", "12.00", NOW - timedelta(days=1))
    body = json.dumps({"type": "order.upserted", "data": {"order_id": "U-1", "placed_at": NOW.isoformat(),
                                                          "total": "5.00", "email": "u@example.com"}}).encode()
    signed = standard.signed(body, "order.upserted", delivery_id="msg_é_日本")

    def chunks(data: bytes):  # a generator body: requests sends it chunked, without Content-Length
        for start in range(0, len(data), 65536):
            yield data[start:start + 65536]

    with Server(config, tmp_path / "server.log", "--no-worker") as server:
        from adapters.platforms import shopify

        answer = requests.post(f"{server.url}/webhooks/shopify", data=chunks(big),
                               headers=shopify.sign(big, SECRETS["shopify"]), timeout=30)
        assert answer.status_code == 413
        assert requests.post(f"{server.url}/webhooks/shopify", data=chunks(small.body), headers=small.headers,
                             timeout=30).json() == {"status": "accepted"}
        wire = dict(signed.headers, **{"webhook-id": "msg_é_日本".encode("utf-8")})  # the header's UTF-8 bytes
        answer = requests.post(f"{server.url}/webhooks/standard", data=body, headers=wire, timeout=30)
        assert (answer.status_code, answer.json()) == (200, {"status": "accepted"})
