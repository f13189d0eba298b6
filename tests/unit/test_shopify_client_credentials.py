"""Shopify Dev Dashboard apps: the client credentials grant, its renewal, one retry on a 401.

Shapes from https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/client-credentials-grant:
POST https://{shop}.myshopify.com/admin/oauth/access_token, form fields grant_type=client_credentials,
client_id, client_secret; the answer is {"access_token", "scope", "expires_in": 86399}.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs

import pytest
import responses

from adapters.platforms.shopify_api import ShopifyOrders
from connector import config
from connector.config import ShopSettings
from connector.errors import ConfigError, PlatformAuthError
from tests.fakes.platforms import NoSleep

TOKEN_URL = "https://acme.myshopify.com/admin/oauth/access_token"
GRAPHQL = "https://acme.myshopify.com/admin/api/2026-10/graphql.json"
CLIENT_ID, CLIENT_SECRET = "3f1c0e9a7b5d4c2e1f0a9b8c7d6e5f4a", "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"
TOKENS = ["shpat_first_0a1b2c3d4e5f6a7b8c9d", "shpat_second_9f8e7d6c5b4a3f2e1d0c"]
COUNT = {"data": {"ordersCount": {"count": 3, "precision": "EXACT"}}}


class Clock:
    def __init__(self):
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

    def __call__(self):
        return self.now


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def client(clock=None, **api) -> ShopifyOrders:
    shop = ShopSettings(id="acme", platform="shopify", webhook_secret=CLIENT_SECRET, currency="EUR",
                        api={"shop_domain": "acme.myshopify.com", "client_id": CLIENT_ID,
                             "client_secret": CLIENT_SECRET, **api})
    return ShopifyOrders(shop, sleep=NoSleep(), clock=clock or Clock())


def token_answers(rsps, *tokens, expires_in=86399):
    for token in tokens:
        rsps.add(responses.POST, TOKEN_URL, json={"access_token": token, "scope": "read_orders",
                                                  "expires_in": expires_in})


def token_calls(rsps):
    return [c for c in rsps.calls if c.request.url == TOKEN_URL]


def graphql_tokens(rsps):
    return [c.request.headers["X-Shopify-Access-Token"] for c in rsps.calls if c.request.url == GRAPHQL]


def test_the_token_is_fetched_with_the_client_credentials_grant(rsps):
    token_answers(rsps, TOKENS[0])
    rsps.add(responses.POST, GRAPHQL, json=COUNT)
    client().graphql("query { ordersCount { count } }")
    (call,) = token_calls(rsps)
    assert parse_qs(call.request.body) == {"grant_type": ["client_credentials"], "client_id": [CLIENT_ID],
                                           "client_secret": [CLIENT_SECRET]}
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert graphql_tokens(rsps) == [TOKENS[0]]


def test_the_token_is_reused_then_renewed_before_it_expires(rsps):
    token_answers(rsps, TOKENS[0], TOKENS[1])
    rsps.add(responses.POST, GRAPHQL, json=COUNT)
    clock = Clock()
    api = client(clock)
    api.graphql("{ a }")
    clock.now += timedelta(hours=23)
    api.graphql("{ b }")  # still valid: no new token
    clock.now += timedelta(minutes=56)  # 86,160 s: within 5 minutes of 86,399 s
    api.graphql("{ c }")
    assert len(token_calls(rsps)) == 2
    assert graphql_tokens(rsps) == [TOKENS[0], TOKENS[0], TOKENS[1]]


def test_a_401_fetches_a_new_token_once_and_retries(rsps):
    token_answers(rsps, TOKENS[0], TOKENS[1])
    rsps.add(responses.POST, GRAPHQL, status=401, json={"errors": "[API] Invalid API key or access token"})
    rsps.add(responses.POST, GRAPHQL, json=COUNT)
    assert client().graphql("{ a }") == COUNT["data"]
    assert graphql_tokens(rsps) == TOKENS


def test_a_second_401_is_an_auth_error_that_never_shows_a_token_or_the_secret(rsps, caplog):
    caplog.set_level(logging.DEBUG)
    token_answers(rsps, TOKENS[0], TOKENS[1])
    rsps.add(responses.POST, GRAPHQL, status=401,
             json={"errors": f"[API] Invalid API key or access token (unrecognized login or wrong password) {TOKENS[1]}"})
    with pytest.raises(PlatformAuthError) as raised:
        client().graphql("{ a }")
    assert len(token_calls(rsps)) == 2 and len(graphql_tokens(rsps)) == 2
    for secret in (*TOKENS, CLIENT_SECRET):
        assert secret not in str(raised.value) and secret not in caplog.text


def test_a_refused_client_secret_is_an_auth_error_without_the_secret(rsps, caplog):
    caplog.set_level(logging.DEBUG)
    rsps.add(responses.POST, TOKEN_URL, status=401, json={"error": "invalid_client",
                                                          "error_description": f"bad secret {CLIENT_SECRET}"})
    with pytest.raises(PlatformAuthError) as raised:
        client().graphql("{ a }")
    assert CLIENT_SECRET not in str(raised.value) and CLIENT_SECRET not in caplog.text


def test_a_legacy_access_token_is_used_as_it_is(rsps):
    rsps.add(responses.POST, GRAPHQL, json=COUNT)
    shop = ShopSettings(id="acme", platform="shopify", webhook_secret="x",
                        api={"shop_domain": "acme.myshopify.com", "access_token": "shpat_legacy_0123456789"})
    ShopifyOrders(shop, sleep=NoSleep()).graphql("{ a }")
    assert graphql_tokens(rsps) == ["shpat_legacy_0123456789"] and not token_calls(rsps)


def test_a_shop_may_choose_its_admin_api_version(rsps):
    assert client(api_version="2026-07").endpoint == "https://acme.myshopify.com/admin/api/2026-07/graphql.json"
    assert client().endpoint == GRAPHQL
    with pytest.raises(ConfigError, match="api_version"):
        client(api_version="latest")


def test_credentials_are_required():
    with pytest.raises(ConfigError, match="client_id, client_secret"):
        ShopifyOrders(ShopSettings(id="acme", platform="shopify", webhook_secret="x",
                                   api={"shop_domain": "acme.myshopify.com", "client_id": CLIENT_ID}))


def test_the_webhook_secret_defaults_to_the_client_secret():
    toml = f'''
database_url = "sqlite://"
[[shops]]
id = "acme"
platform = "shopify"
currency = "EUR"
api = {{ shop_domain = "acme.myshopify.com", client_id = "{CLIENT_ID}", client_secret = "{CLIENT_SECRET}" }}
'''
    assert config.parse(toml, env={}).shops["acme"].webhook_secret == CLIENT_SECRET
