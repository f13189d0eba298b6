"""Build platform-shaped, really signed webhook deliveries for tests: one `Sender` per platform.

Bodies start from the documented fixtures in tests/fixtures/<platform>/ and change only the
fields a test cares about (id, email, total, times, status, refunds).
"""

from __future__ import annotations

import copy
import json
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

ZERO = Decimal(0)
from pathlib import Path

from adapters.platforms import shopify, standard, woocommerce

FIXTURES = Path(__file__).parents[1] / "fixtures"
SECRETS = {
    "shopify": "shpss_test_secret_0123456789",
    "woocommerce": "wc-test-secret-0123456789",
    "standard": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}
ADMIN_TOKEN = "test-admin-token"  # the admin_token of shops_toml


def fixture(platform: str, topic: str) -> dict:
    name = topic.replace("/", "/") + ".json"
    return json.loads((FIXTURES / platform / name).read_text())


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]


class Sender:
    platform: str
    secret: str

    def __init__(self, secret: str | None = None, clock: datetime | None = None):
        self.secret = secret or SECRETS[self.platform]
        self.clock = clock

    def signed(self, payload: dict | bytes, topic: str, delivery_id: str | None = None) -> Delivery:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return Delivery(body, self._sign(body, topic, delivery_id))

    def order(self, order_id, email: str, total: str, placed_at: datetime, updated_at: datetime | None = None,
              status: str = "placed", refunded: str | None = None, test: bool = False,
              delivery_id: str | None = None) -> Delivery:
        payload, topic = self._order_payload(str(order_id), email, Decimal(total), placed_at,
                                             updated_at or placed_at, status, refunded, test)
        return self.signed(payload, topic, delivery_id)


class ShopifySender(Sender):
    platform = "shopify"

    def _sign(self, body, topic, delivery_id):
        return shopify.sign(body, self.secret, topic=topic, event_id=delivery_id)

    def _order_payload(self, order_id, email, total, placed_at, updated_at, status, refunded, test):
        order = copy.deepcopy(fixture("shopify", "orders/create"))
        money = {"amount": str(total), "currency_code": "EUR"}
        # current_total_price: after edits and refunds (a fully refunded order is at 0)
        current = ZERO if status == "refunded" else total - Decimal(refunded or 0)
        now = {"amount": str(current), "currency_code": "EUR"}
        order.update(id=int(order_id) if order_id.isdigit() else order_id, email=email, contact_email=email,
                     processed_at=_iso(placed_at), created_at=_iso(placed_at), updated_at=_iso(updated_at),
                     total_price=str(total), total_price_set={"shop_money": money, "presentment_money": money},
                     current_total_price=str(current),
                     current_total_price_set={"shop_money": now, "presentment_money": now},
                     test=test, cancelled_at=_iso(updated_at) if status == "cancelled" else None,
                     financial_status="refunded" if status == "refunded" else "paid", refunds=[])
        if email != order["customer"]["email"]:  # another customer: another platform customer id
            order["customer"]["id"] = 7_000_000_000_000 + zlib.crc32((email or "").encode())
        order["customer"]["email"] = email
        if refunded:
            order["financial_status"] = "partially_refunded"
            order["refunds"] = [{"id": 1, "created_at": _iso(updated_at), "order_id": order["id"],
                                 "transactions": [{"id": 2, "kind": "refund", "status": "success",
                                                   "amount": refunded, "currency": "EUR"}]}]
        topic = "orders/cancelled" if status == "cancelled" else "orders/updated"
        return order, topic


class WooCommerceSender(Sender):
    platform = "woocommerce"

    def _sign(self, body, topic, delivery_id):
        return woocommerce.sign(body, self.secret, topic=topic, delivery_id=delivery_id)

    def _order_payload(self, order_id, email, total, placed_at, updated_at, status, refunded, test):
        order = copy.deepcopy(fixture("woocommerce", "order.created"))
        naive = lambda m: m.astimezone(timezone.utc).replace(tzinfo=None).isoformat()  # noqa: E731
        order.update(id=int(order_id), total=str(total), date_created_gmt=naive(placed_at),
                     date_modified_gmt=naive(updated_at), date_paid_gmt=naive(placed_at),
                     status={"placed": "processing", "cancelled": "cancelled", "refunded": "refunded"}[status],
                     refunds=[{"id": 9, "reason": "", "total": f"-{refunded}"}] if refunded else [])
        order["billing"]["email"] = email
        return order, "order.updated"


class StandardSender(Sender):
    platform = "standard"

    def _sign(self, body, topic, delivery_id):
        return standard.sign(body, self.secret, msg_id=delivery_id, timestamp=self.clock)

    def _order_payload(self, order_id, email, total, placed_at, updated_at, status, refunded, test):
        data = {"order_id": order_id, "email": email, "placed_at": _iso(placed_at), "updated_at": _iso(updated_at),
                "total": str(total), "status": status, "test": test}
        if refunded:
            data["refunded"] = refunded
        return {"type": "order.upserted", "data": data}, "order.upserted"


SENDERS = {"shopify": ShopifySender, "woocommerce": WooCommerceSender, "standard": StandardSender}


def shops_toml(database_url: str) -> str:
    """A configuration with one shop per webhook platform, ids equal to the platform names."""
    shops = "".join(
        f'\n[[shops]]\nid = "{name}"\nplatform = "{name}"\nwebhook_secret = "{secret}"\ncurrency = "EUR"\n'
        f'  [[shops.destinations]]\n  type = "log"\n'
        for name, secret in SECRETS.items())
    return f'database_url = "{database_url}"\nadmin_token = "{ADMIN_TOKEN}"\n{shops}'
