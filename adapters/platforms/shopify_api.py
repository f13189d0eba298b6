"""Shopify orders through the Admin GraphQL API, for backfill and polling: cursor pages, or a bulk
operation for large shops.

- Pages: `orders(first, after, query, sortKey)` with `pageInfo { hasNextPage endCursor }`
  (https://shopify.dev/docs/api/usage/pagination-graphql). At most 250 nodes a page, and a single
  query may cost at most 1,000 points (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits:
  each object costs 1, a connection 2 + `first` x its node's cost): the fields read here cost
  9 points an order, so a page holds 110. A MAX_COST_EXCEEDED answer halves the page.
- Large shops (`ordersCount` at or above `bulk_threshold`, 10,000 by default, or `bulk = true`):
  a bulk operation (`adapters.platforms.shopify_bulk`).

The client (settings, token, `graphql()`) is `adapters.platforms.shopify_client`; what is read of
an order and how it is mapped, `adapters.platforms.shopify_order`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterator, Mapping

from adapters.platforms import shopify as webhooks
from adapters.platforms.api import Page, iso_z, map_records, through_webhook_adapter
from adapters.platforms.shopify_bulk import bulk_pages
from adapters.platforms.shopify_client import BULK_THRESHOLD, MAX_QUERY_COST, QueryTooCostly, ShopifyClient
from adapters.platforms.shopify_order import COST_PER_ORDER, ORDER_FIELDS, rest_order
from connector.domain.orders import Order

# https://shopify.dev/docs/api/usage/pagination-graphql: "up to a maximum of 250 resources".
MAX_PAGE = 250
PAGE_SIZE = min(MAX_PAGE, (MAX_QUERY_COST - 10) // COST_PER_ORDER)  # 110; 10 points spare for the page itself

ORDERS_QUERY = """
query StagesyncOrders($first: Int!, $after: String, $query: String, $sortKey: OrderSortKeys) {
  orders(first: $first, after: $after, query: $query, sortKey: $sortKey) {
    pageInfo { hasNextPage endCursor }
    nodes {%s    }
  }
}
""" % ORDER_FIELDS

COUNT_QUERY = """
query StagesyncOrdersCount($query: String, $limit: Int) {
  ordersCount(query: $query, limit: $limit) { count precision }
}
"""


class ShopifyOrders(ShopifyClient):
    """The `OrderSource` of a Shopify shop: backfill (pages or bulk, resumable) and changed orders."""

    def __init__(self, shop, **kw):
        super().__init__(shop, **kw)
        self.page_size = PAGE_SIZE

    def backfill(self, since: datetime | None, resume: str | None) -> Iterator[Page]:
        state = json.loads(resume) if resume else {}
        search = _search("created_at", since)
        mode, total = state.get("mode"), None
        if mode is None:
            mode, total = self._choose_mode(search)
        if mode == "bulk":
            yield from bulk_pages(self, search, state.get("bulk"), int(state.get("line", 0)), self.order)
        else:
            yield from self._pages(search, "ID", state.get("after"), total)

    def changed(self, since: datetime) -> Iterator[Page]:
        yield from self._pages(_search("updated_at", since), "UPDATED_AT", None, None)

    def _choose_mode(self, search: str | None) -> tuple[str, int | None]:
        setting = self.api.get("bulk", "auto")
        if setting is True:
            return "bulk", None
        threshold = int(self.api.get("bulk_threshold", BULK_THRESHOLD))
        counted = self.graphql(COUNT_QUERY, {"query": search, "limit": threshold})["ordersCount"] or {}
        count = int(counted.get("count") or 0)
        if setting == "auto" and count >= threshold:
            return "bulk", None
        return "pages", count if counted.get("precision") == "EXACT" else None

    def _pages(self, search: str | None, sort_key: str, after: str | None, total: int | None) -> Iterator[Page]:
        while True:
            variables = {"first": self.page_size, "after": after, "query": search, "sortKey": sort_key}
            try:
                connection = self.graphql(ORDERS_QUERY, variables)["orders"]
            except QueryTooCostly:
                if self.page_size <= 1:
                    raise
                self.page_size = max(1, self.page_size // 2)  # the schema's costs changed: ask for less
                continue
            nodes = connection.get("nodes") or []
            info = connection.get("pageInfo") or {}
            after = info.get("endCursor") or after
            orders, skipped = map_records(self, nodes, self.order)
            yield Page(orders, json.dumps({"mode": "pages", "after": after}), len(nodes), skipped, total)
            if not info.get("hasNextPage"):
                return

    def order(self, node: Mapping[str, Any]) -> Order | None:
        """One GraphQL order, mapped by the webhook adapter (None for a test order)."""
        return through_webhook_adapter(webhooks, {webhooks.TOPIC_HEADER: "orders/updated"}, rest_order(node), self.shop)


def _search(field: str, since: datetime | None) -> str | None:
    """A search filter (https://shopify.dev/docs/api/usage/search-syntax) on a date field."""
    return f"{field}:>='{iso_z(since)}'" if since else None
