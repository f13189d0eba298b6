"""The recompute's integer path against `evaluate` + `next_state` (`connector.services.evaluation`).

`recompute` evaluates a shop on the store's integers (`shop_micros`, `next_state_micros`);
exports and webhooks go through `CustomerFigures` (`build_shop_figures`, `evaluate`,
`next_state`). For the same orders both must give the same bands, stages and state to store.
"""

from dataclasses import astuple, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import count

import pytest
from hypothesis import given, settings, strategies as st

from connector.config import ShopSettings
from connector.services.evaluation import NOT_STORED, build_shop_figures, next_state, next_state_micros, shop_micros
from connector.domain.orders import Order
from connector.domain.stages import PhaseSettings, RfmSettings, customer_figures, evaluate
from connector.storage.values import money_to_micros, StoredState, to_micros

NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
DAY, MICRO = timedelta(days=1), timedelta(microseconds=1)
PHASES = PhaseSettings()
_ids = count(1)


def order(key: str | None, ago: timedelta, total: str = "50.00", **overrides) -> Order:
    return Order.build(shop_id="acme", order_id=next(_ids), placed_at=NOW - ago, total=Decimal(total),
                       email=key or "", **overrides)


def row_of(key, figures) -> tuple:
    """The row `Store.figure_rows` gives for these figures."""
    micros = lambda moment: None if moment is None else to_micros(moment)  # noqa: E731
    return (key, figures.orders_365d, money_to_micros(figures.amount_365d), figures.orders_total,
            money_to_micros(figures.total_spent), micros(figures.first_at), micros(figures.last_at),
            micros(figures.first_window_at), figures.amount_orders_365d)


def stored_variants(state: StoredState) -> list[StoredState | None]:
    """Never stored; stored with the same stages since an earlier day; stored with other stages."""
    earlier = replace(state, rfm_since="2025-01-01", phases_since="2025-02-01")
    other = replace(earlier, rfm="lost" if state.rfm != "lost" else "recent",
                    phases="conquest" if state.phases != "conquest" else "loyalty", orders_total=state.orders_total + 1)
    return [None, earlier, other]


def assert_both_ways_agree(orders: list[Order], rfm: RfmSettings) -> None:
    by_key: dict[str | None, list[Order]] = {}
    for o in orders:
        by_key.setdefault(o.customer_key, []).append(o)
    figures = {key: customer_figures(placed, NOW) for key, placed in by_key.items()}
    shop = build_shop_figures(list(figures.items()), ShopSettings(id="acme", platform="standard",
                                                                  webhook_secret="x", rfm=rfm))
    rows = [row_of(key, f) for key, f in figures.items()]
    micros = shop_micros(rows, rfm)
    assert (micros.window_amount, micros.window_orders, micros.bands) == (
        money_to_micros(shop.window_amount), shop.window_orders, shop.bands)
    for row in rows:
        if row[0] is None:
            continue
        evaluation = evaluate(figures[row[0]], shop, rfm, PHASES, NOW)
        for before in stored_variants(next_state(evaluation, None, NOW)):
            expected = next_state(evaluation, before, NOW)
            got = next_state_micros(row, NOT_STORED if before is None else astuple(before), micros, PHASES,
                                    to_micros(NOW), NOW.date().isoformat())
            assert got == astuple(expected), (row, before)


def boundary_customers() -> list[Order]:
    """One customer per edge: recency on each side of every band, the 365-day window's edge, AOV
    equal to the shop's, two orders with and without high value, invalid and anonymous orders."""
    made = []
    for days in (0, 39, 40, 89, 90, 179, 180, 364):
        for nudge in (-MICRO, timedelta(0), MICRO):
            made.append(order(f"r{days}{nudge.microseconds}@example.com", days * DAY + nudge))
    for ago in (365 * DAY - MICRO, 365 * DAY, 365 * DAY + MICRO):
        made += [order(f"edge{ago.microseconds}@example.com", ago),
                 order(f"edge{ago.microseconds}@example.com", 400 * DAY)]
    made += [order("dear-two@example.com", 10 * DAY, "75.00"), order("dear-two@example.com", 20 * DAY, "75.00"),
             order("cheap-two@example.com", 10 * DAY, "25.00"), order("cheap-two@example.com", 50 * DAY, "25.00"),
             order("aov-equal@example.com", 3 * DAY), order("aov-equal@example.com", 100 * DAY),
             order("three@example.com", 5 * DAY, "10.00"), order("three@example.com", 6 * DAY, "10.00"),
             order("three@example.com", 7 * DAY, "10.00"),
             order("cancelled@example.com", 5 * DAY, status="cancelled"),
             order("future@example.com", -DAY), order(None, 30 * DAY, "999.99")]
    return made


def returning_customers(n: int) -> list[Order]:
    """`n` customers with two window orders `20 + i % 7` days apart (20 to 26 days: adaptive bands)."""
    return [order(f"returning{i}@example.com", ago) for i in range(n)
            for ago in (5 * DAY + i * MICRO, (25 + i % 7) * DAY)]


@pytest.mark.parametrize("value_ratio", ["1", "1.5", "0.8"])
@pytest.mark.parametrize("adaptive", [True, False])
@pytest.mark.parametrize("returning", [99, 100])
def test_the_integer_path_agrees_on_every_boundary(value_ratio, adaptive, returning):
    made = boundary_customers()
    already = sum(1 for f in (customer_figures([o for o in made if o.customer_key == k], NOW)
                              for k in {o.customer_key for o in made if o.customer_key}) if f.orders_365d >= 2)
    rfm = RfmSettings(adaptive=adaptive, value_ratio=Decimal(value_ratio))
    orders = made + returning_customers(returning - already)
    assert_both_ways_agree(orders, rfm)
    with_adaptive = shop_micros([row_of(k, customer_figures([o for o in orders if o.customer_key == k], NOW))
                                 for k in {o.customer_key for o in orders}], rfm).bands.adaptive
    assert with_adaptive == (adaptive and returning >= 100)


@pytest.mark.parametrize("value_ratio", ["1", "1.5"])
def test_the_integer_path_agrees_when_every_aov_equals_the_shops(value_ratio):
    orders = [order("one@example.com", 10 * DAY), order("two@example.com", 10 * DAY),
              order("two@example.com", 30 * DAY), order("old-two@example.com", 100 * DAY),
              order("old-two@example.com", 120 * DAY), order(None, 1 * DAY)]
    assert_both_ways_agree(orders, RfmSettings(value_ratio=Decimal(value_ratio)))


DAYS = st.sampled_from([0, 1, 39, 40, 89, 90, 179, 180, 364, 365, 366, 500])
NUDGES = st.sampled_from([-1, 0, 1, 3_600_000_000])
TOTALS = st.sampled_from(["0.00", "10.00", "25.00", "50.00", "75.00", "80.00", "33.33"])
ORDERS = st.builds(
    lambda key, days, nudge, total, status: order(key, days * DAY + timedelta(microseconds=nudge), total,
                                                  status=status),
    st.sampled_from(["a@example.com", "b@example.com", "c@example.com", "d@example.com", None]),
    DAYS, NUDGES, TOTALS, st.sampled_from(["placed"] * 5 + ["cancelled"]),
)


@settings(max_examples=300, deadline=None)
@given(orders=st.lists(ORDERS, max_size=14), value_ratio=st.sampled_from(["1", "1.5", "0.8", "1.25", "2"]))
def test_the_integer_path_agrees_on_generated_shops(orders, value_ratio):
    assert_both_ways_agree(orders, RfmSettings(value_ratio=Decimal(value_ratio)))
