"""What a platform or vendor API call may reach: ids from payloads or APIs are whole numbers before
they go into a path (`../` would reach another endpoint of the store's API with our credentials),
and a redirect to another host never carries the account's key (docs/platform-apis.md)."""

from __future__ import annotations

import json

import pytest
import requests
import responses

from adapters import http
from adapters.platforms import bigcommerce
from adapters.platforms.api import path_handle, path_id
from adapters.platforms.bigcommerce import BigCommerceOrders
from adapters.platforms.wizishop import WiziShopOrders
from connector.config import ShopSettings
from connector.errors import ConfigError, PayloadError, PlatformApiError
from tests.fakes.platforms import NoSleep, fixture

SECRET = "bc-hook-secret-7d1f0a9e3c"
TOKEN = "bc_access_token_5a4b3c2d1e0f9a8b7c6d"
BIGCOMMERCE = ShopSettings(id="outdoor", platform="bigcommerce", webhook_secret=SECRET, currency="USD", country="US",
                           api={"store_hash": "abc123de", "access_token": TOKEN})


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def order_callback(order_id) -> tuple[bytes, dict]:
    payload = fixture("bigcommerce", "webhooks/store_order_created.json")
    payload["data"]["id"] = order_id
    body = json.dumps(payload).encode()
    return body, bigcommerce.sign(body, SECRET)


@pytest.mark.parametrize("order_id", ["../../v3/customers", "1/../../v2/customers", "12?limit=250", "1%2F..", "-1",
                                      "１２"])
def test_a_bigcommerce_callback_whose_order_id_is_not_a_whole_number_is_refused(order_id, rsps):
    body, headers = order_callback(order_id)
    with pytest.raises(PayloadError, match="whole number"):
        bigcommerce.parse(headers, body, BIGCOMMERCE)
    assert len(rsps.calls) == 0


@pytest.mark.parametrize("order_id", ["../customers", "1 OR 1", "", None, True, "1" * 21])
def test_an_order_id_that_is_not_a_whole_number_never_reaches_a_path(order_id, rsps):
    with pytest.raises(PlatformApiError, match="whole number"):
        BigCommerceOrders(BIGCOMMERCE, sleep=NoSleep()).order(order_id)
    assert len(rsps.calls) == 0


def test_whole_numbers_and_plain_handles_pass():
    assert path_id(100, "id") == "100" and path_id(" 42 ", "id") == "42"
    assert path_handle("abc123de", "store_hash") == "abc123de"


@pytest.mark.parametrize("store_hash", ["abc/../../x", "abc?x=1", "..", "a b"])
def test_a_store_hash_that_would_change_the_path_is_a_config_problem(store_hash):
    assert any(p.startswith("store_hash:") for p in BigCommerceOrders.problems({"store_hash": store_hash,
                                                                                 "access_token": TOKEN}))
    shop = ShopSettings(id="x", platform="bigcommerce", webhook_secret=SECRET, currency="USD",
                        api={"store_hash": store_hash, "access_token": TOKEN})
    with pytest.raises(ConfigError, match="store_hash"):
        BigCommerceOrders(shop, sleep=NoSleep())


def test_a_wizishop_shop_id_that_is_not_a_whole_number_is_a_config_problem_and_never_a_path(rsps):
    assert any(p.startswith("shop_id:") for p in WiziShopOrders.problems({"username": "u", "password": "p",
                                                                           "shop_id": "12/../../admin"}))
    rsps.add(responses.POST, "https://api.wizishop.com/v3/auth/login",
             json={**fixture("wizishop", "api/login.json"), "default_shop_id": "1/../../users"})
    shop = ShopSettings(id="savons", platform="wizishop", webhook_secret="x", currency="EUR",
                        api={"username": "api@savonnerie.example", "password": "wz-Pa55word-for-api-user"})
    with pytest.raises(PlatformApiError, match="whole number"):
        list(WiziShopOrders(shop, sleep=NoSleep()).backfill(None, None))
    assert all("/shops/" not in call.request.url for call in rsps.calls)


# --- redirects -----------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_to_another_host_carries_no_credential(rsps, status):
    rsps.add(responses.GET, "https://api.vendor.example/v3/contacts", status=status,
             headers={"Location": "https://elsewhere.example/collect"})
    rsps.add(responses.GET, "https://elsewhere.example/collect", json={})
    session = http.make_session()
    session.get("https://api.vendor.example/v3/contacts", timeout=5,
                headers={"api-key": "xkeysib-secret", "X-API-KEY": "omni-secret", "X-Auth-Token": "bc-secret",
                         "Authorization": "Bearer tok-secret", "Accept": "application/json"})
    first, second = rsps.calls[0].request, rsps.calls[1].request
    assert first.headers["api-key"] == "xkeysib-secret"
    sent = {name.lower() for name in second.headers}
    assert not sent & {"api-key", "x-api-key", "x-auth-token", "authorization"}
    assert second.headers["Accept"] == "application/json" and second.headers["User-Agent"].startswith("stagesync/")


def test_a_redirect_within_the_same_host_keeps_the_credentials(rsps):
    rsps.add(responses.GET, "https://api.vendor.example/v3/contacts", status=301,
             headers={"Location": "https://api.vendor.example/v3/contacts/"})
    rsps.add(responses.GET, "https://api.vendor.example/v3/contacts/", json={})
    http.make_session().get("https://api.vendor.example/v3/contacts", headers={"api-key": "xkeysib-secret"}, timeout=5)
    assert rsps.calls[1].request.headers["api-key"] == "xkeysib-secret"


def test_a_plain_requests_session_would_have_leaked_the_vendor_key(rsps):
    """Why make_session() is needed: requests drops Authorization on another host, not a vendor's own header."""
    rsps.add(responses.GET, "https://api.vendor.example/a", status=302, headers={"Location": "https://elsewhere.example/b"})
    rsps.add(responses.GET, "https://elsewhere.example/b", json={})
    requests.Session().get("https://api.vendor.example/a", headers={"api-key": "xkeysib-secret"}, timeout=5)
    assert rsps.calls[1].request.headers.get("api-key") == "xkeysib-secret"
