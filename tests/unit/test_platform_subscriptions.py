"""The subscription adapters speak each platform's documented API: requests (paths, bodies, auth)
exactly as documented, answers translated into `Subscription`s, pages followed, refusals named,
secrets never in a message. Platform HTTP is answered by `responses`."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from adapters.platforms.bigcommerce_subscriptions import BigCommerceSubscriptions
from adapters.platforms.shopify_subscriptions import ShopifySubscriptions, topic_enum, topic_name
from adapters.platforms.woocommerce_subscriptions import WooCommerceSubscriptions
from connector import config
from connector.domain.ports import Subscription
from connector.errors import PlatformApiError

URL = "https://hooks.example.com/webhooks/{shop}"
GRAPHQL = "https://acme.myshopify.com/admin/api/2026-10/graphql.json"
WOO = "https://savonnerie.example/wp-json/wc/v3/webhooks"
BC = "https://api.bigcommerce.com/stores/abc123de/v3/hooks"
SHOPS = """
[[shops]]
id = "acme"
platform = "shopify"
webhook_secret = "shpss_secret_0123"
api = { shop_domain = "acme.myshopify.com", access_token = "shpat_static_0123456789" }

[[shops]]
id = "acme2"
platform = "shopify"
api = { shop_domain = "acme.myshopify.com", client_id = "cid-0123", client_secret = "csecret-0123456789" }

[[shops]]
id = "savonnerie"
platform = "woocommerce"
webhook_secret = "wc-secret-0123456789"
api = { base_url = "https://savonnerie.example", consumer_key = "ck_0123456789", consumer_secret = "cs_0123456789" }

[[shops]]
id = "outdoor"
platform = "bigcommerce"
webhook_secret = "bc-secret-0123456789"
api = { store_hash = "abc123de", access_token = "bc_token_0123456789" }
"""


@pytest.fixture(scope="module")
def shops():
    return config.parse(SHOPS, env={}).shops


@pytest.fixture
def rsps():
    with responses.RequestsMock() as mock:
        yield mock


def sent(call) -> dict:
    return json.loads(call.request.body)


def query_of(call) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


def never_sleep(seconds: float) -> None:
    pass


# --- Shopify ----------------------------------------------------------------------------------------

def graphql_answer(name: str, payload: dict) -> dict:
    return {"data": {name: payload}, "extensions": {"cost": {"requestedQueryCost": 12, "actualQueryCost": 10,
            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990, "restoreRate": 100.0}}}}


def test_shopify_topics_are_the_graphql_enums_of_the_delivery_topics():
    assert topic_enum("orders/create") == "ORDERS_CREATE" and topic_enum("app/uninstalled") == "APP_UNINSTALLED"
    assert topic_name("CUSTOMERS_DATA_REQUEST") == "customers/data_request" and topic_name("REFUNDS_CREATE") == "refunds/create"
    assert "customers/redact" not in ShopifySubscriptions.topics and "orders/edited" in ShopifySubscriptions.topics


def test_shopify_lists_every_page_with_the_static_token(shops, rsps):
    cursor = base64.b64encode(b"1").decode()
    rsps.post(GRAPHQL, json=graphql_answer("webhookSubscriptions", {
        "nodes": [{"id": "gid://shopify/WebhookSubscription/1", "topic": "ORDERS_CREATE", "uri": URL.format(shop="acme")}],
        "pageInfo": {"hasNextPage": True, "endCursor": cursor}}))
    rsps.post(GRAPHQL, json=graphql_answer("webhookSubscriptions", {
        "nodes": [{"id": "gid://shopify/WebhookSubscription/2", "topic": "PRODUCTS_UPDATE", "uri": "https://other.example/p"}],
        "pageInfo": {"hasNextPage": False, "endCursor": None}}))
    found = ShopifySubscriptions(shops["acme"], sleep=never_sleep).list()
    assert found == [Subscription("orders/create", URL.format(shop="acme"), "active", "gid://shopify/WebhookSubscription/1"),
                     Subscription("products/update", "https://other.example/p", "active", "gid://shopify/WebhookSubscription/2")]
    first, second = rsps.calls
    assert first.request.headers["X-Shopify-Access-Token"] == "shpat_static_0123456789"
    assert "webhookSubscriptions(first: $first, after: $after)" in sent(first)["query"]
    assert sent(first)["variables"] == {"first": 100, "after": None}
    assert sent(second)["variables"] == {"first": 100, "after": cursor}


def test_shopify_creates_with_the_unified_uri_after_a_client_credentials_token(shops, rsps):
    rsps.post("https://acme.myshopify.com/admin/oauth/access_token",
              json={"access_token": "shpat_fetched_0123456789", "scope": "read_orders", "expires_in": 86399})
    rsps.post(GRAPHQL, json=graphql_answer("webhookSubscriptionCreate", {
        "webhookSubscription": {"id": "gid://shopify/WebhookSubscription/7", "topic": "ORDERS_PAID", "uri": URL.format(shop="acme2")},
        "userErrors": []}))
    created = ShopifySubscriptions(shops["acme2"], sleep=never_sleep).create("orders/paid", URL.format(shop="acme2"))
    assert created == Subscription("orders/paid", URL.format(shop="acme2"), "active", "gid://shopify/WebhookSubscription/7")
    token, create = rsps.calls
    assert parse_qs(token.request.body) == {"grant_type": ["client_credentials"], "client_id": ["cid-0123"],
                                            "client_secret": ["csecret-0123456789"]}
    assert create.request.headers["X-Shopify-Access-Token"] == "shpat_fetched_0123456789"
    assert "webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription)" in sent(create)["query"]
    assert sent(create)["variables"] == {"topic": "ORDERS_PAID",
                                         "webhookSubscription": {"uri": URL.format(shop="acme2"), "format": "JSON"}}


def test_shopify_update_and_delete_send_the_subscription_id(shops, rsps):
    gid = "gid://shopify/WebhookSubscription/9"
    rsps.post(GRAPHQL, json=graphql_answer("webhookSubscriptionUpdate", {
        "webhookSubscription": {"id": gid, "topic": "ORDERS_DELETE", "uri": URL.format(shop="acme")}, "userErrors": []}))
    rsps.post(GRAPHQL, json=graphql_answer("webhookSubscriptionDelete", {"deletedWebhookSubscriptionId": gid,
                                                                          "userErrors": []}))
    api = ShopifySubscriptions(shops["acme"], sleep=never_sleep)
    old = Subscription("orders/delete", "https://old.example/webhooks/acme", "active", gid)
    assert api.repair(old, URL.format(shop="acme")).url == URL.format(shop="acme")
    api.delete(old)
    update, delete = rsps.calls
    assert sent(update)["variables"] == {"id": gid, "webhookSubscription": {"uri": URL.format(shop="acme")}}
    assert "webhookSubscriptionDelete(id: $id)" in sent(delete)["query"] and sent(delete)["variables"] == {"id": gid}


def test_shopify_user_errors_are_a_platform_error_naming_field_and_message(shops, rsps):
    rsps.post(GRAPHQL, json=graphql_answer("webhookSubscriptionCreate", {"webhookSubscription": None, "userErrors": [
        {"field": ["webhookSubscription", "callbackUrl"], "message": "Address for this topic has already been taken"}]}))
    with pytest.raises(PlatformApiError) as caught:
        ShopifySubscriptions(shops["acme"], sleep=never_sleep).create("orders/create", URL.format(shop="acme"))
    assert str(caught.value) == ("shop acme (shopify): webhookSubscriptionCreate refused: webhookSubscription.callbackUrl: "
                                 "Address for this topic has already been taken")


# --- WooCommerce ------------------------------------------------------------------------------------

def woo_webhook(ident: int, topic: str, url: str, status: str = "active") -> dict:
    resource, event = topic.split(".")
    return {"id": ident, "name": f"hook {ident}", "status": status, "topic": topic, "resource": resource, "event": event,
            "hooks": [], "delivery_url": url, "date_created": "2026-12-01T10:00:00", "date_created_gmt": "2026-12-01T10:00:00",
            "date_modified": "2026-12-01T10:00:00", "date_modified_gmt": "2026-12-01T10:00:00"}


def test_woocommerce_lists_every_page_and_reads_paused_and_disabled_as_disabled(shops, rsps):
    url = URL.format(shop="savonnerie")
    rsps.get(WOO, json=[woo_webhook(1, "order.created", url), woo_webhook(2, "order.updated", url, "paused")],
             headers={"X-WP-Total": "3", "X-WP-TotalPages": "2"})
    rsps.get(WOO, json=[woo_webhook(3, "order.deleted", url, "disabled")], headers={"X-WP-Total": "3", "X-WP-TotalPages": "2"})
    found = WooCommerceSubscriptions(shops["savonnerie"], sleep=never_sleep).list()
    assert [(s.id, s.topic, s.state) for s in found] == [("1", "order.created", "active"), ("2", "order.updated", "disabled"),
                                                         ("3", "order.deleted", "disabled")]
    assert [query_of(c) for c in rsps.calls] == [{"per_page": "100", "page": "1", "status": "all"},
                                                {"per_page": "100", "page": "2", "status": "all"}]
    expected_auth = "Basic " + base64.b64encode(b"ck_0123456789:cs_0123456789").decode()
    assert rsps.calls[0].request.headers["Authorization"] == expected_auth


def test_woocommerce_creates_an_active_webhook_signed_with_the_shop_secret(shops, rsps):
    url = URL.format(shop="savonnerie")
    rsps.post(WOO, status=201, json=woo_webhook(12, "order.created", url))
    created = WooCommerceSubscriptions(shops["savonnerie"], sleep=never_sleep).create("order.created", url)
    assert created == Subscription("order.created", url, "active", "12")
    assert sent(rsps.calls[0]) == {"name": "stagesync savonnerie order.created", "topic": "order.created",
                                   "delivery_url": url, "secret": "wc-secret-0123456789", "status": "active"}


def test_woocommerce_repairs_with_put_and_deletes_with_force(shops, rsps):
    url = URL.format(shop="savonnerie")
    rsps.put(f"{WOO}/5", json=woo_webhook(5, "order.updated", url))
    rsps.delete(f"{WOO}/5", json=woo_webhook(5, "order.updated", url))
    api = WooCommerceSubscriptions(shops["savonnerie"], sleep=never_sleep)
    paused = Subscription("order.updated", url, "disabled", "5")
    assert api.repair(paused, url).state == "active"
    api.delete(paused)
    repair, delete = rsps.calls
    assert sent(repair) == {"status": "active", "delivery_url": url, "secret": "wc-secret-0123456789"}
    assert delete.request.method == "DELETE" and query_of(delete) == {"force": "true"}


def test_a_refusal_never_shows_the_shop_secret(shops, rsps):
    rsps.post(WOO, status=400, json={"code": "woocommerce_rest_shop_webhook_invalid_topic",
                                     "message": "Webhook topic is required and must be valid: wc-secret-0123456789",
                                     "data": {"status": 400}})
    with pytest.raises(PlatformApiError) as caught:
        WooCommerceSubscriptions(shops["savonnerie"], sleep=never_sleep).create("order.nope", URL.format(shop="savonnerie"))
    assert "400" in str(caught.value) and "wc-secret-0123456789" not in str(caught.value)


# --- BigCommerce ------------------------------------------------------------------------------------

def hook(ident: int, scope: str, url: str, active: bool = True, secret: str | None = "bc-secret-0123456789") -> dict:
    return {"id": ident, "client_id": "m9r6keqmo7h7f23btnpwernbez1kglkl", "store_hash": "abc123de", "scope": scope,
            "destination": url, "headers": {"X-Stagesync-Webhook-Secret": secret} if secret else None,
            "is_active": active, "created_at": 1561488106, "updated_at": 1561488106}


def envelope(data, page: int, pages: int) -> dict:
    return {"data": data, "meta": {"pagination": {"total": 3, "count": len(data), "per_page": 100, "current_page": page,
                                                  "total_pages": pages, "links": {"current": f"?limit=100&page={page}"}}}}


def test_bigcommerce_lists_every_page_with_active_disabled_and_wrong_secret(shops, rsps):
    url = URL.format(shop="outdoor")
    rsps.get(BC, json=envelope([hook(1, "store/order/created", url), hook(2, "store/order/updated", url, active=False)], 1, 2))
    rsps.get(BC, json=envelope([hook(3, "store/order/archived", url, secret="old-secret")], 2, 2))
    found = BigCommerceSubscriptions(shops["outdoor"], sleep=never_sleep).list()
    assert [(s.id, s.topic, s.state) for s in found] == [("1", "store/order/created", "active"),
                                                         ("2", "store/order/updated", "disabled"),
                                                         ("3", "store/order/archived", "wrong_secret")]
    assert [query_of(c) for c in rsps.calls] == [{"page": "1", "limit": "100"}, {"page": "2", "limit": "100"}]
    assert rsps.calls[0].request.headers["X-Auth-Token"] == "bc_token_0123456789"


def test_bigcommerce_creates_an_active_hook_with_the_secret_header(shops, rsps):
    url = URL.format(shop="outdoor")
    rsps.post(BC, json={"data": hook(18048287, "store/order/created", url), "meta": {}})
    created = BigCommerceSubscriptions(shops["outdoor"], sleep=never_sleep).create("store/order/created", url)
    assert created == Subscription("store/order/created", url, "active", "18048287")
    assert sent(rsps.calls[0]) == {"scope": "store/order/created", "destination": url, "is_active": True,
                                   "headers": {"X-Stagesync-Webhook-Secret": "bc-secret-0123456789"}}


def test_bigcommerce_reactivates_with_put_and_deletes_by_id(shops, rsps):
    url = URL.format(shop="outdoor")
    rsps.put(f"{BC}/22", json={"data": hook(22, "store/order/updated", url), "meta": {}})
    rsps.delete(f"{BC}/22", json={"data": hook(22, "store/order/updated", url), "meta": {}})
    api = BigCommerceSubscriptions(shops["outdoor"], sleep=never_sleep)
    inactive = Subscription("store/order/updated", url, "disabled", "22")
    assert api.repair(inactive, url).state == "active"
    api.delete(inactive)
    repair, delete = rsps.calls
    assert sent(repair) == {"destination": url, "is_active": True,
                            "headers": {"X-Stagesync-Webhook-Secret": "bc-secret-0123456789"}}
    assert delete.request.method == "DELETE"
