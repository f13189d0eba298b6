"""BigCommerce: the secret header on callbacks, id-only payloads completed through the V2 Orders API."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from adapters.platforms import bigcommerce
from adapters.platforms.bigcommerce import SECRET_HEADER, BigCommerceOrders, order_from_api
from connector.config import ShopSettings
from connector.errors import PayloadError, PlatformAuthError, RetriablePlatformError, SignatureError
from connector.domain.inbound import DeleteOrder, UpsertOrder
from tests.fakes.platforms import NoSleep, fixture

SECRET = "bc-hook-secret-7d1f0a9e3c"
TOKEN = "bc_access_token_5a4b3c2d1e0f9a8b7c6d"
ORDERS = "https://api.bigcommerce.com/stores/abc123de/v2/orders"
SHOP = ShopSettings(id="outdoor", platform="bigcommerce", webhook_secret=SECRET, currency="USD", country="US",
                    api={"store_hash": "abc123de", "access_token": TOKEN})
NOW = datetime(2025, 3, 20, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def callback(name: str) -> tuple[bytes, dict]:
    body = json.dumps(fixture("bigcommerce", f"webhooks/{name}.json")).encode()
    return body, bigcommerce.sign(body, SECRET)


def client(sleep=None) -> BigCommerceOrders:
    return BigCommerceOrders(SHOP, sleep=sleep or NoSleep())


# --- webhooks ------------------------------------------------------------------------------------

def test_a_callback_with_the_secret_header_verifies():
    body, headers = callback("store_order_created")
    bigcommerce.verify(headers, body, SECRET, NOW)
    bigcommerce.verify({k.lower(): v for k, v in headers.items()}, body, SECRET, NOW)


@pytest.mark.parametrize("headers", [{}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: SECRET + "x"}])
def test_a_missing_or_wrong_secret_header_is_refused(headers):
    body, _ = callback("store_order_created")
    with pytest.raises(SignatureError):
        bigcommerce.verify(headers, body, SECRET, NOW)


def test_an_order_callback_asks_for_its_order_to_be_fetched():
    body, headers = callback("store_order_created")
    inbound = bigcommerce.parse(headers, body, SHOP)
    assert inbound.fetch_order_id == "100" and not inbound.actions
    assert inbound.delivery_id is None  # the hash may repeat: every callback re-reads the order


def test_an_archived_order_is_deleted_without_a_fetch():
    body, headers = callback("store_order_archived")
    inbound = bigcommerce.parse(headers, body, SHOP)
    assert inbound.actions == (DeleteOrder(order_id="100"),) and inbound.fetch_order_id is None


def test_other_scopes_are_ignored():
    body = json.dumps({"scope": "store/product/updated", "data": {"type": "product", "id": 3}, "hash": "h"}).encode()
    assert bigcommerce.parse(bigcommerce.sign(body, SECRET), body, SHOP).ignored_reason


@pytest.mark.parametrize("scope", ["x" * 5_000, "store/order/\ncreated" + "y" * 700])
def test_a_long_or_multi_line_scope_is_quoted_short_on_one_line(scope):
    """Found by the fuzz test: a signed payload's scope was repeated whole in the 400's message
    (and in the answer's log line)."""
    for data in ({"data": []}, {"data": {"type": "order", "id": 7}}):
        body = json.dumps({"scope": scope, "store_id": "1", "hash": "h", "created_at": 1, **data}).encode()
        try:
            reason = bigcommerce.parse(bigcommerce.sign(body, SECRET), body, SHOP).ignored_reason
        except PayloadError as exc:
            reason = str(exc)
        assert reason is not None and "\n" not in reason and len(reason) < 200, reason
        assert f"({len(scope):,} characters)" in reason


def test_fetch_reads_the_order_once_and_upserts_it(rsps):
    rsps.add(responses.GET, f"{ORDERS}/100", json=fixture("bigcommerce", "api/order.json"))
    body, headers = callback("store_order_statusUpdated")
    inbound = bigcommerce.fetch(SHOP, bigcommerce.parse(headers, body, SHOP))
    (action,) = inbound.actions
    assert isinstance(action, UpsertOrder) and action.order.order_id == "100" and inbound.fetch_order_id is None
    assert rsps.calls[0].request.headers["X-Auth-Token"] == TOKEN


def test_fetch_of_an_unknown_order_is_ignored(rsps):
    rsps.add(responses.GET, f"{ORDERS}/100", status=404, json=[{"status": 404, "message": "The requested resource was not found."}])
    body, headers = callback("store_order_created")
    inbound = bigcommerce.fetch(SHOP, bigcommerce.parse(headers, body, SHOP))
    assert not inbound.actions and inbound.ignored_reason


def test_fetch_does_not_retry_while_bigcommerce_waits_for_the_answer(rsps):
    rsps.add(responses.GET, f"{ORDERS}/100", status=500, body="error")
    body, headers = callback("store_order_created")
    with pytest.raises(RetriablePlatformError):
        bigcommerce.fetch(SHOP, bigcommerce.parse(headers, body, SHOP))
    assert len(rsps.calls) == 1


# --- orders ---------------------------------------------------------------------------------------

def test_the_documented_order_maps_to_a_canonical_order():
    first, partly, incomplete = fixture("bigcommerce", "api/orders.json")
    order = order_from_api(first, SHOP)
    assert (order.order_id, order.email, order.total, order.status) == ("100", "janedoe@example.com", Decimal("361.95"), "placed")
    assert order.placed_at == datetime(2018, 1, 10, 21, 5, 30, tzinfo=timezone.utc)
    assert order.updated_at == datetime(2018, 12, 5, 20, 16, 55, tzinfo=timezone.utc)
    assert order.currency == "USD" and order.customer_id == "20"
    refunded = order_from_api(partly, SHOP)
    assert (refunded.refunded, refunded.amount, refunded.customer_id) == (Decimal("20"), Decimal("100"), None)
    incomplete = order_from_api(incomplete, SHOP)  # status 0: stored, not counted until placed
    assert (incomplete.status, incomplete.is_valid) == ("pending", False)


@pytest.mark.parametrize("status_id, status, valid", [(4, "refunded", False), (5, "cancelled", False),
                                                      (6, "cancelled", False), (10, "placed", True)])
def test_statuses(status_id, status, valid):
    order = order_from_api(dict(fixture("bigcommerce", "api/order.json"), status_id=status_id), SHOP)
    assert (order.status, order.is_valid) == (status, valid)


def test_an_order_paid_in_another_currency_is_converted_to_the_stores():
    data = dict(fixture("bigcommerce", "api/order.json"), default_currency_code="EUR", total_inc_tax="90.0000",
                store_default_currency_code="USD", store_default_to_transactional_exchange_rate="0.9000000000")
    order = order_from_api(data, SHOP)
    assert (order.total, order.currency) == (Decimal("100.00"), "USD")


def test_backfill_pages_until_a_204(rsps):
    orders = fixture("bigcommerce", "api/orders.json")
    full = [dict(orders[0], id=i) for i in range(1, 251)]
    rsps.add(responses.GET, ORDERS, json=full)
    rsps.add(responses.GET, ORDERS, status=204, body="")
    pages = list(client().backfill(datetime(2024, 1, 1, tzinfo=timezone.utc), None))
    assert [len(p.orders) for p in pages] == [250, 0]
    first = {k: v[0] for k, v in parse_qs(urlsplit(rsps.calls[0].request.url).query).items()}
    assert first == {"limit": "250", "sort": "id:asc", "page": "1", "min_date_created": "2024-01-01T00:00:00Z"}
    assert json.loads(pages[0].state) == {"min_id": 251}


def test_a_resumed_backfill_starts_after_the_checkpointed_id(rsps):
    rsps.add(responses.GET, ORDERS, status=204, body="")
    list(client().backfill(None, json.dumps({"min_id": 251})))
    assert "min_id=251" in rsps.calls[0].request.url


def test_polling_asks_for_orders_modified_since(rsps):
    rsps.add(responses.GET, ORDERS, json=fixture("bigcommerce", "api/orders.json"))
    (page,) = list(client().changed(datetime(2025, 3, 1, tzinfo=timezone.utc)))
    assert "min_date_modified=2025-03-01T00%3A00%3A00Z" in rsps.calls[0].request.url
    assert "sort=date_modified%3Aasc" in rsps.calls[0].request.url
    assert len(page.orders) == 3 and page.skipped == 0  # the incomplete checkout is a pending order


def test_a_429_waits_for_the_rate_limit_window(rsps):
    rsps.add(responses.GET, ORDERS, status=429, headers={"X-Rate-Limit-Time-Reset-Ms": "4500"}, json=[])
    rsps.add(responses.GET, ORDERS, status=204, body="")
    sleep = NoSleep()
    list(client(sleep).changed(NOW))
    assert sleep.calls and sleep.calls[0] >= 4.5


def test_a_bad_token_is_one_clear_line(rsps):
    rsps.add(responses.GET, ORDERS, status=401, json=fixture("bigcommerce", "api/unauthorized.json"))
    with pytest.raises(PlatformAuthError) as error:
        list(client().backfill(None, None))
    message = str(error.value)
    assert "shop outdoor (bigcommerce)" in message and "not authorized" in message and TOKEN not in message
