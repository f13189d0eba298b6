"""The dashboard's protections through Flask's test client, on both engines: no open redirect
after login, sessions that end at logout (a replayed cookie is refused), failed-login limits
shared by every process, security headers, a Secure cookie over HTTPS, and bad instants as 400s."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector.web import access
from connector.web.app import create_app
from tests.conftest import NOW
from tests.fakes.senders import ADMIN_TOKEN
from tests.http_client import BEARER


def login(client, token: str = ADMIN_TOKEN, next_url: str = "/dashboard/shopify", address: str = "192.0.2.1"):
    return client.post("/login", data={"token": token, "next": next_url}, environ_base={"REMOTE_ADDR": address})


def test_login_follows_only_paths_of_this_site(app):
    client = app.test_client()
    for target in ("/\t/evil.example", "/\x0b/evil.example", "/\x00/evil.example", "// evil.example",
                   "/\\evil.example", "https://evil.example/", "//evil.example"):
        assert login(client, next_url=target).headers["Location"] == "/dashboard", target
    form = client.get("/login?next=/%09/evil.example").get_data(as_text=True)
    assert 'name="next" value="/dashboard"' in form
    assert login(client, next_url="/dashboard/shopify?model=phases").headers["Location"] == "/dashboard/shopify?model=phases"


def test_a_line_break_in_next_is_a_400_not_a_500(app):
    client = app.test_client()
    assert client.get("/login?next=/x%0d%0aSet-Cookie:%20a=b").status_code == 400
    assert login(client, next_url="/x\r\nSet-Cookie: a=b").status_code == 400
    assert login(client, next_url="/x\nA: b").status_code == 400


def test_a_session_cookie_replayed_after_logout_is_refused(app, platform_shops, platform_store, clock):
    client = app.test_client()
    assert login(client).status_code == 303
    cookie = client.get_cookie("session").value
    assert client.get("/dashboard/shopify").status_code == 200
    assert client.post("/logout").status_code == 303
    client.set_cookie("session", cookie)
    assert client.get("/dashboard/shopify").status_code == 401
    other_worker = create_app(platform_shops, store=platform_store, clock=clock).test_client()
    other_worker.set_cookie("session", cookie)
    assert other_worker.get("/dashboard/shopify").status_code == 401


def test_a_session_ends_after_its_lifetime(app, clock):
    client = app.test_client()
    login(client)
    clock.now = NOW + access.SESSION_LIFETIME + timedelta(seconds=1)
    assert client.get("/dashboard/shopify").status_code == 401


def test_failed_logins_are_limited_per_client_across_processes(app, platform_shops, platform_store, clock):
    first, second = app.test_client(), create_app(platform_shops, store=platform_store, clock=clock).test_client()
    for attempt in range(access.LOGIN_FAILURES_PER_CLIENT):
        worker = first if attempt % 2 else second  # two gunicorn workers share the count
        assert login(worker, "wrong").status_code == 401
    refused = login(first)  # even the right token, from this client
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert login(first, address="192.0.2.2").status_code == 303  # another client is not held back
    assert first.get("/dashboard/shopify", headers=BEARER).status_code == 200  # the bearer token still works
    clock.now = NOW + access.LOGIN_WINDOW + timedelta(seconds=1)
    assert login(first).status_code == 303


def test_failed_logins_are_limited_overall(app):
    client = app.test_client()
    per_client = access.LOGIN_FAILURES_PER_CLIENT - 1
    for n in range(access.LOGIN_FAILURES_OVERALL):
        assert login(client, "wrong", address=f"198.51.100.{n // per_client}").status_code == 401
    assert login(client, address="203.0.113.9").status_code == 429


def test_pages_forbid_framing_scripts_and_foreign_content(app):
    client = app.test_client()
    for answer in (client.get("/login"), client.get("/dashboard/shopify"),
                   client.get("/dashboard/shopify", headers=BEARER)):
        csp = answer.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp and "script-src" not in csp
        assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["X-Content-Type-Options"] == "nosniff"


def test_the_session_cookie_is_secure_over_https_only(app):
    over_https = app.test_client().post("/login", data={"token": ADMIN_TOKEN}, base_url="https://stagesync.example")
    assert "Secure" in over_https.headers["Set-Cookie"] and "HttpOnly" in over_https.headers["Set-Cookie"]
    plain = app.test_client()
    # X-Forwarded-Proto is the WSGI server's to trust (gunicorn's forwarded_allow_ips), not the app's
    over_http = plain.post("/login", data={"token": ADMIN_TOKEN}, headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in over_http.headers["Set-Cookie"]


@pytest.mark.parametrize("at", ["0001-01-01", "0001-01-01T00:00:00+01:00", "9999-12-31", "1969-12-31"])
def test_an_instant_out_of_range_is_a_400(app, at):
    client = app.test_client()
    assert client.get(f"/dashboard/shopify?at={at}", headers=BEARER).status_code == 400
    assert client.get(f"/dashboard/shopify/customers?model=rfm&value=champion&at={at}",
                      headers=BEARER).status_code == 400
