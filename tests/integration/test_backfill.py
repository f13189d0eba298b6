"""Backfill and poll through the platform APIs into a real SQLite and a real PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import responses
from sqlalchemy import func, select

from adapters.platforms import bigcommerce
from adapters.platforms.shopify_api import ShopifyOrders
from adapters.platforms.wizishop import WiziShopOrders
from connector import config
from connector.services.backfill import BACKFILL, POLL, POLL_OVERLAP, Checkpoint, backfill, poll
from connector.errors import RetriablePlatformError
from connector.services.ingest import receive
from connector.storage.schema import customers, orders, outbox
from tests.conftest import NOW
from tests.fakes.platforms import SHOPIFY_TOKEN, FakeShopify, NoSleep, fixture, shopify_node
from tests.fakes.senders import SECRETS, ShopifySender

TOML = f"""
database_url = "sqlite:///unused.db"

[[shops]]
id = "acme"
platform = "shopify"
webhook_secret = "{SECRETS['shopify']}"
currency = "EUR"
api = {{ shop_domain = "acme.myshopify.com", access_token = "{SHOPIFY_TOKEN}" }}
  [[shops.destinations]]
  type = "log"

[[shops]]
id = "savons"
platform = "wizishop"
webhook_secret = "unused-but-required"
currency = "EUR"
country = "FR"
api = {{ username = "api@savonnerie.example", password = "wz-secret-password", shop_id = 1234 }}
  [[shops.destinations]]
  type = "log"

[[shops]]
id = "outdoor"
platform = "bigcommerce"
webhook_secret = "bc-hook-secret-7d1f0a9e3c"
currency = "USD"
api = {{ store_hash = "abc123de", access_token = "bc_access_token_5a4b3c2d1e0f9a8b7c6d" }}
  [[shops.destinations]]
  type = "log"
"""
SETTINGS = config.parse(TOML, env={})
SHOP, WIZI, BIGC = SETTINGS.shops["acme"], SETTINGS.shops["savons"], SETTINGS.shops["outdoor"]
WIZI_ORDERS = "https://api.wizishop.com/v3/shops/1234/orders"


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def count(store, table, shop_id: str = "acme") -> int:
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(table).where(table.c.shop_id == shop_id)).scalar_one()


def all_orders(store, shop_id: str = "acme") -> list:
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(select(orders).where(orders.c.shop_id == shop_id).order_by(orders.c.order_id))]


def shopify_nodes(n: int, start: int = 1000) -> list[dict]:
    return [shopify_node(start + i, f"buyer{i % 40}@example.com", f"{10 + i % 7}.50",
                         NOW - timedelta(days=300 - i % 290), NOW - timedelta(days=200 - i % 190)) for i in range(n)]


def shopify(sleep=None) -> ShopifyOrders:
    return ShopifyOrders(SHOP, sleep=sleep or NoSleep())


def test_a_5xx_midway_stops_the_backfill_and_a_second_run_resumes_from_the_checkpoint(store, rsps):
    fake = FakeShopify(rsps, shopify_nodes(300))
    fake.fail_page(3, *[(500, {"errors": "Internal Server Error"})] * 6)
    with pytest.raises(RetriablePlatformError, match="500"):
        backfill(store, SHOP, NOW, client=shopify())
    assert count(store, orders) == 220  # two pages of 110, committed with their checkpoint
    with store.read() as conn:
        checkpoint = Checkpoint.load(store.load_cursor(conn, "acme", BACKFILL))
    assert not checkpoint.done and checkpoint.fetched == 220
    resumed_after = json.loads(checkpoint.state)["after"]

    fake.calls.clear()
    result = backfill(store, SHOP, NOW + timedelta(minutes=5), client=shopify())
    assert result.resumed and result.fetched == 300 and result.stored == 80
    first = fake.operations("StagesyncOrders")[0]
    assert first["after"] == resumed_after and not fake.operations("StagesyncOrdersCount")
    assert count(store, orders) == 300 and count(store, customers) == 40
    assert count(store, outbox) == 40  # the recompute queued every customer for the log destination


def test_a_second_backfill_changes_nothing(store, rsps):
    FakeShopify(rsps, shopify_nodes(150))
    first = backfill(store, SHOP, NOW, client=shopify())
    # a first backfill replays the stage history on its days: the recompute then finds nothing new
    assert (first.fetched, first.stored, first.replayed.written, first.recompute.written) == (150, 150, 40, 0)
    before = all_orders(store)
    second = backfill(store, SHOP, NOW, client=shopify())
    assert not second.resumed and (second.fetched, second.stored, second.unchanged) == (150, 0, 150)
    assert second.replayed is None and second.recompute.written == 0 and all_orders(store) == before


def test_an_order_seen_by_a_webhook_and_by_the_backfill_is_stored_once(store, rsps):
    placed, updated = NOW - timedelta(days=3), NOW - timedelta(days=2)
    delivery = ShopifySender(clock=NOW).order(5873412096157, "jane.doe@example.com", "89.80", placed, updated)
    assert receive(store, SHOP, delivery.headers, delivery.body, NOW).status == "accepted"
    stored = all_orders(store)
    FakeShopify(rsps, [shopify_node(5873412096157, "jane.doe@example.com", "89.80", placed, updated)])
    result = backfill(store, SHOP, NOW, client=shopify())
    assert (result.fetched, result.stored, result.unchanged) == (1, 0, 1)
    assert all_orders(store) == stored


def test_poll_stores_what_changed_and_moves_its_cursor(store, rsps):
    nodes = shopify_nodes(3)
    fake = FakeShopify(rsps, nodes)
    first = poll(store, SHOP, NOW, client=shopify())
    assert first.since == NOW - timedelta(days=1)  # never polled nor backfilled: the last day
    cancelled_at = (NOW + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")  # between the two polls
    nodes[0].update(updatedAt=cancelled_at, cancelledAt=cancelled_at)
    fake.calls.clear()
    later = NOW + timedelta(minutes=15)
    result = poll(store, SHOP, later, client=shopify())
    (asked,) = fake.operations("StagesyncOrders")
    assert asked["query"] == f"updated_at:>='{(NOW - POLL_OVERLAP).isoformat().replace('+00:00', 'Z')}'"
    assert (result.fetched, result.stored, result.customers) == (1, 1, 1)
    with store.read() as conn:
        assert conn.execute(select(orders.c.status).where(orders.c.order_id == "1000")).scalar() == "cancelled"
        assert store.load_cursor(conn, "acme", POLL) == later.isoformat()


def test_a_finished_backfill_hands_over_to_polling_from_its_start(store, rsps):
    FakeShopify(rsps, shopify_nodes(2))
    backfill(store, SHOP, NOW, client=shopify())
    with store.read() as conn:
        assert store.load_cursor(conn, "acme", POLL) == NOW.isoformat()
    assert poll(store, SHOP, NOW + timedelta(hours=1), client=shopify()).since == NOW - POLL_OVERLAP


def _wizishop_answers(rsps, results: list[dict]) -> None:
    rsps.add(responses.POST, "https://api.wizishop.com/v3/auth/login", json=fixture("wizishop", "api/login.json"))
    rsps.add(responses.GET, WIZI_ORDERS, json={"page": 1, "limit": 100, "pages": 1, "total": len(results), "results": results})


def test_wizishop_changes_are_found_without_a_modification_date(store):
    order = dict(fixture("wizishop", "api/orders.json")["results"][0], date=(NOW - timedelta(days=2)).isoformat())
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        _wizishop_answers(rsps, [order])
        first = poll(store, WIZI, NOW, client=WiziShopOrders(WIZI, sleep=NoSleep()))
    assert (first.stored, first.customers) == (1, 1)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        _wizishop_answers(rsps, [dict(order, status_code=50)])  # cancelled since
        later = NOW + timedelta(minutes=15)
        second = poll(store, WIZI, later, client=WiziShopOrders(WIZI, sleep=NoSleep()))
    assert (second.stored, second.unchanged) == (1, 0)
    with store.read() as conn:
        (stored,) = store.stored_orders(conn, "savons", ["48211"]).values()
    assert stored.status == "cancelled" and stored.updated_at == later

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        _wizishop_answers(rsps, [dict(order, status_code=50)])
        third = poll(store, WIZI, later + timedelta(minutes=15), client=WiziShopOrders(WIZI, sleep=NoSleep()))
    assert (third.stored, third.unchanged, third.customers) == (0, 1, 0)


def test_wizishop_backfill_stores_orders_and_skips_abandoned_carts(store, rsps):
    rsps.add(responses.POST, "https://api.wizishop.com/v3/auth/login", json=fixture("wizishop", "api/login.json"))
    rsps.add(responses.GET, WIZI_ORDERS, json=fixture("wizishop", "api/orders.json"))
    result = backfill(store, WIZI, NOW, client=WiziShopOrders(WIZI, sleep=NoSleep()))
    assert (result.fetched, result.stored, result.skipped) == (3, 2, 1)
    assert count(store, orders, "savons") == 2


def test_a_bigcommerce_callback_fetches_its_order_and_stores_it_once(store, rsps):
    rsps.add(responses.GET, "https://api.bigcommerce.com/stores/abc123de/v2/orders/100",
             json=fixture("bigcommerce", "api/order.json"))
    body = json.dumps(fixture("bigcommerce", "webhooks/store_order_created.json")).encode()
    headers = bigcommerce.sign(body, BIGC.webhook_secret)
    assert receive(store, BIGC, headers, body, NOW, platform=bigcommerce).status == "accepted"
    # a repeated callback (its `hash` may repeat) re-reads the order: harmless, stored once
    assert receive(store, BIGC, headers, body, NOW, platform=bigcommerce).status == "accepted"
    assert len(rsps.calls) == 2
    assert count(store, orders, "outdoor") == 1 and count(store, customers, "outdoor") == 1
