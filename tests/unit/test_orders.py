"""Customer identity and order validity (docs/rules.md, 'Customer identity', 'Valid orders'):
`connector.domain.orders`."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connector.domain.orders import Order, customer_key, normalise_email, normalise_phone

PLACED = datetime(2026, 5, 1, 10, tzinfo=timezone.utc)


def build(**overrides) -> Order:
    values = {"shop_id": "acme", "order_id": "1001", "placed_at": PLACED, "total": "50.00"}
    values.update(overrides)
    return Order.build(**values)


# --- identity -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        pytest.param("  Jane.Doe@Example.COM \n", "jane.doe@example.com", id="trimmed_and_lower_cased"),
        pytest.param("jane@example.com", "jane@example.com", id="already_normal_is_unchanged"),
        pytest.param("", None, id="empty_is_no_email"),
        pytest.param("   ", None, id="blank_is_no_email"),
        pytest.param(None, None, id="missing_is_no_email"),
        pytest.param("not-an-address", None, id="value_without_at_sign_is_no_email"),
    ],
)
def test_email_is_trimmed_and_lower_cased(raw, expected):
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    "raw, region, expected",
    [
        pytest.param("+33 6 12 34 56 78", None, "+33612345678", id="plus_prefix_needs_no_region"),
        pytest.param("0033 6 12 34 56 78", None, "+33612345678", id="double_zero_prefix_means_plus"),
        pytest.param("06.12.34.56.78", "FR", "+33612345678", id="national_number_uses_default_region"),
        pytest.param("(415) 555-2671", "US", "+14155552671", id="punctuation_is_ignored"),
        pytest.param("+1 415 555 2671", "FR", "+14155552671", id="plus_prefix_wins_over_default_region"),
        pytest.param("06 12 34 56 78", None, None, id="national_number_without_region_is_no_phone"),
        pytest.param("12", "FR", None, id="too_short_is_no_phone"),
        pytest.param("call me", "FR", None, id="words_are_no_phone"),
        pytest.param("  ", "FR", None, id="blank_is_no_phone"),
        pytest.param(None, "FR", None, id="missing_is_no_phone"),
    ],
)
def test_phone_is_normalised_to_e164(raw, region, expected):
    assert normalise_phone(raw, region) == expected


@pytest.mark.parametrize(
    "email, phone, expected",
    [
        pytest.param("jane@example.com", "+33612345678", "jane@example.com", id="email_wins_over_phone"),
        pytest.param(None, "+33612345678", "+33612345678", id="phone_when_no_email"),
        pytest.param(None, None, None, id="neither_is_no_customer"),
        pytest.param("", "", None, id="empty_values_are_no_customer"),
    ],
)
def test_customer_key_is_email_else_phone(email, phone, expected):
    assert customer_key(email, phone) == expected


def test_built_order_is_keyed_by_its_normalised_email():
    order = build(email="  Jane@Example.COM ", phone="+33 6 12 34 56 78")
    assert (order.email, order.phone, order.customer_key) == ("jane@example.com", "+33612345678", "jane@example.com")


def test_built_order_without_email_is_keyed_by_its_e164_phone():
    order = build(email=None, phone="06 12 34 56 78", default_region="FR")
    assert order.customer_key == "+33612345678"


def test_built_order_with_an_address_less_email_falls_back_to_the_phone():
    assert build(email="n/a", phone="0033612345678").customer_key == "+33612345678"


def test_built_order_without_identity_has_no_customer_key():
    order = build(email="   ", phone="not a number")
    assert (order.email, order.phone, order.customer_key) == (None, None, None)


# --- Order.build ----------------------------------------------------------------------------


def test_unknown_status_is_refused_with_the_valid_ones_listed():
    with pytest.raises(ValueError, match="unknown order status 'shipped'.*placed"):
        build(status="shipped")


@pytest.mark.parametrize(
    "amounts",
    [
        pytest.param({"total": "-0.01"}, id="negative_total"),
        pytest.param({"refunded": "-5"}, id="negative_refund"),
        pytest.param({"total": "NaN"}, id="nan_total"),
        pytest.param({"total": "Infinity"}, id="infinite_total"),
    ],
)
def test_amounts_that_are_not_finite_non_negative_decimals_are_refused(amounts):
    with pytest.raises(ValueError):
        build(**amounts)


def test_amounts_become_exact_decimals():
    order = build(total="19.99", refunded=5)
    assert (order.total, order.refunded) == (Decimal("19.99"), Decimal("5"))


def test_naive_placed_at_is_taken_as_utc():
    assert build(placed_at=datetime(2026, 5, 1, 10)).placed_at == PLACED


def test_placed_at_with_an_offset_is_converted_to_utc():
    paris = timezone(timedelta(hours=2))
    order = build(placed_at=datetime(2026, 5, 1, 12, tzinfo=paris))
    assert order.placed_at == PLACED and order.placed_at.utcoffset() == timedelta(0)


def test_order_id_and_customer_id_become_strings_and_currency_upper_case():
    order = build(order_id=1001, customer_id=42, currency="eur")
    assert (order.order_id, order.customer_id, order.currency) == ("1001", "42", "EUR")


# --- validity and amount --------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, valid, amount",
    [
        pytest.param({}, True, "50.00", id="placed_order_counts_in_full"),
        pytest.param({"status": "cancelled"}, False, "0", id="cancelled_order_is_excluded"),
        pytest.param({"status": "voided"}, False, "0", id="voided_order_is_excluded"),
        pytest.param({"status": "deleted"}, False, "0", id="deleted_order_is_excluded"),
        pytest.param({"test": True}, False, "0", id="test_order_is_excluded"),
        pytest.param({"refunded": "50.00"}, False, "0", id="refund_equal_to_total_is_full_refund"),
        pytest.param({"refunded": "60.00"}, False, "0", id="refund_above_total_is_full_refund"),
        pytest.param({"status": "refunded"}, False, "0", id="refunded_status_without_amount_is_full_refund"),
        pytest.param({"status": "refunded", "refunded": "50.00"}, False, "0", id="refunded_status_with_full_amount"),
        pytest.param({"refunded": "20.00"}, True, "30.00", id="partial_refund_lowers_the_amount"),
        pytest.param({"refunded": "49.99"}, True, "0.01", id="refund_one_cent_short_is_partial"),
        pytest.param({"status": "refunded", "refunded": "20.00"}, True, "30.00", id="refunded_status_with_partial_amount"),
        pytest.param({"total": "0"}, True, "0", id="zero_total_order_counts_with_amount_zero"),
        pytest.param({"total": "0", "refunded": "0"}, True, "0", id="zero_total_is_never_fully_refunded"),
        pytest.param({"total": "0", "status": "refunded"}, True, "0", id="zero_total_with_refunded_status_still_counts"),
        pytest.param({"total": "0", "refunded": "1.00"}, True, "0", id="refund_on_zero_total_keeps_amount_at_zero"),
        pytest.param({"status": "cancelled", "refunded": "10.00"}, False, "0", id="cancelled_with_partial_refund"),
        pytest.param({"test": True, "total": "0"}, False, "0", id="zero_total_test_order_is_excluded"),
    ],
)
def test_validity_and_amount(overrides, valid, amount):
    order = build(**overrides)
    assert order.is_valid is valid
    assert order.amount == Decimal(amount)


def test_an_amount_that_is_not_a_number_is_a_value_error():
    with pytest.raises(ValueError, match="decimal"):
        Order.build(shop_id="s", order_id="1", placed_at=datetime(2026, 1, 1, tzinfo=timezone.utc), total="abc")
