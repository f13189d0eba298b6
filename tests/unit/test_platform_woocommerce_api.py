"""WooCommerce API client: REST v3 pages, Basic auth over HTTPS, polling by modification date."""

from __future__ import annotations

import base64
import copy
import json
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from adapters.platforms import woocommerce
from adapters.platforms.woocommerce_api import WooCommerceOrders
from connector.config import ShopSettings
from connector.errors import ConfigError, PlatformAuthError
from tests.fakes.platforms import NoSleep, fixture

URL = "https://savonnerie.example/wp-json/wc/v3/orders"
KEY, SECRET = "ck_4f1e7a2b9c0d3e5f6a7b8c9d0e1f2a3b4c5d6e7f", "cs_9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b"
SHOP = ShopSettings(id="savonnerie", platform="woocommerce", webhook_secret="wc", currency="EUR", country="FR",
                    api={"base_url": "https://savonnerie.example", "consumer_key": KEY, "consumer_secret": SECRET})


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def client(sleep=None) -> WooCommerceOrders:
    return WooCommerceOrders(SHOP, sleep=sleep or NoSleep())


def orders(first_id: int, count: int) -> list[dict]:
    base = fixture("woocommerce", "api/orders.json")[0]
    result = []
    for i in range(count):
        order = copy.deepcopy(base)
        order["id"] = first_id + i
        order["billing"]["email"] = f"buyer{first_id + i}@example.com"
        result.append(order)
    return result


def add_pages(rsps, pages: list[list[dict]]) -> None:
    total = sum(len(p) for p in pages)
    for number, items in enumerate(pages, start=1):
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(len(pages))}
        if number < len(pages):
            headers["Link"] = f'<{URL}?page={number + 1}>; rel="next"'
        rsps.add(responses.GET, URL, json=items, headers=headers,
                 match=[responses.matchers.query_param_matcher({"page": str(number)}, strict_match=False)])


def asked(rsps) -> list[dict]:
    return [{k: v[0] for k, v in parse_qs(urlsplit(c.request.url).query).items()} for c in rsps.calls]


def test_an_api_order_maps_to_the_same_order_as_its_webhook():
    body = fixture("woocommerce", "order.created.json")
    from_webhook = woocommerce.parse({"X-WC-Webhook-Topic": "order.updated", "Content-Type": "application/json"},
                                     json.dumps(body).encode(), SHOP).actions[0].order
    assert client().order(body) == from_webhook


def test_the_documented_list_maps_refunds_and_guests(rsps):
    add_pages(rsps, [fixture("woocommerce", "api/orders.json")])
    (page,) = list(client().backfill(None, None))
    first, guest = page.orders
    assert first.email == "camille.bernard@example.com" and first.total == Decimal("69.80")
    assert (guest.email, guest.customer_id, guest.refunded) == ("guest.buyer@example.com", None, Decimal("4.90"))


def test_backfill_reads_every_page_by_id_with_basic_auth(rsps):
    add_pages(rsps, [orders(1, 100), orders(101, 100), orders(201, 37)])
    pages = list(client().backfill(None, None))
    assert [len(p.orders) for p in pages] == [100, 100, 37] and pages[0].total == 237
    params = asked(rsps)
    assert [p["page"] for p in params] == ["1", "2", "3"]
    assert params[0]["per_page"] == "100" and params[0]["orderby"] == "id" and params[0]["order"] == "asc"
    auth = rsps.calls[0].request.headers["Authorization"]
    assert auth == "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert json.loads(pages[1].state) == {"page": 3}


def test_backfill_resumes_one_page_before_the_checkpoint(rsps):
    add_pages(rsps, [orders(1, 100), orders(101, 100), orders(201, 5)])
    pages = list(client().backfill(None, json.dumps({"page": 3})))
    assert [p["page"] for p in asked(rsps)] == ["2", "3"] and [len(p.orders) for p in pages] == [100, 5]


def test_since_and_polling_dates_are_gmt(rsps):
    add_pages(rsps, [orders(1, 2)])
    list(client().backfill(datetime(2025, 1, 1, tzinfo=timezone.utc), None))
    list(client().changed(datetime(2025, 3, 1, 8, 30, tzinfo=timezone.utc)))
    backfill, poll = asked(rsps)
    assert backfill["after"] == "2025-01-01T00:00:00Z" and backfill["dates_are_gmt"] == "true"
    assert poll["modified_after"] == "2025-03-01T08:30:00Z" and poll["orderby"] == "modified"
    assert poll["dates_are_gmt"] == "true"


def test_drafts_are_stored_as_pending_orders():
    draft = dict(fixture("woocommerce", "order.created.json"), status="checkout-draft")
    assert client().order(draft).status == "pending"


def test_a_429_and_a_502_are_retried(rsps):
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": "7"}, json={"code": "too_many_requests"})
    rsps.add(responses.GET, URL, status=502, body="<html>Bad Gateway</html>")
    add_pages(rsps, [orders(1, 3)])
    sleep = NoSleep()
    (page,) = list(client(sleep).backfill(None, None))
    assert len(page.orders) == 3 and len(sleep.calls) == 2 and sleep.calls[0] >= 7


def test_bad_keys_are_one_clear_line(rsps):
    rsps.add(responses.GET, URL, status=401, json=fixture("woocommerce", "api/unauthorized.json"))
    with pytest.raises(PlatformAuthError) as error:
        list(client().backfill(None, None))
    message = str(error.value)
    assert "shop savonnerie (woocommerce)" in message and "cannot list resources" in message
    assert "\n" not in message and KEY not in message and SECRET not in message


def test_the_keys_never_travel_over_plain_http():
    shop = ShopSettings(id="s", platform="woocommerce", webhook_secret="x",
                        api={"base_url": "http://savonnerie.example", "consumer_key": KEY, "consumer_secret": SECRET})
    with pytest.raises(ConfigError, match="https"):
        WooCommerceOrders(shop)
