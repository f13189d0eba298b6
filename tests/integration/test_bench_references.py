"""The benchmark's storing references (bench/bare_flask_app.py) store what they accept: the bench
compares stagesync with them, so they must do the work they stand for."""

from __future__ import annotations

import http.client
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from adapters.platforms import shopify
from tests.conftest import fresh_database_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bare_flask_app  # noqa: E402 - from bench/, which is no package

SECRET = "shpss_bench_test"


def signed(delivery_id: str, body: bytes) -> dict:
    return shopify.sign(body, SECRET, event_id=delivery_id)


@pytest.fixture
def inbox_url(tmp_path, request):
    """A fresh PostgreSQL database with the references' inbox table, as a plain libpq URL."""
    url = make_url(fresh_database_url("postgresql", tmp_path, request)).set(drivername="postgresql")
    url = url.render_as_string(hide_password=False)
    with psycopg.connect(url) as conn:
        conn.execute(bare_flask_app.INBOX)
    return url


@pytest.mark.parametrize("grouped", [False, True], ids=["durable", "grouped"])
def test_a_reference_stores_every_webhook_it_accepts(inbox_url, grouped, monkeypatch):
    if grouped:
        monkeypatch.setenv("BENCH_GROUP_COMMIT", "1")
    client = bare_flask_app.create_app(SECRET, inbox_url).test_client()
    bodies = {f"d{i}": json.dumps({"id": i}).encode() for i in range(200)}

    def send(delivery_id):
        return client.post("/webhooks/acme", data=bodies[delivery_id], headers=signed(delivery_id, bodies[delivery_id]))

    with ThreadPoolExecutor(16) as pool:  # concurrent requests: groups of several when grouped
        answers = list(pool.map(send, bodies))
    assert [a.status_code for a in answers] == [200] * len(bodies)
    assert client.post("/webhooks/acme", data=b"{}", headers=signed("x", b"{ }")).status_code == 401
    assert client.post("/webhooks/acme", data=b"{", headers=signed("y", b"{")).status_code == 400
    with psycopg.connect(inbox_url) as conn:
        stored = dict(conn.execute("SELECT delivery_id, body FROM webhook_inbox").fetchall())
    assert stored == {delivery_id: body.decode() for delivery_id, body in bodies.items()}


@pytest.mark.slow
@pytest.mark.parametrize("target", ["durable", "grouped"])
def test_a_reference_under_serves_gevent_worker_stores_every_webhook(inbox_url, target, tmp_path, monkeypatch):
    """bench/ingest.py serves the references as `stagesync serve` is served (gevent: a connection per
    greenlet, not per thread), and they still store every concurrent webhook they accept."""
    import ingest  # bench/ingest.py, on the path above

    monkeypatch.setattr(ingest, "SECRET", SECRET)
    server = ingest.start_bare(tmp_path, target, inbox_url)
    try:
        bodies = {f"g{i}": json.dumps({"id": i}).encode() for i in range(100)}

        def send(delivery_id):
            body = bodies[delivery_id]
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            try:
                conn.request("POST", "/webhooks/acme", body=body, headers=signed(delivery_id, body))
                return conn.getresponse().status
            finally:
                conn.close()

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(send, bodies))
    finally:
        server.stop()
    assert statuses == [200] * len(bodies)
    assert f"Using worker: {ingest.GEVENT_WORKER}" in (tmp_path / f"{target}.log").read_text()
    with psycopg.connect(inbox_url) as conn:
        stored = {row[0] for row in conn.execute("SELECT delivery_id FROM webhook_inbox")}
    assert stored == set(bodies)
