"""Shopify webhooks -> `Inbound` (translation only: no storage, no HTTP framework).

Delivery (https://shopify.dev/docs/apps/build/webhooks/verify-deliveries): a JSON body signed
with the app's client secret (`X-Shopify-Hmac-Sha256`, base64 HMAC-SHA256 of the raw body); the
topic in `X-Shopify-Topic`. De-duplication uses `X-Shopify-Event-Id` ("the same value across more
than one webhook indicates a duplicate", https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates),
else `X-Shopify-Webhook-Id`. The delivery id is "<topic>:<that id>": one merchant action can
trigger several topics (a cancellation and its refund) that must not de-duplicate each other.

Orders are mapped from the REST order payload (the webhook reference's orders/create sample;
https://shopify.dev/docs/api/admin-rest/latest/resources/order#resource-object). What the customer
finally pays is `current_total_price` ("the current total price of the order in the shop currency;
reflects order edits, returns, and refunds"), read from `current_total_price_set.shop_money` first.
`refunded` is the sum of the successful refund transactions (in the shop's currency, converted when
they were made in the customer's presentment currency) and `total` = current total + refunded, so
that amount = total - refunded = current total: refunds are never subtracted twice, and a refund
recorded by refunds/create before the order's update (the order store keeps the larger refunded
figure) brings the amount to the same value. Without `current_total_price` (older payloads, the
GraphQL backfill) `total` is `total_price` (docs/rules.md, 'Amounts and currencies').
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable, Mapping

from connector.config import ShopSettings
from connector.errors import PayloadError, quoted
from connector.domain.inbound import (
    DeleteOrder, Inbound, RecordDataRequest, RecordRefund, RedactCustomer, RedactShop, SeeCustomer, UpsertOrder,
)
from connector.domain.orders import MAX_AMOUNT, ZERO, Order, normalise_email, normalise_phone

from adapters.platforms.signatures import (Fields, delivery_key, header, read_json, require_shape, sign_body_hmac,
                                          verify_body_hmac)

NAME = "shopify"
# Webhook headers: https://shopify.dev/docs/apps/build/webhooks/delivery-structure#headers
TOPIC_HEADER = "X-Shopify-Topic"
SHOP_DOMAIN_HEADER = "X-Shopify-Shop-Domain"
HMAC_HEADER = "X-Shopify-Hmac-Sha256"
EVENT_ID_HEADER = "X-Shopify-Event-Id"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
API_VERSION = "2026-10"  # what `sign()` announces; the payload fields read here are stable across versions

ORDER_TOPICS = ("orders/create", "orders/updated", "orders/paid", "orders/cancelled")
# The three mandatory privacy topics: https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance
PRIVACY_TOPICS = ("customers/redact", "shop/redact", "customers/data_request")
# The destructive topics' bodies, whole (Shopify signs the body, not the X-Shopify-Topic header, so
# a body is acted on only when it has its topic's shape; docs/http.md, 'Destructive topics'):
# shop/redact {"shop_id", "shop_domain"} and customers/redact {"shop_id", "shop_domain", "customer":
# {"id", "email", "phone"}, "orders_to_redact"} (https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance);
# orders/delete {"id"} (the orders/delete example of https://shopify.dev/docs/api/webhooks?reference=toml).
SHOP_REDACT_FIELDS = frozenset({"shop_id", "shop_domain"})
CUSTOMERS_REDACT_FIELDS = frozenset({"shop_id", "shop_domain", "customer", "orders_to_redact"})
ORDER_DELETE_FIELDS = frozenset({"id"})
TOPICS = ORDER_TOPICS + ("orders/edited", "orders/delete", "refunds/create", "customers/create",
                         "customers/update", "app/uninstalled") + PRIVACY_TOPICS


def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """Shopify sends no unsigned ping: every delivery is verified."""
    return False


def verify(headers: Mapping[str, str], body: bytes, secret: str, now: datetime) -> None:
    """Raise SignatureError unless `X-Shopify-Hmac-Sha256` signs the raw body (`now` is unused:
    Shopify signs no timestamp)."""
    verify_body_hmac(body, secret, header(headers, HMAC_HEADER), where=NAME, header_name=HMAC_HEADER)


def sign(body: bytes, secret: str, *, topic: str = "orders/create", event_id: str | None = None,
         webhook_id: str | None = None, shop_domain: str = "acme.myshopify.com",
         api_version: str = API_VERSION, triggered_at: str | None = None) -> dict[str, str]:
    """The headers Shopify would send with `body` (ids derived from topic and body unless given)."""
    event_id = event_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{topic}/{hashlib.sha256(body).hexdigest()}"))
    headers = {
        "Content-Type": "application/json",
        TOPIC_HEADER: topic,
        HMAC_HEADER: sign_body_hmac(body, secret),
        "X-Shopify-Shop-Domain": shop_domain,
        "X-Shopify-API-Version": api_version,
        WEBHOOK_ID_HEADER: webhook_id or event_id,
        EVENT_ID_HEADER: event_id,
    }
    if triggered_at:
        headers["X-Shopify-Triggered-At"] = triggered_at
    return headers


def parse(headers: Mapping[str, str], body: bytes, shop: ShopSettings) -> Inbound:
    """Translate one verified delivery; PayloadError when the body cannot be understood."""
    topic = header(headers, TOPIC_HEADER)
    if topic is None:
        raise PayloadError(f"{NAME}: the {TOPIC_HEADER} header is missing")
    delivery = header(headers, EVENT_ID_HEADER) or header(headers, WEBHOOK_ID_HEADER)
    base = Inbound(topic=topic, delivery_id=delivery_key(f"{topic}:{delivery}") if delivery else None)
    data = read_json(headers, body, f"{NAME} {quoted(topic)}")
    handler = _HANDLERS.get(topic)
    if handler is None:
        return replace(base, ignored_reason=f"topic {quoted(topic)} is not used by stagesync")
    if handler in (_order_deleted, _customer_redact, _shop_redact):
        _require_this_shop(headers, data, shop, in_body=handler is not _order_deleted)
    return handler(base, data, shop)


def _require_this_shop(headers: Mapping[str, str], data: Fields, shop: ShopSettings, *, in_body: bool) -> None:
    """A destructive delivery must name this shop: the body's `shop_domain` (privacy topics) and the
    X-Shopify-Shop-Domain header each equal the shop's `api.shop_domain` when it is configured, and
    each other."""
    configured = str(shop.api.get("shop_domain") or "").strip().lower() or None
    named = {"api.shop_domain": configured, SHOP_DOMAIN_HEADER: (header(headers, SHOP_DOMAIN_HEADER) or "").lower() or None}
    if in_body:
        named["shop_domain"] = (data.text("shop_domain") or "").strip().lower() or None
    given = {where: domain for where, domain in named.items() if domain}
    if len(set(given.values())) > 1:
        raise PayloadError(f"{data.where}: names another shop ({', '.join(sorted(given))} differ); nothing deleted")


# --- orders ---------------------------------------------------------------------------------------

def _order(base: Inbound, data: Fields, shop: ShopSettings) -> Inbound:
    order_id = data.ident("id")
    if data.flag("test"):
        return replace(base, ignored_reason="test order")
    placed_at = data.moment("processed_at") or data.moment("created_at", required=True)
    customer, billing = data.child("customer"), data.child("billing_address")
    shop_total = _money(data.child("total_price_set"))
    total = shop_total.amount if shop_total else data.amount("total_price")
    currency = data.text("currency") or (shop_total.currency if shop_total else None) or shop.currency
    money = _ShopMoney.from_sets([data.child("total_price_set"), data.child("current_total_price_set")], currency)
    refunded, exact = ZERO, True
    for refund in data.children("refunds"):
        amount, converted = _refund_amount(refund, money)
        refunded, exact = refunded + amount, exact and converted
    current = _current_total(data)
    if current is not None:  # after edits and refunds: refunds already taken off (module docstring)
        total = current + refunded
    status = _status(data)
    if status == "refunded":  # Shopify's word for fully refunded
        if not refunded:  # no refund transaction in the payload: the original total went back
            total = max(total or ZERO, data.amount("total_price", required=False) or ZERO)
        refunded = max(refunded, total or ZERO)
    order = _build(
        data.where, shop_id=shop.id, order_id=order_id, placed_at=placed_at, updated_at=data.moment("updated_at"),
        total=total, refunded=refunded, status=status, test=False,
        email=_as_written(normalise_email, data.text("email"), data.text("contact_email"), customer.text("email")),
        phone=_first(lambda raw: normalise_phone(raw, shop.country),
                     data.text("phone"), customer.text("phone"), billing.text("phone")),
        customer_id=customer.ident("id", required=False), currency=currency, default_region=shop.country,
    )
    return replace(base, actions=(UpsertOrder(order),), extra=_warnings(exact))


def _current_total(data: Fields) -> Decimal | None:
    """`current_total_price` in the shop's money (`current_total_price_set.shop_money` first), or None."""
    shop_money = _money(data.child("current_total_price_set"))
    if shop_money is not None:
        return shop_money.amount
    return data.amount("current_total_price", required=False)


def _status(data: Fields) -> str:
    if data.moment("cancelled_at") is not None:
        return "cancelled"
    financial = data.text("financial_status")
    if financial == "voided":
        return "voided"
    if financial == "refunded":
        return "refunded"
    return "placed"


def _order_edited(base: Inbound, data: Fields, shop: ShopSettings) -> Inbound:
    # The orders/edited body is {"order_edit": {"order_id", "line_items": {"additions", "removals"}, ...}}:
    # no totals. Shopify follows every committed edit with orders/updated, which carries them. (Not
    # `fetch_order_id`: that asks the platform module to fetch the order, and this one has no API client.)
    order_id = data.child("order_edit").ident("order_id")
    return replace(base, extra={"order_id": order_id},
                   ignored_reason="order edit without totals: the orders/updated that follows carries them")


def _order_deleted(base: Inbound, data: Fields, shop: ShopSettings) -> Inbound:
    require_shape(data, "orders/delete", ORDER_DELETE_FIELDS, ("id",))
    return replace(base, actions=(DeleteOrder(order_id=data.ident("id")),))


def _refund_created(base: Inbound, data: Fields, shop: ShopSettings) -> Inbound:
    order_id, refund_id = data.ident("order_id"), data.ident("id")
    # Lines and shipping carry both currencies: they give the rate for transactions in the customer's one.
    sets = [line.child(key) for line in data.children("refund_line_items") for key in ("subtotal_set", "total_tax_set")]
    sets += [line.child("subtotal_amount_set") for line in data.children("refund_shipping_lines")]
    amount, exact = _refund_amount(data, _ShopMoney.from_sets(sets, shop.currency))
    if amount == ZERO:
        return replace(base, ignored_reason="refund without a successful refund transaction (restock only, or pending)")
    if amount < ZERO or amount > MAX_AMOUNT:
        raise data.error("transactions", f"refund amounts must add up to between 0 and {MAX_AMOUNT}")
    created_at = data.moment("created_at") or data.moment("processed_at")
    return replace(base, actions=(RecordRefund(order_id=order_id, refund_id=refund_id, amount=amount,
                                               created_at=created_at),), extra=_warnings(exact))


# --- money ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Money:
    amount: Decimal
    currency: str | None


def _money(money_set: Fields, side: str = "shop_money") -> _Money | None:
    """One side of a Shopify `*_set` ({"shop_money": {...}, "presentment_money": {...}})."""
    money = money_set.child(side)
    if not money.has("amount"):
        return None
    return _Money(money.amount("amount") or ZERO, money.text("currency_code"))


@dataclass(frozen=True)
class _ShopMoney:
    """Brings a transaction's amount into the shop's currency.

    REST transactions carry `amount` in the transaction's `currency`, which is the customer's
    (presentment) currency on multi-currency orders (see the REST Refund resource example: a CAD
    shop, a USD transaction). The rate comes from amounts the same payload gives in both currencies.
    """

    currency: str | None
    rate: Decimal | None = None
    quantum: Decimal = Decimal("0.01")

    @classmethod
    def from_sets(cls, sets: list[Fields], currency: str | None) -> "_ShopMoney":
        shop_sum = presentment_sum = ZERO
        places: list[int] = []  # decimal places the shop's amounts are written with ("12.50": -2)
        for money_set in sets:
            shop, presentment = _money(money_set), _money(money_set, "presentment_money")
            if shop is None:
                continue
            currency = currency or shop.currency
            places.append(int(shop.amount.as_tuple().exponent))
            if presentment is not None:
                shop_sum, presentment_sum = shop_sum + shop.amount, presentment_sum + presentment.amount
        rate = shop_sum / presentment_sum if presentment_sum else None
        return cls(currency, rate, Decimal(1).scaleb(min(min(places, default=-2), 0)))

    def of(self, transaction: Fields) -> tuple[Decimal, bool]:
        """(amount in the shop's currency, False when it had to be taken as sent)."""
        given = _money(transaction.child("amount_set"))
        if given is not None:
            return given.amount, True
        amount = transaction.amount("amount") or ZERO
        currency = transaction.text("currency")
        if currency is None or self.currency is None or currency.upper() == self.currency.upper():
            return amount, True
        if self.rate is None:
            return amount, False
        return (amount * self.rate).quantize(self.quantum, rounding=ROUND_HALF_UP), True


def _refund_amount(refund: Fields, money: _ShopMoney) -> tuple[Decimal, bool]:
    """The money a refund returned: its successful `refund` transactions, in the shop's currency."""
    total, exact = ZERO, True
    for transaction in refund.children("transactions"):
        if transaction.text("kind") == "refund" and transaction.text("status") == "success":
            amount, converted = money.of(transaction)
            total, exact = total + amount, exact and converted
    return total, exact


def _warnings(exact: bool) -> dict:
    if exact:
        return {}
    return {"warnings": ["a refund transaction in another currency could not be converted to the shop's "
                         "currency (no rate in the payload); its amount was taken as sent"]}


def _build(where: str, **values) -> Order:
    try:
        return Order.build(**values)
    except ValueError as exc:
        raise PayloadError(f"{where}: {exc}") from None


# --- customers and privacy ------------------------------------------------------------------------

def _first(normalise: Callable[[str | None], str | None], *candidates: str | None) -> str | None:
    """The first candidate that normalises to a usable email or phone (a typo does not hide the next one)."""
    return next((value for value in map(normalise, candidates) if value), None)


def _as_written(normalise: Callable[[str | None], str | None], *candidates: str | None) -> str | None:
    """Like `_first`, but the candidate as the shop spelled it: Order.build normalises it and keeps the
    spelling for the destinations (connector/storage/spellings.py)."""
    return next((value for value in candidates if normalise(value)), None)


def _identity(fields: Fields, shop: ShopSettings, *phone_sources: Fields) -> tuple[str | None, str | None]:
    phones = [fields.text("phone"), *(source.text("phone") for source in phone_sources)]
    return fields.email("email"), _first(lambda raw: normalise_phone(raw, shop.country), *phones)


def _customer_seen(base: Inbound, data: Fields, shop: ShopSettings) -> Inbound:
    email, phone = _identity(data, shop, data.child("default_address"))
    if not (email or phone):
        return replace(base, ignored_reason="customer without an email or a phone number")
    return replace(base, actions=(SeeCustomer(email=email, phone=phone),))


def _customer_redact(base: Inbound, data: Fields, shop: ShopSettings) -> Inbound:
    require_shape(data, "customers/redact", CUSTOMERS_REDACT_FIELDS, ("shop_domain", "customer"))
    customer = data.child("customer")
    email, phone = _identity(customer, shop)
    order_ids = data.idents("orders_to_redact")
    customer_id = customer.ident("id", required=False)
    extra = {"customer_id": customer_id}
    if not (email or phone or order_ids or customer_id):
        return replace(base, extra=extra, ignored_reason="redaction names no email, phone, customer or order")
    return replace(base, actions=(RedactCustomer(email=email, phone=phone, order_ids=order_ids,
                                                 customer_id=customer_id),), extra=extra)


def _data_request(base: Inbound, data: Fields, shop: ShopSettings) -> Inbound:
    customer = data.child("customer")
    email, phone = _identity(customer, shop)
    customer_id, orders_requested = customer.ident("id", required=False), data.idents("orders_requested")
    request = RecordDataRequest(email=email, phone=phone,
                                request_id=data.child("data_request").ident("id", required=False),
                                customer_id=customer_id, orders_requested=orders_requested)
    return replace(base, actions=(request,), extra={"customer_id": customer_id, "orders_requested": orders_requested})


def _shop_redact(base: Inbound, data: Fields, shop: ShopSettings) -> Inbound:
    require_shape(data, "shop/redact", SHOP_REDACT_FIELDS, ("shop_domain",))
    return replace(base, actions=(RedactShop(),))


def _app_uninstalled(base: Inbound, data: Fields, shop: ShopSettings) -> Inbound:
    return replace(base, ignored_reason="app uninstalled: nothing to store (shop/redact follows 48 hours later)")


_Handler = Callable[[Inbound, Fields, ShopSettings], Inbound]
_HANDLERS: dict[str, _Handler] = {
    **{topic: _order for topic in ORDER_TOPICS},
    "orders/edited": _order_edited,
    "orders/delete": _order_deleted,
    "refunds/create": _refund_created,
    "customers/create": _customer_seen,
    "customers/update": _customer_seen,
    "customers/redact": _customer_redact,
    "shop/redact": _shop_redact,
    "customers/data_request": _data_request,
    "app/uninstalled": _app_uninstalled,
}
