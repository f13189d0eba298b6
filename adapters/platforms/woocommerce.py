"""WooCommerce webhooks -> `Inbound` (translation only: no storage, no HTTP framework).

Delivery (`WC_Webhook::deliver` in woocommerce/includes/class-wc-webhook.php; guide:
https://woocommerce.com/document/webhooks/): a JSON body, the REST API v3 resource
(https://woocommerce.github.io/woocommerce-rest-api-docs/#order-properties), signed in
`X-WC-Webhook-Signature` (base64 HMAC-SHA256 of the raw body with the webhook's secret), topic in
`X-WC-Webhook-Topic`, delivery id in `X-WC-Webhook-Delivery-ID`. A deleted resource is sent as
`{"id": N}` only.

De-duplication: the delivery id is NOT unique per event. `WC_Webhook::get_new_delivery_id` returns
`wp_hash( $this->get_id() . strtotime( 'now' ) )`: one value per webhook and second, so two orders
changed in the same second (bulk edits, the background delivery queue) share it. stagesync keys
WooCommerce deliveries on the digest of topic and raw body instead (`event_key`): a redelivery of
the same event (same body) is a duplicate, two different events never are (docs/architecture.md).

When a webhook is created, WooCommerce first POSTs an UNSIGNED, form-encoded `webhook_id=N`
(`WC_Webhook::deliver_ping`) and activates the hook only on a 200. `is_ping()` recognises exactly
that body, so the HTTP layer can answer it (ignored, nothing stored) without a signature; any
other body must pass `verify()`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Callable, Mapping

from connector.config import ShopSettings
from connector.errors import PayloadError, quoted
from connector.domain.inbound import DeleteOrder, Inbound, SeeCustomer, UpsertOrder
from connector.domain.orders import ZERO, Order, normalise_phone, plausible_rate

from adapters.platforms.signatures import Fields, header, read_json, require_shape, sign_body_hmac, verify_body_hmac

NAME = "woocommerce"
# Header names as set in WC_Webhook::deliver.
SIGNATURE_HEADER = "X-WC-Webhook-Signature"
TOPIC_HEADER = "X-WC-Webhook-Topic"
DELIVERY_HEADER = "X-WC-Webhook-Delivery-ID"
_PING = re.compile(rb"webhook_id=([0-9]{1,20})")

ORDER_TOPICS = ("order.created", "order.updated", "order.restored")
TOPICS = ORDER_TOPICS + ("order.deleted", "customer.created", "customer.updated")

# Order statuses (REST API v3 `status`, https://woocommerce.github.io/woocommerce-rest-api-docs/#order-properties;
# https://woocommerce.com/document/managing-orders/order-statuses/) -> canonical status.
# Not placed yet, stored but not counted (docs/rules.md, 'Valid orders'): `pending` ("order received,
# no payment initiated"), `failed` (payment failed or declined), and the Store API's checkout drafts
# (`checkout-draft`, plus WordPress's own `draft`/`auto-draft`). They count once a later event
# places them. A trashed order is deleted; custom statuses added by plugins count as placed.
STATUSES = {
    "on-hold": "placed", "processing": "placed", "completed": "placed",
    "pending": "pending", "failed": "pending", "checkout-draft": "pending", "draft": "pending",
    "auto-draft": "pending",
    "cancelled": "cancelled", "refunded": "refunded", "trash": "deleted",
}


def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """True only for WooCommerce's unsigned creation ping: a body of exactly `webhook_id=<digits>`."""
    return _PING.fullmatch(body) is not None


def verify(headers: Mapping[str, str], body: bytes, secret: str, now: datetime) -> None:
    """Raise SignatureError unless `X-WC-Webhook-Signature` signs the raw body (`now` is unused:
    WooCommerce signs no timestamp)."""
    verify_body_hmac(body, secret, header(headers, SIGNATURE_HEADER), where=NAME, header_name=SIGNATURE_HEADER)


def sign(body: bytes, secret: str, *, topic: str = "order.created", delivery_id: str | None = None,
         webhook_id: int = 1, source: str = "https://shop.example.com/") -> dict[str, str]:
    """The headers WooCommerce would send with `body` (delivery id derived from topic and body unless given)."""
    resource, _, event = topic.partition(".")
    return {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": source,
        TOPIC_HEADER: topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        SIGNATURE_HEADER: sign_body_hmac(body, secret),
        "X-WC-Webhook-ID": str(webhook_id),
        DELIVERY_HEADER: delivery_id or hashlib.sha256(topic.encode() + b"\n" + body).hexdigest()[:32],
    }


def event_key(topic: str, body: bytes) -> str:
    """The de-duplication key of one delivery: "wc-body:<sha256 of topic and raw body>", never the
    `X-WC-Webhook-Delivery-ID` header (one value per webhook and second, see the module's docstring)."""
    return "wc-body:" + hashlib.sha256(topic.encode("utf-8", "surrogatepass") + b"\n" + body).hexdigest()


def parse(headers: Mapping[str, str], body: bytes, shop: ShopSettings) -> Inbound:
    """Translate one delivery (verified, or the creation ping); PayloadError when it cannot be understood."""
    ping = _PING.fullmatch(body)
    if ping is not None:
        return Inbound(topic="ping", ignored_reason=f"WooCommerce webhook ping (webhook {ping.group(1).decode()})")
    topic = header(headers, TOPIC_HEADER)
    if topic is None:
        raise PayloadError(f"{NAME}: the {TOPIC_HEADER} header is missing")
    base = Inbound(topic=topic, delivery_id=event_key(topic, body))
    data = read_json(headers, body, f"{NAME} {quoted(topic)}")
    handler = _HANDLERS.get(topic)
    if handler is None:
        return replace(base, ignored_reason=f"topic {quoted(topic)} is not used by stagesync")
    return handler(base, data, shop)


def _order(base: Inbound, data: Fields, shop: ShopSettings) -> Inbound:
    order_id = data.ident("id")
    raw_status = data.text("status", required=True) or ""
    status = STATUSES.get(raw_status, "placed")
    total = data.amount("total") or ZERO
    # The order's `refunds` list each refund with a NEGATIVE `total` string ("-10.00").
    refunded = sum((abs(refund.amount("total") or ZERO) for refund in data.children("refunds")), ZERO)
    if status == "refunded":
        refunded = max(refunded, total)  # WooCommerce sets "refunded" once the whole order is refunded
    billing = data.child("billing")
    try:
        order = Order.build(
            shop_id=shop.id, order_id=order_id,
            placed_at=_placed_at(data),
            updated_at=data.moment("date_modified_gmt"),
            total=total, refunded=refunded, status=status,
            email=billing.text("email"), phone=billing.text("phone"),  # guests (customer_id 0) have only these
            customer_id=data.ident("customer_id", required=False),
            currency=data.text("currency") or shop.currency, default_region=shop.country,
        )
    except ValueError as exc:
        raise PayloadError(f"{data.where}: {exc}") from None
    rate = _base_currency_rate(data, total)
    return replace(base, actions=(UpsertOrder(replace(order, exchange_rate=rate) if rate else order),))


# Multi-currency plugins keep the shop's (base) currency figures in the order's `meta_data`.
# Aelia Currency Switcher: `_order_total_base_currency` (the order total in the base currency);
# https://aelia.co/shop/currency-switcher-woocommerce/ ("order totals in base currency").
BASE_TOTAL_META = ("_order_total_base_currency",)


def _base_currency_rate(data: Fields, total: Decimal) -> Decimal | None:
    """Shop-currency units per unit of the order's currency, from a multi-currency plugin's meta."""
    if total <= ZERO:
        return None
    for meta in data.children("meta_data"):
        if meta.text("key") in BASE_TOTAL_META:
            try:
                base = Decimal(str(meta.raw("value")))
                rate = base / total if base.is_finite() and base > ZERO else None
            except ArithmeticError:  # not a number, or a quotient past Decimal's exponent range
                return None
            return rate if plausible_rate(rate) else None
    return None


def _placed_at(data: Fields) -> datetime:
    """When the order was placed: `date_paid_gmt` (set by WooCommerce when the order reaches a paid
    status, `WC_Order::maybe_set_date_paid`), else `date_created_gmt`. An order created `pending`
    and paid days later counts from its payment (docs/rules.md, 'Valid orders'); one placed
    without payment (on-hold bank transfer, cash on delivery) counts from its creation until it is
    paid. Both dates are GMT written without an offset."""
    created = data.moment("date_created_gmt", required=True)
    paid = data.moment("date_paid_gmt")
    return paid if paid is not None and paid >= created else created


def _order_deleted(base: Inbound, data: Fields, shop: ShopSettings) -> Inbound:
    # `WC_Webhook::build_payload` sends a deleted resource as {"id": N} and nothing else; the topic
    # header is not signed, so a signed order body re-sent as order.deleted is refused (400).
    require_shape(data, "order.deleted", frozenset({"id"}), ("id",))
    return replace(base, actions=(DeleteOrder(order_id=data.ident("id")),))


def _customer_seen(base: Inbound, data: Fields, shop: ShopSettings) -> Inbound:
    billing = data.child("billing")
    email = data.email("email") or billing.email("email")
    phone = normalise_phone(billing.text("phone"), shop.country)
    if not (email or phone):
        return replace(base, ignored_reason="customer without an email or a phone number")
    return replace(base, actions=(SeeCustomer(email=email, phone=phone),))


_Handler = Callable[[Inbound, Fields, ShopSettings], Inbound]
_HANDLERS: dict[str, _Handler] = {
    **{topic: _order for topic in ORDER_TOPICS},
    "order.deleted": _order_deleted,
    "customer.created": _customer_seen,
    "customer.updated": _customer_seen,
}
