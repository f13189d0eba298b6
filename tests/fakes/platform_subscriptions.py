"""Loopback fakes of the three platforms' webhook subscription APIs, for end-to-end tests.

Each is a `FakeVendor` (tests/fakes/vendor_server.py: a real HTTP server on 127.0.0.1) answering
as the platform documents it, holding its subscriptions in `vendor.state["items"]` (id -> record
in the platform's own shape), so that a test can delete or disable one as the platform or a
merchant would, then watch stagesync notice and repair it.

- Shopify (`shopify_webhooks_vendor`): the client credentials token endpoint
  `POST /admin/oauth/access_token` (https://shopify.dev/docs/apps/build/authentication-authorization/
  access-tokens/client-credentials-grant: `{"access_token", "scope", "expires_in"}`) and the Admin
  GraphQL endpoint with `webhookSubscriptions` (cursor pages: `nodes`, `pageInfo {hasNextPage
  endCursor}`), `webhookSubscriptionCreate`, `...Update`, `...Delete` answering `userErrors
  {field message}` as Shopify does (https://shopify.dev/docs/api/admin-graphql/latest/queries/webhookSubscriptions,
  .../mutations/webhookSubscriptionCreate). A request without the token is a 401.
- WooCommerce (`woocommerce_webhooks_vendor`): `/wp-json/wc/v3/webhooks` (list with `per_page`,
  `page`, `X-WP-Total`, `X-WP-TotalPages`; create 201; update; delete only with `force=true`, else
  501 `woocommerce_rest_trash_not_supported`), Basic auth, statuses active / paused / disabled
  (https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks, WC_REST_Webhooks_V1_Controller).
- BigCommerce (`bigcommerce_webhooks_vendor`): `/stores/{store_hash}/v3/hooks` in the
  `{"data": ..., "meta": {...}}` envelope with `meta.pagination`, `is_active`, `headers`, the
  `X-Auth-Token` header (`reference/webhooks.v3.yml` in bigcommerce/docs).
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import urlsplit

from werkzeug.wrappers import Request, Response

from tests.fakes.vendor_server import FakeVendor

SHOPIFY_CLIENT_ID = "fake-client-id"
SHOPIFY_CLIENT_SECRET = "fake-client-secret-0123456789"
SHOPIFY_TOKEN = "shpat_fake0123456789abcdef"
WOO_KEY, WOO_SECRET = "ck_fake0123456789", "cs_fake0123456789"
BC_STORE, BC_TOKEN = "abc123de", "bc_fake_token_0123456789"
SHOPIFY_TOPICS = {"ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_PAID", "ORDERS_CANCELLED", "ORDERS_EDITED",
                  "ORDERS_DELETE", "REFUNDS_CREATE", "CUSTOMERS_CREATE", "CUSTOMERS_UPDATE", "APP_UNINSTALLED",
                  "PRODUCTS_UPDATE"}  # the enum values these tests use (WebhookSubscriptionTopic)
# wc_is_webhook_valid_topic: resource.event with these resources and events
WOO_TOPIC = re.compile(r"(coupon|customer|order|product)\.(created|updated|deleted|restored)")


def _json(payload, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(payload), status=status, headers=headers or {}, mimetype="application/json")


def _next_id(vendor: FakeVendor) -> int:
    vendor.state["next_id"] = vendor.state.get("next_id", 1000) + 1
    return vendor.state["next_id"]


def _valid_url(url) -> bool:
    return isinstance(url, str) and urlsplit(url).scheme in ("http", "https") and bool(urlsplit(url).hostname)


# --- Shopify ---------------------------------------------------------------------------------------

def _shopify_token(vendor: FakeVendor, request: Request, match) -> Response:
    form = request.form
    if form.get("grant_type") != "client_credentials" or form.get("client_id") != SHOPIFY_CLIENT_ID \
            or form.get("client_secret") != SHOPIFY_CLIENT_SECRET:
        return _json({"error": "invalid_client"}, 400)
    return _json({"access_token": SHOPIFY_TOKEN, "scope": "read_orders,read_customers", "expires_in": 86399})


def _shopify_node(record: dict) -> dict:
    return {"id": record["id"], "topic": record["topic"], "uri": record["uri"]}


def _shopify_graphql(vendor: FakeVendor, request: Request, match) -> Response:
    if request.headers.get("X-Shopify-Access-Token") != SHOPIFY_TOKEN:
        return _json({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}, 401)
    body = request.get_json()
    query, variables = body["query"], body.get("variables") or {}
    items = vendor.state.setdefault("items", {})
    vendor.state.setdefault("operations", []).append(re.search(r"\{\s*(\w+)", query).group(1))
    if "webhookSubscriptionCreate(" in query:
        topic, uri = variables["topic"], variables["webhookSubscription"].get("uri")
        if topic not in SHOPIFY_TOPICS:
            return _json({"errors": [{"message": f"Variable $topic of type WebhookSubscriptionTopic! was provided "
                                                 f"invalid value", "extensions": {"code": "INVALID_VARIABLE"}}]})
        errors = []
        if not _valid_url(uri):
            errors.append({"field": ["webhookSubscription", "callbackUrl"], "message": "Address is invalid"})
        elif any(r["topic"] == topic and r["uri"] == uri for r in items.values()):
            errors.append({"field": ["webhookSubscription", "callbackUrl"],
                           "message": "Address for this topic has already been taken"})
        if errors:
            return _json({"data": {"webhookSubscriptionCreate": {"webhookSubscription": None, "userErrors": errors}}})
        gid = f"gid://shopify/WebhookSubscription/{_next_id(vendor)}"
        items[gid] = {"id": gid, "topic": topic, "uri": uri, "format": variables["webhookSubscription"].get("format")}
        return _json({"data": {"webhookSubscriptionCreate": {"webhookSubscription": _shopify_node(items[gid]),
                                                             "userErrors": []}}})
    if "webhookSubscriptionUpdate(" in query or "webhookSubscriptionDelete(" in query:
        name = "webhookSubscriptionUpdate" if "webhookSubscriptionUpdate(" in query else "webhookSubscriptionDelete"
        record = items.get(variables.get("id"))
        if record is None:
            missing = [{"field": ["id"], "message": "Webhook subscription does not exist"}]
            empty = {"webhookSubscription": None} if name.endswith("Update") else {"deletedWebhookSubscriptionId": None}
            return _json({"data": {name: {**empty, "userErrors": missing}}})
        if name.endswith("Delete"):
            del items[record["id"]]
            return _json({"data": {name: {"deletedWebhookSubscriptionId": record["id"], "userErrors": []}}})
        record["uri"] = variables["webhookSubscription"].get("uri", record["uri"])
        return _json({"data": {name: {"webhookSubscription": _shopify_node(record), "userErrors": []}}})
    if "webhookSubscriptions(" in query:
        ordered = sorted(items.values(), key=lambda r: int(r["id"].rsplit("/", 1)[1]))
        start = int(base64.b64decode(variables["after"]).decode()) if variables.get("after") else 0
        page = ordered[start:start + int(variables["first"])]
        end = start + len(page)
        return _json({"data": {"webhookSubscriptions": {
            "nodes": [_shopify_node(r) for r in page],
            "pageInfo": {"hasNextPage": end < len(ordered),
                         "endCursor": base64.b64encode(str(end).encode()).decode() if page else None}}}})
    return _json({"errors": [{"message": "unknown query"}]}, 200)


def shopify_webhooks_vendor(api_version: str = "2026-10") -> FakeVendor:
    vendor = FakeVendor()
    vendor.route("POST", r"/admin/oauth/access_token", _shopify_token)
    vendor.route("POST", rf"/admin/api/{api_version}/graphql\.json", _shopify_graphql)
    return vendor


# --- WooCommerce -----------------------------------------------------------------------------------

def _woo_authorized(request: Request) -> bool:
    return request.authorization is not None and (request.authorization.username, request.authorization.password) \
        == (WOO_KEY, WOO_SECRET)


def _woo_public(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "secret"}


def _woo_error(code: str, message: str, status: int) -> Response:
    return _json({"code": code, "message": message, "data": {"status": status}}, status)


def _woo_collection(vendor: FakeVendor, request: Request, match) -> Response:
    if not _woo_authorized(request):
        return _woo_error("woocommerce_rest_cannot_view", "Sorry, you cannot list resources.", 401)
    items = vendor.state.setdefault("items", {})
    if request.method == "GET":
        status = request.args.get("status", "all")
        chosen = [r for _, r in sorted(items.items()) if status == "all" or r["status"] == status]
        per_page, page = int(request.args.get("per_page", 10)), int(request.args.get("page", 1))
        pages = max(1, -(-len(chosen) // per_page))
        return _json([_woo_public(r) for r in chosen[(page - 1) * per_page: page * per_page]],
                     headers={"X-WP-Total": str(len(chosen)), "X-WP-TotalPages": str(pages)})
    body = request.get_json()
    if not WOO_TOPIC.fullmatch(str(body.get("topic", "")).lower()):
        return _woo_error("woocommerce_rest_shop_webhook_invalid_topic", "Webhook topic is required and must be valid.", 400)
    if not _valid_url(body.get("delivery_url")):
        return _woo_error("woocommerce_rest_shop_webhook_invalid_delivery_url",
                          "Webhook delivery URL must be a valid URL starting with http:// or https://.", 400)
    ident = _next_id(vendor)
    resource, event = body["topic"].split(".")
    items[ident] = {"id": ident, "name": body.get("name", ""), "status": body.get("status", "active"),
                    "topic": body["topic"], "resource": resource, "event": event,
                    "hooks": [f"woocommerce_{body['topic'].replace('.', '_')}"],
                    "delivery_url": body["delivery_url"], "secret": body.get("secret"),
                    "date_created": "2026-12-05T08:00:00", "date_created_gmt": "2026-12-05T08:00:00",
                    "date_modified": None, "date_modified_gmt": None}
    return _json(_woo_public(items[ident]), 201, {"Location": f"/wp-json/wc/v3/webhooks/{ident}"})


def _woo_item(vendor: FakeVendor, request: Request, match) -> Response:
    if not _woo_authorized(request):
        return _woo_error("woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource.", 401)
    items = vendor.state.setdefault("items", {})
    record = items.get(int(match.group("id")))
    if request.method == "DELETE" and request.args.get("force") not in ("true", "1"):
        return _woo_error("woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.", 501)
    if record is None:
        return _woo_error("woocommerce_rest_shop_webhook_invalid_id", "Invalid ID.", 404)
    if request.method == "DELETE":
        del items[record["id"]]
        return _json(_woo_public(record))
    body = request.get_json()
    if "status" in body and body["status"] not in ("active", "paused", "disabled"):
        return _woo_error("woocommerce_rest_shop_webhook_invalid_status", "Webhook status must be valid.", 400)
    record.update({k: body[k] for k in ("name", "status", "topic", "delivery_url", "secret") if body.get(k)})
    return _json(_woo_public(record))


def woocommerce_webhooks_vendor() -> FakeVendor:
    vendor = FakeVendor()
    vendor.route("GET", r"/wp-json/wc/v3/webhooks", _woo_collection)
    vendor.route("POST", r"/wp-json/wc/v3/webhooks", _woo_collection)
    for method in ("PUT", "DELETE"):
        vendor.route(method, r"/wp-json/wc/v3/webhooks/(?P<id>\d+)", _woo_item)
    return vendor


# --- BigCommerce -----------------------------------------------------------------------------------

def _bc_error(status: int, title: str, errors: dict | None = None) -> Response:
    body = {"status": status, "title": title, "type": "/api-docs/getting-started/api-status-codes"}
    return _json({**body, "errors": errors} if errors else body, status)


def _bc_hooks(vendor: FakeVendor, request: Request, match) -> Response:
    if request.headers.get("X-Auth-Token") != BC_TOKEN or match.group("store") != BC_STORE:
        return _bc_error(401, "Unauthorized - the v3 Auth client ID or token in the request are not a valid "
                              "combination for this store.")
    items = vendor.state.setdefault("items", {})
    if request.method == "GET":
        page, limit = int(request.args.get("page", 1)), int(request.args.get("limit", 50))
        ordered = [r for _, r in sorted(items.items())]
        chosen = ordered[(page - 1) * limit: page * limit]
        pages = max(1, -(-len(ordered) // limit))
        return _json({"data": chosen, "meta": {"pagination": {
            "total": len(ordered), "count": len(chosen), "per_page": limit, "current_page": page,
            "total_pages": pages, "links": {"current": f"?limit={limit}&page={page}"}}}})
    body = request.get_json()
    if not body.get("scope") or not body.get("destination"):
        return _bc_error(422, "JSON data is missing or invalid",
                         {"destination" if body.get("scope") else "scope": "error.path.missing"})
    ident = _next_id(vendor)
    items[ident] = {"id": ident, "client_id": "fakeclientid", "store_hash": BC_STORE, "scope": body["scope"],
                    "destination": body["destination"], "headers": body.get("headers"),
                    "is_active": body.get("is_active", True), "created_at": 1764921600, "updated_at": 1764921600}
    return _json({"data": items[ident], "meta": {}})


def _bc_hook(vendor: FakeVendor, request: Request, match) -> Response:
    if request.headers.get("X-Auth-Token") != BC_TOKEN:
        return _bc_error(401, "Unauthorized")
    items = vendor.state.setdefault("items", {})
    record = items.get(int(match.group("id")))
    if record is None:
        return _bc_error(404, f"Webhook with id [{match.group('id')}] not found")
    if request.method == "DELETE":
        del items[record["id"]]
    elif request.method == "PUT":
        body = request.get_json()
        record.update({k: body[k] for k in ("scope", "destination", "is_active", "headers") if k in body})
    return _json({"data": record, "meta": {}})


def bigcommerce_webhooks_vendor() -> FakeVendor:
    vendor = FakeVendor()
    for method in ("GET", "POST"):
        vendor.route(method, r"/stores/(?P<store>[^/]+)/v3/hooks", _bc_hooks)
    for method in ("GET", "PUT", "DELETE"):
        vendor.route(method, r"/stores/(?P<store>[^/]+)/v3/hooks/(?P<id>\d+)", _bc_hook)
    return vendor


# --- what a test does to a platform's subscriptions --------------------------------------------------

TOPIC_FIELD = {"shopify": "topic", "woocommerce": "topic", "bigcommerce": "scope"}
URL_FIELD = {"shopify": "uri", "woocommerce": "delivery_url", "bigcommerce": "destination"}


def records(vendor: FakeVendor) -> list[dict]:
    return list(vendor.state.setdefault("items", {}).values())


def find(vendor: FakeVendor, platform: str, topic: str) -> dict:
    """The (first) subscription of `topic` (Shopify: its enum, e.g. ORDERS_PAID)."""
    return next(r for r in records(vendor) if r[TOPIC_FIELD[platform]] == topic)


def add_foreign(vendor: FakeVendor, platform: str, topic: str, url: str) -> dict:
    """A subscription someone else made (another app, the merchant), which stagesync must leave alone."""
    ident = _next_id(vendor)
    record = {"shopify": {"id": f"gid://shopify/WebhookSubscription/{ident}", "topic": topic, "uri": url},
              "woocommerce": {"id": ident, "name": "other", "status": "active", "topic": topic, "delivery_url": url},
              "bigcommerce": {"id": ident, "scope": topic, "destination": url, "headers": None, "is_active": True},
              }[platform]
    vendor.state.setdefault("items", {})[record["id"]] = record
    return record
