"""Evaluating a shop, or one customer, at an instant: store aggregation -> pure stage models.

- `snapshot`: every customer's stages and figures at `now`, from one SQL aggregation pass
  (export, stages, dashboard). Nothing is written.
- `recompute`: the same evaluation on the store's integers (no datetime or Decimal per
  customer), compared with the stored states; only the customers whose stored state changed
  are written, with their stage history, and queued for syncing. A dry run counts the same
  changes and writes nothing.
- `evaluate_customers`: the customers a webhook (or a group of them, or a poll) touched, inside
  its transaction, using the shop figures stored by the last recompute (refreshed on the spot
  for small shops).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Callable, Iterable, Iterator, Sequence

from sqlalchemy import Connection

from connector.domain import stages
from connector.config import ShopSettings
from connector.domain.orders import ZERO
from connector.domain.stages import (
    CustomerFigures, Evaluation, PhaseSettings, RfmSettings, ShopFigures, ShopMicros, evaluate, evaluate_micros,
    interval_of_span, recency_bands,
)
from connector.storage.store import Store

# Below this many window orders, a webhook refreshes the shop figures (shop AOV, adaptive bands)
from connector.storage.values import micros_to_money, money_to_micros, state_of, StoredState, to_micros

# Below this many window orders, a webhook refreshes the shop figures (shop AOV, adaptive bands)
# itself: cheap for a small shop, and a young shop's figures move fast. Larger shops rely on the
# daily `recompute`, which refreshes them.
SMALL_SHOP_WINDOW_ORDERS = 5_000
# A webhook of a larger shop reuses the stored figures its process read up to this long ago: a
# daily recompute's new figures reach the webhooks within a minute.
STORED_FIGURES_MAX_AGE_S = 60.0
WRITE_CHUNK = 5_000
ANALYZE_AFTER_WRITES = 1_000  # a recompute that writes this many states refreshes the planner's statistics
# Webhook delivery ids are kept for de-duplication this long, then pruned by the daily recompute:
# past every platform's retries. Shopify retries a failed delivery 8 times over 4 hours
# (https://shopify.dev/changelog/updates-to-webhook-retry-mechanism; 48 hours before 2024-09);
# BigCommerce retries for up to 48 hours (https://developer.bigcommerce.com/docs/integrations/webhooks,
# 'Callback retry mechanism'); WooCommerce does not retry on a schedule, it disables a webhook after
# 5 consecutive failures (WC_Webhook::failed_delivery, `woocommerce_max_webhook_delivery_failures`,
# https://github.com/woocommerce/woocommerce/blob/trunk/plugins/woocommerce/includes/class-wc-webhook.php);
# a Standard Webhooks sender
# retries on its own schedule, Svix's reference one over about 28 hours (https://docs.svix.com/retries,
# https://www.standardwebhooks.com/). A week covers them all with room for a platform's manual resend.
DELIVERY_RETENTION = timedelta(days=7)
NO_FIGURES = CustomerFigures()
NOT_STORED = (None,) * len(dataclasses.fields(StoredState))  # the state of a customer never stored


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
    written: int = 0  # customers whose stored state changed (a dry run: would change)
    stage_changes: int = 0
    queued: int = 0
    predictions: object = None  # the shop's fit at this recompute (predicting.PredictionRun)
    # "model: from -> to" ("new" for a customer never stored) -> how many customers move so
    transitions: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    deliveries_pruned: int = 0  # delivery ids older than DELIVERY_RETENTION forgotten


def queue_time(now: datetime) -> datetime:
    """When a sync queued by an evaluation at `now` is due: at once. An evaluation at a future
    instant (a platform clock ahead of ours) must not postpone the sync."""
    return min(now, datetime.now(timezone.utc))


def build_shop_figures(figures: list[tuple[str | None, CustomerFigures]], shop: ShopSettings) -> ShopFigures:
    """The shop's window totals (customer-less orders included) and recency bands."""
    window_amount = sum((f.amount_365d for _, f in figures), ZERO)
    window_orders = sum(f.orders_365d for _, f in figures)
    window_known = sum(f.amount_orders_365d for _, f in figures)
    return stages.shop_figures((f for key, f in figures if key is not None), window_amount, window_orders, shop.rfm,
                               window_known)


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


def since(stage: str, stored_stage: str | None, stored_since: str | None, today: str) -> str:
    """A stage keeps its `since` date while unchanged; a new one starts today."""
    return stored_since if stage == stored_stage else today


def next_state(evaluation: Evaluation, stored: StoredState | None, now: datetime) -> StoredState:
    """The state to store after `evaluation`."""
    today = now.date().isoformat()
    rfm_since = since(evaluation.rfm, stored and stored.rfm, stored and stored.rfm_since, today)
    phases_since = since(evaluation.phases, stored and stored.phases, stored and stored.phases_since, today)
    return state_of(evaluation.figures, evaluation.rfm, evaluation.phases, rfm_since, phases_since)


def stage_changes(key: str, before: StoredState | None, after: StoredState) -> Iterator[tuple[str, str, str | None, str]]:
    """(customer_key, model, from, to) for each model whose stage differs from the stored one."""
    for model in ("rfm", "phases"):
        old = getattr(before, model) if before else None
        new = getattr(after, model)
        if old != new:
            yield key, model, old, new


def shop_micros(rows: Sequence[tuple], rfm: RfmSettings) -> ShopMicros:
    """The shop's window totals (customer-less orders included) and recency bands, from the rows
    of `Store.figure_rows`."""
    window_amount = window_orders = window_known = 0
    intervals: list[Fraction] = []
    for key, orders_365d, amount_365d, _, _, _, last_at, first_window_at, known in rows:
        window_orders += orders_365d
        window_amount += amount_365d
        window_known += known
        if key is not None and orders_365d >= 2:
            intervals.append(interval_of_span(last_at - first_window_at, orders_365d))
    return ShopMicros(window_amount, window_orders, recency_bands(intervals, rfm), Fraction(rfm.value_ratio),
                      window_known)


def next_state_micros(row: tuple, stored: tuple, shop: ShopMicros, phases: PhaseSettings, now: int,
                      today: str) -> tuple:
    """`next_state` on the store's integers: the `StoredState` fields to store, in order, for a row of
    `Store.figure_rows` and the customer's stored state (NOT_STORED when none)."""
    _, orders_365d, amount_365d, orders_total, total_spent, first_at, last_at, _, known = row
    rfm, phase = evaluate_micros(orders_365d, amount_365d, orders_total, last_at, shop, phases, now, known)
    return (rfm, since(rfm, stored[0], stored[1], today), phase, since(phase, stored[2], stored[3], today),
            orders_365d, orders_total, amount_365d, total_spent, first_at, last_at, known)


def _with_stored(rows: Sequence[tuple], states: dict[str, tuple]) -> Iterator[tuple[tuple, tuple]]:
    """(figures row, stored state) of every customer: those with orders, then the stored ones
    without (zero figures)."""
    for row in rows:
        if row[0] is not None:
            yield row, states.pop(row[0], NOT_STORED)
    for key, stored in states.items():
        yield without_orders(key), stored


def without_orders(key: str) -> tuple:
    """The figures row (as `Store.figure_rows` gives it) of a customer with no order."""
    return key, 0, 0, 0, 0, None, None, None, 0


def changed_states(customers: Iterable[tuple[tuple, tuple]], shop: ShopMicros, phases: PhaseSettings, now: int,
                   today: str) -> tuple[dict[str, StoredState], list[tuple[str, str, str | None, str]]]:
    """The new states of the customers whose stored state changes, and their stage changes, from
    (figures row, stored state) pairs."""
    changed: dict[str, StoredState] = {}
    changes: list[tuple[str, str, str | None, str]] = []
    for row, stored in customers:
        after = next_state_micros(row, stored, shop, phases, now, today)
        if after != stored:
            key = row[0]
            changed[key] = StoredState(*after)
            changes.extend(stage_changes(key, None if stored is NOT_STORED else StoredState(*stored), changed[key]))
    return changed, changes


def recompute(store: Store, shop: ShopSettings, now: datetime,
              progress: Callable[[int, int], None] | None = None, dry_run: bool = False) -> RecomputeResult:
    """Re-evaluate every customer of the shop at `now`; write and queue only what changed, and
    forget the delivery ids older than `DELIVERY_RETENTION`. With `dry_run`, count the same
    changes (stages and predictions) and write, queue and forget nothing.

    The store's integers all the way (`next_state_micros`): the states are those `snapshot` and
    `next_state` give, without a datetime, Decimal or CustomerFigures per customer.
    """
    started = datetime.now(timezone.utc)  # rows a webhook evaluates after this are newer: left alone
    with store.read() as conn:
        rows = store.figure_rows(conn, shop.id, now)
        states = store.state_rows(conn, shop.id)
    figures = shop_micros(rows, shop.rfm)
    now_us, today = to_micros(now), now.date().isoformat()
    destinations = [d.name for d in shop.destinations]
    customers = list(_with_stored(rows, states))
    changed, changes = changed_states(customers, figures, shop.phases, now_us, today)
    keys = list(changed)
    result = RecomputeResult(customers=len(customers), written=len(keys), stage_changes=len(changes),
                             queued=len(keys) * len(destinations), dry_run=dry_run,
                             transitions=transition_counts(changes))
    if not dry_run:
        _write(store, shop, now, started, figures, changed, changes, progress)
        with store.transaction() as conn:
            result.deliveries_pruned = store.prune_deliveries(conn, shop.id, now - DELIVERY_RETENTION)
    # once per shop per recompute (never per webhook): docs/rules.md, 'Predictions'. Imported here:
    # numpy stays out of the webhook path's imports (a Lambda cold start pays for them).
    from connector.services.predicting import refresh_predictions

    result.predictions = refresh_predictions(store, shop, now, due=queue_time(now), dry_run=dry_run)
    result.queued += result.predictions.queued
    return result


def transition_counts(changes: Iterable[tuple[str, str, str | None, str]]) -> dict[str, int]:
    """How many customers make each stage transition, as "model: from -> to", sorted."""
    counted = Counter(f"{model}: {old or 'new'} -> {new}" for _, model, old, new in changes)
    return dict(sorted(counted.items()))


def _write(store: Store, shop: ShopSettings, now: datetime, started: datetime, figures: ShopMicros,
           changed: dict[str, StoredState], changes: list, progress: Callable[[int, int], None] | None) -> None:
    """A recompute's writes: the shop figures, the changed states in chunks (each queued for the
    destinations), the stage history."""
    keys = list(changed)
    destinations = [d.name for d in shop.destinations]
    with store.transaction() as conn:
        store.save_shop_figures(conn, shop.id, micros_to_money(figures.window_amount), figures.window_orders,
                                figures.bands, now, figures.amount_orders)
    for start in range(0, len(keys), WRITE_CHUNK):
        chunk = keys[start:start + WRITE_CHUNK]
        with store.transaction() as conn:
            store.save_states(conn, shop.id, {k: changed[k] for k in chunk}, now, unless_evaluated_after=started)
            store.enqueue(conn, shop.id, destinations, chunk, queue_time(now))
        if progress:
            progress(start + len(chunk), len(keys))
    with store.transaction() as conn:
        store.add_stage_changes(conn, shop.id, changes, now)
    if len(keys) >= ANALYZE_AFTER_WRITES:
        store.analyze("customers", "outbox")


def current_shop_figures(store: Store, conn: Connection, shop: ShopSettings, now: datetime,
                         save: bool = True) -> ShopFigures:
    """The stored shop figures, refreshed from the orders when missing or when the shop is small
    (and stored again when `save`, i.e. inside a write transaction)."""
    stored = store.load_shop_figures(conn, shop.id, max_age=STORED_FIGURES_MAX_AGE_S)
    if stored is not None and stored[1] >= SMALL_SHOP_WINDOW_ORDERS:
        window_amount, window_orders, bands, window_known = stored
        return ShopFigures(window_amount, window_orders, bands, window_known)
    window_amount, window_orders, window_known = store.window_totals(conn, shop.id, now)
    spans = store.returning_spans(conn, shop.id, now) if shop.rfm.adaptive else []
    intervals = [interval_of_span(span, count) for span, count in spans]
    figures = ShopFigures(window_amount, window_orders, recency_bands(intervals, shop.rfm), window_known)
    if save:
        store.save_shop_figures(conn, shop.id, figures.window_amount, figures.window_orders, figures.bands, now,
                                figures.amount_orders)
    return figures


def evaluate_customers(store: Store, conn: Connection, shop: ShopSettings, keys: Iterable[str], now: datetime,
                       shop_figures: ShopFigures | None = None) -> set[str]:
    """Re-evaluate some customers inside the caller's transaction (a webhook, a group of them, a
    poll); store and queue those whose state changed, and return their keys.

    The customers are locked first (`Store.lock_customers`), so that a concurrent delivery's order
    is seen; their figures and states are read, and the changes written, with one statement each.
    """
    keys = sorted(set(keys))
    if not keys:
        return set()
    store.lock_customers(conn, shop.id, keys)
    shop_figures = shop_figures or current_shop_figures(store, conn, shop, now)
    figures = ShopMicros(money_to_micros(shop_figures.window_amount), shop_figures.window_orders, shop_figures.bands,
                         Fraction(shop.rfm.value_ratio), shop_figures.amount_orders)
    rows, states = store.figures_and_states(conn, shop.id, keys, now)
    customers = ((rows.get(key) or without_orders(key), states.get(key, NOT_STORED)) for key in keys)
    changed, changes = changed_states(customers, figures, shop.phases, to_micros(now), now.date().isoformat())
    store.save_states(conn, shop.id, changed, now)
    store.add_stage_changes(conn, shop.id, changes, now)
    store.enqueue(conn, shop.id, [d.name for d in shop.destinations], list(changed), queue_time(now))
    return set(changed)
