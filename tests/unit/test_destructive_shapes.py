"""A destructive topic acts only on a body of its documented shape that names this shop
(Shopify, WooCommerce, BigCommerce); Standard Webhooks signs its topic inside the body."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from adapters.platforms import bigcommerce, shopify, standard, woocommerce
from connector.config import ShopSettings
from connector.domain.inbound import DeleteOrder, RedactCustomer, RedactShop
from connector.errors import PayloadError, SignatureError
from tests.fakes.senders import fixture

NOW = datetime(2025, 3, 20, 12, 0, tzinfo=timezone.utc)
ACME = ShopSettings(id="acme", platform="shopify", webhook_secret="s", currency="EUR",
                    api={"shop_domain": "acme.myshopify.com"})


def shopify_parse(topic: str, data: dict, shop: ShopSettings = ACME, domain: str = "acme.myshopify.com"):
    body = json.dumps(data).encode()
    return shopify.parse(shopify.sign(body, "s", topic=topic, shop_domain=domain), body, shop)


def test_documented_shopify_destructive_bodies_parse_to_their_actions():
    assert shopify_parse("shop/redact", fixture("shopify", "shop/redact")).actions == (RedactShop(),)
    assert isinstance(shopify_parse("customers/redact", fixture("shopify", "customers/redact")).actions[0],
                      RedactCustomer)
    assert shopify_parse("orders/delete", {"id": 5873412096157}).actions == (DeleteOrder("5873412096157"),)


@pytest.mark.parametrize("topic", ["shop/redact", "customers/redact", "orders/delete"])
def test_an_order_body_under_a_destructive_shopify_topic_is_refused(topic):
    with pytest.raises(PayloadError, match="nothing deleted"):
        shopify_parse(topic, fixture("shopify", "orders/create"))


@pytest.mark.parametrize("topic,other", [("shop/redact", "customers/redact"), ("customers/redact", "shop/redact"),
                                         ("orders/delete", "shop/redact")])
def test_one_destructive_shopify_body_under_another_destructive_topic_is_refused(topic, other):
    with pytest.raises(PayloadError, match="nothing deleted"):
        shopify_parse(topic, fixture("shopify", other))


@pytest.mark.parametrize("topic", ["shop/redact", "customers/redact"])
def test_a_shopify_redaction_naming_another_shop_is_refused(topic):
    other = dict(fixture("shopify", topic), shop_domain="other.myshopify.com")
    with pytest.raises(PayloadError, match="another shop"):
        shopify_parse(topic, other, domain="other.myshopify.com")  # the body and the header agree: not this shop
    with pytest.raises(PayloadError, match="another shop"):
        shopify_parse(topic, other)  # the header says acme, the signed body does not


def test_an_order_deletion_from_another_shopify_domain_is_refused():
    with pytest.raises(PayloadError, match="another shop"):
        shopify_parse("orders/delete", {"id": 1}, domain="other.myshopify.com")


def test_without_a_configured_domain_the_body_and_header_must_agree():
    bare = ShopSettings(id="acme", platform="shopify", webhook_secret="s", currency="EUR")
    assert shopify_parse("shop/redact", fixture("shopify", "shop/redact"), shop=bare).actions == (RedactShop(),)
    with pytest.raises(PayloadError, match="another shop"):
        shopify_parse("shop/redact", fixture("shopify", "shop/redact"), shop=bare, domain="x.myshopify.com")


def test_a_woocommerce_order_body_as_order_deleted_is_refused():
    shop = ShopSettings(id="wc", platform="woocommerce", webhook_secret="s", currency="EUR")
    body = json.dumps(fixture("woocommerce", "order.created")).encode()
    with pytest.raises(PayloadError, match="nothing deleted"):
        woocommerce.parse(woocommerce.sign(body, "s", topic="order.deleted"), body, shop)
    deleted = json.dumps(fixture("woocommerce", "order.deleted")).encode()
    assert woocommerce.parse(woocommerce.sign(deleted, "s", topic="order.deleted"), deleted, shop).actions == (
        DeleteOrder("1175"),)


def test_a_bigcommerce_archive_deletes_only_an_order_of_this_store():
    shop = ShopSettings(id="outdoor", platform="bigcommerce", webhook_secret="s", currency="USD",
                        api={"store_hash": "abc123de", "access_token": "t"})
    archived = fixture("bigcommerce", "webhooks/store_order_archived")

    def parse(data):
        body = json.dumps(data).encode()
        return bigcommerce.parse(bigcommerce.sign(body, "s"), body, shop)

    assert parse(archived).actions == (DeleteOrder("100"),)
    with pytest.raises(PayloadError, match="another store"):
        parse(dict(archived, producer="stores/zzz999"))
    with pytest.raises(PayloadError, match="nothing deleted"):
        parse(dict(archived, data={"type": "customer", "id": 100}))


def test_a_standard_webhooks_type_is_signed_with_the_body():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = json.dumps({"type": "order.upserted", "data": {"order_id": "1"}}).encode()
    headers = standard.sign(body, secret, timestamp=NOW)
    swapped = body.replace(b"order.upserted", b"order.deleted")
    with pytest.raises(SignatureError):
        standard.verify(headers, swapped, secret, NOW)
