"""BigCommerce: webhooks that carry only an order id, and the V2 Orders API that completes them.

Webhooks (https://developer.bigcommerce.com/docs/integrations/webhooks): a light JSON callback
`{"scope", "store_id", "producer", "data": {"type": "order", "id"}, "hash", "created_at"}`. The
`hash` is not unique per event: BigCommerce's own samples (bigcommerce/api-specs, the webhook
callback examples) share one hash between callbacks of one order, so a later `store/order/updated`
(a cancellation) may repeat an earlier hash. Handling a callback twice changes nothing (the order
is re-read from the API and the newest version is kept; an archive deletes once), so BigCommerce
callbacks have no de-duplication key (docs/architecture.md): every callback re-reads the order. BigCommerce
signs nothing with a shared secret, but a hook created with `headers` sends them back on every
callback: stagesync is given the shop's `webhook_secret` in a `X-Stagesync-Webhook-Secret` header
(`"headers": {"X-Stagesync-Webhook-Secret": "<webhook_secret>"}` in `POST /v3/hooks`) and compares
it in constant time before reading the body.
  - store/order/created, /updated, /statusUpdated, /refund/created -> `fetch_order_id`: the
    receiver calls `fetch()`, which reads the order and returns an Inbound that upserts it;
  - store/order/archived -> the order is deleted (stops counting).

Orders API V2 (`reference/orders.v2.oas2.yml` in bigcommerce/api-specs):
`GET {base_url}/stores/{store_hash}/v2/orders/{id}` and `GET .../v2/orders?page=&limit=&sort=
&min_id=&min_date_created=&min_date_modified=`, authenticated with `X-Auth-Token`. A page with no
order is answered 204 with no body. Rate limiting answers 429 with `X-Rate-Limit-Time-Reset-Ms`
(https://developer.bigcommerce.com/docs/start/best-practices/api-rate-limits). Amounts are in
the order's transactional currency (`default_currency_code`); dates are RFC 2822.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Iterator, Mapping

import requests

from adapters.platforms.api import ApiClient, Page, iso_z, json_body, map_records, path_handle, path_id
from adapters.platforms.signatures import Fields, header, read_json
from connector.config import ShopSettings
from connector.errors import PayloadError, PlatformApiError, SignatureError, quoted
from connector.domain.inbound import DeleteOrder, Inbound, UpsertOrder
from connector.domain.orders import MAX_AMOUNT, ZERO, Order, plausible_rate, to_utc

NAME = "bigcommerce"
SECRET_HEADER = "X-Stagesync-Webhook-Secret"  # set in the hook's `headers` when it is created
ORDER_SCOPES = ("store/order/created", "store/order/updated", "store/order/statusUpdated",
                "store/order/refund/created")
ARCHIVED_SCOPE = "store/order/archived"
TOPICS = ORDER_SCOPES + (ARCHIVED_SCOPE,)

BASE_URL = "https://api.bigcommerce.com"
ORDERS_PATH = "/stores/{store_hash}/v2/orders"
PAGE_LIMIT = 250  # the V2 orders `limit` maximum
WEBHOOK_TIMEOUT = (3, 10)  # seconds: a webhook's own fetch, while BigCommerce waits for our answer

# `status_id` (GET /v2/order_statuses; https://developer.bigcommerce.com/docs/store-operations/orders#order-statuses):
# 0 Incomplete ("shopper began checkout but did not complete it") and 1 Pending ("customer started
# the checkout process but did not complete it") are not placed yet: stored, not counted, until a
# later callback places them (docs/rules.md, 'Valid orders'). 4 Refunded, 5 Cancelled, 6 Declined;
# every other status is a placed order (2 Shipped, 3 Partially Shipped, 7 Awaiting Payment,
# 8 Awaiting Pickup, 9 Awaiting Shipment, 10 Completed, 11 Awaiting Fulfillment, 12 Manual
# Verification Required, 13 Disputed, 14 Partially Refunded). The V2 order has no payment date:
# placed_at is `date_created`.
INCOMPLETE, PENDING = 0, 1
STATUSES = {INCOMPLETE: "pending", PENDING: "pending", 4: "refunded", 5: "cancelled", 6: "cancelled"}


# --- webhooks -----------------------------------------------------------------------------------

def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """BigCommerce sends no unsigned ping: every callback is verified."""
    return False


def verify(headers: Mapping[str, str], body: bytes, secret: str, now: datetime) -> None:
    """Raise SignatureError unless the callback carries the shop's secret in `X-Stagesync-Webhook-Secret`."""
    if not secret:
        raise SignatureError(f"{NAME}: no webhook secret is configured for this shop")
    received = header(headers, SECRET_HEADER)
    if received is None:
        raise SignatureError(f"{NAME}: the {SECRET_HEADER} header is missing (set it in the hook's `headers`)")
    if not hmac.compare_digest(received.encode("utf-8"), secret.encode("utf-8")):
        raise SignatureError(f"{NAME}: the {SECRET_HEADER} header does not match the shop's webhook secret")


def sign(body: bytes, secret: str, **kw) -> dict[str, str]:
    """The headers BigCommerce sends with a callback of a hook created with our secret header."""
    return {"Content-Type": "application/json", SECRET_HEADER: secret}


def parse(headers: Mapping[str, str], body: bytes, shop: ShopSettings) -> Inbound:
    """Translate one verified callback; order callbacks ask for the order to be fetched."""
    data = read_json(headers, body, NAME)
    scope = data.text("scope", required=True) or ""
    data = data.renamed(f"{NAME} {quoted(scope)}")
    data.text("hash")  # a string when present; not a de-duplication key (see the module's docstring)
    base = Inbound(topic=scope)
    resource = data.child("data")
    if scope == ARCHIVED_SCOPE:
        _require_this_store(data, resource, shop)
        return replace(base, actions=(DeleteOrder(order_id=str(resource.ident("id"))),))
    if scope in ORDER_SCOPES:
        order_id = resource.ident("id")
        if not str(order_id).isascii() or not str(order_id).isdigit():  # it goes into the API path
            raise resource.error("id", "must be a whole number (BigCommerce order ids are integers)")
        return replace(base, fetch_order_id=order_id)
    return replace(base, ignored_reason=f"scope {quoted(scope)} is not used by stagesync")


def _require_this_store(data: Fields, resource: Fields, shop: ShopSettings) -> None:
    """An archive deletes only an order of this store: `data.type` is "order" and, when the shop's
    `api.store_hash` is configured, `producer` is "stores/<store_hash>" (the callback's fields:
    https://developer.bigcommerce.com/docs/integrations/webhooks#callback-payload)."""
    if resource.text("type") != "order":
        raise resource.error("type", "must be \"order\" for store/order/archived; nothing deleted")
    store_hash = str(shop.api.get("store_hash") or "").strip()
    if store_hash and data.text("producer") != f"stores/{store_hash}":
        raise data.error("producer", "names another store; nothing deleted")


def fetch(shop: ShopSettings, inbound: Inbound, *, session: requests.Session | None = None) -> Inbound:
    """The callback's order, read from the API once (the webhook is answered while BigCommerce
    waits: no retry here; an API failure raises PlatformApiError and the hook is retried later)."""
    client = BigCommerceOrders(shop, session=session, attempts=1, timeout=WEBHOOK_TIMEOUT)
    order = client.order(str(inbound.fetch_order_id))
    if order is None:
        return replace(inbound, fetch_order_id=None,
                       ignored_reason="order not found")
    return replace(inbound, fetch_order_id=None, actions=(UpsertOrder(order),))


# --- API client ---------------------------------------------------------------------------------

class BigCommerceOrders(ApiClient):
    platform = "bigcommerce"
    base_url_default = BASE_URL
    required = ("store_hash", "access_token")
    optional = ("base_url",)
    secret_keys = ("access_token",)
    auth_hint = "check api.store_hash and api.access_token: an API account with the Orders read-only scope"

    @classmethod
    def problems(cls, api: Mapping[str, Any]) -> list[str]:
        found = super().problems(api)
        store_hash = api.get("store_hash")
        if isinstance(store_hash, (str, int)) and str(store_hash).strip():
            try:
                path_handle(store_hash, "store_hash")
            except PlatformApiError:
                found.append("store_hash: must be letters and digits only (the hash in the API path, "
                             "https://api.bigcommerce.com/stores/{store_hash}/)")
        return found

    def __init__(self, shop, *, timeout=None, **kw):
        super().__init__(shop, **kw)
        if timeout is not None:
            self.http.timeout = timeout
        self.url = self.base_url + ORDERS_PATH.format(store_hash=path_handle(self.api["store_hash"], "api.store_hash"))

    def vendor_retry_after(self, response: requests.Response) -> float | None:
        try:
            return max(0.0, int(response.headers["X-Rate-Limit-Time-Reset-Ms"]) / 1000)
        except (KeyError, ValueError):
            return None

    def call(self, method: str, url: str, **kw) -> requests.Response:
        """One request with the store API account's token (`X-Auth-Token`)."""
        return self.http.request(method, url, headers={"X-Auth-Token": str(self.api["access_token"]),
                                                       "Accept": "application/json"}, **kw)

    def _get(self, url: str, params: Mapping[str, Any] | None = None, ok=(200, 204)) -> requests.Response:
        return self.call("GET", url, params=dict(params or {}), ok=ok)

    def order(self, order_id: str) -> Order | None:
        """One order; None when BigCommerce does not know it."""
        # An order's id is an integer (https://developer.bigcommerce.com/docs/rest-management/orders#get-an-order)
        response = self._get(f"{self.url}/{path_id(order_id, 'order id')}", ok=(200, 404))
        if response.status_code == 404:
            return None
        return self.map(json_body(response, self.where))

    def backfill(self, since: datetime | None, resume: str | None) -> Iterator[Page]:
        min_id = json.loads(resume).get("min_id") if resume else None
        params: dict[str, Any] = {"limit": PAGE_LIMIT, "sort": "id:asc"}
        if since:
            params["min_date_created"] = iso_z(since)
        yield from self._pages(params, min_id)

    def changed(self, since: datetime) -> Iterator[Page]:
        params = {"limit": PAGE_LIMIT, "sort": "date_modified:asc", "min_date_modified": iso_z(since)}
        yield from self._pages(params, None)

    def _pages(self, params: dict[str, Any], min_id: int | None) -> Iterator[Page]:
        page = 1
        if min_id is not None:
            params = {**params, "min_id": min_id}
        while True:
            response = self._get(self.url, {**params, "page": page})
            items = json_body(response, self.where) if response.status_code == 200 and response.content.strip() else []
            if not isinstance(items, list):
                raise PlatformApiError(f"{self.where}: the orders answer is not a list")
            ids = [i["id"] for i in items if isinstance(i, dict) and isinstance(i.get("id"), int)]
            if ids:
                min_id = max(ids) + 1
            orders, skipped = map_records(self, items, self.map)
            yield Page(orders, json.dumps({"min_id": min_id}), len(items), skipped, None)
            if len(items) < params["limit"]:
                return
            page += 1

    def map(self, data: Any) -> Order | None:
        if not isinstance(data, dict):
            raise PayloadError(f"{NAME} order: not an object")
        return order_from_api(data, self.shop)


def order_from_api(data: Mapping[str, Any], shop: ShopSettings) -> Order | None:
    """A V2 order as a canonical order (an incomplete checkout is a `pending` one)."""
    fields = Fields(data, f"{NAME} order")
    status_id = data.get("status_id")
    if isinstance(status_id, bool) or not isinstance(status_id, int):
        raise fields.error("status_id", "must be a whole number")
    status = "deleted" if data.get("is_deleted") is True else STATUSES.get(status_id, "placed")
    currency = fields.text("default_currency_code") or fields.text("currency_code")
    total = fields.amount("total_inc_tax") or ZERO
    refunded = fields.amount("refunded_amount", required=False) or ZERO
    total, refunded, currency = _in_store_currency(fields, total, refunded, currency, shop)
    if status == "refunded":
        refunded = max(refunded, total)  # "Refunded" is the whole order
    billing = fields.child("billing_address")
    try:
        return Order.build(
            shop_id=shop.id, order_id=fields.ident("id"), placed_at=_rfc2822(fields, "date_created", required=True),
            updated_at=_rfc2822(fields, "date_modified"), total=total, refunded=refunded, status=status,
            email=billing.text("email"), phone=billing.text("phone"),
            customer_id=fields.ident("customer_id", required=False),
            currency=currency or shop.currency, default_region=shop.country,
        )
    except ValueError as exc:
        raise PayloadError(f"{NAME} order: {exc}") from None


def _in_store_currency(fields: Fields, total: Decimal, refunded: Decimal, currency: str | None,
                       shop: ShopSettings) -> tuple[Decimal, Decimal, str | None]:
    """Amounts in the shop's currency: an order paid in another (transactional) currency is
    converted with `store_default_to_transactional_exchange_rate`."""
    store_currency = fields.text("store_default_currency_code")
    if not store_currency or not currency or store_currency.upper() == currency.upper():
        return total, refunded, currency
    if shop.currency and store_currency.upper() != shop.currency.upper():
        return total, refunded, currency
    try:
        rate = Decimal(str(fields.raw("store_default_to_transactional_exchange_rate")))
    except ArithmeticError:
        return total, refunded, currency
    if not plausible_rate(rate) or total / rate > MAX_AMOUNT or refunded / rate > MAX_AMOUNT:
        return total, refunded, currency  # left foreign: an order whose amount is not known
    cent = Decimal("0.01")
    return ((total / rate).quantize(cent, ROUND_HALF_UP), (refunded / rate).quantize(cent, ROUND_HALF_UP),
            store_currency)


def _rfc2822(fields: Fields, key: str, *, required: bool = False) -> datetime | None:
    value = fields.text(key, required=required)
    if value is None:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise fields.error(key, "must be an RFC 2822 date such as 'Wed, 10 Jan 2018 21:05:30 +0000'") from None
    return to_utc(moment)
