"""Shopify orders through the Admin GraphQL API: cursor pages, or a bulk operation for large shops.

- Endpoint and API version come from the ShopifyAPI package (`shopify.Session(domain, version,
  token).site`). The session is built per shop and never activated: no shop is left active
  globally between calls. Calls go through `requests` rather than `shopify.GraphQL`, which uses
  urllib with no timeout, prints error bodies to stdout and hides `Retry-After`.
- Pages: `orders(first, after, query, sortKey)` with `pageInfo { hasNextPage endCursor }`
  (https://shopify.dev/docs/api/usage/pagination-graphql). At most 250 nodes a page, and a single
  query may cost at most 1,000 points (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits:
  each object costs 1, a connection 2 + `first` x its node's cost): the fields read here cost
  9 points an order, so a page holds 110.
- Throttling: a THROTTLED error in `errors` is retried after (requested cost - currently
  available) / restore rate seconds, from `extensions.cost.throttleStatus`; a 429 after its Retry-After.
- Large shops (`ordersCount` at or above `bulk_threshold`, 10,000 by default, or `bulk = true`):
  `bulkOperationRunQuery`, then `currentBulkOperation` polled until COMPLETED, then its JSONL file
  (https://shopify.dev/docs/api/usage/bulk-operations/queries). Bulk queries have no cost limit.
- Only the last 60 days of orders are readable unless the app has the `read_all_orders` scope
  (https://shopify.dev/docs/api/admin-graphql/latest/objects/Order); older orders are simply absent.

Credentials (https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/client-credentials-grant):
a Dev Dashboard app (the only kind new users can create since 2026-01-01) gives `client_id` and
`client_secret`; stagesync asks `POST https://{shop_domain}/admin/oauth/access_token` (form fields
grant_type=client_credentials, client_id, client_secret) for an access token, whose answer is
`{"access_token", "scope", "expires_in"}` (about 86,399 s). The token is fetched when first needed,
renewed `RENEW_BEFORE` ahead of its expiry, and fetched again once when the API answers 401; it is
never logged, and every error message hides it. A legacy custom app's static `access_token`
still works. `api_version` (default `API_VERSION`) picks the Admin API version.

Each GraphQL order is rewritten into the REST shape of the `orders/updated` webhook and mapped by
the webhook adapter itself (`adapters.platforms.shopify.parse`): backfill and webhooks store the
same canonical order for the same Shopify order.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Iterator, Mapping

from adapters.platforms import shopify as webhooks
from adapters.platforms.api import ApiClient, Page, iso_z, json_body, map_records, through_webhook_adapter
from connector.errors import PlatformApiError, PlatformAuthError, RetriablePlatformError
from connector.domain.orders import Order

API_VERSION = "2026-10"  # the newest stable Admin API version stagesync was tested with; api.api_version overrides
TOKEN_PATH = "/admin/oauth/access_token"
RENEW_BEFORE = timedelta(minutes=5)  # a client-credentials token is renewed this long before it expires
_VERSION = re.compile(r"20[0-9]{2}-(01|04|07|10)|unstable")
TOKEN_HEADER = "X-Shopify-Access-Token"  # https://shopify.dev/docs/api/usage/authentication
# https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits: "single query" limit.
MAX_QUERY_COST = 1000
# https://shopify.dev/docs/api/usage/pagination-graphql: "up to a maximum of 250 resources".
MAX_PAGE = 250
BULK_THRESHOLD = 10_000  # orders: from this many on, a backfill runs as a bulk operation
BULK_POLL_SECONDS = 10.0  # between two looks at a running bulk operation
BULK_MAX_SECONDS = 6 * 3600.0  # a bulk operation still running after this is given up
BULK_PAGE = 1_000  # JSONL lines stored (and checkpointed) together

# Objects cost 1 point, scalars and enums 0: Order, totalPriceSet, shopMoney, totalRefundedSet,
# shopMoney, customer, defaultEmailAddress, defaultPhoneNumber, billingAddress = 9 per order.
ORDER_FIELDS = """
      id
      legacyResourceId
      test
      createdAt
      processedAt
      updatedAt
      cancelledAt
      displayFinancialStatus
      email
      phone
      currencyCode
      totalPriceSet { shopMoney { amount currencyCode } }
      totalRefundedSet { shopMoney { amount currencyCode } }
      customer {
        legacyResourceId
        defaultEmailAddress { emailAddress }
        defaultPhoneNumber { phoneNumber }
      }
      billingAddress { phone }
"""
COST_PER_ORDER = 9
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

BULK_QUERY = """
{
  orders(query: %s, sortKey: ID) {
    edges {
      node {%s      }
    }
  }
}
"""

BULK_RUN = """
mutation StagesyncBulk($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message }
  }
}
"""

BULK_CURRENT = """
query StagesyncBulkCurrent {
  currentBulkOperation { id status errorCode objectCount url partialDataUrl }
}
"""

BULK_NODE = """
query StagesyncBulkNode($id: ID!) {
  node(id: $id) { ... on BulkOperation { id status errorCode objectCount url partialDataUrl } }
}
"""

BULK_RUNNING = ("CREATED", "RUNNING", "CANCELING")
BULK_DEAD = ("FAILED", "CANCELED", "EXPIRED")


class ShopifyOrders(ApiClient):
    platform = "shopify"
    required = ("shop_domain",)
    optional = ("access_token", "client_id", "client_secret", "api_version", "base_url", "bulk", "bulk_threshold")
    secret_keys = ("access_token", "client_secret")
    auth_hint = ("check api.client_id and api.client_secret (a Dev Dashboard app installed on the shop), or "
                 "api.access_token (a legacy custom app): the app needs the read_orders scope "
                 "(and read_all_orders for orders older than 60 days)")

    def __init__(self, shop, **kw):
        super().__init__(shop, **kw)
        self.page_size = PAGE_SIZE
        self.api_version = str(self.api.get("api_version") or API_VERSION)
        self.endpoint = self._endpoint()
        self._token: str | None = None if self._client_credentials else str(self.api["access_token"])
        self._token_expires: datetime | None = None

    @property
    def _client_credentials(self) -> bool:
        return not self.api.get("access_token")

    def access_token(self) -> str:
        """The Admin API token: the static one, or a client-credentials token renewed before it expires."""
        if self._token is None or (self._token_expires is not None
                                   and self.clock() >= self._token_expires - RENEW_BEFORE):
            self._fetch_token()
        assert self._token is not None
        return self._token

    def _fetch_token(self) -> None:
        """POST /admin/oauth/access_token with the client credentials grant (retried on 429/5xx)."""
        url = self._shop_url() + TOKEN_PATH
        form = {"grant_type": "client_credentials", "client_id": str(self.api["client_id"]),
                "client_secret": str(self.api["client_secret"])}
        response = self.http.retrying(lambda: self.http.once("POST", url, data=form, headers={"Accept": "application/json"}))
        try:
            body = response.json()
        except ValueError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            # never quote the body: it may hold a token
            raise PlatformApiError(f"{self.where}: the access token answer has no access_token")
        self.http.secrets = (*self.http.secrets, token)  # hidden from every message from now on
        expires_in = body.get("expires_in")
        self._token = token
        self._token_expires = (self.clock() + timedelta(seconds=expires_in)
                               if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) else None)

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

    # --- GraphQL ------------------------------------------------------------------------------

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict:
        """`data` of one GraphQL call, retried while throttled or failing with 429/5xx; with client
        credentials, a 401 fetches a new token and tries once more."""
        try:
            return self.http.retrying(lambda: self._graphql_once(query, variables))
        except PlatformAuthError as exc:
            if not self._client_credentials or "HTTP 401" not in str(exc):
                raise
            self._token = None  # revoked or expired early: one new token, one more try
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

    # --- reading orders -----------------------------------------------------------------------

    def backfill(self, since: datetime | None, resume: str | None) -> Iterator[Page]:
        state = json.loads(resume) if resume else {}
        search = _search("created_at", since)
        mode, total = state.get("mode"), None
        if mode is None:
            mode, total = self._choose_mode(search)
        if mode == "bulk":
            yield from self._bulk(search, state.get("bulk"), int(state.get("line", 0)))
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

    # --- bulk operation -----------------------------------------------------------------------

    def _bulk(self, search: str | None, operation_id: str | None, done: int) -> Iterator[Page]:
        operation = self._bulk_node(operation_id) if operation_id else None
        if operation is None or operation.get("status") in BULK_DEAD:  # none yet, or its file expired
            operation_id, done, operation = self._start_bulk(search), 0, None
        if operation is None or operation.get("status") != "COMPLETED":
            operation = self._await_bulk(operation_id)
        url = operation.get("url")
        total = int(operation.get("objectCount") or 0) or None
        if not url:  # a completed operation that found nothing has no file
            yield Page((), json.dumps({"mode": "bulk", "bulk": operation_id, "line": 0}), 0, 0, 0)
            return
        yield from self._read_bulk_file(url, operation_id, done, total)

    def _start_bulk(self, search: str | None) -> str:
        query = BULK_QUERY % (json.dumps(search) if search else '""', ORDER_FIELDS)
        if not search:
            query = query.replace('(query: "", ', "(")
        payload = self.graphql(BULK_RUN, {"query": query})["bulkOperationRunQuery"] or {}
        errors = payload.get("userErrors") or []
        if errors:
            said = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
            raise PlatformApiError(f"{self.where}: the bulk query was refused: {self.http.hide(said)}")
        return str(payload["bulkOperation"]["id"])

    def _bulk_node(self, operation_id: str) -> dict | None:
        node = self.graphql(BULK_NODE, {"id": operation_id}).get("node")
        return node if isinstance(node, dict) and node.get("id") == operation_id else None

    def _await_bulk(self, operation_id: str) -> dict:
        waited = 0.0
        while True:
            operation = self.graphql(BULK_CURRENT).get("currentBulkOperation")
            if not isinstance(operation, dict) or operation.get("id") != operation_id:
                operation = self._bulk_node(operation_id)  # another operation started since: ask for ours
            if operation is None:
                raise PlatformApiError(f"{self.where}: bulk operation {operation_id} disappeared")
            status = operation.get("status")
            if status == "COMPLETED":
                return operation
            if status in BULK_DEAD:
                raise PlatformApiError(f"{self.where}: bulk operation {status.lower()}"
                                       f"{' (' + str(operation.get('errorCode')) + ')' if operation.get('errorCode') else ''}"
                                       "; run the backfill again")
            if waited >= BULK_MAX_SECONDS:
                raise PlatformApiError(f"{self.where}: bulk operation still {str(status).lower()} after "
                                       f"{BULK_MAX_SECONDS / 3600:g} h; run the backfill again to keep waiting")
            self.sleep(BULK_POLL_SECONDS)
            waited += BULK_POLL_SECONDS

    def _read_bulk_file(self, url: str, operation_id: str, done: int, total: int | None) -> Iterator[Page]:
        # The file is a signed storage URL: no Shopify token goes with it.
        response = self.http.request("GET", url, stream=True)
        line_number = 0
        batch: list[dict] = []

        def page() -> Page:
            orders, skipped = map_records(self, batch, self.order)
            state = json.dumps({"mode": "bulk", "bulk": operation_id, "line": line_number})
            return Page(orders, state, len(batch), skipped, total)

        with response:
            for raw in response.iter_lines():
                if not raw:
                    continue
                line_number += 1
                if line_number <= done:
                    continue
                record = json.loads(raw)
                if "__parentId" in record:  # a child of a nested connection: none are queried
                    continue
                batch.append(record)
                if len(batch) >= BULK_PAGE:
                    yield page()
                    batch = []
        if batch or line_number <= done:
            yield page()


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


def _search(field: str, since: datetime | None) -> str | None:
    """A search filter (https://shopify.dev/docs/api/usage/search-syntax) on a date field."""
    return f"{field}:>='{iso_z(since)}'" if since else None


def _amount(money: Mapping[str, Any] | None) -> Decimal:
    try:
        return Decimal(str((money or {}).get("amount") or "0"))
    except InvalidOperation:
        return Decimal(0)


def rest_order(node: Mapping[str, Any]) -> dict:
    """A GraphQL `Order` in the REST shape of the orders/* webhooks, with the fields the webhook
    adapter reads. The refunded amount becomes one successful refund transaction in the shop's money."""
    total = (node.get("totalPriceSet") or {}).get("shopMoney") or {}
    refunded = (node.get("totalRefundedSet") or {}).get("shopMoney") or {}
    customer = node.get("customer") or None
    billing = node.get("billingAddress") or None
    legacy_id = node.get("legacyResourceId")
    rest: dict[str, Any] = {
        "id": int(legacy_id) if str(legacy_id or "").isdigit() else (legacy_id or node.get("id")),
        "test": bool(node.get("test")),
        "created_at": node.get("createdAt"),
        "processed_at": node.get("processedAt"),
        "updated_at": node.get("updatedAt"),
        "cancelled_at": node.get("cancelledAt"),
        "financial_status": str(node["displayFinancialStatus"]).lower() if node.get("displayFinancialStatus") else None,
        "email": node.get("email"),
        "phone": node.get("phone"),
        "currency": node.get("currencyCode") or total.get("currencyCode"),
        "total_price": total.get("amount"),
        "total_price_set": {"shop_money": {"amount": total.get("amount"), "currency_code": total.get("currencyCode")}}
        if total else None,
        "refunds": [],
    }
    if customer is not None:
        customer_id = customer.get("legacyResourceId")
        rest["customer"] = {
            "id": int(customer_id) if str(customer_id or "").isdigit() else customer_id,
            "email": (customer.get("defaultEmailAddress") or {}).get("emailAddress"),
            "phone": (customer.get("defaultPhoneNumber") or {}).get("phoneNumber"),
        }
    if billing is not None:
        rest["billing_address"] = {"phone": billing.get("phone")}
    if _amount(refunded) > 0:
        rest["refunds"] = [{"transactions": [{
            "kind": "refund", "status": "success",
            "amount_set": {"shop_money": {"amount": refunded.get("amount"), "currency_code": refunded.get("currencyCode")}},
        }]}]
    return rest
