"""`connector.domain.stages` and the independent `tests.reference_stages` agree on random shops.

Seeded random orders, biased towards the places where two readings of docs/rules.md could
differ: orders exactly at the window's edge and at the recency boundaries, refunds of every size,
zero totals, test and future orders, orders without a customer, ties at the shop's AOV, shops
with and without enough returning customers for adaptive bands.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connector.domain.orders import Order
from connector.domain.stages import (
    PHASES,
    RFM_STAGES,
    WINDOW,
    PhaseSettings,
    RfmSettings,
    customer_figures,
    evaluate,
    fields,
    shop_figures,
)
from tests.reference_stages import reference_shop_bands, reference_stages

NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
DAY, SECOND, MICRO = timedelta(days=1), timedelta(seconds=1), timedelta(microseconds=1)

# How long before `now` an order is placed, for the orders that sit on an edge on purpose.
EDGE_AGES = [
    timedelta(0), -MICRO, -SECOND, -3 * DAY,  # now itself, and just after now (ignored)
    WINDOW, WINDOW - SECOND, WINDOW + SECOND, WINDOW - MICRO, WINDOW + MICRO,  # the window's edge
    *(days * DAY + delta for days in (7, 39, 40, 89, 90, 179, 180) for delta in (timedelta(0), -SECOND, SECOND)),
]


def _amount(rng: random.Random) -> Decimal:
    roll = rng.random()
    if roll < 0.06:
        return Decimal("0")
    if roll < 0.10:
        return Decimal(rng.randint(1, 99_999)) / 1000  # three decimals: rounding of aov and total_spent
    return Decimal(rng.randint(1, 40_000)) / 100


def _order_dict(rng: random.Random, key: str | None, age: timedelta, now: datetime, total: Decimal | None = None) -> dict:
    total = _amount(rng) if total is None else total
    refunded, status = Decimal(0), "placed"
    roll = rng.random()
    if roll < 0.08:
        refunded = (total * Decimal(rng.randint(1, 99)) / 100).quantize(Decimal("0.01"))  # partial
    elif roll < 0.11:
        refunded = total  # full
    elif roll < 0.12:
        refunded = total + Decimal("5.00")  # more than the total
    roll = rng.random()
    if roll < 0.04:
        status = "cancelled"
    elif roll < 0.06:
        status = "voided"
    elif roll < 0.07:
        status = "deleted"
    elif roll < 0.12:
        status = "refunded"  # with refunded 0: the whole order
    return {
        "order_id": None,  # numbered by the caller
        "customer_key": key,
        "placed_at": now - age,
        "total": total,
        "refunded": refunded,
        "status": status,
        "test": rng.random() < 0.03,
    }


def _random_age(rng: random.Random) -> timedelta:
    if rng.random() < 0.25:
        return rng.choice(EDGE_AGES)
    return timedelta(microseconds=rng.randint(-20 * 86_400_000_000, 800 * 86_400_000_000))


def random_shop(
    seed: int,
    customers: int,
    now: datetime = NOW,
    *,
    habit_days: tuple[float, float] = (5, 60),
    habitual_share: float = 0.5,
    uniform_total: Decimal | None = None,
) -> list[dict]:
    """Orders of `customers` customers (some keyed by phone) and of nobody in particular.

    Some customers buy at random moments; the others (`habitual_share`) are "habitual": their
    orders are spaced by a personal interval drawn from `habit_days`, which drives the adaptive
    bands.
    """
    rng = random.Random(seed)
    orders: list[dict] = []
    for number in range(customers):
        key = f"+3361{number:07d}" if number % 10 == 0 else f"customer{number:05d}@example.com"
        count = rng.choice([1, 1, 1, 2, 2, 3, 4, 6])
        if rng.random() >= habitual_share:
            ages = [_random_age(rng) for _ in range(count)]
        else:
            interval = timedelta(seconds=rng.uniform(*habit_days) * 86_400)
            last = _random_age(rng)
            ages = [last + i * interval for i in range(count)]
        for age in ages:
            orders.append(_order_dict(rng, key, age, now, uniform_total))
    for _ in range(customers // 8):  # orders with neither email nor phone: shop figures only
        orders.append(_order_dict(rng, None, _random_age(rng), now, uniform_total))
    if uniform_total is not None:  # ties at shop_aov need orders without refunds
        for o in orders:
            o["refunded"] = Decimal(0)
            o["status"] = "placed" if o["status"] == "refunded" else o["status"]
    rng.shuffle(orders)
    for number, o in enumerate(orders, start=1):
        o["order_id"] = str(number)
    return orders


def connector_stages(orders: list[dict], now: datetime, rfm: RfmSettings, phases: PhaseSettings):
    """The pure core wired the way the pipeline wires it: (fields per customer, shop figures)."""
    by_key: dict[str | None, list[Order]] = defaultdict(list)
    for d in orders:
        key = d["customer_key"]
        by_key[key].append(Order(
            shop_id="acme", order_id=d["order_id"], placed_at=d["placed_at"], total=d["total"],
            refunded=d["refunded"], status=d["status"], test=d["test"],
            email=key if key and "@" in key else None, phone=key if key and "@" not in key else None,
        ))
    figures = {key: customer_figures(group, now) for key, group in by_key.items()}
    window_amount = sum((f.amount_365d for f in figures.values()), Decimal(0))
    window_orders = sum(f.orders_365d for f in figures.values())
    keyed = {key: f for key, f in figures.items() if key is not None}
    shop = shop_figures(keyed.values(), window_amount, window_orders, rfm)
    result = {}
    for key, f in keyed.items():
        out = fields(evaluate(f, shop, rfm, phases, now))
        del out["rfm_since"]
        result[key] = out
    return result, shop


def _as_dicts(rfm: RfmSettings, phases: PhaseSettings) -> tuple[dict, dict]:
    return (
        {"recent_days": rfm.recent_days, "nurture_days": rfm.nurture_days, "risk_days": rfm.risk_days,
         "adaptive": rfm.adaptive, "value_ratio": rfm.value_ratio},
        {"loyal_orders": phases.loyal_orders, "churn_days": phases.churn_days},
    )


def assert_agree(orders: list[dict], now: datetime, rfm: RfmSettings = RfmSettings(), phases: PhaseSettings = PhaseSettings()):
    ours, shop = connector_stages(orders, now, rfm, phases)
    rfm_dict, phase_dict = _as_dicts(rfm, phases)
    theirs = reference_stages(orders, now, rfm_dict, phase_dict)
    assert set(ours) == set(theirs)
    differences = {key: (ours[key], theirs[key]) for key in ours if ours[key] != theirs[key]}
    assert not differences, f"{len(differences)} customers differ, e.g. {next(iter(differences.items()))}"
    assert (shop.bands.recent, shop.bands.nurture, shop.bands.risk) == reference_shop_bands(orders, now, rfm_dict)
    return ours, shop


def _returning(orders: list[dict], now: datetime) -> int:
    """Customers with F >= 2 (the premise of the adaptive bands)."""
    return sum(1 for r in reference_stages(orders, now).values() if r["orders_365d"] >= 2)


BIG_SHOP = random_shop(seed=1, customers=1200)


def test_big_shop_with_adaptive_bands():
    ours, shop = assert_agree(BIG_SHOP, NOW)
    assert shop.bands.adaptive, "the premise: >= 100 returning customers and increasing bands"
    assert {r["rfm"] for r in ours.values()} == set(RFM_STAGES)
    assert {r["phases"] for r in ours.values()} == set(PHASES)


def test_big_shop_with_fixed_bands():
    ours, shop = assert_agree(BIG_SHOP, NOW, RfmSettings(adaptive=False))
    assert not shop.bands.adaptive
    assert {r["rfm"] for r in ours.values()} == set(RFM_STAGES)


def test_big_shop_replayed_a_hundred_days_earlier():
    assert_agree(BIG_SHOP, NOW - 100 * DAY)


def test_big_shop_replayed_exactly_a_year_after_some_orders():
    assert_agree(BIG_SHOP, NOW + WINDOW)


def test_big_shop_with_custom_settings():
    rfm = RfmSettings(recent_days=30, nurture_days=60, risk_days=120, adaptive=False, value_ratio=Decimal("1.25"))
    assert_agree(BIG_SHOP, NOW, rfm, PhaseSettings(loyal_orders=3, churn_days=90))


def test_big_shop_with_value_ratio_below_one_and_adaptive_bands():
    assert_agree(BIG_SHOP, NOW, RfmSettings(value_ratio=Decimal("0.8")), PhaseSettings(churn_days=365))


def test_small_shop_keeps_the_configured_bands():
    orders = random_shop(seed=2, customers=150)
    assert _returning(orders, NOW) < 100, "the premise: too few returning customers to adapt"
    _, shop = assert_agree(orders, NOW)
    assert not shop.bands.adaptive


@pytest.mark.parametrize(
    "habit_days",
    [
        pytest.param((0, 0.5), id="same_day_reorders_clamp_to_7_and_fall_back"),
        pytest.param((165, 200), id="slow_reorders_clamp_to_365_and_fall_back"),
    ],
)
def test_shop_whose_adaptive_bands_fall_back(habit_days):
    orders = random_shop(seed=3, customers=1200, habit_days=habit_days, habitual_share=0.95)
    assert _returning(orders, NOW) >= 100, "the premise: enough returning customers to adapt"
    _, shop = assert_agree(orders, NOW)
    assert not shop.bands.adaptive, "the premise: the adaptive bands are not strictly increasing"


def test_uniform_amounts_tie_every_customer_with_the_shop_aov():
    orders = random_shop(seed=4, customers=600, uniform_total=Decimal("50.00"))
    ours, _ = assert_agree(orders, NOW)
    assert "champion" in {r["rfm"] for r in ours.values()}, "the premise: ties at shop_aov are high value"


def _crafted_shop(returning: int) -> list[dict]:
    """`returning` customers reordering every 10.5 days (P = 10.5: half up gives 11, not 10),
    plus one-time customers placed on every day of the first month."""
    rng = random.Random(5)
    orders = []
    for number in range(returning):
        last = (number % 30 + 1) * DAY + rng.choice([timedelta(0), SECOND, -SECOND])
        for age in (last, last + 10 * DAY + DAY / 2):
            orders.append(_order_dict(rng, f"returning{number:03d}@example.com", age, NOW, Decimal("40.00")))
            orders[-1].update(refunded=Decimal(0), status="placed", test=False)
    for number in range(60):
        orders.append(_order_dict(rng, f"once{number:03d}@example.com", (number % 30) * DAY, NOW))
    for number, o in enumerate(orders, start=1):
        o["order_id"] = str(number)
    return orders


@pytest.mark.parametrize(
    "returning, adaptive",
    [
        pytest.param(99, False, id="99_returning_customers_keep_the_defaults"),
        pytest.param(100, True, id="100_returning_customers_adapt_with_p_10_5"),
    ],
)
def test_crafted_shop_at_the_adaptive_threshold(returning, adaptive):
    _, shop = assert_agree(_crafted_shop(returning), NOW)
    assert shop.bands.adaptive is adaptive
    if adaptive:
        assert (shop.bands.recent, shop.bands.nurture, shop.bands.risk) == (11, 24, 47)


# --- the reference on its own, against numbers worked out by hand ----------------------------


def _plain(key, age: timedelta, total: str, status: str = "placed") -> dict:
    return {"order_id": f"{key}-{age}", "customer_key": key, "placed_at": NOW - age, "total": Decimal(total),
            "refunded": Decimal(0), "status": status, "test": False}


def test_reference_counts_customer_less_orders_in_the_shop_aov_only():
    orders = [
        _plain("jane@example.com", 20 * DAY, "60.00"),
        _plain("jane@example.com", 10 * DAY, "60.00"),
        _plain(None, 5 * DAY, "100.00"),  # shop_aov = 220 / 3 = 73.33: Jane is not high value
        _plain("bob@example.com", 5 * DAY, "80.00", status="cancelled"),
        _plain("eve@example.com", -DAY, "80.00"),
    ]
    result = reference_stages(orders, NOW)
    assert set(result) == {"jane@example.com", "bob@example.com", "eve@example.com"}
    assert result["jane@example.com"] == {
        "rfm": "recent", "phases": "development", "orders_365d": 2, "orders_total": 2, "aov_365d": "60.00",
        "total_spent": "120.00", "first_order_date": "2026-05-12", "last_order_date": "2026-05-22",
    }
    for only_invalid_or_future in ("bob@example.com", "eve@example.com"):
        assert result[only_invalid_or_future] == {
            "rfm": "prospect", "phases": "conquest", "orders_365d": 0, "orders_total": 0, "aov_365d": None,
            "total_spent": "0.00", "first_order_date": None, "last_order_date": None,
        }
    without_the_stranger = [o for o in orders if o["customer_key"] is not None]
    assert reference_stages(without_the_stranger, NOW)["jane@example.com"]["rfm"] == "champion"


def test_reference_refuses_an_unknown_status():
    with pytest.raises(ValueError, match="shipped"):
        reference_stages([_plain("jane@example.com", DAY, "1.00", status="shipped")], NOW)
