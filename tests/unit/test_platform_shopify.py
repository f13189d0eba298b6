"""Shopify adapter: real signatures (`shopify.sign`), every topic, malformed bodies."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from werkzeug.datastructures import EnvironHeaders

from adapters.platforms import shopify
from connector.config import ShopSettings
from connector.errors import PayloadError, SignatureError
from connector.domain.inbound import (
    DeleteOrder, RecordDataRequest, RecordRefund, RedactCustomer, RedactShop, SeeCustomer, UpsertOrder,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "shopify"
SECRET = "shpss_0123456789abcdef0123456789abcdef"
NOW = datetime(2025, 3, 20, 12, 0, tzinfo=timezone.utc)
SHOP = ShopSettings(id="acme", platform="shopify", webhook_secret=SECRET, currency="EUR", country="FR")


def payload(topic: str) -> dict:
    return json.loads((FIXTURES / f"{topic}.json").read_text(encoding="utf-8"))


def encode(data: dict) -> bytes:
    return json.dumps(data).encode("utf-8")


def deliver(topic: str, data: dict | None = None, **sign_kw):
    """Sign, verify and parse one delivery, as the HTTP layer does."""
    body = encode(payload(topic) if data is None else data)
    headers = shopify.sign(body, SECRET, topic=topic, **sign_kw)
    shopify.verify(headers, body, SECRET, NOW)
    return shopify.parse(headers, body, SHOP)


def only_order(inbound):
    (action,) = inbound.actions
    assert isinstance(action, UpsertOrder)
    return action.order


# --- signatures -------------------------------------------------------------------------------------

def test_a_signature_made_with_the_shop_secret_verifies():
    body = encode(payload("orders/create"))
    shopify.verify(shopify.sign(body, SECRET), body, SECRET, NOW)


def test_header_names_are_matched_whatever_their_case():
    body = encode(payload("orders/create"))
    headers = {name.lower(): value for name, value in shopify.sign(body, SECRET).items()}
    shopify.verify(headers, body, SECRET, NOW)
    assert shopify.parse(headers, body, SHOP).topic == "orders/create"


def test_flask_environ_headers_work():
    body = encode(payload("orders/create"))
    signed = shopify.sign(body, SECRET)
    environ = {"CONTENT_TYPE": "application/json"}
    environ.update({"HTTP_" + name.upper().replace("-", "_"): value
                    for name, value in signed.items() if name != "Content-Type"})
    headers = EnvironHeaders(environ)
    shopify.verify(headers, body, SECRET, NOW)
    assert len(shopify.parse(headers, body, SHOP).actions) == 1


def test_a_missing_signature_is_refused():
    body = encode(payload("orders/create"))
    headers = shopify.sign(body, SECRET)
    del headers["X-Shopify-Hmac-Sha256"]
    with pytest.raises(SignatureError, match="X-Shopify-Hmac-Sha256 header is missing"):
        shopify.verify(headers, body, SECRET, NOW)


def test_a_signature_made_with_another_secret_is_refused():
    body = encode(payload("orders/create"))
    with pytest.raises(SignatureError, match="does not match"):
        shopify.verify(shopify.sign(body, "another-secret"), body, SECRET, NOW)


def test_a_body_changed_after_signing_is_refused():
    body = encode(payload("orders/create"))
    headers = shopify.sign(body, SECRET)
    with pytest.raises(SignatureError):
        shopify.verify(headers, body.replace(b"89.80", b"8.98"), SECRET, NOW)


def test_a_signature_that_is_not_base64_is_refused():
    body = encode(payload("orders/create"))
    headers = {**shopify.sign(body, SECRET), "X-Shopify-Hmac-Sha256": "not base64 at all!"}
    with pytest.raises(SignatureError, match="not base64"):
        shopify.verify(headers, body, SECRET, NOW)


def test_a_shop_without_a_secret_accepts_nothing():
    body = encode(payload("orders/create"))
    with pytest.raises(SignatureError, match="no webhook secret"):
        shopify.verify(shopify.sign(body, ""), body, "", NOW)


def test_signature_errors_never_show_the_secret_or_the_signature():
    body = encode(payload("orders/create"))
    headers = shopify.sign(body, "another-secret")
    with pytest.raises(SignatureError) as caught:
        shopify.verify(headers, body, SECRET, NOW)
    assert SECRET not in str(caught.value)
    assert headers["X-Shopify-Hmac-Sha256"] not in str(caught.value)


def test_shopify_has_no_unsigned_ping():
    assert not shopify.is_ping({}, b"webhook_id=1")


# --- orders -----------------------------------------------------------------------------------------

def test_orders_create_becomes_a_canonical_order():
    inbound = deliver("orders/create")
    order = only_order(inbound)
    assert order.shop_id == "acme"
    assert order.order_id == "5873412096157"
    assert order.placed_at == datetime(2025, 3, 14, 10, 30, 0, tzinfo=timezone.utc)  # processed_at, in UTC
    assert order.updated_at == datetime(2025, 3, 14, 10, 30, 4, tzinfo=timezone.utc)
    assert order.total == Decimal("89.80") and order.refunded == 0
    assert order.status == "placed" and order.is_valid and order.amount == Decimal("89.80")
    assert order.email == "jane.doe@example.com"
    assert order.phone == "+33612345678"  # the order has none: the customer's
    assert order.customer_id == "7294715560093"
    assert order.currency == "EUR"
    assert inbound.ignored_reason is None


def test_the_delivery_id_is_the_event_id_qualified_by_the_topic():
    inbound = deliver("orders/create", event_id="6b0a0d4e-3b0a-4d38-9d6c-0f7c3c1e2a11")
    assert inbound.delivery_id == "orders/create:6b0a0d4e-3b0a-4d38-9d6c-0f7c3c1e2a11"


def test_the_webhook_id_is_used_when_there_is_no_event_id():
    body = encode(payload("orders/create"))
    headers = shopify.sign(body, SECRET, webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
    del headers["X-Shopify-Event-Id"]
    assert shopify.parse(headers, body, SHOP).delivery_id == "orders/create:b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"


def test_the_same_event_under_two_topics_gets_two_delivery_ids():
    cancelled = deliver("orders/cancelled", event_id="e-1")
    refund = deliver("refunds/create", event_id="e-1")
    assert cancelled.delivery_id != refund.delivery_id


def test_placed_at_falls_back_to_created_at():
    data = payload("orders/create")
    data["processed_at"] = None
    assert only_order(deliver("orders/create", data)).placed_at == datetime(2025, 3, 14, 10, 30, 2, tzinfo=timezone.utc)


def test_an_order_without_any_date_is_a_payload_error():
    data = payload("orders/create")
    del data["processed_at"], data["created_at"]
    with pytest.raises(PayloadError, match="shopify orders/create: field 'created_at' is missing"):
        deliver("orders/create", data)


def test_email_falls_back_to_contact_email_then_to_the_customer():
    data = payload("orders/create")
    data["email"] = ""
    data["contact_email"] = "Contact@Example.com"
    assert only_order(deliver("orders/create", data)).email == "contact@example.com"
    data["contact_email"] = None
    data["customer"]["email"] = "jane.customer@example.com"
    assert only_order(deliver("orders/create", data)).email == "jane.customer@example.com"


def test_the_order_keeps_the_address_as_the_shop_spelled_it_beside_the_normalised_one():
    # Omnisend's email identifier is case-sensitive (api-docs.omnisend.com/reference/contacts): destinations
    # get the spelling of the documented orders/create payload's `email`, customers the normalised key.
    data = payload("orders/create")
    data["email"] = " Alice@Example.com "
    order = only_order(deliver("orders/create", data))
    assert (order.customer_key, order.email_spelling) == ("alice@example.com", "Alice@Example.com")


def test_phone_falls_back_to_the_billing_address_in_the_shop_country():
    data = payload("orders/create")
    data["email"] = data["contact_email"] = None
    data["customer"] = None
    order = only_order(deliver("orders/create", data))
    assert order.email is None and order.customer_id is None
    assert order.phone == "+33612345678"  # "06 12 34 56 78" with the shop's country, FR
    assert order.customer_key == "+33612345678"


def test_an_unusable_phone_does_not_hide_the_next_one():
    data = payload("orders/create")
    data["phone"] = "n/a"
    data["customer"]["phone"] = None
    assert only_order(deliver("orders/create", data)).phone == "+33612345678"  # the billing address's


def test_a_test_order_is_ignored():
    data = payload("orders/create")
    data["test"] = True
    inbound = deliver("orders/create", data)
    assert inbound.actions == () and inbound.ignored_reason == "test order"


def test_orders_paid_updates_the_order():
    order = only_order(deliver("orders/paid"))
    assert order.order_id == "5873412096157" and order.is_valid


def test_a_partial_refund_lowers_the_amount():
    order = only_order(deliver("orders/updated"))
    # One refund: a failed transaction (ignored) then a successful one of 39.95.
    assert order.total == Decimal("89.80")
    assert order.refunded == Decimal("39.95")
    assert order.amount == Decimal("49.85")
    assert order.updated_at == datetime(2025, 3, 20, 8, 15, 12, tzinfo=timezone.utc)


def test_a_cancelled_order_leaves_the_counts():
    order = only_order(deliver("orders/cancelled"))
    assert order.status == "cancelled" and not order.is_valid and order.amount == 0


def test_a_voided_order_leaves_the_counts():
    data = payload("orders/create")
    data["financial_status"] = "voided"
    order = only_order(deliver("orders/updated", data))
    assert order.status == "voided" and not order.is_valid


def test_a_fully_refunded_order_is_invalid_even_without_its_refund_list():
    data = payload("orders/create")
    data["financial_status"] = "refunded"
    order = only_order(deliver("orders/updated", data))
    assert order.status == "refunded" and order.refunded == order.total and not order.is_valid


def test_the_total_comes_from_shop_money():
    data = payload("orders/create")
    # A customer paying in USD: total_price_set says what the shop received, in EUR.
    data["presentment_currency"] = "USD"
    data["total_price_set"]["presentment_money"] = {"amount": "100.00", "currency_code": "USD"}
    data["total_price_set"]["shop_money"] = {"amount": "92.00", "currency_code": "EUR"}
    data["total_price"] = "92.00"
    data["current_total_price_set"] = copy.deepcopy(data["total_price_set"])
    data["current_total_price"] = "92.00"
    order = only_order(deliver("orders/create", data))
    assert order.total == Decimal("92.00") and order.currency == "EUR"


def test_refunds_in_the_customer_currency_are_converted_to_shop_money():
    data = payload("orders/updated")
    data["presentment_currency"] = "USD"
    data["total_price"] = "92.00"
    data["total_price_set"] = {"shop_money": {"amount": "92.00", "currency_code": "EUR"},
                               "presentment_money": {"amount": "100.00", "currency_code": "USD"}}
    data["current_total_price"] = "46.00"  # after the refund
    data["current_total_price_set"] = {"shop_money": {"amount": "46.00", "currency_code": "EUR"},
                                       "presentment_money": {"amount": "50.00", "currency_code": "USD"}}
    for transaction in data["refunds"][0]["transactions"]:
        transaction.update(currency="USD", amount="50.00")
    inbound = deliver("orders/updated", data)
    order = only_order(inbound)
    assert order.refunded == Decimal("46.00")  # 50 USD at the order's 0.92
    assert order.amount == Decimal("46.00")  # current_total_price, the refund not taken off twice
    assert "warnings" not in inbound.extra


def test_a_refund_with_shop_money_given_uses_it():
    data = payload("orders/updated")
    transaction = data["refunds"][0]["transactions"][1]
    transaction.update(currency="USD", amount="50.00",
                       amount_set={"shop_money": {"amount": "45.87", "currency_code": "EUR"},
                                   "presentment_money": {"amount": "50.00", "currency_code": "USD"}})
    assert only_order(deliver("orders/updated", data)).refunded == Decimal("45.87")


def test_orders_edited_carries_no_totals_and_is_left_to_the_orders_updated_that_follows():
    inbound = deliver("orders/edited")
    assert inbound.actions == () and inbound.fetch_order_id is None  # nothing to fetch with
    assert "orders/updated" in inbound.ignored_reason
    assert inbound.extra["order_id"] == "5873412096157"


def test_orders_delete_deletes_the_order():
    assert deliver("orders/delete").actions == (DeleteOrder(order_id="5873412096157"),)


# --- refunds ----------------------------------------------------------------------------------------

def test_refunds_create_records_the_refund():
    (action,) = deliver("refunds/create").actions
    assert action == RecordRefund(order_id="5873412096157", refund_id="1032847589533", amount=Decimal("39.95"),
                                  created_at=datetime(2025, 3, 20, 8, 15, 11, tzinfo=timezone.utc))


def test_a_refund_in_the_customer_currency_uses_the_rate_of_its_lines():
    data = payload("refunds/create")
    line = data["refund_line_items"][0]
    line["subtotal_set"]["presentment_money"] = {"amount": "36.18", "currency_code": "USD"}
    line["total_tax_set"]["presentment_money"] = {"amount": "7.24", "currency_code": "USD"}
    data["transactions"][0].update(currency="USD", amount="43.42")
    (action,) = deliver("refunds/create", data).actions
    assert action.amount == Decimal("39.95")  # 43.42 USD * (39.95 / 43.42)


def test_a_refund_that_cannot_be_converted_is_kept_with_a_warning():
    data = payload("refunds/create")
    data["refund_line_items"] = []
    data["transactions"][0].update(currency="USD", amount="43.42")
    inbound = deliver("refunds/create", data)
    assert inbound.actions[0].amount == Decimal("43.42")
    assert inbound.extra["warnings"]


def test_a_refund_without_a_successful_transaction_is_ignored():
    data = payload("refunds/create")
    data["transactions"][0]["status"] = "pending"
    inbound = deliver("refunds/create", data)
    assert inbound.actions == () and "refund" in inbound.ignored_reason


# --- customers and privacy ----------------------------------------------------------------------------

def test_a_new_customer_is_seen():
    assert deliver("customers/create").actions == (SeeCustomer(email="leo.martin@example.com", phone=None),)


def test_a_customer_with_only_a_phone_is_seen_by_phone():
    assert deliver("customers/update").actions == (SeeCustomer(email=None, phone="+33798765432"),)


def test_a_customer_without_email_or_phone_is_ignored():
    data = payload("customers/update")
    data["default_address"]["phone"] = None
    inbound = deliver("customers/update", data)
    assert inbound.actions == () and "email" in inbound.ignored_reason


def test_customers_redact_names_the_customer_and_the_orders():
    inbound = deliver("customers/redact")
    assert inbound.actions == (RedactCustomer(email="jane.doe@example.com", phone="+33612345678",
                                              order_ids=("5873412096157", "5873413243037"),
                                              customer_id="7294715560093"),)
    assert inbound.extra["customer_id"] == "7294715560093"


def test_customers_data_request_is_recorded_with_its_id():
    inbound = deliver("customers/data_request")
    assert inbound.actions == (RecordDataRequest(email="jane.doe@example.com", phone="+33612345678",
                                                 request_id="9999", customer_id="7294715560093",
                                                 orders_requested=("5873412096157", "5873413243037")),)
    assert inbound.extra["orders_requested"] == ("5873412096157", "5873413243037")


def test_shop_redact_forgets_the_shop():
    assert deliver("shop/redact").actions == (RedactShop(),)


def test_app_uninstalled_is_ignored_with_a_reason():
    inbound = deliver("app/uninstalled")
    assert inbound.actions == () and "uninstalled" in inbound.ignored_reason


def test_an_unknown_topic_is_ignored():
    inbound = deliver("products/update", {"id": 1, "title": "Linen apron"})
    assert inbound.actions == () and "products/update" in inbound.ignored_reason


@pytest.mark.parametrize("topic", shopify.TOPICS)
def test_every_handled_topic_has_a_documented_fixture(topic):
    inbound = deliver(topic)
    assert inbound.topic == topic and inbound.delivery_id.startswith(topic + ":")


# --- malformed bodies ---------------------------------------------------------------------------------

def signed(body: bytes, topic: str = "orders/create", **overrides):
    return {**shopify.sign(body, SECRET, topic=topic), **overrides}


def test_a_body_that_is_not_json_is_a_payload_error():
    body = b'{"id": 1, '
    with pytest.raises(PayloadError, match="shopify orders/create: the body is not valid JSON"):
        shopify.parse(signed(body), body, SHOP)


def test_a_body_that_is_not_an_object_is_a_payload_error():
    body = b"[1, 2]"
    with pytest.raises(PayloadError, match="must be a JSON object"):
        shopify.parse(signed(body), body, SHOP)


def test_a_form_body_is_a_payload_error():
    body = b"id=1"
    with pytest.raises(PayloadError, match="Content-Type must be application/json"):
        shopify.parse(signed(body, **{"Content-Type": "application/x-www-form-urlencoded"}), body, SHOP)


def test_a_delivery_without_a_topic_is_a_payload_error():
    body = encode(payload("orders/create"))
    headers = signed(body)
    del headers["X-Shopify-Topic"]
    with pytest.raises(PayloadError, match="X-Shopify-Topic header is missing"):
        shopify.parse(headers, body, SHOP)


@pytest.mark.parametrize("field, value, message", [
    ("id", True, "field 'id' must be an id"),
    ("id", None, "field 'id' is missing"),
    ("total_price_set", "89.80", "field 'total_price_set' must be an object"),
    ("refunds", {}, "field 'refunds' must be an array"),
    ("processed_at", "last tuesday", "field 'processed_at' must be an ISO 8601 date-time"),
    ("test", "no", "field 'test' must be true or false"),
    ("customer", [], "field 'customer' must be an object"),
])
def test_wrong_types_name_the_field(field, value, message):
    data = payload("orders/create")
    data[field] = value
    with pytest.raises(PayloadError, match=message):
        deliver("orders/create", data)


def test_an_amount_that_is_not_a_decimal_names_the_nested_field():
    data = payload("orders/create")
    data["total_price_set"]["shop_money"]["amount"] = "89,80"
    with pytest.raises(PayloadError, match=r"field 'total_price_set.shop_money.amount' must be a decimal amount"):
        deliver("orders/create", data)


def test_a_refund_transaction_with_a_bad_amount_names_its_place():
    data = payload("orders/updated")
    data["refunds"][0]["transactions"][1]["amount"] = ["39.95"]
    with pytest.raises(PayloadError, match=r"field 'refunds\[0\]\.transactions\[1\]\.amount'"):
        deliver("orders/updated", data)


def test_a_negative_total_is_a_payload_error():
    data = payload("orders/create")
    data["current_total_price_set"]["shop_money"]["amount"] = "-1.00"
    with pytest.raises(PayloadError, match="must not be negative"):
        deliver("orders/create", data)


def test_payload_errors_never_show_an_email():
    data = copy.deepcopy(payload("customers/redact"))
    data["orders_to_redact"] = "jane.doe@example.com"
    with pytest.raises(PayloadError) as caught:
        deliver("customers/redact", data)
    assert "jane.doe@example.com" not in str(caught.value)
    data = payload("orders/create")
    data["email"] = {"address": "jane.doe@example.com"}
    with pytest.raises(PayloadError) as caught:
        deliver("orders/create", data)
    assert "@" not in str(caught.value)
