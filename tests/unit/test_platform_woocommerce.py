"""WooCommerce adapter: real signatures (`woocommerce.sign`), the unsigned ping, every topic, malformed bodies."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.platforms import woocommerce
from connector.config import ShopSettings
from connector.errors import PayloadError, SignatureError
from connector.domain.inbound import DeleteOrder, SeeCustomer, UpsertOrder

FIXTURES = Path(__file__).parent.parent / "fixtures" / "woocommerce"
SECRET = "wc-webhook-secret-5f0c9b2e"
NOW = datetime(2025, 3, 22, 12, 0, tzinfo=timezone.utc)
SHOP = ShopSettings(id="savonnerie", platform="woocommerce", webhook_secret=SECRET, currency="EUR", country="FR")


def payload(topic: str) -> dict:
    return json.loads((FIXTURES / f"{topic}.json").read_text(encoding="utf-8"))


def encode(data: dict) -> bytes:
    return json.dumps(data).encode("utf-8")


def deliver(topic: str, data: dict | None = None, **sign_kw):
    body = encode(payload(topic) if data is None else data)
    headers = woocommerce.sign(body, SECRET, topic=topic, **sign_kw)
    woocommerce.verify(headers, body, SECRET, NOW)
    return woocommerce.parse(headers, body, SHOP)


def only_order(inbound):
    (action,) = inbound.actions
    assert isinstance(action, UpsertOrder)
    return action.order


# --- signatures and the ping --------------------------------------------------------------------------

def test_a_signature_made_with_the_webhook_secret_verifies():
    body = encode(payload("order.created"))
    woocommerce.verify(woocommerce.sign(body, SECRET), body, SECRET, NOW)


def test_header_names_are_matched_whatever_their_case():
    body = encode(payload("order.created"))
    headers = {name.upper(): value for name, value in woocommerce.sign(body, SECRET).items()}
    woocommerce.verify(headers, body, SECRET, NOW)
    assert woocommerce.parse(headers, body, SHOP).topic == "order.created"


def test_a_missing_signature_is_refused():
    body = encode(payload("order.created"))
    headers = woocommerce.sign(body, SECRET)
    del headers["X-WC-Webhook-Signature"]
    with pytest.raises(SignatureError, match="X-WC-Webhook-Signature header is missing"):
        woocommerce.verify(headers, body, SECRET, NOW)


def test_a_wrong_signature_is_refused_without_showing_secret_or_signature():
    body = encode(payload("order.created"))
    headers = woocommerce.sign(body, "someone-else")
    with pytest.raises(SignatureError) as caught:
        woocommerce.verify(headers, body, SECRET, NOW)
    assert SECRET not in str(caught.value) and headers["X-WC-Webhook-Signature"] not in str(caught.value)


def test_a_body_changed_after_signing_is_refused():
    body = encode(payload("order.created"))
    headers = woocommerce.sign(body, SECRET)
    with pytest.raises(SignatureError):
        woocommerce.verify(headers, body.replace(b'"69.80"', b'"6.98"'), SECRET, NOW)


def test_the_creation_ping_is_recognised_and_ignored():
    body = b"webhook_id=12"
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "User-Agent": "WooCommerce/9.6.2 Hookshot (WordPress/6.7.2)"}
    assert woocommerce.is_ping(headers, body)
    inbound = woocommerce.parse(headers, body, SHOP)
    assert inbound.actions == () and inbound.topic == "ping"
    assert inbound.ignored_reason == "WooCommerce webhook ping (webhook 12)"


@pytest.mark.parametrize("body", [
    b"webhook_id=", b"webhook_id=12&status=completed", b"webhook_id=12\n", b" webhook_id=12",
    b'{"webhook_id": 12}', b"webhook_id=1a", b"", b"webhook_id=" + b"9" * 21,
])
def test_only_the_exact_ping_form_passes_as_a_ping(body):
    assert not woocommerce.is_ping({}, body)


def test_the_ping_itself_carries_no_signature_so_verify_refuses_it():
    # The HTTP layer must ask is_ping() first; verify() has no way around the signature.
    with pytest.raises(SignatureError):
        woocommerce.verify({}, b"webhook_id=12", SECRET, NOW)


# --- orders -----------------------------------------------------------------------------------------

def test_order_created_becomes_a_canonical_order():
    inbound = deliver("order.created", delivery_id="9f1d0c3b7a2e4d5f8c6b1a0e9d8c7b6a")
    order = only_order(inbound)
    # keyed on the body's digest: WooCommerce's delivery id is one per webhook and second
    assert inbound.delivery_id == woocommerce.event_key("order.created", encode(payload("order.created")))
    assert order.shop_id == "savonnerie" and order.order_id == "1187"
    assert order.placed_at == datetime(2025, 3, 14, 11, 30, 3, tzinfo=timezone.utc)  # date_paid_gmt
    assert order.updated_at == datetime(2025, 3, 14, 11, 30, 4, tzinfo=timezone.utc)
    assert order.total == Decimal("69.80") and order.refunded == 0
    assert order.status == "placed" and order.is_valid
    assert order.email == "camille.bernard@example.com"
    assert order.phone == "+33698765432"
    assert order.customer_id == "58"
    assert order.currency == "EUR"


def test_a_guest_order_is_identified_by_its_billing_email():
    order = only_order(deliver("order.updated"))
    assert order.customer_id is None  # customer_id 0
    assert order.email == "hugo.petit@example.com" and order.customer_key == "hugo.petit@example.com"


def test_a_refund_listed_with_a_negative_total_lowers_the_amount():
    order = only_order(deliver("order.updated"))
    assert order.refunded == Decimal("14.96")
    assert order.amount == Decimal("54.84")


def test_several_refunds_add_up():
    data = payload("order.updated")
    data["refunds"].append({"id": 1224, "reason": "", "total": "-5.04"})
    assert only_order(deliver("order.updated", data)).refunded == Decimal("20.00")


def test_a_restored_order_counts_again():
    order = only_order(deliver("order.restored"))
    assert order.order_id == "1175" and order.status == "placed" and order.is_valid


@pytest.mark.parametrize("wc_status, status, valid", [
    ("pending", "pending", False), ("on-hold", "placed", True), ("processing", "placed", True),
    ("completed", "placed", True), ("cancelled", "cancelled", False), ("failed", "pending", False),
    ("checkout-draft", "pending", False),
    ("refunded", "refunded", False), ("trash", "deleted", False), ("shipped", "placed", True),
])
def test_woocommerce_statuses_map_to_canonical_ones(wc_status, status, valid):
    data = payload("order.created")
    data["status"] = wc_status
    order = only_order(deliver("order.updated", data))
    assert (order.status, order.is_valid) == (status, valid)


def test_a_refunded_order_is_fully_refunded():
    data = payload("order.updated")
    data["status"] = "refunded"
    order = only_order(deliver("order.updated", data))
    assert order.refunded == order.total and order.amount == 0


def test_a_checkout_draft_is_stored_as_a_pending_order():
    data = payload("order.created")
    data["status"] = "checkout-draft"
    order = only_order(deliver("order.created", data))
    assert (order.status, order.is_valid) == ("pending", False)


def test_an_order_without_a_payment_date_is_placed_at_its_creation():
    data = dict(payload("order.created"), status="on-hold", date_paid_gmt=None)  # a bank transfer
    assert only_order(deliver("order.updated", data)).placed_at == datetime(2025, 3, 14, 11, 30, 0, tzinfo=timezone.utc)


def test_order_deleted_deletes_the_order():
    assert deliver("order.deleted").actions == (DeleteOrder(order_id="1175"),)


# --- customers ------------------------------------------------------------------------------------------

def test_a_new_customer_is_seen():
    assert deliver("customer.created").actions == (SeeCustomer(email="ines.moreau@example.com", phone="+33655443322"),)


def test_a_customer_without_email_or_phone_is_ignored():
    data = payload("customer.created")
    data["email"] = ""
    data["billing"].update(email="", phone="")
    inbound = deliver("customer.created", data)
    assert inbound.actions == () and inbound.ignored_reason


def test_an_unknown_topic_is_ignored():
    inbound = deliver("product.updated", {"id": 311, "name": "Savon surgras lavande"})
    assert inbound.actions == () and "product.updated" in inbound.ignored_reason


@pytest.mark.parametrize("topic", woocommerce.TOPICS)
def test_every_handled_topic_parses(topic):
    fixture = "customer.created" if topic == "customer.updated" else topic
    inbound = deliver(topic, payload(fixture))
    assert inbound.topic == topic and inbound.actions


# --- malformed bodies ---------------------------------------------------------------------------------

def test_a_body_that_is_not_json_is_a_payload_error():
    body = b"<html>Internal error</html>"
    headers = woocommerce.sign(body, SECRET)
    with pytest.raises(PayloadError, match="woocommerce order.created: the body is not valid JSON"):
        woocommerce.parse(headers, body, SHOP)


def test_a_delivery_without_a_topic_is_a_payload_error():
    body = encode(payload("order.created"))
    headers = woocommerce.sign(body, SECRET)
    del headers["X-WC-Webhook-Topic"]
    with pytest.raises(PayloadError, match="X-WC-Webhook-Topic header is missing"):
        woocommerce.parse(headers, body, SHOP)


def test_an_order_without_its_gmt_creation_date_is_a_payload_error():
    data = payload("order.created")
    data["date_created_gmt"] = None
    with pytest.raises(PayloadError, match="woocommerce order.created: field 'date_created_gmt' is missing"):
        deliver("order.created", data)


@pytest.mark.parametrize("change, message", [
    ({"id": "  "}, "field 'id' must be an id"),
    ({"status": None}, "field 'status' is missing"),
    ({"status": 3}, "field 'status' must be a string"),
    ({"total": "sixty"}, "field 'total' must be a decimal amount"),
    ({"total": "-69.80"}, "must not be negative"),
    ({"refunds": [{"id": 1, "total": "NaN"}]}, r"field 'refunds\[0\]\.total' must be a finite decimal amount"),
    ({"refunds": ["-1.00"]}, r"field 'refunds\[0\]' must be an object"),
    ({"billing": "camille.bernard@example.com"}, "field 'billing' must be an object"),
])
def test_wrong_fields_are_named(change, message):
    data = payload("order.created")
    data.update(change)
    with pytest.raises(PayloadError, match=message) as caught:
        deliver("order.created", data)
    assert "@" not in str(caught.value)
