"""Evaluating a shop, or one customer, at an instant: store aggregation -> pure stage models.

- `snapshot`: every customer's stages at `now`, from one SQL aggregation pass (export, stages,
  recompute). Nothing is written.
- `recompute`: a snapshot compared with the stored states; only the customers whose stored
  state changed are written, with their stage history, and queued for syncing.
- `evaluate_customer`: one customer after a webhook, inside the webhook's transaction, using
  the shop figures stored by the last recompute (refreshed on the spot for small shops).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Callable, Iterator

from sqlalchemy import Connection

from connector.config import ShopSettings
from connector.orders import ZERO
from connector.stages import (
    CustomerFigures, Evaluation, ShopFigures, evaluate, interval_of_span, purchase_interval, recency_bands,
)
from connector.store import StoredState, Store, state_of

# Below this many window orders, a webhook refreshes the shop figures (shop AOV, adaptive bands)
# itself: cheap for a small shop, and a young shop's figures move fast. Larger shops rely on the
# daily `recompute`, which refreshes them.
SMALL_SHOP_WINDOW_ORDERS = 5_000
# A webhook of a larger shop reuses the stored figures its process read up to this long ago: a
# daily recompute's new figures reach the webhooks within a minute.
STORED_FIGURES_MAX_AGE_S = 60.0
WRITE_CHUNK = 5_000
NO_FIGURES = CustomerFigures()


@dataclass
class Snapshot:
    shop_id: str
    now: datetime
    shop: ShopFigures
    evaluations: dict[str, Evaluation]
    anonymous: CustomerFigures = field(default_factory=CustomerFigures)  # orders with no identity


@dataclass
class RecomputeResult:
    customers: int = 0
    written: int = 0
    stage_changes: int = 0
    queued: int = 0


def queue_time(now: datetime) -> datetime:
    """When a sync queued by an evaluation at `now` is due: at once. An evaluation at a future
    instant (`recompute --at`, a platform clock ahead of ours) must not postpone the sync."""
    return min(now, datetime.now(timezone.utc))


def build_shop_figures(figures: list[tuple[str | None, CustomerFigures]], shop: ShopSettings) -> ShopFigures:
    """The shop's window totals (customer-less orders included) and recency bands."""
    window_amount = sum((f.amount_365d for _, f in figures), ZERO)
    window_orders = sum(f.orders_365d for _, f in figures)
    intervals = [i for key, f in figures if key is not None and (i := purchase_interval(f)) is not None]
    return ShopFigures(window_amount, window_orders, recency_bands(intervals, shop.rfm))


def snapshot(store: Store, shop: ShopSettings, now: datetime, conn: Connection | None = None) -> Snapshot:
    def take(c: Connection) -> Snapshot:
        rows = [(r.customer_key, r.figures) for r in store.customer_rows(c, shop.id, now)]
        figures = build_shop_figures(rows, shop)
        evaluations = {key: evaluate(f, figures, shop.rfm, shop.phases, now) for key, f in rows if key is not None}
        for key in store.customer_keys_without_orders(c, shop.id):
            evaluations[key] = evaluate(NO_FIGURES, figures, shop.rfm, shop.phases, now)
        anonymous = next((f for key, f in rows if key is None), CustomerFigures())
        return Snapshot(shop.id, now, figures, evaluations, anonymous)

    if conn is not None:
        return take(conn)
    with store.read() as c:
        return take(c)


def next_state(evaluation: Evaluation, stored: StoredState | None, now: datetime) -> StoredState:
    """The state to store: a stage keeps its `since` date while unchanged."""
    today = now.date().isoformat()
    rfm_since = stored.rfm_since if stored and stored.rfm == evaluation.rfm else today
    phases_since = stored.phases_since if stored and stored.phases == evaluation.phases else today
    return state_of(evaluation.figures, evaluation.rfm, evaluation.phases, rfm_since, phases_since)


def stage_changes(key: str, evaluation: Evaluation, stored: StoredState | None) -> Iterator[tuple[str, str, str | None, str]]:
    """(customer_key, model, from, to) for each model whose stage differs from the stored one."""
    for model in ("rfm", "phases"):
        before = getattr(stored, model) if stored else None
        after = getattr(evaluation, model)
        if before != after:
            yield key, model, before, after


def recompute(store: Store, shop: ShopSettings, now: datetime,
              progress: Callable[[int, int], None] | None = None) -> RecomputeResult:
    """Re-evaluate every customer of the shop at `now`; write and queue only what changed."""
    started = datetime.now(timezone.utc)  # rows a webhook evaluates after this are newer: left alone
    snap = snapshot(store, shop, now)
    with store.read() as conn:
        stored = store.load_states(conn, shop.id)
    destinations = [d.name for d in shop.destinations]
    result = RecomputeResult(customers=len(snap.evaluations))
    changed: dict[str, StoredState] = {}
    changes: list[tuple[str, str, str | None, str]] = []
    for key, evaluation in snap.evaluations.items():
        before = stored.get(key)
        after = next_state(evaluation, before, now)
        if before is None or not before.same_as(after):
            changed[key] = after
            changes.extend(stage_changes(key, evaluation, before))
    keys = list(changed)
    with store.transaction() as conn:
        store.save_shop_figures(conn, shop.id, snap.shop.window_amount, snap.shop.window_orders, snap.shop.bands, now)
    for start in range(0, len(keys), WRITE_CHUNK):
        chunk = keys[start:start + WRITE_CHUNK]
        with store.transaction() as conn:
            store.save_states(conn, shop.id, {k: changed[k] for k in chunk}, now, unless_evaluated_after=started)
            store.enqueue(conn, shop.id, destinations, chunk, queue_time(now))
        if progress:
            progress(start + len(chunk), len(keys))
    with store.transaction() as conn:
        store.add_stage_changes(conn, shop.id, changes, now)
    result.written = len(keys)
    result.stage_changes = len(changes)
    result.queued = len(keys) * len(destinations)
    return result


def current_shop_figures(store: Store, conn: Connection, shop: ShopSettings, now: datetime,
                         save: bool = True) -> ShopFigures:
    """The stored shop figures, refreshed from the orders when missing or when the shop is small
    (and stored again when `save`, i.e. inside a write transaction)."""
    stored = store.load_shop_figures(conn, shop.id, max_age=STORED_FIGURES_MAX_AGE_S)
    if stored is not None and stored[1] >= SMALL_SHOP_WINDOW_ORDERS:
        window_amount, window_orders, bands = stored
        return ShopFigures(window_amount, window_orders, bands)
    window_amount, window_orders = store.window_totals(conn, shop.id, now)
    spans = store.returning_spans(conn, shop.id, now) if shop.rfm.adaptive else []
    intervals = [interval_of_span(span, count) for span, count in spans]
    figures = ShopFigures(window_amount, window_orders, recency_bands(intervals, shop.rfm))
    if save:
        store.save_shop_figures(conn, shop.id, figures.window_amount, figures.window_orders, figures.bands, now)
    return figures


def evaluate_customer(store: Store, conn: Connection, shop: ShopSettings, key: str, now: datetime,
                      shop_figures: ShopFigures | None = None) -> tuple[Evaluation, bool]:
    """Re-evaluate one customer inside the caller's transaction; store and queue what changed.

    Returns the evaluation and whether the stored state changed.
    """
    figures, before = store.customer_figures_and_state(conn, shop.id, key, now)
    shop_figures = shop_figures or current_shop_figures(store, conn, shop, now)
    evaluation = evaluate(figures or NO_FIGURES, shop_figures, shop.rfm, shop.phases, now)
    after = next_state(evaluation, before, now)
    if before is not None and before.same_as(after):
        return evaluation, False
    store.save_states(conn, shop.id, {key: after}, now)
    store.add_stage_changes(conn, shop.id, stage_changes(key, evaluation, before), now)
    store.enqueue(conn, shop.id, [d.name for d in shop.destinations], [key], queue_time(now))
    return evaluation, True

