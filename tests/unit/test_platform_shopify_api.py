"""Shopify API client: GraphQL pages, throttling, bulk operation, and the same mapping as webhooks."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import responses

from adapters.platforms import shopify, shopify_api, shopify_bulk, shopify_client, shopify_order
from adapters.platforms.shopify_api import ShopifyOrders
from adapters.platforms.shopify_order import rest_order
from connector.config import ShopSettings
from connector.errors import ConfigError, PlatformApiError, PlatformAuthError, RetriablePlatformError
from tests.fakes.platforms import SHOPIFY_ENDPOINT, SHOPIFY_TOKEN, FakeShopify, NoSleep, fixture, shopify_node

SHOP = ShopSettings(id="acme", platform="shopify", webhook_secret="shpss_x", currency="EUR", country="FR",
                    api={"shop_domain": "acme.myshopify.com", "access_token": SHOPIFY_TOKEN})
NOW = datetime(2025, 3, 20, 12, 0, tzinfo=timezone.utc)
EARLY = datetime(2024, 12, 1, tzinfo=timezone.utc)
BULK_URL = fixture("shopify", "graphql/bulk_completed.json")["data"]["currentBulkOperation"]["url"]


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def client(sleep=None, **api) -> ShopifyOrders:
    shop = ShopSettings(id=SHOP.id, platform="shopify", webhook_secret="x", currency="EUR", country="FR",
                        api={**SHOP.api, **api})
    return ShopifyOrders(shop, sleep=sleep or NoSleep())


def nodes(count: int) -> list[dict]:
    return [shopify_node(1000 + i, f"buyer{i}@example.com", "10.00", datetime(2025, 1, 1, tzinfo=timezone.utc),
                         datetime(2025, 1, 2, tzinfo=timezone.utc)) for i in range(count)]


def test_a_graphql_order_maps_to_the_same_order_as_its_webhook():
    from_webhook = shopify.parse({"X-Shopify-Topic": "orders/create", "Content-Type": "application/json"},
                                 json.dumps(fixture("shopify", "orders/create.json")).encode(), SHOP).actions[0].order
    from_api = client().order(fixture("shopify", "graphql/order_node.json"))
    assert from_api == from_webhook


def test_refunds_in_the_api_give_the_webhooks_refunded_amount():
    partly = rest_order(shopify_node(1, "a@example.com", "90.00", NOW, NOW, refunded="30.00"))
    assert partly["financial_status"] == "partially_refunded"
    assert partly["refunds"][0]["transactions"][0]["amount_set"]["shop_money"]["amount"] == "30.00"
    order = client().order(shopify_node(1, "a@example.com", "90.00", NOW, NOW, status="refunded"))
    assert (order.status, order.refunded, order.is_valid) == ("refunded", Decimal("90.00"), False)


def test_a_test_order_is_skipped():
    assert client().order(shopify_node(1, "a@example.com", "9.00", NOW, NOW, test=True)) is None


def test_pages_follow_the_cursor_until_there_is_no_next_page(rsps):
    fake = FakeShopify(rsps, nodes(250))
    pages = list(client().backfill(None, None))
    size = shopify_api.PAGE_SIZE
    assert [len(p.orders) for p in pages] == [size, size, 250 - 2 * size]
    asked = fake.operations("StagesyncOrders")
    assert [v["after"] is None for v in asked] == [True, False, False] and all(v["first"] == size for v in asked)
    assert {v["sortKey"] for v in asked} == {"ID"} and pages[0].total == 250
    assert json.loads(pages[1].state)["after"] == asked[2]["after"]  # the checkpoint is the next page's cursor


def test_the_page_size_keeps_a_query_within_the_single_query_cost_limit():
    assert shopify_api.PAGE_SIZE * shopify_order.COST_PER_ORDER + 2 <= shopify_client.MAX_QUERY_COST
    assert shopify_api.PAGE_SIZE <= shopify_api.MAX_PAGE


def test_each_call_carries_the_shops_own_token_and_leaves_no_global_session(rsps):
    import shopify as sdk

    fake = FakeShopify(rsps, nodes(1))
    list(client().backfill(None, None))
    assert all(headers["X-Shopify-Access-Token"] == SHOPIFY_TOKEN for _, _, headers in fake.calls)
    assert sdk.ShopifyResource.get_site() is None


def test_since_filters_on_the_creation_date(rsps):
    fake = FakeShopify(rsps, nodes(3))
    list(client().backfill(datetime(2025, 1, 1, tzinfo=timezone.utc), None))
    assert {v["query"] for v in fake.operations("StagesyncOrders")} == {"created_at:>='2025-01-01T00:00:00Z'"}


def test_polling_asks_for_orders_updated_since_sorted_by_update(rsps):
    fake = FakeShopify(rsps, nodes(2))
    (page,) = list(client().changed(datetime(2025, 1, 1, 12, tzinfo=timezone.utc)))
    (asked,) = fake.operations("StagesyncOrders")
    assert asked["query"] == "updated_at:>='2025-01-01T12:00:00Z'" and asked["sortKey"] == "UPDATED_AT"
    assert len(page.orders) == 2


def test_a_throttled_query_waits_for_the_bucket_then_goes_on(rsps):
    fake = FakeShopify(rsps, nodes(2))
    fake.script(200, fixture("shopify", "graphql/throttled.json"))
    sleep = NoSleep()
    (page,) = list(client(sleep).changed(EARLY))
    # (requested 992 - available 392) / restore rate 100 points a second = 6 s
    assert sleep.calls and sleep.calls[0] >= 6.0 and len(page.orders) == 2


def test_a_429_is_retried_after_its_retry_after(rsps):
    fake = FakeShopify(rsps, nodes(1))
    fake.script(429, {"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume "
                                "uninterrupted service."}, {"Retry-After": "2.0"})
    sleep = NoSleep()
    assert len(list(client(sleep).changed(EARLY))[0].orders) == 1
    assert sleep.calls[0] >= 2.0


def test_5xx_that_persist_give_up_with_a_retriable_error(rsps):
    fake = FakeShopify(rsps, nodes(1))
    for _ in range(10):
        fake.script(503, {"errors": "Service Unavailable"})
    sleep = NoSleep()
    with pytest.raises(RetriablePlatformError, match="503"):
        list(client(sleep).changed(EARLY))
    assert len(sleep.calls) == 5  # 6 attempts


def test_a_wrong_token_is_one_clear_line_naming_the_shop_and_the_platform(rsps):
    rsps.add(responses.POST, SHOPIFY_ENDPOINT, json=fixture("shopify", "graphql/unauthorized.json"), status=401)
    with pytest.raises(PlatformAuthError) as error:
        list(client().backfill(None, None))
    message = str(error.value)
    assert "shop acme (shopify)" in message and "401" in message and "\n" not in message
    assert SHOPIFY_TOKEN not in message


def test_large_shops_are_read_with_a_bulk_operation(rsps):
    fake = FakeShopify(rsps, nodes(12_000))
    fake.bulk_statuses.extend(["RUNNING", "RUNNING", "COMPLETED"])
    rsps.add(responses.GET, BULK_URL, body=fixture("shopify", "graphql/bulk_orders.jsonl"), status=200)
    sleep = NoSleep()
    pages = list(client(sleep).backfill(None, None))
    (run,) = fake.operations("StagesyncBulk")
    assert "orders(sortKey: ID)" in run["query"] and "legacyResourceId" in run["query"]
    assert sleep.calls == [shopify_bulk.BULK_POLL_SECONDS] * 2
    orders = [o for p in pages for o in p.orders]
    assert [o.email for o in orders] == ["jane.doe@example.com", "marc.dupont@example.com", "lea.martin@example.com"]
    assert [o.refunded for o in orders] == [Decimal(0), Decimal("20.0"), Decimal("45.5")]
    assert json.loads(pages[-1].state) == {"mode": "bulk", "bulk": "gid://shopify/BulkOperation/720918", "line": 3}
    download = [c for c in rsps.calls if c.request.url == BULK_URL][0]
    assert "X-Shopify-Access-Token" not in download.request.headers  # no token to the storage URL


def test_an_interrupted_bulk_read_resumes_after_its_last_line(rsps):
    fake = FakeShopify(rsps, nodes(1))
    fake.bulk_statuses.append("COMPLETED")
    rsps.add(responses.GET, BULK_URL, body=fixture("shopify", "graphql/bulk_orders.jsonl"), status=200)
    resume = json.dumps({"mode": "bulk", "bulk": "gid://shopify/BulkOperation/720918", "line": 2})
    pages = list(client(bulk=True).backfill(None, resume))
    assert [o.email for p in pages for o in p.orders] == ["lea.martin@example.com"]
    assert not fake.operations("StagesyncBulk")  # the finished operation is read again, not run again


def test_a_refused_bulk_operation_says_why(rsps):
    fake = FakeShopify(rsps, nodes(1))
    fake.script(200, fixture("shopify", "graphql/bulk_run_refused.json"))
    with pytest.raises(PlatformApiError, match="already in progress"):
        list(client(bulk=True).backfill(None, None))


def test_base_url_replaces_the_shops_domain_for_tests(rsps):
    FakeShopify(rsps, nodes(1), endpoint="http://127.0.0.1:9/admin/api/2026-10/graphql.json")
    assert len(list(client(base_url="http://127.0.0.1:9").changed(EARLY))[0].orders) == 1


@pytest.mark.parametrize("api, problem", [
    ({"shop_domain": "acme.myshopify.com"}, "client_id, client_secret: are required"),
    ({"shop_domain": "www.acme.com", "access_token": "t"}, "myshopify.com"),
    ({"shop_domain": "acme.myshopify.com", "access_token": "t", "bulk": "yes"}, "bulk"),
    ({"shop_domain": "acme.myshopify.com", "access_token": "t", "token": "t"}, "unknown key"),
])
def test_a_bad_api_table_is_a_configuration_error(api, problem):
    shop = ShopSettings(id="acme", platform="shopify", webhook_secret="x", api=api)
    with pytest.raises(ConfigError, match=problem):
        ShopifyOrders(shop)
