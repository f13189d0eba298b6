"""WooCommerce webhooks through the REST API v3, as neutral `Subscription`s.

The endpoints (https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks, and
`WC_REST_Webhooks_V1_Controller`, which the v3 controller extends):
- `GET /wp-json/wc/v3/webhooks?per_page=&page=&status=all`: a JSON array of webhooks
  `{id, name, status, topic, resource, event, hooks, delivery_url, date_created, ...}`, the page
  count in `X-WP-TotalPages` (per_page at most 100).
- `POST /wp-json/wc/v3/webhooks` with `{name, topic, delivery_url, secret, status}`: 201 and the
  webhook. WooCommerce then pings the delivery URL once, unsigned (`webhook_id=N`), which the
  webhook view answers `ignored`.
- `PUT /wp-json/wc/v3/webhooks/<id>` with the fields to change: 200 and the webhook.
- `DELETE /wp-json/wc/v3/webhooks/<id>?force=true`: "Required to be true, as resource does not
  support trashing"; 200 and the deleted webhook.

`status` is `active` (delivers), `paused` (paused by an administrator) or `disabled` (WooCommerce
stopped delivering after failures): the last two are "disabled" here and a repair sets `active`
again, with the shop's `webhook_secret` (WooCommerce signs each delivery with it). The consumer
key needs Read/Write permission to manage webhooks.
"""

from __future__ import annotations

from typing import Any

from adapters.platforms import woocommerce as webhooks
from adapters.platforms.api import json_body
from adapters.platforms.woocommerce_api import PER_PAGE, WooCommerceOrders
from connector.domain.ports import Subscription
from connector.errors import PlatformApiError

WEBHOOKS_PATH = "/wp-json/wc/v3/webhooks"
TOPICS = webhooks.TOPICS
AUTH_HINT = ("check api.consumer_key and api.consumer_secret: a REST API key with Read/Write access "
             "(WooCommerce > Settings > Advanced > REST API) manages webhooks")


class WooCommerceSubscriptions:
    platform = "woocommerce"
    topics = TOPICS
    note = ""

    def __init__(self, shop, **kw):
        self.shop = shop
        self.client = WooCommerceOrders(shop, **kw)
        self.client.http.auth_hint = AUTH_HINT
        self.client.http.secrets += (shop.webhook_secret,)  # sent in create and repair: never in a message
        self.url = self.client.base_url + WEBHOOKS_PATH

    def _call(self, method: str, url: str, **kw) -> Any:
        response = self.client.call(method, url, **kw)
        return response, json_body(response, self.client.where)

    def list(self) -> list[Subscription]:
        pages = self.client.walk(self.url, {"per_page": PER_PAGE, "status": "all"}, what="webhooks")
        return [self._subscription(item) for _, items, _ in pages for item in items]

    def create(self, topic: str, url: str) -> Subscription:
        body = {"name": f"stagesync {self.shop.id} {topic}", "topic": topic, "delivery_url": url,
                "secret": self.shop.webhook_secret, "status": "active"}
        return self._subscription(self._call("POST", self.url, json=body, ok=(200, 201))[1])

    def repair(self, subscription: Subscription, url: str) -> Subscription:
        body = {"status": "active", "delivery_url": url, "secret": self.shop.webhook_secret}
        return self._subscription(self._call("PUT", f"{self.url}/{subscription.id}", json=body)[1])

    def delete(self, subscription: Subscription) -> None:
        self._call("DELETE", f"{self.url}/{subscription.id}", params={"force": "true"})

    def _subscription(self, item: Any) -> Subscription:
        if not isinstance(item, dict) or item.get("id") is None:
            raise PlatformApiError(f"{self.client.where}: the webhook answer has no id")
        return Subscription(topic=str(item.get("topic") or ""), url=str(item.get("delivery_url") or ""),
                            state="active" if item.get("status") == "active" else "disabled", id=str(item["id"]))
