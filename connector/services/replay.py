"""Replaying a shop's stage history: each customer's stage changes on the days they happened.

A shop whose orders arrive one at a time (webhooks, polls) records each stage change as it
happens. Orders loaded in bulk (the demo's two years of webhooks sent in seconds, a first
`import` or `backfill`) would record every change at the instant of the load, so the
dashboard's movements would show steps no day could make (`lost -> about_to_lose`).
`replay_history` rebuilds the history a shop watched from its first order would have:

- each customer is evaluated with the pure rules (`connector.domain.stages.evaluate_micros`)
  at every instant its stage can change: each of its orders, an order leaving the 365-day
  window, its recency reaching a band (recent, nurture, risk, `churn_days`), and `now`;
- with the shop's figures of that instant: window totals (shop AOV) to the microsecond, and the
  recency bands a daily recompute would have stored at the start of that UTC day;
- orders count as they stand now: an order cancelled or refunded later never counted, and a
  customer with no valid order is a `prospect` from their first order on;
- a stage change caused only by the shop's figures drifting (its AOV, its adaptive bands) is
  recorded at the customer's next such instant, not on the day of the drift.

The last evaluation is at `now`, with the figures `recompute` uses there, so the states written
are those a recompute writes, with `rfm_since` / `phases_since` the days of the last changes.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from itertools import accumulate
from typing import Callable

from connector.config import ShopSettings
from connector.domain.stages import (
    ADAPTIVE_MIN_RETURNING, DAY_MICROS, Bands, PhaseSettings, RfmSettings, ShopMicros, bands_of_median,
    evaluate_micros, interval_key, interval_of_span, median_of_sorted,
)
from connector.services.evaluation import queue_time
from connector.storage.orders import history_orders
from connector.storage.states import has_stage_history, replace_stage_history
from connector.storage.store import Store
from connector.storage.values import WINDOW_MICROS, StoredState, from_micros, to_micros

Change = tuple[str, str, str | None, str, int]  # customer_key, model, from, to, at (micros)


@dataclass
class ReplayResult:
    customers: int = 0  # customers replayed
    changes: int = 0  # stage changes recorded
    written: int = 0  # stored states that changed (their `since` dates, mostly)
    queued: int = 0


@dataclass
class Timeline:
    """Valid orders, oldest first, with running sums: the figures of any instant in O(log n)."""

    placed: list[int] = field(default_factory=list)
    amounts: list[int] = field(default_factory=list)
    known: list[int] = field(default_factory=list)

    def add(self, placed: int, amount: int, known: bool) -> None:
        self.placed.append(placed)
        self.amounts.append(amount if known else 0)
        self.known.append(1 if known else 0)

    def close(self) -> "Timeline":
        """Turn the amounts and known flags into running sums (index i: the first i orders)."""
        self.amounts = [0, *accumulate(self.amounts)]
        self.known = [0, *accumulate(self.known)]
        return self

    def at(self, now: int) -> tuple[int, int, int, int, int]:
        """(orders placed <= now, first window order's index, window orders, window amount, window
        orders with a known amount)."""
        upto = bisect_right(self.placed, now)
        start = bisect_right(self.placed, now - WINDOW_MICROS, 0, upto)
        return (upto, start, upto - start, self.amounts[upto] - self.amounts[start],
                self.known[upto] - self.known[start])


class DailyBands:
    """The recency bands of each UTC day from the first order's to `now`'s, as a daily recompute
    at midnight would have stored them, and exactly at `now`. The returning customers' purchase
    intervals are kept sorted as orders enter and leave the window, so each day costs what
    changed that day."""

    def __init__(self, customers: dict[str, Timeline], rfm: RfmSettings, first: int, now: int):
        self.now = now
        self.start = first - first % DAY_MICROS
        configured = bands_of_median(None, rfm)
        if not rfm.adaptive:
            self.days, self.final = [], configured
            return
        entries = sorted((placed, key) for key, timeline in customers.items() for placed in timeline.placed)
        low = dict.fromkeys(customers, 0)
        high = dict.fromkeys(customers, 0)
        current: dict[str, tuple[float, Fraction]] = {}
        ordered: list[tuple[float, Fraction]] = []
        added = left = 0

        def advance(until: int) -> None:
            nonlocal added, left
            touched = set()
            while added < len(entries) and entries[added][0] <= until:
                high[entries[added][1]] += 1
                touched.add(entries[added][1])
                added += 1
            while left < len(entries) and entries[left][0] <= until - WINDOW_MICROS:
                low[entries[left][1]] += 1
                touched.add(entries[left][1])
                left += 1
            for key in touched:
                old = current.pop(key, None)
                if old is not None:
                    del ordered[bisect_left(ordered, old)]
                count = high[key] - low[key]
                if count >= 2:
                    placed = customers[key].placed
                    entry = interval_key(interval_of_span(placed[high[key] - 1] - placed[low[key]], count))
                    current[key] = entry
                    insort(ordered, entry)

        def bands() -> Bands:
            if len(ordered) < ADAPTIVE_MIN_RETURNING:
                return configured
            n = len(ordered)
            return bands_of_median(median_of_sorted([f for _, f in ordered[(n - 1) // 2:n // 2 + 1]]), rfm)

        self.days = []
        for midnight in range(self.start, now + 1, DAY_MICROS):
            advance(midnight)
            self.days.append(bands())
        advance(now)
        self.final = bands()

    def at(self, instant: int) -> Bands:
        if instant >= self.now or not self.days:
            return self.final
        return self.days[(instant - self.start) // DAY_MICROS]


def replay_customer(key: str, orders: Timeline, shop_at: Callable[[int], ShopMicros], phases: PhaseSettings,
                    now: int) -> tuple[list[Change], tuple]:
    """One customer's stage changes from their first order to `now`, and their state at `now`
    (the `StoredState` fields)."""
    changes: list[Change] = []
    rfm = phase = None
    rfm_at = phase_at = instant = orders.placed[0]
    while True:
        upto, start, count, amount, known = orders.at(instant)
        last = orders.placed[upto - 1]
        shop = shop_at(instant)
        new_rfm, new_phase = evaluate_micros(count, amount, upto, last, shop, phases, instant, known)
        if new_rfm != rfm:
            changes.append((key, "rfm", rfm, new_rfm, instant))
            rfm, rfm_at = new_rfm, instant
        if new_phase != phase:
            changes.append((key, "phases", phase, new_phase, instant))
            phase, phase_at = new_phase, instant
        if instant >= now:
            state = (rfm, _day(rfm_at), phase, _day(phase_at), count, upto, amount, orders.amounts[upto],
                     orders.placed[0], last, known)
            return changes, state
        bands = shop.bands
        candidates = [now]
        if upto < len(orders.placed):
            candidates.append(orders.placed[upto])  # the next order
        if count:
            candidates.append(orders.placed[start] + WINDOW_MICROS)  # the oldest window order leaves it
        candidates += (last + days * DAY_MICROS for days in (bands.recent, bands.nurture, bands.risk, phases.churn_days))
        instant = min(c for c in candidates if c > instant)


def replay_history(store: Store, shop: ShopSettings, now: datetime) -> ReplayResult:
    """Rebuild the stage history of every customer of the shop with an order placed at or before
    `now`, store their states at `now` and queue the sync of those whose stored state changed."""
    started = datetime.now(timezone.utc)
    now_us = to_micros(now)
    with store.read() as conn:
        rows = history_orders(conn, shop.id, now)
        stored = store.state_rows(conn, shop.id)
    everyone, customers, first_seen = Timeline(), {}, {}
    for key, placed, valid, amount, known in rows:
        if key is not None:
            first_seen.setdefault(key, placed)
        if valid:
            everyone.add(placed, amount, known)
            if key is not None:
                customers.setdefault(key, Timeline()).add(placed, amount, known)
    result = ReplayResult(customers=len(first_seen))
    if not first_seen:
        return result
    everyone.close()
    for timeline in customers.values():
        timeline.close()
    bands = DailyBands(customers, shop.rfm, everyone.placed[0] if everyone.placed else now_us, now_us)
    ratio = Fraction(shop.rfm.value_ratio)

    def shop_at(instant: int) -> ShopMicros:
        _, _, count, amount, known = everyone.at(instant)
        return ShopMicros(amount, count, bands.at(instant), ratio, known)

    changes: list[Change] = []
    states: dict[str, StoredState] = {}
    for key, seen in first_seen.items():
        if key in customers:
            replayed, state = replay_customer(key, customers[key], shop_at, shop.phases, now_us)
        else:  # only orders that never counted: a prospect since the first of them
            replayed = [(key, "rfm", None, "prospect", seen), (key, "phases", None, "conquest", seen)]
            state = ("prospect", _day(seen), "conquest", _day(seen), 0, 0, 0, 0, None, None, 0)
        changes += replayed
        states[key] = StoredState(*state)
    changed = {key: state for key, state in states.items() if tuple(stored.get(key, ())) != tuple(state.columns().values())}
    changes.sort(key=lambda change: (change[4], change[0]))
    with store.transaction() as conn:
        replace_stage_history(conn, shop.id, list(first_seen), changes, now)
        store.save_states(conn, shop.id, changed, now, unless_evaluated_after=started)
        store.enqueue(conn, shop.id, [d.name for d in shop.destinations], list(changed), queue_time(now))
    result.changes, result.written = len(changes), len(changed)
    result.queued = len(changed) * len(shop.destinations)
    return result


def replay_if_new(store: Store, shop: ShopSettings, now: datetime) -> ReplayResult | None:
    """`replay_history` for a shop with no stage history yet (a first import or backfill); None
    for a shop that has one (its history was recorded as it happened)."""
    with store.read() as conn:
        if has_stage_history(conn, shop.id):
            return None
    return replay_history(store, shop, now)


def _day(instant: int) -> str:
    return from_micros(instant).date().isoformat()
