"""What every platform API client shares: classification of answers, retries, the registry."""

from __future__ import annotations

import pytest
import requests
import responses

from adapters.platforms import api
from adapters.platforms.api import PlatformHttp, api_client, api_problems
from connector.config import ShopSettings
from connector.errors import PlatformApiError, PlatformAuthError, RetriablePlatformError, UserError
from tests.fakes.platforms import NoSleep

SHOP = ShopSettings(id="acme", platform="shopify", webhook_secret="x")
URL = "https://platform.example/orders"


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def http(sleep=None, **kw) -> PlatformHttp:
    return PlatformHttp(SHOP, "shopify", secrets=["tok_0123456789"], sleep=sleep or NoSleep(), **kw)


def test_a_client_error_is_fatal_and_not_retried(rsps):
    rsps.add(responses.GET, URL, status=400, json={"message": "bad filter for jane.doe@example.com"})
    sleep = NoSleep()
    with pytest.raises(PlatformApiError) as error:
        http(sleep).request("GET", URL)
    assert not isinstance(error.value, RetriablePlatformError) and not sleep.calls
    assert "400" in str(error.value) and "jane.doe@example.com" not in str(error.value)


def test_a_403_is_an_authentication_error_with_the_hint(rsps):
    rsps.add(responses.GET, URL, status=403, json={"errors": "[API] This action requires merchant approval for read_orders scope."})
    with pytest.raises(PlatformAuthError, match="refused the credentials.*check the token"):
        http(auth_hint="check the token").request("GET", URL)


def test_a_secret_in_the_platforms_answer_is_masked(rsps):
    rsps.add(responses.GET, URL, status=422, body="token tok_0123456789 is not valid here")
    with pytest.raises(PlatformApiError) as error:
        http().request("GET", URL)
    assert "tok_0123456789" not in str(error.value) and "to***" in str(error.value)


def test_a_wait_longer_than_allowed_gives_up_at_once(rsps):
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": "3600"}, body="slow down")
    sleep = NoSleep()
    with pytest.raises(RetriablePlatformError) as error:
        http(sleep).request("GET", URL)
    assert error.value.retry_after == 3600 and not sleep.calls


def test_connection_failures_and_timeouts_are_retried(rsps):
    rsps.add(responses.GET, URL, body=requests.ConnectionError("refused"))
    rsps.add(responses.GET, URL, body=requests.ReadTimeout("slow"))
    rsps.add(responses.GET, URL, json=[])
    sleep = NoSleep()
    assert http(sleep).request("GET", URL).json() == [] and len(sleep.calls) == 2


def test_every_configurable_platform_but_standard_has_an_api_client():
    assert set(api.CLIENTS) == {"shopify", "woocommerce", "wizishop", "bigcommerce"}
    with pytest.raises(UserError, match="API clients: bigcommerce, shopify, wizishop, woocommerce"):
        api_client(ShopSettings(id="s", platform="standard", webhook_secret="x", api={"x": 1}))


def test_a_shop_without_an_api_table_has_no_client():
    with pytest.raises(UserError, match="no `api` table"):
        api_client(SHOP)


def test_check_config_lists_the_problems_of_api_tables():
    shop = ShopSettings(id="s", platform="woocommerce", webhook_secret="x", api={"base_url": "ftp://x", "key": "k"})
    problems = api_problems(shop)
    assert "shops[s].api.consumer_key: is required" in problems
    assert any("base_url" in p for p in problems) and any("unknown key" in p for p in problems)
    assert api_problems(SHOP) == []
