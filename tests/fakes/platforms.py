"""Platform APIs for tests, answered by `responses` from the documented shapes in tests/fixtures/.

`FakeShopify` answers the Admin GraphQL endpoint like Shopify does: cursor pages of the orders it
holds (filtered and sorted as asked), `ordersCount`, the bulk operation mutation and status, with
failures scripted in between. `generated_orders` makes one set of orders that tests send both as
signed webhooks and as API pages, to show that both paths store the same thing.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import responses

FIXTURES = Path(__file__).parents[1] / "fixtures"
SHOPIFY_ENDPOINT = "https://acme.myshopify.com/admin/api/2026-10/graphql.json"
SHOPIFY_TOKEN = "shpat_0123456789abcdef0123456789abcdef"


def fixture(platform: str, name: str):
    path = FIXTURES / platform / name
    return json.loads(path.read_text(encoding="utf-8")) if path.suffix == ".json" else path.read_text(encoding="utf-8")


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class NoSleep:
    """The injected sleep: records the pauses asked for, never waits."""

    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


# --- Shopify ----------------------------------------------------------------------------------------

_OPERATION = re.compile(r"\b(?:query|mutation)\s+(\w+)")
_FILTER = re.compile(r"(created_at|updated_at):>='([^']+)'")


def _envelope(data: dict, requested: int = 992) -> dict:
    return {"data": data, "extensions": {"cost": {
        "requestedQueryCost": requested, "actualQueryCost": min(requested, 14),
        "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1986, "restoreRate": 100.0}}}}


class FakeShopify:
    """The GraphQL Admin API of one shop, holding `nodes` (GraphQL `Order` objects)."""

    def __init__(self, rsps: responses.RequestsMock, nodes: list[dict], endpoint: str = SHOPIFY_ENDPOINT):
        self.nodes = nodes
        self.calls: list[tuple[str, dict, dict]] = []  # (operation, variables, headers)
        self.scripted: deque = deque()  # answers given, in order, before the normal ones
        self.page_failures: dict[int, list] = {}  # orders page number (1-based) -> answers to give first
        self.pages_served = 0
        self.bulk_statuses: deque = deque()
        rsps.add_callback(responses.POST, endpoint, callback=self.handle)

    def script(self, status: int, body, headers: dict | None = None) -> None:
        self.scripted.append((status, headers or {}, json.dumps(body)))

    def fail_page(self, number: int, *answers: tuple[int, dict]) -> None:
        self.page_failures[number] = [(s, {}, json.dumps(b)) for s, b in answers]

    def operations(self, name: str) -> list[dict]:
        return [variables for operation, variables, _ in self.calls if operation == name]

    def handle(self, request):
        payload = json.loads(request.body)
        match = _OPERATION.search(payload["query"])
        operation = match.group(1) if match else "anonymous"
        variables = payload.get("variables") or {}
        self.calls.append((operation, variables, dict(request.headers)))
        if self.scripted:
            return self.scripted.popleft()
        if operation == "StagesyncOrders":
            number = self.pages_served + 1
            failures = self.page_failures.get(number)
            if failures:
                return failures.pop(0)
            self.pages_served = number
            return 200, {}, json.dumps(self.page(variables))
        if operation == "StagesyncOrdersCount":
            count = len(self.matching(variables.get("query")))
            limit = variables.get("limit")
            precise = limit is None or count < limit
            return 200, {}, json.dumps(_envelope({"ordersCount": {
                "count": count if precise else limit, "precision": "EXACT" if precise else "AT_LEAST"}}, 1))
        if operation == "StagesyncBulk":
            return 200, {}, json.dumps(fixture("shopify", "graphql/bulk_run.json"))
        if operation in ("StagesyncBulkCurrent", "StagesyncBulkNode"):
            status = self.bulk_statuses.popleft() if len(self.bulk_statuses) > 1 else self.bulk_statuses[0]
            body = fixture("shopify", f"graphql/bulk_{status.lower()}.json")
            if operation == "StagesyncBulkNode":
                body["data"] = {"node": body["data"]["currentBulkOperation"]}
            return 200, {}, json.dumps(body)
        return 400, {}, json.dumps({"errors": [{"message": f"unexpected operation {operation}"}]})

    def matching(self, search: str | None) -> list[dict]:
        nodes = self.nodes
        if search:
            field, since = _FILTER.search(search).groups()
            key = "createdAt" if field == "created_at" else "updatedAt"
            nodes = [n for n in nodes if n[key] >= since]
        return nodes

    def page(self, variables: dict) -> dict:
        nodes = self.matching(variables.get("query"))
        if variables.get("sortKey") == "UPDATED_AT":
            nodes = sorted(nodes, key=lambda n: (n["updatedAt"], int(n["legacyResourceId"])))
        else:
            nodes = sorted(nodes, key=lambda n: int(n["legacyResourceId"]))
        start = int(base64.b64decode(variables["after"]).decode().split(":")[1]) if variables.get("after") else 0
        chunk = nodes[start:start + int(variables["first"])]
        end = start + len(chunk)
        cursor = base64.b64encode(f"cursor:{end}".encode()).decode() if chunk else None
        return _envelope({"orders": {"pageInfo": {"hasNextPage": end < len(nodes), "endCursor": cursor},
                                     "nodes": copy.deepcopy(chunk)}})


def shopify_node(order_id: int, email: str, total: str, placed: datetime, updated: datetime, *,
                 status: str = "placed", refunded: str | None = None, test: bool = False) -> dict:
    """A GraphQL `Order` built on the documented fixture, with the fields a test cares about."""
    node = copy.deepcopy(fixture("shopify", "graphql/order_node.json"))
    financial = {"placed": "PAID", "cancelled": "PAID", "refunded": "REFUNDED"}[status]
    refunded_amount = total if status == "refunded" else (refunded or "0.00")
    if refunded and status != "refunded":
        financial = "PARTIALLY_REFUNDED"
    node.update(id=f"gid://shopify/Order/{order_id}", legacyResourceId=str(order_id), test=test, email=email,
                createdAt=iso(placed), processedAt=iso(placed), updatedAt=iso(updated),
                cancelledAt=iso(updated) if status == "cancelled" else None, displayFinancialStatus=financial,
                totalPriceSet={"shopMoney": {"amount": total, "currencyCode": "EUR"}},
                totalRefundedSet={"shopMoney": {"amount": refunded_amount, "currencyCode": "EUR"}})
    node["customer"]["defaultEmailAddress"]["emailAddress"] = email
    return node


# --- one set of orders for both paths -----------------------------------------------------------------

@dataclass(frozen=True)
class OrderSpec:
    order_id: int
    email: str
    total: str
    placed: datetime
    updated: datetime
    status: str = "placed"
    refunded: str | None = None
    test: bool = False

    def node(self) -> dict:
        return shopify_node(self.order_id, self.email, self.total, self.placed, self.updated, status=self.status,
                            refunded=self.refunded, test=self.test)

    def webhook(self, sender):
        return sender.order(self.order_id, self.email, self.total, self.placed, self.updated, status=self.status,
                            refunded=self.refunded, test=self.test)


def generated_orders(count: int, now: datetime, seed: int = 5, customers_per: int = 4) -> list[OrderSpec]:
    """`count` orders over two years from count/`customers_per` customers, with cancellations, refunds and test orders."""
    rng = random.Random(seed)
    customers = [f"customer{i:04d}@example.com" for i in range(max(1, count // customers_per))]
    specs = []
    for i in range(count):
        placed = (now - timedelta(days=rng.uniform(0, 730))).replace(microsecond=0)
        updated = placed + timedelta(hours=rng.randint(0, 72))
        total = str(Decimal(rng.randint(500, 40_000)) / 100)
        roll = rng.random()
        status, refunded = "placed", None
        if roll < 0.06:
            status = "cancelled"
        elif roll < 0.10:
            status = "refunded"
        elif roll < 0.15:
            refunded = str((Decimal(total) / 3).quantize(Decimal("0.01")))
        specs.append(OrderSpec(5_900_000_000_000 + i, rng.choice(customers), total, placed, updated, status,
                               refunded, test=rng.random() < 0.01))
    return specs
