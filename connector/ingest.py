"""A webhook delivery, from raw bytes to committed state, in one transaction (SPEC section 4).

verify the raw body (before any parsing) -> parse into platform-neutral actions -> in ONE
transaction: de-duplicate by delivery id, apply the actions, re-evaluate every customer they
touch, queue the sync. Only after that commit does the caller answer 200. Deliveries that arrive
together share their transaction (connector.group_commit): one commit for all of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping

from sqlalchemy import Connection

from connector import inbound as actions
from connector.config import ShopSettings
from connector.evaluation import current_shop_figures, evaluate_customer
from connector.orders import customer_key, normalise_email, normalise_phone
from connector.store import Store

log = logging.getLogger("stagesync.ingest")
CLOCK_SKEW_ALLOWANCE = timedelta(days=1)


@dataclass(frozen=True)
class Receipt:
    """What the platform is told (`status`), and what happened, for logs and metrics."""

    status: str  # accepted | duplicate | ignored
    topic: str = ""
    reason: str | None = None
    customers: int = 0


def platform_for(shop: ShopSettings):
    from adapters.platforms import get

    return get(shop.platform)


def receive(store: Store, shop: ShopSettings, headers: Mapping[str, str], body: bytes, now: datetime,
            platform=None) -> Receipt:
    """Verify, parse and durably apply one delivery. Raises SignatureError (401), PayloadError
    (400) or StorageUnavailableError (503); returns only once the changes are committed."""
    platform = platform or platform_for(shop)
    if getattr(platform, "is_ping", None) and platform.is_ping(headers, body):
        return Receipt("ignored", "ping", "webhook creation ping")
    platform.verify(headers, body, shop.webhook_secret, now)
    delivery = platform.parse(headers, body, shop)
    if delivery.fetch_order_id is not None:  # platforms whose webhook carries only an id
        if delivery.delivery_id and store.delivery_seen(shop.id, delivery.delivery_id):
            return Receipt("duplicate", delivery.topic)  # no API call for a repeated callback
        delivery = platform.fetch(shop, delivery)
    if not delivery.actions:
        return Receipt("ignored", delivery.topic, delivery.ignored_reason)
    at = evaluation_instant(delivery.actions, now)

    def write(conn: Connection) -> Receipt:
        if delivery.delivery_id and not store.record_delivery(conn, shop.id, delivery.delivery_id,
                                                              delivery.topic, now):
            return Receipt("duplicate", delivery.topic)
        touched = apply(store, conn, shop, delivery.actions, now)
        if touched:
            store.lock_customers(conn, shop.id, touched)  # a concurrent delivery's order must be seen
            figures = current_shop_figures(store, conn, shop, at)
            for key in sorted(touched):
                evaluate_customer(store, conn, shop, key, at, figures)
        return Receipt("accepted", delivery.topic, customers=len(touched))

    return store.commits.run(write)  # committed when it returns


def evaluation_instant(todo, now: datetime) -> datetime:
    """Now, or a delivered order's `placed_at` when the platform's clock runs up to a day ahead of
    ours: a brand-new order must count at once, not be ignored as "placed after now"."""
    placed = [a.order.placed_at for a in todo if isinstance(a, actions.UpsertOrder)
              and now < a.order.placed_at <= now + CLOCK_SKEW_ALLOWANCE]
    return max([now, *placed])


def apply(store: Store, conn: Connection, shop: ShopSettings, todo, now: datetime) -> set[str]:
    """Apply the actions; return the customers to re-evaluate."""
    touched: set[str] = set()
    for action in todo:
        if isinstance(action, actions.UpsertOrder):
            order = action.order
            written = store.store_order(conn, order)
            if written.changed:
                touched.update(k for k in (written.previous_key, order.customer_key) if k)
        elif isinstance(action, actions.DeleteOrder):
            key = store.delete_order(conn, shop.id, action.order_id, action.updated_at)
            touched.update([key] if key else [])
        elif isinstance(action, actions.RecordRefund):
            new, key = store.record_refund(conn, shop.id, action.order_id, action.refund_id, action.amount,
                                           action.created_at)
            touched.update([key] if new and key else [])
        elif isinstance(action, actions.SeeCustomer):
            key = _key(action.email, action.phone, shop)
            if key and not store.known_customer(conn, shop.id, key):
                touched.add(key)
        elif isinstance(action, actions.RedactCustomer):
            key = _key(action.email, action.phone, shop)
            store.redact_customer(conn, shop.id, key, action.order_ids)
            touched.discard(key)
            if key:  # the sync worker finds no state and clears the properties it wrote
                store.enqueue(conn, shop.id, [d.name for d in shop.destinations], [key], now)
        elif isinstance(action, actions.RedactShop):
            store.redact_shop(conn, shop.id)
            touched.clear()
        elif isinstance(action, actions.RecordDataRequest):
            key = _key(action.email, action.phone, shop)
            if key:
                store.record_data_request(conn, shop.id, key, action.request_id, now)
        else:  # pragma: no cover - a new action type must be handled here
            raise TypeError(f"unhandled action {type(action).__name__}")
    return touched


def _key(email: str | None, phone: str | None, shop: ShopSettings) -> str | None:
    return customer_key(normalise_email(email), normalise_phone(phone, shop.country))
