"""The ceiling of the stack for `bench/ingest.py`: Flask under gunicorn that verifies a Shopify
webhook's HMAC on the raw body and answers 200, with no parsing and no storage.

Served exactly like `stagesync serve` (gunicorn, gthread, one worker per core, 16 threads each),
so the difference between the two is what stagesync itself costs per webhook. The secret comes
from $BENCH_WEBHOOK_SECRET, read when the app is built (nothing happens at import time):

    BENCH_WEBHOOK_SECRET=... gunicorn -k gthread -w 2 --threads 16 --chdir bench 'bare_flask_app:create_app()'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from flask import Flask, jsonify, request

MAX_BODY_BYTES = 1024 * 1024  # the same limit as connector.app


def create_app(secret: str | None = None) -> Flask:
    key = (secret or os.environ["BENCH_WEBHOOK_SECRET"]).encode("utf-8")
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
        return jsonify(status="accepted"), 200

    @app.get("/healthz")
    def healthz():
        return jsonify(database="ok"), 200

    return app
