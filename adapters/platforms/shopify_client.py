"""One shop's Shopify Admin GraphQL client: its `api` settings, endpoint, token and one classified call.

- Endpoint and API version come from the ShopifyAPI package (`shopify.Session(domain, version,
  token).site`). The session is built per shop and never activated: no shop is left active
  globally between calls. Calls go through `requests` rather than `shopify.GraphQL`, which uses
  urllib with no timeout, prints error bodies to stdout and hides `Retry-After`.
- Throttling: a THROTTLED error in `errors` is retried after (requested cost - currently
  available) / restore rate seconds, from `extensions.cost.throttleStatus`
  (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits); a 429 after its Retry-After.
- Credentials: `client_id` and `client_secret` of a Dev Dashboard app, exchanged for a token by
  `adapters.platforms.shopify_token` (renewed before it expires, fetched again once when the API
  answers 401), or a legacy custom app's static `access_token`. `api_version` (default
  `API_VERSION`) picks the Admin API version.

What the client reads (orders: `adapters.platforms.shopify_api`) is built on `graphql()`.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from adapters.platforms.api import ApiClient, json_body
from adapters.platforms.shopify_token import ClientCredentialsToken
from connector.errors import PlatformApiError, PlatformAuthError, RetriablePlatformError

API_VERSION = "2026-10"  # the newest stable Admin API version stagesync was tested with; api.api_version overrides
_VERSION = re.compile(r"20[0-9]{2}-(01|04|07|10)|unstable")
TOKEN_HEADER = "X-Shopify-Access-Token"  # https://shopify.dev/docs/api/usage/authentication
# https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits: "single query" limit.
MAX_QUERY_COST = 1000
BULK_THRESHOLD = 10_000  # orders: from this many on, a backfill runs as a bulk operation (api.bulk_threshold)


class ShopifyClient(ApiClient):
    """The settings of a shop's Shopify `api` table and `graphql()`, the one call everything uses."""

    platform = "shopify"
    required = ("shop_domain",)
    optional = ("access_token", "client_id", "client_secret", "api_version", "base_url", "bulk", "bulk_threshold")
    secret_keys = ("access_token", "client_secret")
    auth_hint = ("check api.client_id and api.client_secret (a Dev Dashboard app installed on the shop), or "
                 "api.access_token (a legacy custom app): the app needs the read_orders scope "
                 "(and read_all_orders for orders older than 60 days)")

    def __init__(self, shop, **kw):
        super().__init__(shop, **kw)
        self.api_version = str(self.api.get("api_version") or API_VERSION)
        self.endpoint = self._endpoint()
        self._credentials = (ClientCredentialsToken(self.http, self._shop_url(), str(self.api["client_id"]),
                                                    str(self.api["client_secret"]), self.clock)
                             if self._client_credentials else None)

    @property
    def _client_credentials(self) -> bool:
        return not self.api.get("access_token")

    def access_token(self) -> str:
        """The Admin API token: the static one, or a client-credentials token renewed before it expires."""
        if self._credentials is None:
            return str(self.api["access_token"])
        return self._credentials.get()

    def _shop_url(self) -> str:
        return self.base_url if self.api.get("base_url") else "https://" + str(self.api["shop_domain"]).strip().rstrip("/")

    @classmethod
    def problems(cls, api: Mapping[str, Any]) -> list[str]:
        found = super().problems(api)
        if not api.get("access_token") and not (api.get("client_id") and api.get("client_secret")):
            found.append("client_id, client_secret: are required (a Dev Dashboard app), or access_token "
                         "(a legacy custom app)")
        version = api.get("api_version")
        if version is not None and not (isinstance(version, str) and _VERSION.fullmatch(version)):
            found.append('api_version: must be an Admin API version such as "2026-10"')
        domain = api.get("shop_domain")
        if isinstance(domain, str) and domain.strip() and "." in domain.strip() \
                and not domain.strip().lower().rstrip("/").endswith(".myshopify.com"):
            found.append("shop_domain: must be the shop's myshopify.com domain (e.g. acme.myshopify.com)")
        if api.get("bulk", "auto") not in ("auto", True, False):
            found.append('bulk: must be true, false or "auto"')
        threshold = api.get("bulk_threshold", BULK_THRESHOLD)
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            found.append("bulk_threshold: must be a positive whole number")
        return found

    def _endpoint(self) -> str:
        import shopify  # the ShopifyAPI package, imported on first use

        version = shopify.ApiVersion.coerce_to_version(self.api_version)
        if self.api.get("base_url"):
            return version.api_path(self.base_url) + "/graphql.json"
        session = shopify.Session(str(self.api["shop_domain"]).strip(), self.api_version)
        return session.site + "/graphql.json"

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict:
        """`data` of one GraphQL call, retried while throttled or failing with 429/5xx; with client
        credentials, a 401 fetches a new token and tries once more."""
        try:
            return self.http.retrying(lambda: self._graphql_once(query, variables))
        except PlatformAuthError as exc:
            if self._credentials is None or "HTTP 401" not in str(exc):
                raise
            self._credentials.forget()  # revoked or expired early: one new token, one more try
            return self.http.retrying(lambda: self._graphql_once(query, variables))

    def _graphql_once(self, query: str, variables: Mapping[str, Any] | None) -> dict:
        response = self.http.once("POST", self.endpoint, json={"query": query, "variables": dict(variables or {})},
                                  headers={TOKEN_HEADER: self.access_token(),
                                           "Content-Type": "application/json", "Accept": "application/json"})
        body = json_body(response, self.where)
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            self._raise_for(errors, body)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise PlatformApiError(f"{self.where}: the GraphQL answer has no data")
        return data

    def _raise_for(self, errors: Any, body: dict) -> None:
        items = errors if isinstance(errors, list) else [{"message": str(errors)}]
        codes = {str((e.get("extensions") or {}).get("code")) for e in items if isinstance(e, dict)}
        said = self.http.hide("; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in items[:3]))
        if "THROTTLED" in codes:
            raise RetriablePlatformError(f"{self.where}: throttled ({said})", retry_after=throttle_wait(body))
        if "ACCESS_DENIED" in codes:
            raise PlatformAuthError(f"{self.where}: the shopify API denied access ({said}); {self.auth_hint}")
        if "MAX_COST_EXCEEDED" in codes:
            raise QueryTooCostly(f"{self.where}: {said}")
        if "INTERNAL_SERVER_ERROR" in codes:
            raise RetriablePlatformError(f"{self.where}: {said}")
        raise PlatformApiError(f"{self.where}: GraphQL error: {said}")


class QueryTooCostly(PlatformApiError):
    """MAX_COST_EXCEEDED: the query asks for more than one query may cost."""


def throttle_wait(body: Mapping[str, Any]) -> float:
    """Seconds until the bucket holds the requested cost again (`extensions.cost`), at least 1."""
    cost = ((body.get("extensions") or {}).get("cost") or {}) if isinstance(body, Mapping) else {}
    status = cost.get("throttleStatus") or {}
    try:
        needed = float(cost.get("requestedQueryCost") or 0) - float(status.get("currentlyAvailable") or 0)
        rate = float(status.get("restoreRate") or 0)
    except (TypeError, ValueError):
        return 1.0
    return max(1.0, needed / rate) if rate > 0 else 1.0
