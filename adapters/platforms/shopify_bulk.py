"""A large shop's orders through a Shopify bulk operation: run the query, wait for it, read its JSONL file.

https://shopify.dev/docs/api/usage/bulk-operations/queries: `bulkOperationRunQuery` starts the
operation, `currentBulkOperation` (or `node(id)`) is polled until COMPLETED, then its `url` is a
JSONL file, one object a line. Bulk queries have no cost limit. The read is resumable: each page's
state names the operation and the last line stored, and a resumed read skips the lines already
stored (an operation whose file expired is started again).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator, Mapping

from adapters.platforms.api import Page, map_records
from adapters.platforms.shopify_client import ShopifyClient
from adapters.platforms.shopify_order import ORDER_FIELDS
from connector.domain.orders import Order
from connector.errors import PlatformApiError

BULK_POLL_SECONDS = 10.0  # between two looks at a running bulk operation
BULK_MAX_SECONDS = 6 * 3600.0  # a bulk operation still running after this is given up
BULK_PAGE = 1_000  # JSONL lines stored (and checkpointed) together

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

Mapper = Callable[[Mapping[str, Any]], "Order | None"]


def bulk_pages(client: ShopifyClient, search: str | None, operation_id: str | None, done: int,
               order: Mapper) -> Iterator[Page]:
    """The orders matching `search` (a search filter or None), in pages of BULK_PAGE lines mapped by
    `order`; `operation_id` and `done` resume an earlier read after its last stored line."""
    operation = _bulk_node(client, operation_id) if operation_id else None
    if operation is None or operation.get("status") in BULK_DEAD:  # none yet, or its file expired
        operation_id, done, operation = _start_bulk(client, search), 0, None
    if operation is None or operation.get("status") != "COMPLETED":
        operation = _await_bulk(client, operation_id)
    url = operation.get("url")
    total = int(operation.get("objectCount") or 0) or None
    if not url:  # a completed operation that found nothing has no file
        yield Page((), json.dumps({"mode": "bulk", "bulk": operation_id, "line": 0}), 0, 0, 0)
        return
    yield from _read_bulk_file(client, url, operation_id, done, total, order)


def _start_bulk(client: ShopifyClient, search: str | None) -> str:
    query = BULK_QUERY % (json.dumps(search) if search else '""', ORDER_FIELDS)
    if not search:
        query = query.replace('(query: "", ', "(")
    payload = client.graphql(BULK_RUN, {"query": query})["bulkOperationRunQuery"] or {}
    errors = payload.get("userErrors") or []
    if errors:
        said = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
        raise PlatformApiError(f"{client.where}: the bulk query was refused: {client.http.hide(said)}")
    return str(payload["bulkOperation"]["id"])


def _bulk_node(client: ShopifyClient, operation_id: str) -> dict | None:
    node = client.graphql(BULK_NODE, {"id": operation_id}).get("node")
    return node if isinstance(node, dict) and node.get("id") == operation_id else None


def _await_bulk(client: ShopifyClient, operation_id: str) -> dict:
    waited = 0.0
    while True:
        operation = client.graphql(BULK_CURRENT).get("currentBulkOperation")
        if not isinstance(operation, dict) or operation.get("id") != operation_id:
            operation = _bulk_node(client, operation_id)  # another operation started since: ask for ours
        if operation is None:
            raise PlatformApiError(f"{client.where}: bulk operation {operation_id} disappeared")
        status = operation.get("status")
        if status == "COMPLETED":
            return operation
        if status in BULK_DEAD:
            raise PlatformApiError(f"{client.where}: bulk operation {status.lower()}"
                                   f"{' (' + str(operation.get('errorCode')) + ')' if operation.get('errorCode') else ''}"
                                   "; run the backfill again")
        if waited >= BULK_MAX_SECONDS:
            raise PlatformApiError(f"{client.where}: bulk operation still {str(status).lower()} after "
                                   f"{BULK_MAX_SECONDS / 3600:g} h; run the backfill again to keep waiting")
        client.sleep(BULK_POLL_SECONDS)
        waited += BULK_POLL_SECONDS


def _read_bulk_file(client: ShopifyClient, url: str, operation_id: str, done: int, total: int | None,
                    order: Mapper) -> Iterator[Page]:
    # The file is a signed storage URL: no Shopify token goes with it.
    response = client.http.request("GET", url, stream=True)
    line_number = 0
    batch: list[dict] = []

    def page() -> Page:
        orders, skipped = map_records(client, batch, order)
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
