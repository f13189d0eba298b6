"""Intake health: do a shop's webhooks still arrive? (docs/cli.md, 'Watching delivery health')

Platforms give up on an endpoint quietly: Shopify deletes a subscription after repeated failed
deliveries, WooCommerce disables a webhook after a few, BigCommerce deactivates failing hooks,
and a wrong secret turns every delivery into a 401. The 15-minute `poll` then fills the gap and
hides it. So, per shop, at an instant `now`:

- `last_accepted`: the last verified delivery of each topic (to the minute);
- `rejected`: deliveries refused in the 24 h before `now`, by reason (`REASONS`);
- `missed`: orders that `poll` or `backfill` stored first in those 24 h although the shop was
  receiving webhooks when they were placed (placed after its first verified delivery), and at
  least `MISSED_GRACE` after they were placed (sooner, their webhook may still be on its way).
  An order is missed for how it *first* arrived: a webhook that brings it later does not make
  it un-missed (the webhook was late, or is a retry of a delivery that failed: both worth a look).

Rejections are recorded by the webhook view, verified deliveries by `ingest.receive`, first
arrivals by `poll` and `backfill`. `intake_health` reads them back for `webhooks status`, the
dashboard's Intake card and `/metrics`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Sequence

from connector.config import ShopSettings
from connector.domain.orders import Order
from connector.errors import StorageUnavailableError
from connector.storage import intake_health as queries
from connector.storage.intake_health import Arrival
from connector.storage.store import Store

log = logging.getLogger("stagesync.intake")

HEALTH_WINDOW = timedelta(hours=24)
MISSED_GRACE = timedelta(minutes=5)  # an order poll finds this soon after it was placed may still get its webhook
REJECTIONS_KEPT = timedelta(days=2)
ARRIVALS_KEPT = timedelta(days=7)  # orders placed longer before `poll`/`backfill` stored them are not noted
TOPIC_NOTE_EVERY = timedelta(minutes=1)  # a topic's last verified delivery is written at most this often
UNKNOWN_SHOP = "(unknown)"  # the one bucket of deliveries to a shop id that is not configured (never a shop id)
OTHER_TOPIC = "other"  # a topic outside the platform's list
MISSED_SHOWN = 5  # order ids named in the problem line
# Why a delivery was refused: the fixed set of reasons, with what each asks of a person.
REASONS = {
    "bad_signature": "bad or missing signature: the platform signs with another secret than the shop's "
                     "webhook_secret",
    "unknown_shop": "sent to a shop id that is not configured: a webhook URL names the wrong shop",
    "malformed": "signed but malformed: the log's WARNING lines name the field",
    "too_large": "body over 1 MiB",
    "fetch_failed": "the order could not be read from the platform's API: check the shop's api credentials",
}


def topic_label(platform: str, topic: str | None) -> str:
    """The topic as stored and as a metric label: one of the platform's topics, else "other"."""
    from adapters.platforms import PLATFORMS

    module = PLATFORMS.get(platform)
    known = getattr(module, "TOPICS", ()) if module is not None else ()
    return topic if topic and topic in known else OTHER_TOPIC


@dataclass(frozen=True)
class MissedOrder:
    order_id: str
    via: str  # poll | backfill
    arrived_at: datetime
    placed_at: datetime


@dataclass(frozen=True)
class IntakeHealth:
    """A shop's delivery health at `now` (see the module's docstring for each figure)."""

    shop_id: str
    now: datetime
    last_accepted: dict[str, datetime] = field(default_factory=dict)  # topic -> last verified delivery
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> deliveries refused (reasons seen only)
    missed: list[MissedOrder] = field(default_factory=list)  # oldest first
    webhooks_since: datetime | None = None  # the shop's first verified delivery

    def problems(self) -> list[str]:
        """One line per thing that needs a person: each reason deliveries were refused, and missed orders."""
        where = "deliveries to unknown shops" if self.shop_id == UNKNOWN_SHOP else self.shop_id
        lines = [f"{where}: {n:,} webhook deliveries refused in the last 24 h: {REASONS.get(reason, reason)}"
                 for reason, n in sorted(self.rejected.items()) if n]
        if self.missed:
            named = ", ".join(m.order_id for m in self.missed[:MISSED_SHOWN])
            more = "" if len(self.missed) <= MISSED_SHOWN else ", ..."
            vias = " or ".join(sorted({m.via for m in self.missed}))
            lines.append(f"{where}: {len(self.missed):,} order(s) in the last 24 h came by {vias}, never by webhook "
                         f"({named}{more}): the platform may have disabled or deleted the webhook subscription")
        return lines

    def as_json(self) -> dict:
        return {
            "shop": self.shop_id, "at": _iso(self.now),
            "webhooks_since": _iso(self.webhooks_since) if self.webhooks_since else None,
            "last_accepted": {topic: _iso(at) for topic, at in sorted(self.last_accepted.items())},
            "rejected": dict(sorted(self.rejected.items())),
            "missed": [{"order_id": m.order_id, "via": m.via, "arrived_at": _iso(m.arrived_at),
                        "placed_at": _iso(m.placed_at)} for m in self.missed],
            "problems": self.problems(),
        }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- reading --------------------------------------------------------------------------------------

def intake_health(store: Store, shop_id: str, now: datetime) -> IntakeHealth:
    """`shop_id`'s delivery health at `now` (UNKNOWN_SHOP: the deliveries to unknown shop ids)."""
    return shops_health(store, [shop_id], now)[shop_id]


def shops_health(store: Store, shop_ids: Iterable[str], now: datetime) -> dict[str, IntakeHealth]:
    """The health of several shops at `now`, read with three queries in all."""
    wanted = list(shop_ids)
    start = now - HEALTH_WINDOW
    single = wanted[0] if len(wanted) == 1 else None
    with store.read() as conn:
        seen = queries.topics(conn, single)
        refused = queries.rejections(conn, start, now, single)
        arrived = queries.arrivals(conn, start, now, single)
    result = {}
    for shop_id in wanted:
        since = min((first for (shop, _), (first, _) in seen.items() if shop == shop_id), default=None)
        result[shop_id] = IntakeHealth(
            shop_id=shop_id, now=now,
            last_accepted={topic: last for (shop, topic), (_, last) in seen.items() if shop == shop_id},
            rejected={reason: n for (shop, reason), n in refused.items() if shop == shop_id and n},
            missed=[MissedOrder(a.order_id, a.via, a.arrived_at, a.placed_at)
                    for a in arrived if a.shop_id == shop_id and is_missed(a, since)],
            webhooks_since=since)
    return result


def is_missed(arrival: Arrival, webhooks_since: datetime | None) -> bool:
    """Whether a webhook should have brought this order before poll or backfill did."""
    return (webhooks_since is not None and arrival.placed_at >= webhooks_since
            and arrival.arrived_at - arrival.placed_at >= MISSED_GRACE)


# --- recording ------------------------------------------------------------------------------------

def note_rejected(store: Store, shop_id: str | None, reason: str, now: datetime) -> None:
    """Count a refused delivery (`shop_id` None: an unknown shop). Best effort: a database that
    does not answer loses the count, never changes the answer the platform gets."""
    if reason not in REASONS:
        raise ValueError(f"unknown rejection reason {reason!r}; one of {', '.join(REASONS)}")
    try:
        with store.transaction() as conn:
            queries.add_rejection(store, conn, shop_id or UNKNOWN_SHOP, reason, now, now - REJECTIONS_KEPT)
    except StorageUnavailableError:
        log.warning("rejected delivery not counted: storage unavailable shop=%s reason=%s",
                    shop_id or UNKNOWN_SHOP, reason)


def note_accepted(store: Store, shop: ShopSettings, topic: str | None, now: datetime) -> None:
    """Note a verified delivery of `topic`, at most once a minute per shop and topic and process."""
    label = topic_label(shop.platform, topic)
    key = (shop.id, label)
    noted = store.topics_noted.get(key)
    if noted is not None and noted <= now < noted + TOPIC_NOTE_EVERY:
        return
    try:
        with store.transaction() as conn:
            queries.note_topic(store, conn, shop.id, label, now, now - TOPIC_NOTE_EVERY)
    except StorageUnavailableError:
        return  # the delivery itself is committed; the next one notes the topic
    store.topics_noted[key] = now


def note_first_arrivals(store: Store, conn, shop_id: str, orders: Sequence[Order], via: str, now: datetime) -> None:
    """In a poll's or backfill's page transaction, before its orders are stored: note the recent
    ones (placed in the last week) not stored yet as first brought by `via`."""
    recent = [(o.order_id, o.placed_at) for o in orders if o.placed_at > now - ARRIVALS_KEPT]
    queries.note_arrivals(store, conn, shop_id, recent, via, now)


def prune_arrivals(store: Store, shop_id: str, now: datetime) -> None:
    """Forget the shop's first arrivals older than a week (at the end of each poll and backfill)."""
    with store.transaction() as conn:
        queries.prune_arrivals(conn, shop_id, now - ARRIVALS_KEPT)
