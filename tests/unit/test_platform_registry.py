"""The platform registry and the contract every platform adapter keeps."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from adapters import platforms
from adapters.platforms import bigcommerce, shopify, standard, woocommerce, wizishop
from connector import config
from connector.config import ShopSettings
from connector.errors import ConfigError, SignatureError
from connector.domain.inbound import Inbound

NOW = datetime(2025, 3, 20, 12, 0, tzinfo=timezone.utc)
SECRETS = {"shopify": "shpss_registry", "woocommerce": "wc-registry",
           "standard": "whsec_c3RhZ2VzeW5jLXJlZ2lzdHJ5LWtleQ=="}
ORDERS = {
    "shopify": ({"topic": "orders/create"}, {"id": 1, "created_at": "2025-03-14T10:00:00Z", "total_price": "10.00"}),
    "woocommerce": ({"topic": "order.created"},
                    {"id": 1, "status": "processing", "date_created_gmt": "2025-03-14T10:00:00", "total": "10.00"}),
    "standard": ({"timestamp": NOW},
                 {"type": "order.upserted",
                  "data": {"order_id": 1, "placed_at": "2025-03-14T10:00:00Z", "total": "10.00"}}),
}


def test_each_name_gives_its_module():
    assert platforms.get("shopify") is shopify
    assert platforms.get("woocommerce") is woocommerce
    assert platforms.get("standard") is standard
    assert platforms.get("bigcommerce") is bigcommerce
    assert platforms.get("wizishop") is wizishop


@pytest.mark.parametrize("name", ["magento", ""])
def test_a_name_without_an_adapter_fails_with_the_valid_names(name):
    with pytest.raises(ConfigError, match="available: bigcommerce, shopify, standard, wizishop, woocommerce"):
        platforms.get(name)


def test_every_registered_platform_is_a_configurable_one():
    assert set(platforms.PLATFORMS) <= set(config.PLATFORMS)


@pytest.mark.parametrize("name", sorted(ORDERS))
def test_every_platform_keeps_the_contract(name):
    platform = platforms.get(name)
    assert platform.NAME == name and platform.TOPICS
    sign_kw, data = ORDERS[name]
    body = json.dumps(data).encode()
    secret = SECRETS[name]
    shop = ShopSettings(id="acme", platform=name, webhook_secret=secret, currency="EUR", country="FR")
    headers = platform.sign(body, secret, **sign_kw)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    assert not platform.is_ping(headers, body)
    platform.verify(headers, body, secret, NOW)
    with pytest.raises(SignatureError):
        platform.verify(headers, body + b" ", secret, NOW)
    inbound = platform.parse(headers, body, shop)
    assert isinstance(inbound, Inbound) and inbound.delivery_id
    (action,) = inbound.actions
    assert action.order.order_id == "1" and action.order.shop_id == "acme"
