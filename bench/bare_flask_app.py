"""The ceiling of the stack for `bench/ingest.py`: Flask under gunicorn that verifies a Shopify
webhook's HMAC on the raw body and answers 200, with no parsing and no storage.

With $BENCH_DATABASE_URL (PostgreSQL) it is the `durable` reference instead: after the HMAC it
parses the JSON and commits the raw body in a table (`webhook_inbox`, one INSERT and one COMMIT
per request, a psycopg connection per thread, i.e. per greenlet under gevent) before answering: the least a receiver that
answers 200 only for a stored webhook can do on this stack. With $BENCH_GROUP_COMMIT=1 as well it
is the `grouped` reference: the same, with the bodies that arrive while a commit runs committed
together in the next one, by stagesync's own connector.storage.group_commit (pipelined INSERTs, one
COMMIT per group).

Served exactly like `stagesync serve` (gunicorn's gevent worker with its request deadline, one
worker per core, 1,000 connections each, keep-alive 5 s: bench/ingest.py takes them from
connector/web/server.py), so the difference between the two is what stagesync itself costs per
webhook. gevent patches the standard library before the app is built, so `threading.local` and
`queue` below are per greenlet and cooperative, and psycopg (imported only then) waits cooperatively.
The secret comes from $BENCH_WEBHOOK_SECRET, read when the app is built (nothing happens at import time):

    BENCH_WEBHOOK_SECRET=... PYTHONPATH=. gunicorn -k connector.web.gevent_worker.DeadlineGeventWorker \
        -w 2 --worker-connections 1000 --keep-alive 5 --chdir bench 'bare_flask_app:create_app()'
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import queue
import threading
from dataclasses import dataclass

from flask import Flask, jsonify, request

MAX_BODY_BYTES = 1024 * 1024  # the same limit as connector.web.app


INBOX = "CREATE TABLE webhook_inbox (delivery_id text PRIMARY KEY, body text NOT NULL)"  # made by the bench
INSERT = "INSERT INTO webhook_inbox VALUES (%s, %s) ON CONFLICT DO NOTHING"


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
    """store(delivery_id, body): commit one webhook, on this thread's own connection (`durable`),
    or with the others that arrive meanwhile (`grouped`)."""
    if not database_url:
        return None
    if os.environ.get("BENCH_GROUP_COMMIT"):
        return _grouped_inbox(database_url)
    import psycopg

    local = threading.local()

    def store(delivery_id: str, body: str) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = psycopg.connect(database_url)
        with conn.transaction():
            conn.execute(INSERT, (delivery_id, body))

    return store


def _grouped_inbox(database_url: str):
    """store(delivery_id, body) through stagesync's own group commit (connector.storage.group_commit, as
    many lanes as `stagesync serve` has on PostgreSQL): the rows of a group are pipelined INSERTs
    in one transaction."""
    from connector.storage.group_commit import GroupCommit
    from connector.storage.engine import GROUP_COMMIT_LANES

    commits = GroupCommit(_Connections(database_url), lanes=GROUP_COMMIT_LANES)
    return lambda delivery_id, body: commits.run(_Insert((delivery_id, body)))


class _Connections:
    """What GroupCommit needs of a store: `transaction()`, here on a psycopg connection of this
    worker's (one per lane, made on first use)."""

    def __init__(self, database_url: str):
        self.database_url = database_url
        self.idle: queue.SimpleQueue = queue.SimpleQueue()

    @contextlib.contextmanager
    def transaction(self):
        import psycopg

        try:
            conn = self.idle.get_nowait()
        except queue.Empty:
            conn = psycopg.connect(self.database_url)
        try:
            with conn.transaction():
                yield conn
        finally:
            if not conn.closed:
                self.idle.put(conn)


@dataclass(frozen=True)
class _Insert:
    row: tuple[str, str]
    batch_key = "inbox"  # a group's rows go in one executemany (connector.storage.group_commit.run_all)

    def __call__(self, conn) -> None:
        conn.execute(INSERT, self.row)

    @staticmethod
    def run_batch(conn, batch) -> list[None]:
        conn.cursor().executemany(INSERT, [work.row for work in batch])
        return [None] * len(batch)
