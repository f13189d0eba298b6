"""What a client cannot do to the web app, through Flask's test client: grow /metrics with odd
requests, slip a chunked body over 1 MiB past the limit, put its own text in the log's request id;
and a Standard Webhooks id that is not ASCII verifies as the specification signs it."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.platforms import shopify, standard
from connector.logs import JsonFormatter
from connector.web.app import MAX_BODY_BYTES
from tests.conftest import NOW
from tests.fakes.senders import SECRETS, ShopifySender


def series(client) -> set[tuple]:
    text = client.get("/metrics").get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))) for f in text_string_to_metric_families(text) for s in f.samples}


def test_odd_requests_add_no_metric_series(client):
    for path in ("/healthz", "/dashboard/shopify", "/webhooks/shopify", "/nowhere"):
        client.open(path, method="GET")
        client.open(path, method="WARMUP")  # the fixed "other" series exist once something odd came
    client.get("/metrics")
    before = series(client)
    for n in range(300):
        client.open(f"/x{n}/{'y' * (n % 7)}", method=f"M{n}")
        client.open("/healthz", method=f"BREW{n}")
        client.open(f"/webhooks/shopify{n}", method="PROPFIND")
    after = series(client)
    assert after == before
    labels = {dict(labels).get("method") for name, labels in after if name.startswith("stagesync_http")}
    assert labels <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}


def chunked(client, body: bytes, headers: dict):
    """A body sent without Content-Length, as gunicorn hands a chunked one over (input terminated)."""
    return client.post("/webhooks/shopify", input_stream=io.BytesIO(body),
                       headers={**headers, "Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})


@pytest.mark.parametrize("extra", [1, 10, 4096])
def test_a_signed_chunked_body_over_one_mebibyte_is_413(client, extra):
    body = b'{"id": 1, "pad": "' + b"x" * (MAX_BODY_BYTES - 18 + extra) + b'"}'
    assert len(body) > MAX_BODY_BYTES
    answer = chunked(client, body, shopify.sign(body, SECRETS["shopify"]))
    assert answer.status_code == 413
    exactly = body[:MAX_BODY_BYTES]
    assert client.post("/webhooks/shopify", data=exactly + b"x", headers=shopify.sign(exactly + b"x", SECRETS["shopify"])
                       ).status_code == 413  # with Content-Length: one byte over


def test_a_chunked_body_within_the_limit_is_read_whole(client):
    delivery = ShopifySender().order(1, "ann@example.com", "10.00", NOW - timedelta(days=1))
    assert chunked(client, delivery.body, delivery.headers).status_code == 200


@pytest.mark.parametrize("given,kept", [("req-42", True), ("a" * 64, True), ("abc.DEF_1:2-3", True),
                                        ("a" * 65, False), ("x\ty", False), ("héllo", False), ("a b", False),
                                        ("<script>", False), ('"quoted"', False), ("", False)])
def test_only_a_plain_request_id_is_logged_as_given(client, caplog, given, kept):
    delivery = ShopifySender().order(1, "ann@example.com", "10.00", NOW - timedelta(days=1))
    with caplog.at_level(logging.INFO, logger="stagesync.http"):
        client.post("/webhooks/shopify", data=delivery.body, headers={**delivery.headers, "X-Request-Id": given})
    entry = json.loads(JsonFormatter().format(next(r for r in caplog.records if r.name == "stagesync.http")))
    if kept:
        assert entry["request_id"] == given
    else:
        assert entry["request_id"] != given and len(entry["request_id"]) == 16 and entry["request_id"].isalnum()


@pytest.mark.parametrize("msg_id", ["msg_é_über", "msg_日本"])
def test_a_non_ascii_standard_webhooks_id_verifies_as_its_utf8_bytes(client, msg_id):
    body = json.dumps({"type": "order.upserted", "data": {"order_id": "U-1", "placed_at": "2026-05-30T10:00:00Z",
                                                          "total": "5.00", "email": "u@example.com"}}).encode()
    headers = standard.sign(body, SECRETS["standard"], msg_id=msg_id, timestamp=NOW)
    # On the wire the header is its UTF-8 bytes; a WSGI server hands them over as ISO-8859-1 text (PEP 3333)
    wire = dict(headers, **{"webhook-id": msg_id.encode("utf-8").decode("latin-1")})
    answer = client.post("/webhooks/standard", data=body, headers=wire)
    assert answer.status_code == 200 and answer.get_json()["status"] == "accepted"
    wrong = dict(wire, **{"webhook-id": "msg_other"})
    assert client.post("/webhooks/standard", data=body, headers=wrong).status_code == 401
