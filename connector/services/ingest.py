"""A webhook delivery, from raw bytes to committed state, in one transaction (docs/architecture.md,
'The path of one webhook').

verify the raw body (before any parsing) -> parse into platform-neutral actions -> in ONE
transaction: de-duplicate by delivery id, apply the actions, re-evaluate every customer they
touch, queue the sync. Only after that commit does the caller answer 200. Deliveries that arrive
together share their transaction (connector.storage.group_commit): one commit for all of them, and order
deliveries of one shop share their statements too (`write_order_deliveries`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping, Sequence

from sqlalchemy import Connection

from connector.domain import inbound as actions
from connector.config import ShopSettings
from connector.services.evaluation import evaluate_customers
from connector.services.intake_health import note_accepted
from connector.domain.inbound import Inbound
from connector.domain.orders import Order, contact_key, customer_key, in_shop_currency, normalise_email, normalise_phone
from connector.storage.store import Store

log = logging.getLogger("stagesync.ingest")
CLOCK_SKEW_ALLOWANCE = timedelta(days=1)


@dataclass(frozen=True)
class Receipt:
    """What the platform is told (`status`), and what happened, for logs and metrics."""

    status: str  # accepted | duplicate | ignored
    topic: str = ""
    reason: str | None = None


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
    receipt = _handle(store, shop, platform, headers, body, now)
    note_accepted(store, shop, receipt.topic, now)  # intake health: this topic's webhooks arrive
    return receipt


def _handle(store: Store, shop: ShopSettings, platform, headers: Mapping[str, str], body: bytes,
            now: datetime) -> Receipt:
    """A verified delivery: parsed, and applied in the shared transaction."""
    delivery = platform.parse(headers, body, shop)
    if delivery.fetch_order_id is not None:  # platforms whose webhook carries only an id
        if delivery.delivery_id and store.delivery_seen(shop.id, delivery.delivery_id):
            return Receipt("duplicate", delivery.topic)  # no API call for a repeated callback
        delivery = platform.fetch(shop, delivery)
    if not delivery.actions:
        return Receipt("ignored", delivery.topic, delivery.ignored_reason)
    delivery = in_shop_currency_actions(delivery, shop)
    return store.commits.run(Write(store, shop, delivery, now))  # committed when it returns


def in_shop_currency_actions(delivery: Inbound, shop: ShopSettings) -> Inbound:
    """The delivery with each order's amounts in the shop's currency, or flagged when no rate
    converts them (connector.domain.orders.in_shop_currency)."""
    converted = tuple(actions.UpsertOrder(in_shop_currency(a.order, shop.currency, shop.rates))
                      if isinstance(a, actions.UpsertOrder) else a for a in delivery.actions)
    return dataclasses.replace(delivery, actions=converted)


@dataclass(frozen=True, eq=False)
class Write:
    """One delivery's work in the shared transaction (connector.storage.group_commit).

    A delivery that only carries an order is an `order delivery`: next to each other in a group,
    the order deliveries of one shop run as one batch (`write_order_deliveries`), with one
    statement per step for all of them. Any other delivery runs alone (`__call__`).
    """

    store: Store
    shop: ShopSettings
    delivery: Inbound
    now: datetime

    @property
    def order(self) -> Order | None:
        """The delivery's order, when that is all it carries."""
        todo = self.delivery.actions
        return todo[0].order if len(todo) == 1 and isinstance(todo[0], actions.UpsertOrder) else None

    @property
    def batch_key(self) -> tuple | None:
        return None if self.order is None else ("orders", self.shop.id)

    @staticmethod
    def run_batch(conn: Connection, batch: Sequence["Write"]) -> list[Receipt]:
        return write_order_deliveries(conn, batch)

    def __call__(self, conn: Connection) -> Receipt:
        if self.order is not None:
            return write_order_deliveries(conn, [self])[0]
        store, shop, delivery = self.store, self.shop, self.delivery
        if delivery.delivery_id and not store.record_delivery(conn, shop.id, delivery.delivery_id,
                                                              delivery.topic, self.now):
            return Receipt("duplicate", delivery.topic)
        touched = apply(store, conn, shop, delivery.actions, self.now)
        evaluate_customers(store, conn, shop, touched, evaluation_instant(delivery.actions, self.now))
        return Receipt("accepted", delivery.topic)


def write_order_deliveries(conn: Connection, batch: Sequence[Write]) -> list[Receipt]:
    """Order deliveries of one shop, in one go: their delivery ids recorded, their orders stored
    (the newest version wins, as one at a time) and the customers they touched re-evaluated at
    the latest of their instants, each step one statement for the whole batch.

    A delivery repeating an earlier one's delivery id or order id runs after the others, in a
    batch of its own: it must see what the earlier one wrote.
    """
    store, shop = batch[0].store, batch[0].shop
    first, repeats = _first_of_each(batch)
    delivery_ids = [(w.delivery.delivery_id, w.delivery.topic) for w in first if w.delivery.delivery_id]
    fresh_ids = store.record_deliveries(conn, shop.id, delivery_ids, max(w.now for w in first))
    accepted = [w for w in first if not w.delivery.delivery_id or w.delivery.delivery_id in fresh_ids]
    receipts = {id(w): Receipt("duplicate", w.delivery.topic) for w in first}
    receipts.update((id(w), Receipt("accepted", w.delivery.topic)) for w in accepted)
    touched: set[str] = set()
    for write, stored in zip(accepted, store.store_orders(conn, [w.order for w in accepted])):
        if stored.changed:
            touched.update(k for k in (stored.previous_key, write.order.customer_key) if k)
    if accepted:
        at = max(evaluation_instant(w.delivery.actions, w.now) for w in accepted)
        evaluate_customers(store, conn, shop, touched, at)
    if repeats:
        receipts.update(zip(map(id, repeats), write_order_deliveries(conn, repeats)))
    return [receipts[id(w)] for w in batch]


def _first_of_each(batch: Sequence[Write]) -> tuple[list[Write], list[Write]]:
    """The deliveries whose delivery id and order id no earlier delivery of `batch` has, and the others."""
    first, repeats, seen = [], [], set()
    for write in batch:
        ids = {("order", write.order.order_id)} | ({("delivery", write.delivery.delivery_id)}
                                                   if write.delivery.delivery_id else set())
        (repeats if ids & seen else first).append(write)
        seen |= ids
    return first, repeats


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
            key = contact_key(action.email, action.phone, shop.country)
            if key and not store.known_customer(conn, shop.id, key):
                touched.add(key)
        elif isinstance(action, actions.RedactCustomer):
            identities = (normalise_email(action.email), normalise_phone(action.phone, shop.country))
            forgotten = store.redact_customer(conn, shop.id, identities, action.order_ids, action.customer_id)
            touched -= forgotten
            # the sync worker finds no state and clears the properties it wrote, for every key forgotten
            store.enqueue(conn, shop.id, [d.name for d in shop.destinations], sorted(forgotten), now)
        elif isinstance(action, actions.RedactShop):
            store.redact_shop(conn, shop.id)
            touched.clear()
        elif isinstance(action, actions.RecordDataRequest):  # recorded even when it names no one
            email, phone = normalise_email(action.email), normalise_phone(action.phone, shop.country)
            store.record_data_request(conn, shop.id, customer_key(email, phone), action.request_id, now,
                                      email=email, phone=phone, customer_id=action.customer_id,
                                      orders_requested=action.orders_requested)
        else:  # pragma: no cover - a new action type must be handled here
            raise TypeError(f"unhandled action {type(action).__name__}")
    return touched
