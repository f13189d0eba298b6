"""Privacy data requests (Shopify `customers/data_request`): every one received is recorded with
the identities it names; the store owner lists them (`stagesync requests`, the dashboard) and
exports the customer's stored data as JSON to answer it (docs/cli.md, 'requests').
"""

from __future__ import annotations

from datetime import datetime

from connector.config import ShopSettings
from connector.errors import UserError
from connector.services.customer_view import identity_key, view_of_key
from connector.services.reports import iso
from connector.storage.intake import count_data_requests, shop_data_requests
from connector.storage.store import Store
from connector.storage.values import from_micros


def _request(row) -> dict:
    return {"id": row.id, "request_id": row.request_id, "received_at": iso(from_micros(row.received_at)),
            "email": row.email, "phone": row.phone, "customer_id": row.customer_id,
            "orders_requested": list(row.orders_requested), "customer": row.customer_key}


def list_requests(store: Store, shop: ShopSettings, limit: int | None = None) -> tuple[list[dict], int]:
    """The shop's recorded requests, newest first (at most `limit`), and how many there are in all."""
    with store.read() as conn:
        return [_request(row) for row in shop_data_requests(conn, shop.id, limit=limit)], \
            count_data_requests(conn, shop.id)


def export_request(store: Store, shop: ShopSettings, request_row: int, now: datetime) -> dict:
    """The answer to one request: the request, and every customer it names (by email, phone, the
    platform's customer id or the orders requested) with their orders, stages and stage history
    as stored at `now`. A request naming no one stored gets an empty list of customers."""
    with store.read() as conn:
        rows = shop_data_requests(conn, shop.id, request_row=request_row)
        if not rows:
            raise UserError(f"no data request {request_row} in shop {shop.id} (`stagesync requests --shop {shop.id}` "
                            "lists them)")
        row = rows[0]
        keys = {key for key in (row.customer_key, row.email, row.phone) if key}
        keys |= {key for key in store.orders_named(conn, shop.id, (), row.customer_id, row.orders_requested).values()
                 if key}
    keys = {identity_key(shop, key) for key in keys} - {None}
    views = [view_of_key(store, shop, key, now) for key in sorted(keys)]
    return {"shop": shop.id, "at": iso(now), "request": _request(row),
            "customers": [view for view in views if view is not None]}
