"""Who may see the dashboard, and how its pages protect themselves (docs/http.md, 'Dashboard').

- Access: `Authorization: Bearer <admin_token>`, or a session opened by the login form. The
  session cookie (signed, HttpOnly, SameSite=Lax, Secure when the request came over HTTPS) names a
  random session id that is stored in the database (`connector.storage.access`): logging out
  deletes it, so the same cookie replayed afterwards is refused, in every process. A session ends
  after `SESSION_LIFETIME` at the latest.
- Failed logins are counted in the database, per client address and overall, so that every
  gunicorn worker and Lambda container shares the limits; past them the form answers 429 without
  looking at the token.
- After login, only a path of this site is followed (`safe_next`): no open redirect.
- Every answer carries a Content-Security-Policy (no script, nothing from elsewhere, no framing),
  X-Frame-Options, nosniff and no referrer.

"Came over HTTPS" is what the WSGI server says (`request.is_secure`): gunicorn trusts
X-Forwarded-Proto only from `forwarded_allow_ips` (127.0.0.1 by default), and on AWS Lambda
serverless-wsgi takes it from API Gateway. stagesync adds no proxy handling of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from flask import request, session
from flask.sessions import SecureCookieSessionInterface

from connector.storage import access
from connector.web.context import app_state, get_store

SESSION_LIFETIME = timedelta(hours=12)
LOGIN_WINDOW = timedelta(minutes=15)
LOGIN_FAILURES_PER_CLIENT = 10  # failed logins of one address in LOGIN_WINDOW, then 429
LOGIN_FAILURES_OVERALL = 100  # failed logins of every address together in LOGIN_WINDOW, then 429
# Inline styles only (the pages carry their CSS inline and no script); nothing from elsewhere.
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def session_key(admin_token: str) -> str:
    """The session cookie's signing key: stable across workers and restarts, new with a new token."""
    return hmac.new(admin_token.encode(), b"stagesync dashboard session", hashlib.sha256).hexdigest()


class DashboardSessions(SecureCookieSessionInterface):
    """Sessions for the dashboard's pages only: a webhook (most of the traffic) neither reads nor
    writes one, so its request skips the cookie and the signing serializer. The cookie is Secure
    whenever the request came over HTTPS (or SESSION_COOKIE_SECURE says so)."""

    def open_session(self, app, request):
        if request.path.startswith("/webhooks/"):
            return None  # Flask gives the request a null session instead
        return super().open_session(app, request)

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def configure(app) -> None:
    """Install the session interface, its key and the security headers on `app`."""
    token = app.extensions["stagesync"]["settings"].admin_token
    if not app.secret_key:
        app.secret_key = session_key(token) if token else secrets.token_hex(32)
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.permanent_session_lifetime = SESSION_LIFETIME
    app.session_interface = DashboardSessions()
    app.after_request(_security_headers)


def _security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _now() -> datetime:
    return app_state()["clock"]()


def token_matches(given: str) -> bool:
    token = app_state()["settings"].admin_token
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def bearer() -> bool:
    header = request.headers.get("Authorization", "")
    return header.startswith("Bearer ") and token_matches(header[len("Bearer "):])


def signed_in() -> bool:
    """The bearer token, or a session that is still open in the database."""
    if bearer():
        return True
    sid = session.get("sid")
    if session.get("admin") is not True or not isinstance(sid, str):
        return False
    with get_store().read() as conn:
        return access.session_open(conn, sid, _now())


def open_session() -> None:
    """A new session after a good login (whatever the old cookie held is dropped)."""
    sid = secrets.token_urlsafe(32)
    now = _now()
    with get_store().transaction() as conn:
        access.open_session(conn, sid, now + SESSION_LIFETIME, now)
    session.clear()
    session.permanent = True
    session.update(admin=True, sid=sid, csrf=secrets.token_urlsafe(24))


def close_session() -> None:
    sid = session.get("sid")
    if isinstance(sid, str):
        with get_store().transaction() as conn:
            access.close_session(conn, sid)
    session.clear()


def client_address() -> str:
    return (request.remote_addr or "unknown")[:64]


def login_refused() -> bool:
    """True when this client, or everybody together, failed too often lately."""
    with get_store().read() as conn:
        mine, everybody = access.failed_logins(conn, client_address(), _now() - LOGIN_WINDOW)
    return mine >= LOGIN_FAILURES_PER_CLIENT or everybody >= LOGIN_FAILURES_OVERALL


def count_failed_login() -> None:
    with get_store().transaction() as conn:
        access.record_failed_login(conn, client_address(), _now(), LOGIN_WINDOW)


def redirect_target(target: str | None, fallback: str) -> str:
    """Only a path of this site: one "/" then no second "/" or "\\" (browsers read both as a new
    host), and no control character or space anywhere (browsers drop tabs and newlines, so that
    "/\\t/evil.example" becomes "//evil.example"). Anything else: `fallback`."""
    if not target or not target.startswith("/") or target[1:2] in ("/", "\\"):
        return fallback
    if "\\" in target or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in target):
        return fallback
    return target


def has_line_break(value: str | None) -> bool:
    """A CR or LF in a value that would go into a header (the login's `next`): a 400."""
    return bool(value) and ("\r" in value or "\n" in value)


def current_csrf() -> str:
    return session.get("csrf", "")


def csrf_ok() -> bool:
    expected = current_csrf()
    return bool(expected) and hmac.compare_digest(request.form.get("csrf", "").encode(), expected.encode())

