"""The dashboard's Intake card and each destination's last error, through Flask's test client, on
both engines: the same facts as intake health, and a red line when something needs a person."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from connector.services.intake_health import note_rejected
from connector.services.metrics import NullMetrics
from connector.services.sync import SyncWorker
from tests.conftest import NOW
from tests.fakes.destinations import Refusing
from tests.fakes.senders import ShopifySender
from tests.http_client import BEARER, deliver

WRONG_KEY = Refusing("omnisend: POST /api/contacts -> 401 Unauthorized: invalid API key", status=401)


@pytest.fixture
def client(client):
    """The app's client after Ann's order of two days ago came in."""
    delivery = ShopifySender().order(1, "ann@example.com", "120.00", NOW - timedelta(days=2))
    assert deliver(client, "shopify", delivery).status_code == 200
    return client


def card(html: str) -> str:
    return re.search(r'<section class="card wide" id="intake">(.*?)</section>', html, re.S).group(1)


def test_the_intake_card_shows_the_last_webhook_per_topic_and_no_red_line_when_all_is_well(client):
    html = card(client.get("/dashboard/shopify", headers=BEARER).get_data(as_text=True))
    assert 'data-topic="orders/updated"' in html and "2026-06-01 12:00 UTC" in html
    assert "data-intake-ok" in html and "data-intake-problem" not in html
    assert re.search(r'data-rejected="bad_signature"><td>bad signature</td><td class="num ">0<', html)


def test_refused_deliveries_put_a_red_line_on_the_intake_card(client, platform_store):
    bad = ShopifySender(secret="not-the-shops-secret").order(2, "bo@example.com", "20.00", NOW - timedelta(hours=1))
    assert client.post("/webhooks/shopify", data=bad.body, headers=bad.headers).status_code == 401
    note_rejected(platform_store, "shopify", "bad_signature", NOW - timedelta(hours=25))  # outside the 24 hours
    html = card(client.get("/dashboard/shopify", headers=BEARER).get_data(as_text=True))
    (line,) = re.findall(r'data-intake-problem>([^<]+)<', html)
    assert line.startswith("shopify: 1 webhook deliveries refused in the last 24 h: bad or missing signature")
    assert re.search(r'data-rejected="bad_signature"><td>bad signature</td><td class="num bad">1<', html)
    assert "data-intake-ok" not in html and "bo@example.com" not in html


def test_a_destination_refusing_everything_shows_its_last_error_in_red(client, platform_store, platform_shops):
    SyncWorker(platform_store, platform_shops, clock=lambda: NOW, sleep=lambda s: None,
               destination_factory=lambda *_: WRONG_KEY, metrics=NullMetrics(), shops={"shopify"}).drain()
    html = client.get("/dashboard/shopify", headers=BEARER).get_data(as_text=True)
    error = re.search(r'<td class="(\w+)" data-last-error>([^<]+)', html)
    assert error.group(1) == "bad" and "401 Unauthorized: invalid API key" in error.group(2)
    (problem,) = re.findall(r'data-sync-problem="log">([^<]+)<', html)
    assert problem == ("log refuses what it is sent: omnisend: POST /api/contacts -&gt; 401 Unauthorized: "
                       "invalid API key")
