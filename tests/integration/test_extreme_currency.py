"""Extreme amounts and exchange rates never give a 500 nor overflow the stored integer micros: an
implausible configured rate is a config error, one in a signed payload a 400, and a conversion whose
result would not fit leaves the order's amount unknown (docs/rules.md, 'Amounts and currencies')."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from connector import config
from connector.domain.orders import MAX_AMOUNT, Order, in_shop_currency
from connector.errors import ConfigError
from connector.storage.schema import orders
from connector.web.app import create_app
from tests.conftest import NOW
from tests.fakes.senders import StandardSender, shops_toml


@pytest.mark.parametrize("rate", ["1e300", "1e-300", "1e10", "0.0000000001"])
def test_an_implausible_configured_rate_is_a_config_error(rate):
    toml = shops_toml("sqlite:///x.db").replace('platform = "standard"\n',
                                                f'platform = "standard"\nrates = {{ USD = {rate} }}\n')
    with pytest.raises(ConfigError, match=r"rates\.USD: .* not a plausible rate"):
        config.parse(toml, env={})


@pytest.mark.parametrize("total, rate", [("9999999999", "1e9"), ("5000000000", "2.5"), ("1e9", "1e9")])
def test_a_conversion_past_the_largest_storable_amount_leaves_the_amount_unknown(total, rate):
    order = Order(shop_id="s", order_id="1", placed_at=NOW, total=Decimal(total), currency="USD")
    converted = in_shop_currency(order, "EUR", {"USD": Decimal(rate)})
    assert converted.amount_known is False and converted.currency == "USD"


@pytest.mark.parametrize("rate", [Decimal("1e300"), Decimal("1e-400"), Decimal("1e999999"), Decimal("NaN")])
def test_an_implausible_platform_rate_leaves_the_amount_unknown(rate):
    order = Order(shop_id="s", order_id="1", placed_at=NOW, total=Decimal("10"), currency="USD", exchange_rate=rate)
    assert in_shop_currency(order, "EUR").amount_known is False


@pytest.fixture
def client(database_url, store):  # store: the database migrated
    return create_app(config.parse(shops_toml(database_url), env={}), clock=lambda: NOW).test_client()


@pytest.mark.parametrize("rate", ["1e-400", "1e400", "NaN", "Infinity", "-Infinity", "1e300", "0"])
def test_a_signed_payload_with_an_absurd_exchange_rate_is_a_400(client, rate):
    data = {"order_id": "1", "email": "ann@example.com", "placed_at": (NOW - timedelta(days=1)).isoformat(),
            "total": "10.00", "status": "placed", "currency": "USD", "exchange_rate": rate}
    delivery = StandardSender(clock=NOW).signed({"type": "order.upserted", "data": data}, "order.upserted")
    answer = client.post("/webhooks/standard", data=delivery.body, headers=delivery.headers)
    assert answer.status_code == 400 and "exchange_rate" in answer.get_json()["error"]


def test_the_largest_amount_converted_at_the_largest_rate_is_stored_as_unknown_not_overflowed(client, store):
    data = {"order_id": "2", "email": "bo@example.com", "placed_at": (NOW - timedelta(days=1)).isoformat(),
            "total": str(MAX_AMOUNT), "status": "placed", "currency": "USD", "exchange_rate": "1e9"}
    delivery = StandardSender(clock=NOW).signed({"type": "order.upserted", "data": data}, "order.upserted")
    assert client.post("/webhooks/standard", data=delivery.body, headers=delivery.headers).status_code == 200
    with store.read() as conn:
        (known,) = conn.execute(select(orders.c.amount_known).where(orders.c.order_id == "2")).one()
    assert known is False
