"""GET /dashboard/<shop>: access, and numbers equal to `stagesync stages --json`, on both engines."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from connector.cli import main
from connector.services.metrics import NullMetrics
from connector.services.reports import iso
from connector.storage.schema import outbox
from connector.services.sync import SyncWorker
from tests.conftest import NOW
from tests.fakes.destinations import Refusing
from tests.fakes.senders import ADMIN_TOKEN, ShopifySender
from tests.http_client import BEARER, deliver

UNKNOWN_PROPERTY = Refusing("400 Bad Request: unknown property", status=400)
ROW = re.compile(r'<tr data-model="(\w+)" data-stage="(\w+)">.*?<td class="num" data-(count|revenue)>([^<]+)</td>',
                 re.S)


@pytest.fixture
def client(client):
    """The app's client after six Shopify orders of four customers came in."""
    shopify = ShopifySender()
    for order_id, email, total, days in [(1, "ann@example.com", "120.00", 2), (2, "ann@example.com", "80.00", 30),
                                         (3, "ann@example.com", "95.00", 60), (4, "bo@example.com", "20.00", 200),
                                         (5, "cy@example.com", "45.00", 10), (6, "dee@example.com", "15.00", 500)]:
        delivery = shopify.order(order_id, email, total, NOW - timedelta(days=days))
        assert deliver(client, "shopify", delivery).status_code == 200
    return client


def shown(html: str, kind: str = "count") -> dict[str, dict[str, str]]:
    """model -> stage -> the text shown in the chart of `kind` (count or revenue)."""
    found: dict[str, dict[str, str]] = {}
    for model, stage, chart, text in ROW.findall(html):
        if chart == kind:
            found.setdefault(model, {})[stage] = text
    return found


def login(client, token: str = ADMIN_TOKEN, next_url: str = "/dashboard/shopify"):
    return client.post("/login", data={"token": token, "next": next_url})


def test_the_dashboard_needs_the_admin_token(client):
    anonymous = client.get("/dashboard/shopify")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert 'name="token"' in anonymous.get_data(as_text=True)  # the login form, right there
    assert client.get("/dashboard/shopify", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/dashboard/shopify", headers=BEARER).status_code == 200


def test_logging_in_keeps_a_session_and_logging_out_ends_it(client):
    wrong = login(client, "not-the-token")
    assert wrong.status_code == 401 and "not the admin token" in wrong.get_data(as_text=True)
    assert client.get("/dashboard/shopify").status_code == 401
    answer = login(client)
    assert (answer.status_code, answer.headers["Location"]) == (303, "/dashboard/shopify")
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and ADMIN_TOKEN not in cookie
    assert client.get("/dashboard/shopify").status_code == 200
    client.post("/logout")
    assert client.get("/dashboard/shopify").status_code == 401


def test_login_never_redirects_to_another_site(client):
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        assert login(client, next_url=target).headers["Location"] == "/dashboard"


def test_the_counts_shown_equal_stagesync_stages_json(client, platform_config_file, capsys):
    html = client.get(f"/dashboard/shopify?at={iso(NOW)}", headers=BEARER).get_data(as_text=True)
    assert main(["--config", str(platform_config_file), "stages", "--shop", "shopify", "--json", "--at", iso(NOW)]) == 0
    expected = json.loads(capsys.readouterr().out)
    counts = shown(html)
    assert {model: {stage: int(text.replace(",", "")) for stage, text in stages.items()}
            for model, stages in counts.items()} == {"rfm": expected["rfm"], "phases": expected["phases"]}
    assert f'datetime="{expected["at"]}"' in html
    assert counts["rfm"]["champion"] == "1" and counts["rfm"]["lost"] == "1"  # ann; dee's only order is 500 d old


def test_revenue_share_sums_total_spent_by_rfm_stage(client):
    revenue = shown(client.get("/dashboard/shopify", headers=BEARER).get_data(as_text=True), "revenue")["rfm"]
    assert revenue["champion"] == "295.00 EUR"  # ann: 120 + 80 + 95
    assert revenue["lost"] == "15.00 EUR"
    assert revenue["prospect"] == "0.00 EUR"


def test_movements_of_the_last_eight_weeks_come_from_the_stage_history(client):
    html = client.get("/dashboard/shopify", headers=BEARER).get_data(as_text=True)
    cells = dict(((f, t), int(n)) for f, t, n in re.findall(r'data-from="([^"]+)" data-to="(\w+)"[^>]*>(\d+)<', html))
    # Every first stage, then Ann's move when her third order arrives (F = 3, high value).
    assert cells == {("(new)", "recent"): 2, ("(new)", "about_to_lose"): 1, ("(new)", "lost"): 1,
                     ("recent", "champion"): 1}
    phases = client.get("/dashboard/shopify?model=phases", headers=BEARER).get_data(as_text=True)
    assert 'data-from="conversion" data-to="development"' in phases
    later = client.get(f"/dashboard/shopify?at={iso(NOW + timedelta(weeks=9))}", headers=BEARER)
    assert "data-from=" not in later.get_data(as_text=True)  # nothing changed in the 8 weeks before then


def test_sync_health_lists_dead_letters_and_replays_them_with_a_csrf_token(client, platform_store, platform_shops):
    SyncWorker(platform_store, platform_shops, clock=lambda: NOW, sleep=lambda s: None,
               destination_factory=lambda *_: UNKNOWN_PROPERTY, metrics=NullMetrics(), shops={"shopify"}).drain()
    login(client)
    html = client.get("/dashboard/shopify").get_data(as_text=True)
    assert re.search(r'data-destination="log">.*?data-outbox>0<.*?data-dead>4<', html, re.S)
    assert html.count("data-dead-letter=") == 4 and "a***@ex***.com" not in html.replace("an***@ex***.com", "")
    letter = re.search(r'data-dead-letter="(\d+)"', html).group(1)
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)

    assert client.post("/dashboard/shopify/replay", data={"id": letter}).status_code == 403  # no CSRF token
    answer = client.post("/dashboard/shopify/replay", data={"id": letter, "csrf": csrf})
    assert answer.status_code == 303 and "replayed=1" in answer.headers["Location"]
    with platform_store.read() as conn:
        states = dict(conn.execute(select(outbox.c.id, outbox.c.state)).all())
    assert states[int(letter)] == "pending" and list(states.values()).count("dead") == 3
    assert "Re-queued 1 dead letter" in client.get(answer.headers["Location"]).get_data(as_text=True)


def test_customer_search_is_a_post_that_opens_the_customer_page_by_ref(client):
    login(client)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/dashboard/shopify").get_data(as_text=True)).group(1)
    assert client.post("/dashboard/shopify/customer", data={"q": "ANN@example.com"}).status_code == 403  # no CSRF
    found = client.post("/dashboard/shopify/customer", data={"q": "ANN@example.com ", "csrf": csrf})
    assert found.status_code == 303
    location = found.headers["Location"]
    assert re.fullmatch(r"/dashboard/shopify/customer/[A-Za-z0-9_-]{16}", location)
    again = client.post("/dashboard/shopify/customer", data={"q": "ann@example.com", "csrf": csrf})
    assert again.headers["Location"] == location  # the ref is stable
    page = client.get(location)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<h1>ann@example.com</h1>" in html
    assert re.search(r'data-field="rfm" data-stage="champion"><b>champion</b>', html)
    assert re.search(r'data-field="orders_365d">3<', html) and re.search(r'data-field="total_spent">295.00<', html)
    assert 'method="post" action="/dashboard/shopify/customer"' in html  # the search form posts
    missing = client.post("/dashboard/shopify/customer", data={"q": "nobody@example.com", "csrf": csrf})
    assert missing.status_code == 404 and "No customer no***@ex***.com in shop shopify" in missing.get_data(as_text=True)
    assert client.get("/dashboard/shopify/customer/not-a-ref").status_code == 404
    assert "ann" not in client.get("/dashboard/shopify/customer?q=ann@example.com").get_data(as_text=True)


def test_unknown_shop_and_bad_instant_are_refused(client):
    assert client.get("/dashboard/nope", headers=BEARER).status_code == 404
    assert client.get("/dashboard/shopify?at=yesterday", headers=BEARER).status_code == 400
