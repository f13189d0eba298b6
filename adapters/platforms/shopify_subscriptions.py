"""Shopify webhook subscriptions through the Admin GraphQL API, as neutral `Subscription`s.

The calls, with the shapes Shopify documents (Admin GraphQL, API version `shopify_client.API_VERSION`):
- `webhookSubscriptions(first, after)`: a cursor-paginated `WebhookSubscriptionConnection` of the
  shop-scoped subscriptions this app created through the API (not those of the app's TOML
  configuration), `nodes { id topic uri }`, `pageInfo { hasNextPage endCursor }`
  (https://shopify.dev/docs/api/admin-graphql/latest/queries/webhookSubscriptions,
  https://shopify.dev/docs/api/usage/pagination-graphql).
- `webhookSubscriptionCreate(topic, webhookSubscription: {uri, format})` ->
  `{webhookSubscription, userErrors {field message}}`
  (https://shopify.dev/docs/api/admin-graphql/latest/mutations/webhookSubscriptionCreate). `uri` is the
  unified destination field since 2025-10, replacing `callbackUrl`
  (https://shopify.dev/changelog/consolidate-webhook-graphql-surfaces).
- `webhookSubscriptionUpdate(id, webhookSubscription: {uri})` -> `{webhookSubscription, userErrors}`
  (https://shopify.dev/docs/api/admin-graphql/latest/mutations/webhookSubscriptionUpdate).
- `webhookSubscriptionDelete(id)` -> `{deletedWebhookSubscriptionId, userErrors}`
  (https://shopify.dev/docs/api/admin-graphql/latest/payloads/WebhookSubscriptionDeletePayload).

A Shopify subscription has no "disabled" state: after repeated failed deliveries Shopify deletes
it, so a gone subscription shows as missing. Topics are GraphQL enums (`ORDERS_CREATE`), turned
into the delivery's `X-Shopify-Topic` form (`orders/create`) and back. The privacy (compliance)
topics cannot be subscribed through the API: they are set in the app's configuration
(https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance). Authentication, token
renewal, throttling and retries are those of `ShopifyClient` (both token kinds).
"""

from __future__ import annotations

from typing import Any, Mapping

from adapters.platforms import shopify as webhooks
from adapters.platforms.shopify_client import ShopifyClient
from connector.domain.ports import Subscription
from connector.errors import PlatformApiError

# https://shopify.dev/docs/api/usage/pagination-graphql: up to 250 a page; a node costs 1 point.
PAGE_SIZE = 100
FIELDS = "id topic uri"

LIST = """
query StagesyncWebhookSubscriptions($first: Int!, $after: String) {
  webhookSubscriptions(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { %s }
  }
}
""" % FIELDS

CREATE = """
mutation StagesyncWebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { %s }
    userErrors { field message }
  }
}
""" % FIELDS

UPDATE = """
mutation StagesyncWebhookSubscriptionUpdate($id: ID!, $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionUpdate(id: $id, webhookSubscription: $webhookSubscription) {
    webhookSubscription { %s }
    userErrors { field message }
  }
}
""" % FIELDS

DELETE = """
mutation StagesyncWebhookSubscriptionDelete($id: ID!) {
  webhookSubscriptionDelete(id: $id) {
    deletedWebhookSubscriptionId
    userErrors { field message }
  }
}
"""

TOPICS = tuple(t for t in webhooks.TOPICS if t not in webhooks.PRIVACY_TOPICS)
NOTE = ("the privacy topics (" + ", ".join(webhooks.PRIVACY_TOPICS) + ") cannot be created through the "
        "Admin API: set them in the app's configuration (Dev Dashboard, the app's version settings, "
        "or `compliance_topics` in shopify.app.toml) to {url}")


def topic_enum(topic: str) -> str:
    """`orders/create` -> `ORDERS_CREATE` (the WebhookSubscriptionTopic enum)."""
    return topic.upper().replace("/", "_")


def topic_name(enum: str) -> str:
    """`ORDERS_CREATE` -> `orders/create`, `CUSTOMERS_DATA_REQUEST` -> `customers/data_request`."""
    return str(enum).lower().replace("_", "/", 1)


class ShopifySubscriptions:
    platform = "shopify"
    topics = TOPICS
    note = NOTE

    def __init__(self, shop, **kw):
        self.client = ShopifyClient(shop, **kw)

    def list(self) -> list[Subscription]:
        found: list[Subscription] = []
        after = None
        while True:
            connection = self.client.graphql(LIST, {"first": PAGE_SIZE, "after": after})["webhookSubscriptions"] or {}
            found += [self._subscription(node) for node in connection.get("nodes") or []]
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage") or not info.get("endCursor"):
                return found
            after = info["endCursor"]

    def create(self, topic: str, url: str) -> Subscription:
        payload = self._mutate(CREATE, "webhookSubscriptionCreate",
                               {"topic": topic_enum(topic), "webhookSubscription": {"uri": url, "format": "JSON"}})
        return self._subscription(payload.get("webhookSubscription"))

    def repair(self, subscription: Subscription, url: str) -> Subscription:
        payload = self._mutate(UPDATE, "webhookSubscriptionUpdate",
                               {"id": subscription.id, "webhookSubscription": {"uri": url}})
        return self._subscription(payload.get("webhookSubscription"))

    def delete(self, subscription: Subscription) -> None:
        self._mutate(DELETE, "webhookSubscriptionDelete", {"id": subscription.id})

    def _mutate(self, query: str, name: str, variables: Mapping[str, Any]) -> dict:
        payload = self.client.graphql(query, variables).get(name) or {}
        errors = [e for e in payload.get("userErrors") or [] if isinstance(e, dict)]
        if errors:
            said = "; ".join(f"{'.'.join(map(str, e.get('field') or []))}: {e.get('message')}".lstrip(": ")
                             for e in errors)
            raise PlatformApiError(self.client.http.hide(f"{self.client.where}: {name} refused: {said}"))
        return payload

    def _subscription(self, node: Any) -> Subscription:
        if not isinstance(node, dict) or not node.get("id"):
            raise PlatformApiError(f"{self.client.where}: the webhook subscription answer has no id")
        # Every subscription Shopify lists delivers: a failing one is deleted, never paused.
        return Subscription(topic=topic_name(node.get("topic") or ""), url=str(node.get("uri") or ""),
                            state="active", id=str(node["id"]))
