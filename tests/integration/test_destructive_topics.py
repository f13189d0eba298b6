"""Topic swap: the platforms sign the body, not the topic header. A captured signed order body
re-sent under a destructive topic (shop/redact, customers/redact, an order deletion) is a 400 and
deletes nothing, through Flask, on both engines; the real destructive bodies still act."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from adapters.platforms import shopify, woocommerce
from connector.storage.schema import customers, orders
from tests.conftest import NOW
from tests.fakes.senders import SECRETS, ShopifySender, WooCommerceSender, fixture

PLACED = NOW - timedelta(days=3)


def counted(store, shop_id: str) -> tuple[int, int]:
    """(orders that count, customers) stored for the shop."""
    with store.read() as conn:
        valid = conn.execute(select(func.count()).select_from(orders).where(
            orders.c.shop_id == shop_id, orders.c.valid)).scalar_one()
        known = conn.execute(select(func.count()).select_from(customers).where(
            customers.c.shop_id == shop_id)).scalar_one()
    return valid, known


@pytest.mark.parametrize("topic", ["shop/redact", "customers/redact", "orders/delete"])
def test_a_signed_shopify_order_body_resent_under_a_destructive_topic_is_400_and_deletes_nothing(
        client, platform_store, topic):
    order = ShopifySender().order(9001, "ann@example.com", "50.00", PLACED)
    assert client.post("/webhooks/shopify", data=order.body, headers=order.headers).status_code == 200
    before = counted(platform_store, "shopify")
    assert before == (1, 1)
    swapped = shopify.sign(order.body, SECRETS["shopify"], topic=topic, event_id=str(uuid.uuid4()))
    answer = client.post("/webhooks/shopify", data=order.body, headers=swapped)
    assert answer.status_code == 400 and "nothing deleted" in answer.get_json()["error"]
    assert counted(platform_store, "shopify") == before


def test_the_real_shopify_destructive_bodies_still_act(client, platform_store):
    sender = ShopifySender()
    for order_id, email in [(1, "jane.doe@example.com"), (2, "bo@example.com")]:
        order = sender.order(order_id, email, "50.00", PLACED)
        assert client.post("/webhooks/shopify", data=order.body, headers=order.headers).status_code == 200
    redact = dict(fixture("shopify", "customers/redact"), orders_to_redact=[])
    delivery = sender.signed(redact, "customers/redact")
    assert client.post("/webhooks/shopify", data=delivery.body, headers=delivery.headers).status_code == 200
    assert counted(platform_store, "shopify") == (1, 1)
    delete = sender.signed({"id": 2}, "orders/delete")
    assert client.post("/webhooks/shopify", data=delete.body, headers=delete.headers).status_code == 200
    assert counted(platform_store, "shopify")[0] == 0
    shop_gone = sender.signed(fixture("shopify", "shop/redact"), "shop/redact")
    assert client.post("/webhooks/shopify", data=shop_gone.body, headers=shop_gone.headers).status_code == 200
    assert counted(platform_store, "shopify") == (0, 0)


def test_a_signed_woocommerce_order_body_resent_as_order_deleted_is_400_and_deletes_nothing(client, platform_store):
    order = WooCommerceSender().order(9002, "ann@example.com", "50.00", PLACED)
    assert client.post("/webhooks/woocommerce", data=order.body, headers=order.headers).status_code == 200
    swapped = woocommerce.sign(order.body, SECRETS["woocommerce"], topic="order.deleted")
    answer = client.post("/webhooks/woocommerce", data=order.body, headers=swapped)
    assert answer.status_code == 400 and "nothing deleted" in answer.get_json()["error"]
    assert counted(platform_store, "woocommerce") == (1, 1)
    deleted = WooCommerceSender().signed({"id": 9002}, "order.deleted")
    assert client.post("/webhooks/woocommerce", data=deleted.body, headers=deleted.headers).status_code == 200
    assert counted(platform_store, "woocommerce")[0] == 0
