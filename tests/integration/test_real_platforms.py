"""What the platforms really send, through the real HTTP endpoint, on SQLite and PostgreSQL.

Bodies come from the documented fixtures in tests/fixtures/<platform>/ (each shaped on the
platform's own reference; see the comment at each test for the source).
"""

from __future__ import annotations

import copy
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from connector import config
from connector.app import create_app
from connector.schema import orders
from connector.store import Store
from tests.conftest import NOW
from tests.senders import SECRETS, WooCommerceSender, fixture

PLACED = NOW - timedelta(days=3)
ADMIN = {"Authorization": "Bearer test-admin-token"}


def shop_toml(database_url: str, *shops: str) -> str:
    return f'database_url = "{database_url}"\nadmin_token = "test-admin-token"\n' + "".join(shops)


def shop_block(shop_id: str, platform: str, secret: str, extra: str = "") -> str:
    return (f'\n[[shops]]\nid = "{shop_id}"\nplatform = "{platform}"\nwebhook_secret = "{secret}"\n'
            f'currency = "EUR"\n{extra}  [[shops.destinations]]\n  type = "log"\n')


@pytest.fixture
def app_store(database_url):
    store = Store.open(database_url)
    yield store
    store.close()


def client_for(database_url, store, *shops):
    settings = config.parse(shop_toml(database_url, *shops), env={})
    return create_app(settings, store=store, clock=lambda: NOW).test_client()


@pytest.fixture
def woo(database_url, app_store):
    return client_for(database_url, app_store, shop_block("woo", "woocommerce", SECRETS["woocommerce"]))


def post(client, shop_id, delivery):
    return client.post(f"/webhooks/{shop_id}", data=delivery.body, headers=delivery.headers)


def stored_orders(store, shop_id):
    with store.read() as conn:
        found = conn.execute(select(orders.c.order_id, orders.c.status, orders.c.valid, orders.c.amount,
                                    orders.c.placed_at)
                             .where(orders.c.shop_id == shop_id).order_by(orders.c.order_id)).all()
    return {row.order_id: row for row in found}


def customer(client, shop_id, email):
    answer = client.get(f"/shops/{shop_id}/customers/{email}", headers=ADMIN)
    return answer.get_json() if answer.status_code == 200 else None


def woo_order(order_id: int, email: str, status: str, total: str = "69.80", modified=None) -> dict:
    """A REST API v3 order (https://woocommerce.github.io/woocommerce-rest-api-docs/#order-properties),
    from tests/fixtures/woocommerce/order.updated.json."""
    order = copy.deepcopy(fixture("woocommerce", "order.updated"))
    naive = lambda m: m.replace(tzinfo=None).isoformat()  # noqa: E731 (WooCommerce's *_gmt dates have no offset)
    order.update(id=order_id, status=status, total=total, refunds=[],
                 date_created_gmt=naive(PLACED), date_modified_gmt=naive(modified or PLACED),
                 date_paid_gmt=naive(PLACED))
    order["billing"]["email"] = email
    return order


# --- 1. WooCommerce de-duplication ---------------------------------------------------------------
# WC_Webhook::get_new_delivery_id (plugins/woocommerce/includes/class-wc-webhook.php) returns
# wp_hash( $this->get_id() . strtotime( 'now' ) ): one id per webhook and second.

def test_woocommerce_two_orders_sharing_one_delivery_id_are_both_stored(woo, app_store):
    sender, same_second = WooCommerceSender(), "c2a1e6f0b9d84c7a3e5f1d2b8a6c4e90"
    first = sender.signed(woo_order(2001, "ann@example.com", "processing"), "order.updated", same_second)
    second = sender.signed(woo_order(2002, "bob@example.com", "processing"), "order.updated", same_second)
    assert post(woo, "woo", first).get_json() == {"status": "accepted"}
    assert post(woo, "woo", second).get_json() == {"status": "accepted"}
    assert set(stored_orders(app_store, "woo")) == {"2001", "2002"}
    assert customer(woo, "woo", "bob@example.com")["orders_total"] == 1


def test_woocommerce_a_cancellation_in_the_same_second_is_not_a_duplicate(woo, app_store):
    sender, same_second = WooCommerceSender(), "c2a1e6f0b9d84c7a3e5f1d2b8a6c4e90"
    paid = woo_order(2001, "ann@example.com", "processing")
    cancelled = woo_order(2001, "ann@example.com", "cancelled", modified=PLACED + timedelta(seconds=1))
    assert post(woo, "woo", sender.signed(paid, "order.updated", same_second)).get_json()["status"] == "accepted"
    assert post(woo, "woo", sender.signed(cancelled, "order.updated", same_second)).get_json()["status"] == "accepted"
    assert stored_orders(app_store, "woo")["2001"].status == "cancelled"
    assert customer(woo, "woo", "ann@example.com")["orders_total"] == 0


def test_woocommerce_the_same_body_delivered_again_is_a_duplicate(woo, app_store):
    sender = WooCommerceSender()
    body = woo_order(2001, "ann@example.com", "processing")
    assert post(woo, "woo", sender.signed(body, "order.updated", "first-attempt")).get_json()["status"] == "accepted"
    # WooCommerce's retry of a failed delivery is a new second, hence a new delivery id
    assert post(woo, "woo", sender.signed(body, "order.updated", "retry")).get_json() == {"status": "duplicate"}
    assert len(stored_orders(app_store, "woo")) == 1
