"""The stage history replayed on the days it happened (connector/services/replay.py), on both
engines: a customer ages through the recency bands on the days they pass, an order moves them
back on its day, the states replayed are those a recompute stores, and the demo's movements of
the last 8 weeks hold no step the rules make impossible (they did before the replay)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from connector.domain.orders import Order
from connector.services import demo, evaluation
from connector.services.csv_import import row_to_order
from connector.services.generate import generate_orders
from connector.services.replay import DailyBands, Timeline, replay_history, replay_if_new
from connector.storage.schema import orders as orders_table, stage_changes
from connector.storage.states import stage_history, stage_movements
from connector.storage.values import from_micros, to_micros
from connector.web.dashboard import MOVEMENT_WINDOW
from tests.conftest import NOW

DAY = timedelta(days=1)
RECENCY_RANK = {"champion": 0, "loyalist": 0, "recent": 0, "high_potential": 1, "needs_nurturing": 1,
                "cant_lose": 2, "at_risk": 2, "about_to_lose": 3, "lost": 4}


def _order(order_id: str, email: str | None, placed: datetime, total: str) -> Order:
    return Order.build(shop_id="acme", order_id=order_id, placed_at=placed, total=Decimal(total), email=email,
                       currency="EUR")


def _history(store, key: str) -> list[tuple[str, str | None, str, datetime]]:
    with store.read() as conn:
        return [(row.model, row.from_stage, row.to_stage, from_micros(row.at))
                for row in stage_history(conn, "acme", key)]


@pytest.fixture
def one_order_100_days_ago(store, shop):
    """ana@example.com ordered 10.00 once, 100 days before NOW; an anonymous 100.00 order 200 days
    before keeps the shop's AOV above hers, so she is never high value (default bands 40, 90, 180:
    fewer than 100 returning customers)."""
    ordered = NOW - 100 * DAY
    with store.transaction() as conn:
        store.upsert_orders(conn, [_order("anon", None, NOW - 200 * DAY, "100.00"),
                                   _order("a1", "ana@example.com", ordered, "10.00")])
    return ordered


def test_a_customer_ages_through_the_bands_on_the_days_they_pass(store, shop, one_order_100_days_ago):
    """docs/rules.md: R < 40 is recent, R < 90 needs_nurturing, R < 180 at_risk; R is whole days
    since the order, so each step falls exactly 40 and 90 days after it."""
    ordered = one_order_100_days_ago
    result = replay_history(store, shop, NOW)
    assert _history(store, "ana@example.com") == [
        ("rfm", None, "recent", ordered), ("phases", None, "conversion", ordered),
        ("rfm", "recent", "needs_nurturing", ordered + 40 * DAY),
        ("rfm", "needs_nurturing", "at_risk", ordered + 90 * DAY),
    ]
    with store.read() as conn:
        state = store.load_state(conn, "acme", "ana@example.com")
    assert (state.rfm, state.rfm_since, state.phases_since) == (
        "at_risk", (ordered + 90 * DAY).date().isoformat(), ordered.date().isoformat())
    assert (result.customers, result.changes, result.written, result.queued) == (1, 4, 1, 1)


def test_an_order_in_between_moves_the_customer_back_on_its_day(store, shop, one_order_100_days_ago):
    ordered = one_order_100_days_ago
    again = NOW - 30 * DAY + timedelta(hours=5)
    with store.transaction() as conn:
        store.upsert_orders(conn, [_order("a2", "ana@example.com", again, "10.00")])
    replay_history(store, shop, NOW)
    assert _history(store, "ana@example.com") == [
        ("rfm", None, "recent", ordered), ("phases", None, "conversion", ordered),
        ("rfm", "recent", "needs_nurturing", ordered + 40 * DAY),
        ("rfm", "needs_nurturing", "recent", again), ("phases", "conversion", "development", again),
    ]


def test_replayed_states_are_those_a_recompute_stores_and_the_daily_bands_a_recompute_finds(store, shop):
    """After a replay a recompute at the same instant changes nothing; each customer's `since`
    dates are the days of their last replayed changes; the replay's bands of a day are those a
    recompute at that midnight computes (adaptive here: hundreds of returning customers)."""
    with store.transaction() as conn:
        orders = (row_to_order(row, shop) for row in generate_orders(2_500, 800, NOW, seed=3))
        store.upsert_orders(conn, [order for order in orders if order.placed_at <= NOW])
    evaluation.recompute(store, shop, NOW - 400 * DAY)  # an earlier history, replaced
    replay_history(store, shop, NOW)
    assert evaluation.recompute(store, shop, NOW).written == 0
    with store.read() as conn:
        states = store.load_states(conn, "acme")
        rows = conn.execute(select(stage_changes).where(stage_changes.c.shop_id == "acme")
                            .order_by(stage_changes.c.id)).all()
    last: dict[tuple[str, str], datetime] = {}
    for row in rows:
        last[row.customer_key, row.model] = from_micros(row.at)
    assert {key: (s.rfm_since, s.phases_since) for key, s in states.items()} == {
        key: (last[key, "rfm"].date().isoformat(), last[key, "phases"].date().isoformat()) for key in states}
    assert [row.at for row in rows] == sorted(row.at for row in rows)  # ids follow time: the sync's watermarks
    with store.read() as conn:
        history = store_orders_by_customer(conn)
    first = min(timeline.placed[0] for timeline in history.values())
    bands = DailyBands(history, shop.rfm, first, to_micros(NOW))
    midnights = [NOW.replace(hour=0, minute=0) - days * DAY for days in (0, 1, 30, 200, 400)]
    assert any(bands.at(to_micros(m)).adaptive for m in midnights)
    for midnight in midnights:
        assert bands.at(to_micros(midnight)) == evaluation.snapshot(store, shop, midnight).shop.bands, midnight


def store_orders_by_customer(conn):
    """customer_key -> a Timeline of their valid orders, read by the test on its own."""
    found: dict[str, Timeline] = {}
    for key, placed, amount in conn.execute(
            select(orders_table.c.customer_key, orders_table.c.placed_at, orders_table.c.amount)
            .where(orders_table.c.valid.is_(True), orders_table.c.customer_key.is_not(None),
                   orders_table.c.placed_at <= to_micros(NOW)).order_by(orders_table.c.placed_at)):
        found.setdefault(key, Timeline()).add(placed, amount, True)
    return {key: timeline.close() for key, timeline in found.items()}


def test_a_first_import_is_replayed_and_a_shop_with_history_is_not(store, shop, one_order_100_days_ago):
    assert replay_if_new(store, shop, NOW).changes == 4
    with store.transaction() as conn:
        store.upsert_orders(conn, [_order("b1", "bo@example.com", NOW - 300 * DAY, "10.00")])
    assert replay_if_new(store, shop, NOW) is None
    assert _history(store, "bo@example.com") == []


# --- the demo ---------------------------------------------------------------------------------------

def impossible_steps(store, shop, now: datetime, since: datetime) -> list[tuple]:
    """The stage changes recorded in (since, now] that no single step of the rules makes, read from
    the stored history and orders. Without an order that instant, R only grows and F only drops:
    no step from lost or prospect, from no stage (but to prospect / conquest), or back to a more
    recent band (the recent group included) unless the shop's bands moved; a phase moves to
    disengagement, or from loyalty to development. An order makes R = 0: the recent group, and a
    phase with orders. A cancellation may make a prospect of anyone."""
    with store.read() as conn:
        rows = conn.execute(select(stage_changes).where(
            stage_changes.c.shop_id == shop.id, stage_changes.c.at > to_micros(since),
            stage_changes.c.at <= to_micros(now))).all()
        placed = set(conn.execute(select(orders_table.c.customer_key, orders_table.c.placed_at).where(
            orders_table.c.shop_id == shop.id, orders_table.c.valid.is_(True))).all())
        rfm_changes: dict[str, list[int]] = {}
        for key, at in conn.execute(select(stage_changes.c.customer_key, stage_changes.c.at).where(
                stage_changes.c.shop_id == shop.id, stage_changes.c.model == "rfm").order_by(stage_changes.c.id)):
            rfm_changes.setdefault(key, []).append(at)
    bands_of_day = {}

    def bands_moved(key: str, at: int) -> bool:
        before = [earlier for earlier in rfm_changes[key] if earlier < at]
        days = [from_micros(at) if at == to_micros(now) else from_micros(at - at % 86_400_000_000),
                from_micros(before[-1] - before[-1] % 86_400_000_000)]
        for day in days:
            if day not in bands_of_day:
                bands_of_day[day] = evaluation.snapshot(store, shop, day).shop.bands
        return bands_of_day[days[0]] != bands_of_day[days[1]]

    bad = []
    for row in rows:
        ordered = (row.customer_key, row.at) in placed
        step = (row.model, row.from_stage, row.to_stage)
        if row.model == "rfm" and ordered:
            possible = RECENCY_RANK.get(row.to_stage) == 0
        elif row.model == "rfm" and row.from_stage is None:
            possible = row.to_stage == "prospect"
        elif row.model == "rfm" and row.to_stage == "prospect":
            possible = True  # its orders were cancelled
        elif row.model == "rfm":
            possible = row.from_stage not in ("lost", "prospect") and (
                RECENCY_RANK[row.to_stage] >= RECENCY_RANK[row.from_stage] or bands_moved(row.customer_key, row.at))
        elif ordered:
            possible = row.to_stage in ("conversion", "development", "loyalty")
        else:
            possible = row.to_stage == "disengagement" or step[1:] in {(None, "conquest"), ("loyalty", "development")}
        if not possible:
            bad.append((*step, row.customer_key, from_micros(row.at)))
    return bad


def test_the_demos_last_8_weeks_of_movements_hold_no_impossible_step(store, shop):
    """The demo's orders (its generator and shape), stored as its feed stores them: each webhook's
    customers evaluated when it arrives, all within a minute of `now`. That history shows steps
    like lost -> about_to_lose; after `demo.settle` the chart's window holds none."""
    now = NOW
    rows = generate_orders(2_000, 2_000 // demo.ORDERS_PER_CUSTOMER, now, seed=7, years=demo.YEARS)
    loaded = sorted((o for o in (row_to_order(row, shop) for row in rows) if o.placed_at <= now),
                    key=lambda o: o.placed_at)
    for start in range(0, len(loaded), 50):
        batch = loaded[start:start + 50]
        arrived = now - timedelta(seconds=60) + timedelta(seconds=start / len(loaded) * 60)
        with store.transaction() as conn:
            store.upsert_orders(conn, batch)
            evaluation.evaluate_customers(store, conn, shop, {o.customer_key for o in batch if o.customer_key},
                                          arrived)
    since = now - MOVEMENT_WINDOW
    fed = impossible_steps(store, shop, now, since)
    assert ("rfm", "lost", "about_to_lose") in {step[:3] for step in fed}

    replayed, recomputed = demo.settle(store, shop, now)

    assert impossible_steps(store, shop, now, since) == []
    with store.read() as conn:
        chart = stage_movements(conn, shop.id, "rfm", since, now)
    assert sum(n for _, _, n in chart) > 50  # the chart's rows were checked, and there are many
    assert replayed.changes > 0 and recomputed.written == 0
