"""The shared wire helpers: header lookup, the body-HMAC scheme, strict JSON and typed fields."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from adapters.platforms.signatures import (
    Fields, delivery_key, header, read_json, sign_body_hmac, verify_body_hmac,
)
from connector.errors import PayloadError, SignatureError


def test_header_lookup_ignores_case_and_blanks():
    headers = {"x-shopify-topic": " orders/create ", "X-Empty": "  "}
    assert header(headers, "X-Shopify-Topic") == "orders/create"
    assert header(headers, "X-Empty") is None
    assert header(headers, "X-Missing") is None


def test_body_hmac_matches_a_published_hmac_sha256_vector():
    # RFC 2104 HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), base64-encoded.
    body = b"The quick brown fox jumps over the lazy dog"
    assert sign_body_hmac(body, "key") == "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="
    verify_body_hmac(body, "key", "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=", where="t", header_name="X-Sig")


def test_a_truncated_body_hmac_is_refused():
    body = b"The quick brown fox jumps over the lazy dog"
    with pytest.raises(SignatureError, match="does not match"):
        verify_body_hmac(body, "key", "97yD9DBThCSxMpjmqm+xQ+9NWaF=", where="t", header_name="X-Sig")


def test_fractions_are_read_as_exact_decimals():
    fields = read_json({}, b'{"a": 0.1, "b": 3}', "t")
    assert fields.raw("a") == Decimal("0.1") and fields.amount("a") == Decimal("0.1")
    assert fields.amount("b") == Decimal(3)


def test_a_byte_order_mark_is_tolerated():
    assert read_json({}, b'\xef\xbb\xbf{"a": 1}', "t").raw("a") == 1


def test_a_body_nested_too_deeply_is_a_payload_error():
    with pytest.raises(PayloadError, match="not valid JSON"):
        read_json({}, b"[" * 100_000 + b"]" * 100_000, "t")


def test_times_are_utc_whatever_their_offset():
    fields = Fields({"z": "2025-03-14T10:30:00Z", "plus": "2025-03-14T11:30:00+01:00",
                     "naive": "2025-03-14T10:30:00"}, "t")
    expected = datetime(2025, 3, 14, 10, 30, tzinfo=timezone.utc)
    assert fields.moment("z") == fields.moment("plus") == fields.moment("naive") == expected


def test_missing_and_null_are_the_same():
    fields = Fields({"a": None}, "where")
    assert fields.text("a") is None and fields.text("b") is None and not fields.has("a")
    with pytest.raises(PayloadError, match="where: field 'a' is missing"):
        fields.ident("a")


def test_nested_errors_name_the_path():
    fields = Fields({"refunds": [{"transactions": [{"amount": {}}]}]}, "shopify orders/updated")
    transaction = fields.children("refunds")[0].children("transactions")[0]
    with pytest.raises(PayloadError, match=r"shopify orders/updated: field 'refunds\[0\]\.transactions\[0\]\.amount' "
                                           r"must be a decimal amount \(got an object\)"):
        transaction.amount("amount")


def test_a_delivery_id_too_long_for_the_store_becomes_its_digest():
    assert delivery_key("msg_1") == "msg_1"
    long_id = "msg_" + "x" * 200
    key = delivery_key(long_id)
    assert key.startswith("sha256:") and len(key) <= 128 and key == delivery_key(long_id)


@pytest.mark.parametrize("raw", ["orders/create:a\x00b", "orders/create:\ud800"])
def test_a_delivery_id_no_text_column_can_hold_becomes_its_digest(raw):
    key = delivery_key(raw)  # found by fuzzing: a NUL in an id was a 500 on PostgreSQL
    assert key.startswith("sha256:") and key == delivery_key(raw) and key != delivery_key("orders/create:ab")


@pytest.mark.parametrize("raw, problem", [("a\x00b", "contains a NUL character"), ("\ud800", "is not valid Unicode text")])
def test_an_id_no_text_column_can_hold_is_a_payload_error(raw, problem):
    with pytest.raises(PayloadError, match=f"field 'id' {problem}"):
        Fields({"id": raw}, "t").ident("id")


def test_an_id_too_long_for_the_store_is_a_payload_error():
    with pytest.raises(PayloadError, match="field 'order_id' is longer than 128 characters"):
        Fields({"order_id": "A" * 129}, "t").ident("order_id")
