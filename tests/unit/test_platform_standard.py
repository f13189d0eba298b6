"""Standard Webhooks adapter: the spec's test vector, the replay window, every type, malformed bodies."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.platforms import standard
from connector.config import ShopSettings
from connector.errors import PayloadError, SignatureError
from connector.domain.inbound import DeleteOrder, RecordRefund, RedactCustomer, SeeCustomer, UpsertOrder

FIXTURES = Path(__file__).parent.parent / "fixtures" / "standard"
SECRET = "whsec_" + base64.b64encode(b"stagesync-test-key-32-bytes-long").decode()
NOW = datetime(2025, 3, 20, 12, 0, tzinfo=timezone.utc)
SHOP = ShopSettings(id="mercerie", platform="standard", webhook_secret=SECRET, currency="EUR", country="FR")

# The published test vector of the Standard Webhooks specification (and of the svix libraries).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_HEADERS = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
                "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
SPEC_BODY = b'{"test": 2432232314}'
SPEC_NOW = datetime.fromtimestamp(1614265330, tz=timezone.utc)


def payload(kind: str) -> dict:
    return json.loads((FIXTURES / f"{kind}.json").read_text(encoding="utf-8"))


def encode(data: dict) -> bytes:
    return json.dumps(data).encode("utf-8")


def deliver(data: dict, **sign_kw):
    body = encode(data)
    headers = standard.sign(body, SECRET, timestamp=NOW, **sign_kw)
    standard.verify(headers, body, SECRET, NOW)
    return standard.parse(headers, body, SHOP)


def only_order(inbound):
    (action,) = inbound.actions
    assert isinstance(action, UpsertOrder)
    return action.order


# --- signatures -------------------------------------------------------------------------------------

def test_the_specification_test_vector_verifies():
    standard.verify(SPEC_HEADERS, SPEC_BODY, SPEC_SECRET, SPEC_NOW)


def test_sign_reproduces_the_specification_test_vector():
    headers = standard.sign(SPEC_BODY, SPEC_SECRET, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330)
    assert headers["webhook-signature"] == SPEC_HEADERS["webhook-signature"]
    assert headers["webhook-timestamp"] == "1614265330"


def test_a_secret_given_without_its_prefix_works():
    standard.verify(SPEC_HEADERS, SPEC_BODY, SPEC_SECRET.removeprefix("whsec_"), SPEC_NOW)


def test_header_names_are_matched_whatever_their_case():
    headers = {name.title(): value for name, value in SPEC_HEADERS.items()}
    standard.verify(headers, SPEC_BODY, SPEC_SECRET, SPEC_NOW)


def test_one_matching_signature_among_several_is_enough():
    other = standard.sign(SPEC_BODY, "whsec_" + base64.b64encode(b"x" * 32).decode(),
                          msg_id=SPEC_HEADERS["webhook-id"], timestamp=1614265330)["webhook-signature"]
    headers = {**SPEC_HEADERS,
               "webhook-signature": f"v1a,c2lnbmF0dXJl {other} v1,not-base64! {SPEC_HEADERS['webhook-signature']}"}
    standard.verify(headers, SPEC_BODY, SPEC_SECRET, SPEC_NOW)


@pytest.mark.parametrize("seconds", [-300, -1, 0, 1, 300])
def test_a_timestamp_within_five_minutes_of_now_passes(seconds):
    standard.verify(SPEC_HEADERS, SPEC_BODY, SPEC_SECRET, SPEC_NOW + timedelta(seconds=seconds))


@pytest.mark.parametrize("seconds, words", [(301, "301 s old"), (-301, "301 s in the future"), (86400, "old")])
def test_a_timestamp_beyond_five_minutes_is_refused(seconds, words):
    with pytest.raises(SignatureError, match=words):
        standard.verify(SPEC_HEADERS, SPEC_BODY, SPEC_SECRET, SPEC_NOW + timedelta(seconds=seconds))


def test_a_naive_now_is_taken_as_utc():
    standard.verify(SPEC_HEADERS, SPEC_BODY, SPEC_SECRET, SPEC_NOW.replace(tzinfo=None))


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_missing_header_is_refused(name):
    headers = {k: v for k, v in SPEC_HEADERS.items() if k != name}
    with pytest.raises(SignatureError, match=f"{name} header is missing"):
        standard.verify(headers, SPEC_BODY, SPEC_SECRET, SPEC_NOW)


@pytest.mark.parametrize("timestamp", ["1614265330.5", "-1614265330", "soon", "１６１４２６５３３０", "9" * 5000])
def test_a_timestamp_that_is_not_whole_seconds_is_refused(timestamp):
    with pytest.raises(SignatureError, match="not whole unix seconds"):
        standard.verify({**SPEC_HEADERS, "webhook-timestamp": timestamp}, SPEC_BODY, SPEC_SECRET, SPEC_NOW)


@pytest.mark.parametrize("change", [
    {"webhook-id": "msg_other"},  # the id is signed: it cannot be swapped to dodge de-duplication
    {"webhook-signature": "v1,h0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
    {"webhook-signature": "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
])
def test_a_signature_that_does_not_match_is_refused(change):
    with pytest.raises(SignatureError, match="no v1 signature"):
        standard.verify({**SPEC_HEADERS, **change}, SPEC_BODY, SPEC_SECRET, SPEC_NOW)


def test_a_changed_body_is_refused_without_showing_secret_or_signature():
    with pytest.raises(SignatureError) as caught:
        standard.verify(SPEC_HEADERS, b'{"test": 2432232315}', SPEC_SECRET, SPEC_NOW)
    message = str(caught.value)
    assert SPEC_SECRET not in message and SPEC_SECRET[6:] not in message
    assert "g0hM9SsE" not in message


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_not base64!", "plain-password"])
def test_a_secret_that_is_not_a_standard_webhooks_secret_is_refused(secret):
    with pytest.raises(SignatureError, match="not a Standard Webhooks secret"):
        standard.verify(SPEC_HEADERS, SPEC_BODY, secret, SPEC_NOW)


def test_standard_has_no_unsigned_ping():
    assert not standard.is_ping({}, b"webhook_id=1")


# --- types --------------------------------------------------------------------------------------------

def test_order_upserted_becomes_a_canonical_order():
    inbound = deliver(payload("order.upserted"), msg_id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
    order = only_order(inbound)
    assert inbound.topic == "order.upserted" and inbound.delivery_id == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    assert order.shop_id == "mercerie" and order.order_id == "A-1001"
    assert order.placed_at == datetime(2025, 3, 14, 10, 30, tzinfo=timezone.utc)
    assert order.updated_at == datetime(2025, 3, 20, 8, 15, 12, tzinfo=timezone.utc)
    assert order.total == Decimal("59.90")
    assert order.refunded == Decimal("10.5")  # a JSON number, read exactly
    assert order.amount == Decimal("49.40")
    assert order.email == "chloe.garcia@example.com" and order.phone == "+33601020304"
    assert order.customer_id == "4411" and order.currency == "EUR"


def test_only_the_required_fields_are_needed():
    inbound = deliver({"type": "order.upserted",
                       "data": {"order_id": 7, "placed_at": "2025-03-14T10:30:00", "total": 12}})
    order = only_order(inbound)
    assert order.order_id == "7" and order.total == Decimal("12") and order.refunded == 0
    assert order.placed_at == datetime(2025, 3, 14, 10, 30, tzinfo=timezone.utc)  # no offset: UTC
    assert order.status == "placed" and order.currency == "EUR"  # the shop's


@pytest.mark.parametrize("amount, expected", [("0.1", "0.1"), (0.1, "0.1"), (19.99, "19.99"), ("1e2", "1E+2")])
def test_amounts_are_converted_exactly(amount, expected):
    data = payload("order.upserted")
    data["data"].update(total=amount, refunded=0)
    assert only_order(deliver(data)).total == Decimal(expected)


@pytest.mark.parametrize("status, valid", [("cancelled", False), ("voided", False), ("refunded", False),
                                           ("deleted", False), ("placed", True)])
def test_statuses_are_the_canonical_ones(status, valid):
    data = payload("order.upserted")
    data["data"].update(status=status, refunded=0)
    assert only_order(deliver(data)).is_valid is valid


def test_a_refunded_status_with_an_amount_is_a_partial_refund():
    data = payload("order.upserted")
    data["data"].update(status="refunded", refunded="10.50")
    order = only_order(deliver(data))
    assert order.is_valid and order.amount == Decimal("49.40")


def test_a_test_order_is_ignored():
    data = payload("order.upserted")
    data["data"]["test"] = True
    inbound = deliver(data)
    assert inbound.actions == () and inbound.ignored_reason == "test order"


def test_order_deleted_deletes_the_order():
    assert deliver(payload("order.deleted")).actions == (
        DeleteOrder(order_id="A-1001", updated_at=datetime(2025, 3, 22, 8, 0, tzinfo=timezone.utc)),)


def test_refund_created_records_the_refund():
    assert deliver(payload("refund.created")).actions == (
        RecordRefund(order_id="A-1001", refund_id="R-77", amount=Decimal("10.50"),
                     created_at=datetime(2025, 3, 20, 8, 15, 11, tzinfo=timezone.utc)),)


def test_customer_seen_sees_the_customer():
    assert deliver(payload("customer.seen")).actions == (SeeCustomer(email="leo.martin@example.com", phone=None),)


def test_customer_redacted_redacts_the_customer_and_orders():
    assert deliver(payload("customer.redacted")).actions == (
        RedactCustomer(email="chloe.garcia@example.com", phone=None, order_ids=("A-1001", "1002")),)


def test_an_unknown_type_is_ignored_for_forward_compatibility():
    inbound = deliver({"type": "invoice.paid", "data": {"id": "in_1"}})
    assert inbound.actions == () and "invoice.paid" in inbound.ignored_reason


@pytest.mark.parametrize("kind", standard.TOPICS)
def test_every_type_has_a_fixture(kind):
    assert deliver(payload(kind)).topic == kind


# --- malformed bodies ---------------------------------------------------------------------------------

@pytest.mark.parametrize("body, message", [
    (b"", "the body is empty"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b'{"type": "order.upserted", "data": ', "not valid JSON"),
    (b'{"type": "order.upserted", "data": {"total": NaN}}', "not valid JSON"),
    (b'"order.upserted"', "must be a JSON object"),
    (b'{"data": {}}', "field 'type' is missing"),
    (b'{"type": 3, "data": {}}', "field 'type' must be a string"),
    (b'{"type": "order.upserted"}', "standard order.upserted: field 'data' is missing"),
    (b'{"type": "order.upserted", "data": []}', "field 'data' must be an object"),
])
def test_malformed_bodies_are_payload_errors(body, message):
    headers = standard.sign(body, SECRET, timestamp=NOW)
    standard.verify(headers, body, SECRET, NOW)
    with pytest.raises(PayloadError, match=message):
        standard.parse(headers, body, SHOP)


def test_a_body_sent_as_a_form_is_a_payload_error():
    body = b"type=order.upserted"
    headers = {**standard.sign(body, SECRET, timestamp=NOW), "Content-Type": "application/x-www-form-urlencoded"}
    with pytest.raises(PayloadError, match="Content-Type must be application/json"):
        standard.parse(headers, body, SHOP)


def test_a_json_subtype_is_accepted():
    body = encode(payload("customer.seen"))
    headers = {**standard.sign(body, SECRET, timestamp=NOW), "content-type": "application/vnd.acme+json; charset=utf-8"}
    assert standard.parse(headers, body, SHOP).actions


@pytest.mark.parametrize("change, message", [
    ({"order_id": None}, "field 'data.order_id' is missing"),
    ({"placed_at": "14/03/2025"}, "field 'data.placed_at' must be an ISO 8601 date-time"),
    ({"total": "59,90"}, "field 'data.total' must be a decimal amount"),
    ({"total": True}, "field 'data.total' must be a decimal amount"),
    ({"total": "Infinity"}, "field 'data.total' must be a finite decimal amount"),
    ({"total": "-1"}, "must not be negative"),
    ({"refunded": "-1"}, "must not be negative"),
    ({"status": "shipped"}, "field 'data.status' must be one of placed, cancelled"),
    ({"test": "false"}, "field 'data.test' must be true or false"),
    ({"email": ["chloe.garcia@example.com"]}, "field 'data.email' must be a string"),
])
def test_wrong_order_fields_are_named(change, message):
    data = payload("order.upserted")
    data["data"].update(change)
    with pytest.raises(PayloadError, match=message) as caught:
        deliver(data)
    assert "chloe.garcia@example.com" not in str(caught.value)


@pytest.mark.parametrize("kind, data, message", [
    ("refund.created", {"order_id": "A-1", "refund_id": "R-1", "amount": "-2"},
     "field 'data.amount' must be between 0 and"),
    ("refund.created", {"order_id": "A-1", "amount": "2"}, "field 'data.refund_id' is missing"),
    ("order.deleted", {}, "field 'data.order_id' is missing"),
    ("customer.seen", {"email": "not an email"}, "field 'email' or 'phone' is required"),
    ("customer.redacted", {"order_ids": []}, "field 'email', 'phone', 'customer_id' or 'order_ids' is required"),
    ("customer.redacted", {"order_ids": [True]}, r"field 'data.order_ids\[0\]' must be an id"),
])
def test_wrong_fields_of_other_types_are_named(kind, data, message):
    with pytest.raises(PayloadError, match=message):
        deliver({"type": kind, "data": data})
