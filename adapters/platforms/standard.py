"""Standard Webhooks carrying stagesync's canonical JSON -> `Inbound` (platform `standard`).

For any system that is not Shopify or WooCommerce: send orders in this shape, signed as
https://www.standardwebhooks.com/ specifies (any of its libraries will do; `sign()` below is
the same scheme).

Headers
    webhook-id: msg_2KWPBgLlAfxdpx2AI54pPJ85f4W   unique per message, the same on every retry
                                                   (stagesync de-duplicates on it)
    webhook-timestamp: 1741948200                  unix seconds; refused when more than 5 minutes
                                                   away from stagesync's clock, either way
    webhook-signature: v1,<base64>                 HMAC-SHA256 over "{webhook-id}.{webhook-timestamp}.{body}",
                                                   keyed by the base64-decoded part of the shop's
                                                   `webhook_secret` after "whsec_"; several
                                                   space-separated signatures are allowed, one match is enough
    Content-Type: application/json

Body: `{"type": ..., "timestamp": ..., "data": {...}}` (`timestamp`, the event time, is optional
and informational). Amounts are decimal strings ("59.90") or JSON numbers, read exactly; times
are ISO 8601 ("2025-03-14T10:30:00Z"), UTC when written without an offset.

    type "order.upserted": an order, new or changed
        data.order_id      required  string or whole number
        data.placed_at     required  when the order was placed
        data.total         required  the original total, in the shop's currency
        data.refunded      optional  refunded so far (default 0): amount = total - refunded
        data.status        optional  placed | cancelled | voided | refunded | deleted | pending (default
                                     placed); "refunded" with no `refunded` amount means refunded in
                                     full; "pending": checkout not completed (unpaid), stored, not
                                     counted until a later version is placed
        data.test          optional  true: a test order, ignored (default false)
        data.updated_at    optional  version of the order: an older version never replaces a newer one
        data.email, data.phone, data.customer_id, data.currency   optional (currency: default the shop's)
        data.exchange_rate optional  shop-currency units per unit of data.currency, when that is another
                                     currency (else the shop's `rates`; else the order counts, its
                                     amount stays out of money figures)
    type "order.deleted":     data.order_id required, data.updated_at optional
    type "refund.created":    data.order_id, data.refund_id, data.amount required, data.created_at optional
                              (recorded once per refund_id)
    type "customer.seen":     data.email and/or data.phone: a customer without orders yet (a prospect)
    type "customer.redacted": data.email, data.phone, data.customer_id, data.order_ids (array): at least
                              one; forget the customer by every one given

Any other type is answered 200 "ignored", so senders can add types without breaking stagesync.

Example:
    {"type": "order.upserted", "timestamp": "2025-03-14T10:30:05Z",
     "data": {"order_id": "A-1001", "placed_at": "2025-03-14T10:30:00Z", "total": "59.90",
              "refunded": "0", "status": "placed", "email": "jane@example.com", "currency": "EUR"}}
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime, timezone
from typing import Callable, Mapping

from connector.config import ShopSettings
from connector.errors import PayloadError, quoted
from connector.domain.inbound import DeleteOrder, Inbound, RecordRefund, RedactCustomer, SeeCustomer, UpsertOrder
from connector.domain.orders import MAX_AMOUNT, MAX_RATE, MIN_RATE, ORDER_STATUSES, ZERO, Order, normalise_phone, plausible_rate

from adapters.platforms.signatures import (Fields, delivery_key, header, read_json, sign_standard, standard_secret_bytes,
                                          verify_standard)

NAME = "standard"
# https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md ("Webhook headers").
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
TOPICS = ("order.upserted", "order.deleted", "refund.created", "customer.seen", "customer.redacted")


def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """Standard Webhooks has no unsigned ping: every delivery is verified."""
    return False


def verify(headers: Mapping[str, str], body: bytes, secret: str, now: datetime) -> None:
    """Raise SignatureError unless a v1 signature matches and webhook-timestamp is within 5 minutes of `now`."""
    verify_standard(body, secret, header(headers, ID_HEADER), header(headers, TIMESTAMP_HEADER),
                    header(headers, SIGNATURE_HEADER), now, where=NAME)


def secret_problems(secret: str) -> list[str]:
    """Whether `secret` verifies deliveries, decided by the decoding `verify` uses, so that
    `stagesync check-config` and verification agree on which secrets work."""
    if standard_secret_bytes(secret) is None:
        return ["must be a Standard Webhooks secret: whsec_ followed by base64 (the = padding may be left off)"]
    return []


def sign(body: bytes, secret: str, *, msg_id: str | None = None,
         timestamp: datetime | int | None = None) -> dict[str, str]:
    """The headers a Standard Webhooks sender would send with `body`.

    `timestamp` defaults to the current time (a sender's clock; `verify` never reads one);
    `msg_id` defaults to one derived from the body.
    """
    if timestamp is None:
        timestamp = datetime.now(timezone.utc)
    seconds = int(timestamp.timestamp()) if isinstance(timestamp, datetime) else int(timestamp)
    msg_id = msg_id or "msg_" + hashlib.sha256(body).hexdigest()[:27]
    return {
        "Content-Type": "application/json",
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(seconds),
        SIGNATURE_HEADER: sign_standard(body, secret, msg_id, seconds),
    }


def parse(headers: Mapping[str, str], body: bytes, shop: ShopSettings) -> Inbound:
    """Translate one verified delivery; PayloadError when the body does not follow the shape above."""
    envelope = read_json(headers, body, NAME)
    kind = envelope.text("type", required=True) or ""
    envelope = envelope.renamed(f"{NAME} {quoted(kind)}")
    if not envelope.has("data"):
        raise envelope.error("data", "is missing")
    data = envelope.child("data")
    base = Inbound(topic=kind, delivery_id=delivery_key(header(headers, ID_HEADER)))
    handler = _HANDLERS.get(kind)
    if handler is None:
        return replace(base, ignored_reason=f"type {quoted(kind)} is not used by stagesync")
    return handler(base, data, shop)


def _order(base: Inbound, data: Fields, shop: ShopSettings) -> Inbound:
    order_id = data.ident("order_id")
    if data.flag("test"):
        return replace(base, ignored_reason="test order")
    status = data.text("status") or "placed"
    if status not in ORDER_STATUSES:
        raise data.error("status", f"must be one of {', '.join(ORDER_STATUSES)}")
    try:
        order = Order.build(
            shop_id=shop.id, order_id=order_id, placed_at=data.moment("placed_at", required=True),
            updated_at=data.moment("updated_at"), total=data.amount("total"),
            refunded=data.amount("refunded", required=False) or 0, status=status,
            email=data.text("email"), phone=data.text("phone"), customer_id=data.ident("customer_id", required=False),
            currency=data.text("currency") or shop.currency, default_region=shop.country,
        )
    except ValueError as exc:
        raise PayloadError(f"{data.where}: {exc}") from None
    rate = data.amount("exchange_rate", required=False)
    if rate is not None:
        if not plausible_rate(rate):
            raise data.error("exchange_rate", f"must be a positive number from {MIN_RATE} to {MAX_RATE:.0E}")
        order = replace(order, exchange_rate=rate)
    return replace(base, actions=(UpsertOrder(order),))


def _order_deleted(base: Inbound, data: Fields, shop: ShopSettings) -> Inbound:
    return replace(base, actions=(DeleteOrder(order_id=data.ident("order_id"),
                                              updated_at=data.moment("updated_at")),))


def _refund(base: Inbound, data: Fields, shop: ShopSettings) -> Inbound:
    order_id, refund_id = data.ident("order_id"), data.ident("refund_id")
    amount = data.amount("amount")
    if amount is None or not ZERO <= amount <= MAX_AMOUNT:
        raise data.error("amount", f"must be between 0 and {MAX_AMOUNT}")
    return replace(base, actions=(RecordRefund(order_id=order_id, refund_id=refund_id, amount=amount,
                                               created_at=data.moment("created_at")),))


def _identity(data: Fields, shop: ShopSettings) -> tuple[str | None, str | None]:
    email = data.email("email")
    phone = normalise_phone(data.text("phone"), shop.country)
    return email, phone


def _customer_seen(base: Inbound, data: Fields, shop: ShopSettings) -> Inbound:
    email, phone = _identity(data, shop)
    if not (email or phone):
        raise PayloadError(f"{data.where}: field 'email' or 'phone' is required")
    return replace(base, actions=(SeeCustomer(email=email, phone=phone),))


def _customer_redacted(base: Inbound, data: Fields, shop: ShopSettings) -> Inbound:
    email, phone = _identity(data, shop)
    order_ids = data.idents("order_ids")
    customer_id = data.ident("customer_id", required=False)
    if not (email or phone or order_ids or customer_id):
        raise PayloadError(f"{data.where}: field 'email', 'phone', 'customer_id' or 'order_ids' is required")
    return replace(base, actions=(RedactCustomer(email=email, phone=phone, order_ids=order_ids,
                                                 customer_id=customer_id),))


_Handler = Callable[[Inbound, Fields, ShopSettings], Inbound]
_HANDLERS: dict[str, _Handler] = {
    "order.upserted": _order,
    "order.deleted": _order_deleted,
    "refund.created": _refund,
    "customer.seen": _customer_seen,
    "customer.redacted": _customer_redacted,
}
