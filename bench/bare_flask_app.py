"""The ceiling of the stack for `bench/ingest.py`: Flask under gunicorn that verifies a Shopify
webhook's HMAC on the raw body and answers 200, with no parsing and no storage.

With $BENCH_DATABASE_URL (PostgreSQL) it is the `durable` reference instead: after the HMAC it
parses the JSON and commits the raw body in a table (`webhook_inbox`, one INSERT and one COMMIT
per request, a psycopg connection per thread) before answering: the least a receiver that
answers 200 only for a stored webhook can do on this stack.

Served exactly like `stagesync serve` on PostgreSQL (gunicorn, gthread, one worker per core,
32 threads each), so the difference between the two is what stagesync itself costs per webhook. The secret comes
from $BENCH_WEBHOOK_SECRET, read when the app is built (nothing happens at import time):

    BENCH_WEBHOOK_SECRET=... gunicorn -k gthread -w 2 --threads 32 --chdir bench 'bare_flask_app:create_app()'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading

from flask import Flask, jsonify, request

MAX_BODY_BYTES = 1024 * 1024  # the same limit as connector.app


INBOX = "CREATE TABLE webhook_inbox (delivery_id text PRIMARY KEY, body text NOT NULL)"  # made by the bench


def create_app(secret: str | None = None, database_url: str | None = None) -> Flask:
    key = (secret or os.environ["BENCH_WEBHOOK_SECRET"]).encode("utf-8")
    store = _inbox(database_url or os.environ.get("BENCH_DATABASE_URL"))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.post("/webhooks/<shop_id>")
    def receive(shop_id: str):
        body = request.get_data(cache=False)
        received = request.headers.get("X-Shopify-Hmac-Sha256", "")
        try:
            digest = base64.b64decode(received, validate=True)
        except ValueError:
            digest = b""
        if not hmac.compare_digest(digest, hmac.new(key, body, hashlib.sha256).digest()):
            return jsonify(error="invalid or missing signature"), 401
        if store is not None:
            try:
                json.loads(body)
            except ValueError:
                return jsonify(error="malformed JSON"), 400
            store(request.headers.get("X-Shopify-Event-Id", ""), body.decode("utf-8"))
        return jsonify(status="accepted"), 200

    @app.get("/healthz")
    def healthz():
        return jsonify(database="ok"), 200

    return app


def _inbox(database_url: str | None):
    """store(delivery_id, body): commit one webhook, on this thread's own connection."""
    if not database_url:
        return None
    import psycopg

    local = threading.local()

    def store(delivery_id: str, body: str) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = psycopg.connect(database_url)
        with conn.transaction():
            conn.execute("INSERT INTO webhook_inbox VALUES (%s, %s) ON CONFLICT DO NOTHING", (delivery_id, body))

    return store
