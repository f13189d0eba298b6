"""The Flask application (docs/architecture.md, 'The path of one webhook'): webhooks in, health, the admin API.

`create_app(settings)` builds everything; nothing happens at import time. Errors raised by the
core are mapped to HTTP answers here only.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from datetime import datetime, timezone
from typing import Callable

from flask import Blueprint, Flask, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from connector.config import Settings
from connector.errors import (
    QUOTE_LIMIT, PayloadError, PlatformApiError, SignatureError, StorageUnavailableError, UnknownShopError, mask,
    quoted,
)
from connector.storage.store import Store
from connector.web import access, dashboard, metrics
from connector.web.context import EXTENSION, app_state, get_store
from connector.web.metrics import metrics_of

MAX_BODY_BYTES = 1024 * 1024  # 413 beyond 1 MiB (docs/architecture.md, 'The path of one webhook')
# A client's X-Request-Id is logged only when it is this plain; otherwise one is made (docs/http.md).
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
LOGGED_REASON_LIMIT = 300  # characters of a refusal's reason in a webhook's answer line (other fields: QUOTE_LIMIT)

log = logging.getLogger("stagesync.http")
webhooks = Blueprint("webhooks", __name__)
health = Blueprint("health", __name__)
admin = Blueprint("admin", __name__)


def create_app(settings: Settings, store: Store | None = None, clock: Callable[[], datetime] | None = None) -> Flask:
    app = Flask(__name__)
    # One byte more than the limit may be read, so that a body without Content-Length (chunked)
    # that is over the limit is seen whole-too-long (413) rather than cut short (`_raw_body`).
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES + 1
    app.extensions[EXTENSION] = {
        "settings": settings,
        "store": store,
        "clock": clock or (lambda: datetime.now(timezone.utc)),
        "store_lock": threading.Lock(),
    }
    app.register_blueprint(webhooks)
    app.register_blueprint(health)
    app.register_blueprint(admin)
    app.register_blueprint(metrics.blueprint)
    app.register_blueprint(dashboard.blueprint)
    app.before_request(_start_request)
    app.errorhandler(StorageUnavailableError)(lambda exc: (jsonify(error="storage unavailable"), 503))
    app.errorhandler(RequestEntityTooLarge)(lambda exc: (jsonify(error="body over 1 MiB"), 413))
    app.errorhandler(HTTPException)(lambda exc: (jsonify(error=exc.description), exc.code))
    return app


def _start_request() -> None:
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if REQUEST_ID.fullmatch(given) else secrets.token_hex(8)
    g.started = time.perf_counter()


def _raw_body() -> bytes:
    """The raw bytes, exactly as signed; 413 past the limit whatever the transfer encoding (a
    chunked body is read up to one byte past the limit, never cut to it)."""
    body = request.get_data(cache=False)
    if len(body) > MAX_BODY_BYTES:
        raise RequestEntityTooLarge()
    return body


# --- webhooks ----------------------------------------------------------------------------------

@webhooks.post("/webhooks/<shop_id>")
def receive_webhook(shop_id: str):
    from connector.services.ingest import receive

    settings: Settings = app_state()["settings"]
    shop = settings.shops.get(shop_id)
    if shop is None:
        _refused(None, 404, "unknown_shop", shop_id=shop_id)
        return jsonify(error=f"unknown shop {shop_id!r}"), 404
    try:
        body = _raw_body()
    except RequestEntityTooLarge:
        _refused(shop, 413, "too_large")
        return jsonify(error="body over 1 MiB"), 413
    try:
        receipt = receive(get_store(), shop, request.headers, body, app_state()["clock"]())
    except SignatureError as exc:
        _refused(shop, 401, "bad_signature", str(exc))
        return jsonify(error="invalid or missing signature"), 401
    except PayloadError as exc:
        _refused(shop, 400, "malformed", str(exc))
        return jsonify(error=str(exc)), 400
    except StorageUnavailableError:
        _log_answer(shop, 503, reason="storage unavailable")
        return jsonify(error="storage unavailable, retry later"), 503
    except PlatformApiError as exc:  # the order could not be fetched (BigCommerce): the platform retries
        _refused(shop, 503, "fetch_failed", str(exc))
        return jsonify(error="the order could not be read from the platform's API, retry later"), 503
    _log_answer(shop, 200, topic=receipt.topic, status=receipt.status, reason=receipt.reason)
    return jsonify(status=receipt.status), 200


def _refused(shop, code: int, reason: str, detail: str | None = None, shop_id: str | None = None) -> None:
    """A refused delivery: a WARNING line with its reason (never the body or a secret), counted for
    intake health (connector.services.intake_health) and in /metrics."""
    from connector.services.intake_health import UNKNOWN_SHOP, note_rejected

    now = app_state()["clock"]()
    if shop is None:  # the id comes from the request: quoted, never a metric label
        log.warning("webhook refused shop=%s answer=%s rejected=%s request_id=%s", quoted(shop_id or ""), code,
                    reason, g.request_id, extra={"shop": UNKNOWN_SHOP, "answer": code, "rejected": reason,
                                                 "request_id": g.request_id})
    else:
        _log_answer(shop, code, logging.WARNING, rejected=reason, reason=detail)
    note_rejected(get_store(), shop.id if shop else None, reason, now)
    metrics_of(current_app).rejected(shop.id if shop else UNKNOWN_SHOP, reason)


def _log_answer(shop, code: int, level: int = logging.INFO, **fields) -> None:
    elapsed_ms = (time.perf_counter() - g.started) * 1000
    shown = {k: quoted(str(v), LOGGED_REASON_LIMIT if k == "reason" else QUOTE_LIMIT) for k, v in fields.items() if v}
    details = " ".join(f"{k}={v}" for k, v in shown.items())
    log.log(level, "webhook shop=%s platform=%s answer=%s %s ms=%.1f request_id=%s", shop.id, shop.platform, code,
            details, elapsed_ms, g.request_id,
            extra={"shop": shop.id, "platform": shop.platform, "request_id": g.request_id, "answer": code,
                   "topic": shown.get("topic"), "status": fields.get("status"), "ms": round(elapsed_ms, 1),
                   "rejected": fields.get("rejected")})
    metrics_of(current_app).webhook(shop.id, shop.platform, code, fields.get("status"))


# --- health ------------------------------------------------------------------------------------

@health.get("/healthz")
def healthz():
    ok = get_store().ping()
    return jsonify(database="ok" if ok else "unavailable"), 200 if ok else 503


# --- admin API (bearer token) ------------------------------------------------------------------

@admin.before_request
def _require_admin_token():
    if not access.bearer():
        return jsonify(error="admin token required (Authorization: Bearer <admin_token>)"), 401, {
            "WWW-Authenticate": 'Bearer realm="stagesync"'}
    return None


def _admin_shop(shop_id: str):
    try:
        return app_state()["settings"].shop(shop_id)
    except UnknownShopError as exc:
        from flask import abort

        abort(404, description=str(exc))


@admin.get("/shops/<shop_id>/stages")
def shop_stages(shop_id: str):
    from connector.services.evaluation import snapshot
    from connector.services.reports import stage_counts

    shop = _admin_shop(shop_id)
    return jsonify(stage_counts(snapshot(get_store(), shop, app_state()["clock"]())))


@admin.get("/shops/<shop_id>/customers/<ref>")
def shop_customer(shop_id: str, ref: str):
    """One customer by its opaque ref (emails and phones never travel in a URL: docs/http.md)."""
    from connector.services.customer_view import customer_by_ref

    shop = _admin_shop(shop_id)
    view = customer_by_ref(get_store(), shop, ref, app_state()["clock"]())
    if view is None:
        return jsonify(error=f"no customer with this ref in shop {shop.id} (find one with POST "
                             f"/shops/{shop.id}/customers/find)"), 404
    return jsonify(view)


@admin.post("/shops/<shop_id>/customers/find")
def find_shop_customer(shop_id: str):
    """`{"email": ...}` or `{"phone": ...}` in the body -> the customer, with its `ref`."""
    from connector.domain.orders import contact_key
    from connector.services.customer_view import find_customer

    shop = _admin_shop(shop_id)
    asked = request.get_json(silent=True)
    if not isinstance(asked, dict) or not any(isinstance(asked.get(k), str) and asked[k].strip()
                                              for k in ("email", "phone")):
        return jsonify(error='send a JSON object {"email": "..."} or {"phone": "..."}'), 400
    email = asked.get("email") if isinstance(asked.get("email"), str) else None
    phone = asked.get("phone") if isinstance(asked.get("phone"), str) else None
    view = find_customer(get_store(), shop, contact_key(email, phone, shop.country), app_state()["clock"]())
    if view is None:
        return jsonify(error=f"no customer {mask(email or phone or '')!r} in shop {shop.id}"), 404
    return jsonify(view)
