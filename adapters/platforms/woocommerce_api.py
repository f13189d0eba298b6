"""WooCommerce orders through the REST API v3 (https://woocommerce.github.io/woocommerce-rest-api-docs/).

- `GET {base_url}/wp-json/wc/v3/orders`, authenticated with the REST API consumer key and secret
  as HTTP Basic auth, which WooCommerce accepts over HTTPS only ("Authentication over HTTPS");
  plain HTTP would need OAuth 1.0a signatures, so a non-HTTPS `base_url` is refused (loopback
  addresses excepted, for tests and local shops).
- Pages: `per_page` (at most 100) and `page`; the answer's `X-WP-TotalPages` / `X-WP-Total`
  headers and its `Link: <...>; rel="next"` say whether another page follows ("Pagination").
- Backfill: `orderby=id&order=asc` (a stable order, so a page number is a checkpoint), `after`
  for `--since`. Polling: `modified_after` with `orderby=modified`; `dates_are_gmt=true` makes
  both dates GMT (parameters of `WC_REST_CRUD_Controller::get_collection_params`).
- `status=any`: every order but the trashed ones (a trashed order arrives as `order.deleted`).

Each order is the same JSON resource the order.* webhooks carry, so it is mapped by the webhook
adapter itself (`adapters.platforms.woocommerce.parse`): backfill and webhooks store the same order.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

import requests

from adapters.platforms import woocommerce as webhooks
from adapters.platforms.api import ApiClient, Page, iso_z, json_body, map_records, through_webhook_adapter
from connector.errors import PlatformApiError
from connector.domain.orders import Order

ORDERS_PATH = "/wp-json/wc/v3/orders"
PER_PAGE = 100  # the `per_page` maximum (WC_REST_CRUD_Controller::get_collection_params)
LOOPBACK = ("localhost", "127.0.0.1", "::1")


class WooCommerceOrders(ApiClient):
    platform = "woocommerce"
    required = ("base_url", "consumer_key", "consumer_secret")
    optional = ()
    secret_keys = ("consumer_key", "consumer_secret")
    auth_hint = ("check api.consumer_key and api.consumer_secret: a REST API key with Read access "
                 "(WooCommerce > Settings > Advanced > REST API)")

    @classmethod
    def problems(cls, api: Mapping[str, Any]) -> list[str]:
        found = super().problems(api)
        base_url = api.get("base_url")
        if isinstance(base_url, str) and base_url.startswith("http://") \
                and (urlsplit(base_url).hostname or "") not in LOOPBACK:
            found.append("base_url: must be https:// (the consumer key and secret travel as Basic auth, "
                         "which WooCommerce accepts over HTTPS only)")
        return found

    @property
    def url(self) -> str:
        return self.base_url + ORDERS_PATH

    def backfill(self, since: datetime | None, resume: str | None) -> Iterator[Page]:
        params: dict[str, Any] = {"per_page": PER_PAGE, "orderby": "id", "order": "asc", "status": "any"}
        if since:
            params.update(after=iso_z(since), dates_are_gmt="true")
        # Resume one page early: orders deleted meanwhile shift the later ones back by as many places,
        # and storing a page twice changes nothing.
        page = max(1, int(json.loads(resume).get("page", 1)) - 1) if resume else 1
        yield from self._pages(params, page)

    def changed(self, since: datetime) -> Iterator[Page]:
        params = {"per_page": PER_PAGE, "orderby": "modified", "order": "asc", "status": "any",
                  "modified_after": iso_z(since), "dates_are_gmt": "true"}
        yield from self._pages(params, 1)

    def _pages(self, params: dict[str, Any], page: int) -> Iterator[Page]:
        for response, items, at in self.walk(self.url, params, page, what="orders"):
            orders, skipped = map_records(self, items, self.order)
            yield Page(orders, json.dumps({"page": at + 1}), len(items), skipped,
                       _int(response.headers.get("X-WP-Total")))

    def call(self, method: str, url: str, **kw) -> requests.Response:
        """One request with the REST API key (HTTP Basic over HTTPS)."""
        return self.http.request(method, url, auth=(str(self.api["consumer_key"]), str(self.api["consumer_secret"])),
                                 headers={"Accept": "application/json"}, **kw)

    def walk(self, url: str, params: dict[str, Any], page: int = 1, *,
             what: str) -> Iterator[tuple[requests.Response, list, int]]:
        """Every page of a listing from `page` on, as (answer, items, page number): until the last
        page by `X-WP-TotalPages`, else by a `Link: rel=next`, else until a page shorter than
        `per_page` (WooCommerce REST API, 'Pagination')."""
        while True:
            response = self.call("GET", url, params={**params, "page": page})
            items = json_body(response, self.where)
            if not isinstance(items, list):
                raise PlatformApiError(f"{self.where}: the {what} answer is not a list")
            yield response, items, page
            total_pages = _int(response.headers.get("X-WP-TotalPages"))
            more = "next" in response.links if response.headers.get("Link") else None
            if total_pages is not None:
                more = page < total_pages
            if not items or not (more if more is not None else len(items) >= params["per_page"]):
                return
            page += 1

    def order(self, data: Mapping[str, Any]) -> Order | None:
        """One REST order, mapped by the webhook adapter (None for a draft)."""
        return through_webhook_adapter(webhooks, {webhooks.TOPIC_HEADER: "order.updated"}, data, self.shop)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
