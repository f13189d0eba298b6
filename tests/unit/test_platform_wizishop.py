"""WiziShop API client: JWT login and refresh, pages, the 404 empty page, statuses; webhooks refused."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from adapters.platforms import wizishop
from adapters.platforms.wizishop import WiziShopOrders, jwt_expiry
from connector.config import ShopSettings
from connector.errors import PayloadError, PlatformAuthError, SignatureError
from tests.fakes.platforms import NoSleep, fixture

BASE = "https://api.wizishop.com"
ORDERS = f"{BASE}/v3/shops/1234/orders"
PASSWORD = "wz-Pa55word-for-api-user"
SHOP = ShopSettings(id="savons", platform="wizishop", webhook_secret="unused", currency="EUR", country="FR",
                    api={"username": "api@savonnerie.example", "password": PASSWORD})
NOW = datetime(2025, 3, 20, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def client(sleep=None, clock=lambda: NOW, **api) -> WiziShopOrders:
    shop = ShopSettings(id=SHOP.id, platform="wizishop", webhook_secret="x", currency="EUR", country="FR",
                        api={**SHOP.api, **api})
    return WiziShopOrders(shop, sleep=sleep or NoSleep(), clock=clock)


def token(exp: datetime) -> str:
    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'RS256'})}.{part({'exp': int(exp.timestamp()), 'id_shop': 1234})}.sig"


def login(rsps, body=None, status=200):
    rsps.add(responses.POST, f"{BASE}/v3/auth/login", json=body or fixture("wizishop", "api/login.json"), status=status)


def page(results, number=1, pages=1) -> dict:
    return {"page": number, "limit": 100, "pages": pages, "total": len(results), "results": results}


def orders(first_id: int, count: int) -> list[dict]:
    base = fixture("wizishop", "api/orders.json")["results"][0]
    return [dict(base, id=first_id + i, billing_address=dict(base["billing_address"], email=f"b{first_id + i}@example.com"))
            for i in range(count)]


def params(call) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


def test_statuses_map_to_valid_cancelled_refunded_and_abandoned_carts_are_skipped():
    results = fixture("wizishop", "api/orders.json")["results"]
    delivered, cancelled, abandoned = (client().order(r) for r in results)
    assert (delivered.status, delivered.is_valid, delivered.total) == ("placed", True, Decimal("64.9"))
    assert delivered.email == "claire.moreau@example.com" and delivered.phone == "+33611223344"
    assert delivered.placed_at == datetime(2025, 3, 14, 10, 30, tzinfo=timezone.utc)
    assert (cancelled.status, cancelled.is_valid) == ("cancelled", False)
    assert abandoned is None
    refunded = client().order(dict(results[0], status_code=46))
    assert (refunded.status, refunded.refunded, refunded.is_valid) == ("refunded", Decimal("64.9"), False)
    assert client().order(dict(results[0], status_code=21)).is_valid  # a custom state counts


def test_a_date_without_offset_is_the_shops_local_time():
    order = client().order(dict(fixture("wizishop", "api/orders.json")["results"][0], date="2025-07-01 10:00:00"))
    assert order.placed_at == datetime(2025, 7, 1, 8, 0, tzinfo=timezone.utc)  # Paris, summer time


def test_login_then_pages_until_the_404_empty_page(rsps):
    login(rsps)
    rsps.add(responses.GET, ORDERS, json=page(orders(1, 100), 1, 3))
    rsps.add(responses.GET, ORDERS, json=page(orders(101, 100), 2, 3))
    rsps.add(responses.GET, ORDERS, json=fixture("wizishop", "api/not_found.json"), status=404)
    pages = list(client().backfill(datetime(2025, 1, 1, tzinfo=timezone.utc), None))
    assert [len(p.orders) for p in pages] == [100, 100, 0]
    calls = [c for c in rsps.calls if c.request.method == "GET"]
    assert [params(c)["page"] for c in calls] == ["1", "2", "3"]
    assert params(calls[0])["sort"] == "id" and params(calls[0])["limit"] == "100"
    assert params(calls[0])["start_date"] == "2025-01-01 01:00:00"  # Paris time, as WiziShop's SDKs send it
    token = fixture("wizishop", "api/login.json")["token"]
    assert all(c.request.headers["Authorization"] == f"Bearer {token}" for c in calls)
    assert json.loads(pages[-1].state) == {"after_id": 200}


def test_the_shop_id_defaults_to_the_logins_default_shop(rsps):
    login(rsps)
    rsps.add(responses.GET, ORDERS, json=fixture("wizishop", "api/orders.json"))
    (page,) = list(client().backfill(None, None))
    assert len(page.orders) == 2 and page.skipped == 1  # the abandoned cart


def test_a_resumed_backfill_asks_for_ids_after_the_checkpoint(rsps):
    login(rsps)
    rsps.add(responses.GET, ORDERS, json=page(orders(201, 5)))
    list(client().backfill(None, json.dumps({"after_id": 200})))
    assert params(rsps.calls[-1])["id_greater_than"] == "200" and params(rsps.calls[-1])["page"] == "1"


def test_an_expired_token_is_refreshed_and_the_page_asked_again(rsps):
    login(rsps)
    rsps.add(responses.GET, ORDERS, json=fixture("wizishop", "api/expired_token.json"), status=401)
    rsps.add(responses.GET, f"{BASE}/v3/auth/refresh_token", json=fixture("wizishop", "api/refresh_token.json"))
    rsps.add(responses.GET, ORDERS, json=page(orders(1, 2)))
    (page_,) = list(client().backfill(None, None))
    assert len(page_.orders) == 2
    old, new = fixture("wizishop", "api/login.json")["token"], fixture("wizishop", "api/refresh_token.json")["token"]
    refresh, retried = rsps.calls[2], rsps.calls[3]
    assert refresh.request.headers["Authorization"] == f"Bearer {old}"
    assert retried.request.headers["Authorization"] == f"Bearer {new}"


def test_a_token_about_to_expire_is_renewed_before_it_is_used(rsps):
    login(rsps, {"token": token(NOW + timedelta(minutes=10)), "default_shop_id": 1234})
    rsps.add(responses.GET, f"{BASE}/v3/auth/refresh_token", json=fixture("wizishop", "api/refresh_token.json"))
    rsps.add(responses.GET, ORDERS, json=page(orders(1, 100), 1, 2))
    rsps.add(responses.GET, ORDERS, json=page(orders(101, 1), 2, 2))
    now = [NOW]
    pages = client(clock=lambda: now[0]).backfill(None, None)
    next(pages)
    now[0] = NOW + timedelta(minutes=8)  # the second page is asked for 8 minutes later
    list(pages)
    assert [c.request.url.split("?")[0] for c in rsps.calls] == [
        f"{BASE}/v3/auth/login", ORDERS, f"{BASE}/v3/auth/refresh_token", ORDERS]


def test_a_refused_refresh_logs_in_again(rsps):
    login(rsps)
    rsps.add(responses.GET, ORDERS, json=fixture("wizishop", "api/expired_token.json"), status=401)
    rsps.add(responses.GET, f"{BASE}/v3/auth/refresh_token", json=fixture("wizishop", "api/expired_token.json"), status=401)
    rsps.add(responses.GET, ORDERS, json=page(orders(1, 1)))
    list(client().backfill(None, None))
    assert [c.request.url.split("?")[0] for c in rsps.calls].count(f"{BASE}/v3/auth/login") == 2


def test_bad_credentials_are_one_clear_line(rsps):
    login(rsps, fixture("wizishop", "api/bad_credentials.json"), status=401)
    with pytest.raises(PlatformAuthError) as error:
        list(client().backfill(None, None))
    message = str(error.value)
    assert "shop savons (wizishop)" in message and "Invalid credentials" in message
    assert "\n" not in message and PASSWORD not in message


def test_polling_rereads_the_lookback_window_by_order_date(rsps):
    login(rsps)
    rsps.add(responses.GET, ORDERS, json=fixture("wizishop", "api/not_found.json"), status=404)
    assert [p.orders for p in client(poll_lookback_days=7).changed(NOW)] == [()]
    assert params(rsps.calls[-1])["start_date"] == "2025-03-13 13:00:00"  # 7 days back, Paris time


def test_a_5xx_is_retried(rsps):
    login(rsps)
    rsps.add(responses.GET, ORDERS, status=503, body="Service Unavailable")
    rsps.add(responses.GET, ORDERS, json=page(orders(1, 1)))
    sleep = NoSleep()
    assert len(list(client(sleep).backfill(None, None))[0].orders) == 1 and len(sleep.calls) == 1


def test_webhooks_are_refused_with_the_reason():
    with pytest.raises(SignatureError, match="does not sign its webhooks"):
        wizishop.verify({}, b"{}", "secret", NOW)
    with pytest.raises(PayloadError, match="stagesync poll"):
        wizishop.parse({}, b"{}", SHOP)


def test_the_jwt_expiry_is_read_from_its_claims():
    assert jwt_expiry(token(NOW)) == NOW
    assert jwt_expiry("not-a-jwt") is None
