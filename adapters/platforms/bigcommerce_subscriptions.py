"""BigCommerce webhooks ("hooks") through the v3 API, as neutral `Subscription`s.

The endpoints (`reference/webhooks.v3.yml` in bigcommerce/docs, "Webhooks v3";
https://developer.bigcommerce.com/docs/integrations/webhooks), authenticated with `X-Auth-Token`:
- `GET /stores/{store_hash}/v3/hooks?page=&limit=`: `{"data": [hook, ...], "meta": {"pagination":
  {"total", "count", "per_page", "current_page", "total_pages", "links"}}}`, the hooks of the API
  account the token belongs to; a hook is `{id, client_id, store_hash, scope, destination,
  headers, is_active, created_at, updated_at}`.
- `POST /stores/{store_hash}/v3/hooks` with `{scope, destination, is_active, headers}`: 200 and
  `{"data": hook, "meta": {}}`. The destination must be HTTPS on port 443.
- `PUT /stores/{store_hash}/v3/hooks/{id}` with the fields to change: 200 and `{"data": hook}`.
- `DELETE /stores/{store_hash}/v3/hooks/{id}`: 200 and the deleted hook.

BigCommerce signs nothing: every hook stagesync creates carries the shop's `webhook_secret` in
the `X-Stagesync-Webhook-Secret` header, which BigCommerce sends back with each callback
(`adapters.platforms.bigcommerce`). A hook BigCommerce deactivated (`is_active` false: failures,
or 90 days without events) is "disabled"; an active hook whose header is not the shop's secret is
"wrong_secret" (every callback would be refused with 401); a repair sets `is_active` and the header.
"""

from __future__ import annotations

import hmac
from typing import Any

from adapters.platforms import bigcommerce as webhooks
from adapters.platforms.api import json_body, path_handle
from connector.domain.ports import Subscription
from connector.errors import PlatformApiError

HOOKS_PATH = "/stores/{store_hash}/v3/hooks"
PAGE_LIMIT = 100  # the documented example pages by 100 ("?limit=100&page=1")
TOPICS = webhooks.TOPICS


class BigCommerceSubscriptions:
    platform = "bigcommerce"
    topics = TOPICS
    note = ""

    def __init__(self, shop, **kw):
        self.shop = shop
        self.client = webhooks.BigCommerceOrders(shop, **kw)
        self.client.http.secrets += (shop.webhook_secret,)  # sent as a hook header: never in a message
        self.client.http.auth_hint = "check api.store_hash and api.access_token (a store API account)"
        self.url = self.client.base_url + HOOKS_PATH.format(
            store_hash=path_handle(self.client.api["store_hash"], "api.store_hash"))

    def _call(self, method: str, url: str, **kw) -> Any:
        response = self.client.call(method, url, **kw)
        body = json_body(response, self.client.where)
        if not isinstance(body, dict):
            raise PlatformApiError(f"{self.client.where}: the hooks answer is not a JSON object")
        return body

    def list(self) -> list[Subscription]:
        found: list[Subscription] = []
        page = 1
        while True:
            body = self._call("GET", self.url, params={"page": page, "limit": PAGE_LIMIT})
            hooks = body.get("data") or []
            found += [self._subscription(hook) for hook in hooks]
            pagination = (body.get("meta") or {}).get("pagination") or {}
            if not hooks or page >= int(pagination.get("total_pages") or page):
                return found
            page += 1

    def create(self, topic: str, url: str) -> Subscription:
        body = {"scope": topic, "destination": url, "is_active": True,
                "headers": {webhooks.SECRET_HEADER: self.shop.webhook_secret}}
        return self._subscription(self._call("POST", self.url, json=body).get("data"))

    def repair(self, subscription: Subscription, url: str) -> Subscription:
        body = {"destination": url, "is_active": True, "headers": {webhooks.SECRET_HEADER: self.shop.webhook_secret}}
        return self._subscription(self._call("PUT", f"{self.url}/{subscription.id}", json=body).get("data"))

    def delete(self, subscription: Subscription) -> None:
        self._call("DELETE", f"{self.url}/{subscription.id}")

    def _subscription(self, hook: Any) -> Subscription:
        if not isinstance(hook, dict) or hook.get("id") is None:
            raise PlatformApiError(f"{self.client.where}: the hook answer has no id")
        sent = str((hook.get("headers") or {}).get(webhooks.SECRET_HEADER) or "")
        state = "disabled" if hook.get("is_active") is not True else \
            "active" if hmac.compare_digest(sent.encode(), self.shop.webhook_secret.encode()) else "wrong_secret"
        return Subscription(topic=str(hook.get("scope") or ""), url=str(hook.get("destination") or ""),
                            state=state, id=str(hook["id"]))
