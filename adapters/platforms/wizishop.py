"""WiziShop: orders through its API v3 only (`stagesync poll` is how a WiziShop shop's orders arrive).

WiziShop documents no webhook signature: a delivery cannot be told from a forgery, so the webhook
functions here refuse every delivery (`verify` raises SignatureError, answered 401) and the shop
is read by polling instead.

API v3 (https://api-doc.wizishop.com/documentation/3/home, and WiziShop's own SDKs
`WiziShop/wizishop-php-sdk` and `WiziShop/api-v3-js-sdk`):
- `POST /v3/auth/login` `{"username", "password"}` -> `{"token", "user_id", "account_id",
  "default_shop_id", "role"}`: a JWT sent as `Authorization: Bearer <token>`;
  `GET /v3/auth/refresh_token` (with the current token) -> `{"token"}` renews it before it expires.
- `GET /v3/shops/{shop_id}/orders?page=&limit=&sort=id&start_date=&id_greater_than=` ->
  `{"page", "limit", "pages", "total", "results": [...]}`; a page with no result is answered 404.
  `start_date` filters on the order's date ("Y-m-d H:i:s", the shop's local time, as the SDKs send it).
- `status_code`: 0 abandoned (a cart, not an order), 5 pending payment, 10 payment awaiting
  verification, 11 awaiting replenishment, 20 awaiting preparation, 25 preparing, 29 partially
  sent, 30 sent, 35 delivered, 40 being returned, 45 returned, 46 refunded, 50 cancelled
  (WiziShop/wizishop-php-sdk `getOrders`). Custom states count as valid orders.

Orders carry no modification time: `versioned = False` tells the pipeline to compare each order
with the stored one. Polling therefore re-reads the orders placed in the last
`poll_lookback_days` (30 by default), which is how a later cancellation or refund is seen.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.platforms.api import ApiClient, Page, json_body, map_records, path_id
from adapters.platforms.signatures import Fields
from connector.config import ShopSettings
from connector.errors import PayloadError, PlatformApiError, PlatformAuthError, SignatureError
from connector.domain.inbound import Inbound
from connector.domain.orders import Order, to_utc

NAME = "wizishop"
TOPICS: tuple[str, ...] = ()
BASE_URL = "https://api.wizishop.com"
LOGIN_PATH = "/v3/auth/login"
REFRESH_PATH = "/v3/auth/refresh_token"
ORDERS_PATH = "/v3/shops/{shop_id}/orders"
PAGE_LIMIT = 100  # the page size WiziShop's own SDKs use
DEFAULT_TIMEZONE = "Europe/Paris"  # WiziShop's dates without an offset are the shop's local time
POLL_LOOKBACK_DAYS = 30
REFRESH_MARGIN = timedelta(minutes=5)  # renew a token this long before it expires

ABANDONED = 0
STATUSES = {5: "placed", 10: "placed", 11: "placed", 20: "placed", 25: "placed", 29: "placed", 30: "placed",
            35: "placed", 40: "placed", 45: "refunded", 46: "refunded", 50: "cancelled"}

NO_WEBHOOKS = ("wizishop: WiziShop does not sign its webhooks, so no delivery can be verified; "
               "WiziShop orders are read with `stagesync poll` (see docs/platform-apis.md)")


# --- webhooks: refused --------------------------------------------------------------------------

def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    return False


def verify(headers: Mapping[str, str], body: bytes, secret: str, now: datetime) -> None:
    raise SignatureError(NO_WEBHOOKS)


def parse(headers: Mapping[str, str], body: bytes, shop: ShopSettings) -> Inbound:
    raise PayloadError(NO_WEBHOOKS)


def sign(body: bytes, secret: str, **kw) -> dict[str, str]:
    raise NotImplementedError(NO_WEBHOOKS)


# --- API client ---------------------------------------------------------------------------------

class WiziShopOrders(ApiClient):
    platform = "wizishop"
    versioned = False
    base_url_default = BASE_URL
    required = ("username", "password")
    optional = ("shop_id", "base_url", "poll_lookback_days", "timezone")
    secret_keys = ("password",)
    auth_hint = "check api.username and api.password: a WiziShop user with API access"

    def __init__(self, shop, **kw):
        super().__init__(shop, **kw)
        self.token: str | None = None
        self.shop_id = str(self.api["shop_id"]) if self.api.get("shop_id") not in (None, "") else None
        try:
            self.tz = ZoneInfo(str(self.api.get("timezone") or DEFAULT_TIMEZONE))
        except (ZoneInfoNotFoundError, ValueError):
            self.tz = timezone.utc

    @classmethod
    def problems(cls, api: Mapping[str, Any]) -> list[str]:
        found = super().problems(api)
        shop_id = api.get("shop_id")
        if shop_id not in (None, "") and (isinstance(shop_id, bool) or not str(shop_id).strip().isdigit()):
            found.append("shop_id: must be a whole number (WiziShop's shop id)")
        days = api.get("poll_lookback_days", POLL_LOOKBACK_DAYS)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 365:
            found.append("poll_lookback_days: must be a whole number from 1 to 365")
        timezone_name = api.get("timezone")
        if timezone_name is not None:
            try:
                ZoneInfo(str(timezone_name))
            except (ZoneInfoNotFoundError, ValueError):
                found.append(f"timezone: unknown time zone {timezone_name!r} (e.g. Europe/Paris)")
        return found

    # --- authentication -------------------------------------------------------------------------

    def login(self) -> None:
        response = self.http.request("POST", self.base_url + LOGIN_PATH, ok=(200, 201),
                                     json={"username": str(self.api["username"]), "password": str(self.api["password"])},
                                     headers={"Accept": "application/json"})
        body = json_body(response, self.where)
        token = body.get("token") if isinstance(body, dict) else None
        if not token:
            raise PlatformAuthError(f"{self.where}: the login answer holds no token; {self.auth_hint}")
        self.token = str(token)
        if self.shop_id is None and body.get("default_shop_id") is not None:
            self.shop_id = str(body["default_shop_id"])

    def refresh(self) -> None:
        """A new token for the current one; a fresh login when WiziShop refuses to renew it."""
        response = self.http.request("GET", self.base_url + REFRESH_PATH, ok=(200, 401, 403),
                                     headers=self._auth_headers())
        token = json_body(response, self.where).get("token") if response.status_code == 200 else None
        if token:
            self.token = str(token)
        else:
            self.login()

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}

    def _ensure_token(self) -> None:
        if self.token is None:
            self.login()
            return
        expires = jwt_expiry(self.token)
        if expires is not None and self.clock() >= expires - REFRESH_MARGIN:
            self.refresh()

    # --- orders ---------------------------------------------------------------------------------

    def orders_page(self, params: Mapping[str, Any]) -> dict | None:
        """One page of orders; None for WiziShop's 404 "no result". A token refused as expired is
        renewed once and the page asked again."""
        self._ensure_token()
        url = self.base_url + ORDERS_PATH.format(shop_id=path_id(self.shop_id, "the WiziShop shop id"))
        response = self.http.request("GET", url, params=dict(params), ok=(200, 401, 404), headers=self._auth_headers())
        if response.status_code == 401:
            self.refresh()
            response = self.http.request("GET", url, params=dict(params), ok=(200, 404), headers=self._auth_headers())
        if response.status_code == 404:
            return None
        body = json_body(response, self.where)
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise PlatformApiError(f"{self.where}: the orders answer has no `results` list")
        return body

    def backfill(self, since: datetime | None, resume: str | None) -> Iterator[Page]:
        after_id = json.loads(resume).get("after_id") if resume else None
        params: dict[str, Any] = {"limit": PAGE_LIMIT, "sort": "id"}
        if since:
            params["start_date"] = self.local(since)
        if after_id is not None:
            params["id_greater_than"] = after_id
        yield from self._pages(params, after_id)

    def changed(self, since: datetime) -> Iterator[Page]:
        lookback = timedelta(days=int(self.api.get("poll_lookback_days", POLL_LOOKBACK_DAYS)))
        yield from self._pages({"limit": PAGE_LIMIT, "sort": "id", "start_date": self.local(since - lookback)}, None)

    def _pages(self, params: dict[str, Any], after_id: Any) -> Iterator[Page]:
        page = 1
        while True:
            body = self.orders_page({**params, "page": page})
            if body is None:  # 404: no (more) orders
                yield Page((), json.dumps({"after_id": after_id}), 0, 0, None)
                return
            results = body["results"]
            ids = [r.get("id") for r in results if isinstance(r, dict) and isinstance(r.get("id"), int)]
            after_id = max([*ids, *([after_id] if isinstance(after_id, int) else [])], default=after_id)
            orders, skipped = map_records(self, results, self.order)
            yield Page(orders, json.dumps({"after_id": after_id}), len(results), skipped, _int(body.get("total")))
            if not results or page >= (_int(body.get("pages")) or page):
                return
            page += 1

    def local(self, moment: datetime) -> str:
        return moment.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S")

    def order(self, data: Mapping[str, Any]) -> Order | None:
        return order_from_api(data, self.shop, self.tz)


def order_from_api(data: Mapping[str, Any], shop: ShopSettings, tz=timezone.utc) -> Order | None:
    """A WiziShop v3 order as a canonical order; None for an abandoned cart (status 0)."""
    fields = Fields(data, "wizishop order")
    code = data.get("status_code")
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code)
    if isinstance(code, bool) or not isinstance(code, int):
        raise fields.error("status_code", "must be a whole number")
    if code == ABANDONED:
        return None
    status = STATUSES.get(code, "placed")
    total = fields.amount("total_amount")
    billing, shipping = fields.child("billing_address"), fields.child("shipping_address")
    try:
        return Order.build(
            shop_id=shop.id, order_id=fields.ident("id"), placed_at=_moment(fields, "date", tz),
            total=total, refunded=total if status == "refunded" else 0, status=status,
            email=billing.text("email") or shipping.text("email") or fields.text("email"),
            phone=billing.text("phone") or shipping.text("phone"),
            customer_id=fields.ident("customer_id", required=False),
            currency=fields.text("currency") or shop.currency, default_region=shop.country,
        )
    except ValueError as exc:
        raise PayloadError(f"wizishop order: {exc}") from None


def _moment(fields: Fields, key: str, tz) -> datetime:
    value = fields.text(key, required=True) or ""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise fields.error(key, "must be a date-time such as 2025-03-14T10:30:00+01:00") from None
    return to_utc(moment if moment.tzinfo else moment.replace(tzinfo=tz))


def jwt_expiry(token: str) -> datetime | None:
    """The `exp` claim of a JWT (read, not verified: it only decides when to renew)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        return datetime.fromtimestamp(int(payload["exp"]), timezone.utc)
    except (binascii.Error, ValueError, KeyError, TypeError, OverflowError):
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
