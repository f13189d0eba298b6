"""Orders read through a platform's API: `backfill` (history) and `poll` (what changed lately).

- `backfill`: every page the platform's client yields is stored with `store.upsert_orders` (the
  rules of webhooks: an order is rewritten only by a newer version) in one transaction together
  with the checkpoint that follows it. An interrupted backfill resumes after its last stored page;
  a finished one, run again, reads everything again and changes nothing. Then the shop is
  recomputed (`evaluation.recompute`), which queues the sync of every customer that changed; a
  shop with no stage history yet first has it replayed on the days it happened (`replay`).
- `poll`: the orders created or modified since the shop's poll cursor (less a small overlap), each
  stored and its customer re-evaluated exactly as a webhook does (`store.store_orders`,
  `evaluation.evaluate_customers`), a page a transaction. The cursor moves to the poll's start
  once every page is stored, so an interrupted poll is simply done again. This is WiziShop's only
  feed, and on the other platforms the reconciliation that catches webhooks that never arrived.

Both note the orders they store first, before any webhook brought them: intake health
(connector.services.intake_health) reports those as "missed" webhooks.

Platforms whose orders carry no modification time (`client.versioned` False: WiziShop) have each
order compared with the stored one; a changed order is stored with the read instant as its version.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterable, Sequence

from connector.config import ShopSettings
from connector.services.evaluation import RecomputeResult, evaluate_customers, recompute
from connector.services.intake_health import note_first_arrivals, prune_arrivals
from connector.services.replay import ReplayResult, replay_if_new
from connector.domain.orders import Order, in_shop_currency
from connector.storage.store import Store

BACKFILL = "backfill"
POLL = "poll"
POLL_OVERLAP = timedelta(minutes=10)  # re-read a little before the cursor: late commits, clock skew
FIRST_POLL_WINDOW = timedelta(days=1)  # a shop never polled nor backfilled: the last day only
_ONE_MICROSECOND = timedelta(microseconds=1)

Progress = Callable[[int, "int | None"], None]


@dataclass
class ReadResult:
    """What a backfill or a poll did."""

    since: datetime | None = None
    fetched: int = 0  # records read from the platform (a resumed backfill counts those of before too)
    stored: int = 0  # orders new or newer than the stored version
    unchanged: int = 0  # orders already stored as they are
    skipped: int = 0  # test orders, drafts, abandoned carts, unreadable records
    pages: int = 0
    resumed: bool = False
    customers: int = 0  # customers re-evaluated (poll)
    recompute: RecomputeResult | None = None  # backfill
    replayed: ReplayResult | None = None  # a first backfill: the stage history replayed on its days


@dataclass
class Checkpoint:
    """The backfill's row in `sync_cursors`: where to resume, and for which `--since`."""

    since: str | None
    state: str | None
    fetched: int
    started: str
    done: bool = False

    @classmethod
    def load(cls, raw: str | None) -> "Checkpoint | None":
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return cls(data.get("since"), data.get("state"), int(data.get("fetched", 0)), data["started"],
                       bool(data.get("done")))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None  # unreadable: start again (storing twice changes nothing)

    def dump(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _client(shop: ShopSettings, client):
    if client is not None:
        return client
    from adapters.platforms.api import api_client

    return api_client(shop)


def backfill(store: Store, shop: ShopSettings, now: datetime, *, since: datetime | None = None, client=None,
             progress: Progress | None = None, recompute_progress: Progress | None = None) -> ReadResult:
    """Read every order placed since `since` (None: all the API allows), store them, recompute."""
    client = _client(shop, client)
    with store.read() as conn:
        previous = Checkpoint.load(store.load_cursor(conn, shop.id, BACKFILL))
    resuming = previous is not None and not previous.done and previous.since == _iso(since)
    checkpoint = previous if resuming else Checkpoint(_iso(since), None, 0, _iso(now))
    assert checkpoint is not None
    result = ReadResult(since=since, resumed=resuming, fetched=checkpoint.fetched)
    for page in client.backfill(since, checkpoint.state if resuming else None):
        with store.transaction() as conn:
            orders = _prepare(store, conn, shop, client, page.orders, now)
            note_first_arrivals(store, conn, shop.id, orders, BACKFILL, now)
            changed = store.upsert_orders(conn, orders)
            checkpoint = dataclasses.replace(checkpoint, state=page.state, fetched=checkpoint.fetched + page.fetched)
            store.save_cursor(conn, shop.id, BACKFILL, checkpoint.dump(), now)
        _count(result, page, changed, len(page.orders))
        result.fetched = checkpoint.fetched
        if progress:
            progress(result.fetched, page.total)
    with store.transaction() as conn:
        store.save_cursor(conn, shop.id, BACKFILL, dataclasses.replace(checkpoint, done=True).dump(), now)
        if store.load_cursor(conn, shop.id, POLL) is None:  # polling goes on from the backfill's start
            store.save_cursor(conn, shop.id, POLL, checkpoint.started, now)
    prune_arrivals(store, shop.id, now)
    store.analyze("orders")
    result.replayed = replay_if_new(store, shop, now)
    result.recompute = recompute(store, shop, now, progress=recompute_progress)
    return result


def poll(store: Store, shop: ShopSettings, now: datetime, *, client=None,
         progress: Progress | None = None) -> ReadResult:
    """Store the orders changed since the last poll and re-evaluate their customers."""
    client = _client(shop, client)
    with store.read() as conn:
        cursor = store.load_cursor(conn, shop.id, POLL)
    since = datetime.fromisoformat(cursor) - POLL_OVERLAP if cursor else now - FIRST_POLL_WINDOW
    result = ReadResult(since=since)
    for page in client.changed(since):
        with store.transaction() as conn:
            orders = _prepare(store, conn, shop, client, page.orders, now)
            note_first_arrivals(store, conn, shop.id, orders, POLL, now)  # intake health: what no webhook brought
            touched: set[str] = set()
            changed = 0
            for order, written in zip(orders, store.store_orders(conn, orders)):  # the newest version wins
                if written.changed:
                    changed += 1
                    touched.update(k for k in (written.previous_key, order.customer_key) if k)
            evaluate_customers(store, conn, shop, touched, now)
        _count(result, page, changed, len(page.orders))
        result.fetched += page.fetched
        result.customers += len(touched)
        if progress:
            progress(result.fetched, page.total)
    with store.transaction() as conn:
        store.save_cursor(conn, shop.id, POLL, now.isoformat(), now)
    prune_arrivals(store, shop.id, now)
    return result


def _count(result: ReadResult, page, changed: int, mapped: int) -> None:
    result.pages += 1
    result.stored += changed
    result.unchanged += mapped - changed
    result.skipped += page.skipped


def _prepare(store: Store, conn, shop: ShopSettings, client, orders: Sequence[Order], now: datetime) -> list[Order]:
    """The page's orders for storage: of this shop, one version per order, versioned when the
    platform gives no modification time."""
    latest = [in_shop_currency(o, shop.currency, shop.rates)
              for o in newest_versions(o for o in orders if o.shop_id == shop.id)]
    if getattr(client, "versioned", True):
        return latest
    return stamp_changes(store, conn, shop.id, latest, now)


def newest_versions(orders: Iterable[Order]) -> list[Order]:
    """One order per id: the newest by `updated_at` (a page can hold an order twice)."""
    by_id: dict[str, Order] = {}
    for order in orders:
        kept = by_id.get(order.order_id)
        if kept is None or (order.updated_at or datetime.min.replace(tzinfo=order.placed_at.tzinfo)) > \
                (kept.updated_at or datetime.min.replace(tzinfo=order.placed_at.tzinfo)):
            by_id[order.order_id] = order
    return list(by_id.values())


def stamp_changes(store: Store, conn, shop_id: str, orders: Sequence[Order], now: datetime) -> list[Order]:
    """Orders without a modification time, compared with the stored ones: new ones as they are,
    unchanged ones dropped, changed ones versioned with `now` (after the stored version)."""
    stored = store.stored_orders(conn, shop_id, [o.order_id for o in orders])
    result: list[Order] = []
    for order in orders:
        before = stored.get(order.order_id)
        if before is None:
            result.append(order)
            continue
        if dataclasses.replace(order, updated_at=before.updated_at) == before:
            continue
        stamp = now if before.updated_at is None or now > before.updated_at else before.updated_at + _ONE_MICROSECOND
        result.append(dataclasses.replace(order, updated_at=stamp))
    return result
