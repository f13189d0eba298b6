"""The `predicted` model (docs/rules.md, "Predictions"): inputs in whole UTC days, the BG/NBD and
Gamma-Gamma fits, every customer's fields, and the minimum-data rule.

The CDNOW sample (tests/fixtures/cdnow/CDNOW_sample.txt: 2,357 customers of the CDNOW panel,
the file shipped in the datasets of `lifetimes` 0.11.3, MIT licence) checks the fits against the
published parameters; `lifetimes` (a dev dependency) checks each customer's figures; a simulation
of the BG/NBD process checks churn_risk without any library's formula.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from connector.domain import predictions as P

CDNOW = Path(__file__).resolve().parents[1] / "fixtures" / "cdnow" / "CDNOW_sample.txt"
CDNOW_AT = datetime(1997, 10, 1, tzinfo=timezone.utc)  # calibration to 1997-09-30 inclusive
UTC = timezone.utc


def cdnow_orders() -> dict[str, list[tuple[datetime, Decimal]]]:
    """Customer id -> (placed_at, amount) for every row of the sample (master id, sample id,
    YYYYMMDD, number of CDs, dollars)."""
    orders: dict[str, list[tuple[datetime, Decimal]]] = defaultdict(list)
    for line in CDNOW.read_text().splitlines():
        customer, _, day, _, amount = line.split()
        orders[customer].append((datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC), Decimal(amount)))
    return orders


@pytest.fixture(scope="module")
def cdnow() -> tuple[list[P.CustomerInputs], P.ShopInputs]:
    inputs = [P.customer_inputs(o, CDNOW_AT) for o in cdnow_orders().values()]
    customers = [i for i in inputs if i is not None]
    return customers, P.ShopInputs.from_customers(customers, P.prediction_day(CDNOW_AT))


@pytest.fixture(scope="module")
def cdnow_fit(cdnow) -> P.ShopPredictions:
    result = P.predict_shop(cdnow[1])
    assert result.status == P.STATUS_OK, result.reason
    return result


def sig3(value: float) -> float:
    return float(f"{value:.3g}")


# --- inputs ----------------------------------------------------------------------------------

def test_d_now_is_the_date_of_the_last_instant_before_now():
    assert P.prediction_day(datetime(1997, 10, 1, tzinfo=UTC)) == date(1997, 9, 30)
    assert P.prediction_day(datetime(1997, 10, 1, 0, 0, 0, 1, tzinfo=UTC)) == date(1997, 10, 1)
    assert P.prediction_day(datetime(1997, 10, 1, 23, 59, tzinfo=UTC)) == date(1997, 10, 1)


def test_inputs_count_distinct_order_dates_after_the_first_and_average_each_dates_total():
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    orders = [
        (datetime(2026, 1, 1, 9, tzinfo=UTC), Decimal("10")),
        (datetime(2026, 1, 1, 18, tzinfo=UTC), Decimal("5")),  # same date as the first: not a repeat
        (datetime(2026, 1, 8, 9, tzinfo=UTC), Decimal("20")),
        (datetime(2026, 1, 8, 10, tzinfo=UTC), Decimal("4")),  # one repeat date worth 24
        (datetime(2026, 2, 5, 0, tzinfo=UTC), Decimal("0")),  # a zero-total order counts
        (datetime(2026, 3, 1, 12, tzinfo=UTC), Decimal("99")),  # at exactly now: the next day, left out
    ]
    got = P.customer_inputs(orders, now)
    assert got == P.CustomerInputs(x=2, t_x_days=35, age_days=59, x_m=2, m=12.0,
                                   first_day=date(2026, 1, 1), last_day=date(2026, 2, 5))
    assert got.t_x == pytest.approx(5.0) and got.T == pytest.approx(59 / 7)


def test_a_repeat_date_with_an_unknown_amount_counts_as_an_order_but_not_in_m():
    now = datetime(2026, 3, 1, tzinfo=UTC)
    orders = [(datetime(2026, 1, 1, tzinfo=UTC), Decimal("10")), (datetime(2026, 1, 2, tzinfo=UTC), None),
              (datetime(2026, 1, 3, tzinfo=UTC), Decimal("30"))]
    got = P.customer_inputs(orders, now)
    assert (got.x, got.x_m, got.m) == (2, 1, 30.0)
    only_unknown = P.customer_inputs(orders[:2], now)
    assert (only_unknown.x, only_unknown.x_m, only_unknown.m) == (1, 0, None)


def test_no_order_before_now_gives_no_inputs():
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert P.customer_inputs([(now, Decimal(1)), (now + timedelta(days=1), Decimal(1))], now) is None


def test_the_whole_shop_builder_gives_each_customers_own_inputs(cdnow):
    customers, _ = cdnow
    orders = list(cdnow_orders().values())
    rng = np.random.default_rng(3)
    index, placed, amount = [], [], []
    for i, own in enumerate(orders):
        for placed_at, value in own:
            # a random time of day, and some amounts unknown: same dates, same inputs
            at = placed_at + timedelta(seconds=int(rng.integers(0, 86_400)))
            index.append(i)
            placed.append(int(at.timestamp()) * 1_000_000)
            amount.append(float(value))
    shop = P.shop_inputs_from_orders(np.array(index), np.array(placed), np.array(amount),
                                     int(CDNOW_AT.timestamp()) * 1_000_000)
    expected = P.ShopInputs.from_customers(customers, P.prediction_day(CDNOW_AT))
    assert shop.d_now == expected.d_now == date(1997, 9, 30)
    for name in ("x", "t_x_days", "age_days", "x_m"):
        assert np.array_equal(getattr(shop, name), getattr(expected, name)), name
    np.testing.assert_allclose(shop.m, expected.m, rtol=1e-12, equal_nan=True)


def test_the_whole_shop_builder_leaves_out_orders_at_now_and_unknown_amounts():
    now_us = 10 * P.DAY_MICROS  # 1970-01-11 00:00
    customer = np.array([0, 0, 0, 1, 2, 2])
    placed = np.array([0, 2 * P.DAY_MICROS, 3 * P.DAY_MICROS, now_us, P.DAY_MICROS, now_us - 1])
    amount = np.array([1.0, np.nan, 6.0, 5.0, 2.0, 3.0])
    shop = P.shop_inputs_from_orders(customer, placed, amount, now_us)
    assert shop.d_now == date(1970, 1, 10)
    assert shop.x.tolist() == [2, 0, 1] and shop.x_m.tolist() == [1, 0, 1]
    assert shop.age_days.tolist() == [9, -1, 8] and shop.t_x_days.tolist() == [3, 0, 8]
    assert shop.m[0] == 6.0 and math.isnan(shop.m[1]) and shop.m[2] == 3.0
    assert P.has_orders(shop).tolist() == [True, False, True]


# --- the fits against the published CDNOW results -------------------------------------------

def test_cdnow_bgnbd_fit_matches_the_published_parameters(cdnow_fit):
    bg = cdnow_fit.bgnbd
    assert [sig3(v) for v in (bg.r, bg.alpha, bg.a, bg.b)] == [0.243, 4.41, 0.793, 2.43]
    assert (bg.r, bg.alpha, bg.a, bg.b) == pytest.approx((0.243, 4.414, 0.793, 2.426), abs=6e-4)


def test_cdnow_gamma_gamma_fit_matches_the_published_parameters(cdnow_fit):
    gg = cdnow_fit.gamma_gamma
    assert [sig3(v) for v in (gg.p, gg.q, gg.v)] == [6.25, 3.74, 15.4]
    assert (gg.p, gg.q, gg.v) == pytest.approx((6.25, 3.74, 15.44), abs=6e-3)


def test_cdnow_inputs_match_the_published_summary(cdnow):
    _, shop = cdnow
    assert len(shop) == 2357
    assert int((shop.x > 0).sum()) == 946  # the 946 repeat customers of the Gamma-Gamma note
    # ID 1 of the published summary: x 2, t_x 30.43, T 38.86, m 22.35 = (29.73 + 14.96) / 2
    first = P.customer_inputs(cdnow_orders()["00004"], CDNOW_AT)
    assert (first.x, first.t_x, first.T) == pytest.approx((2, 30.43, 38.86), abs=0.005)
    assert first.m == pytest.approx((29.73 + 14.96) / 2)


# --- each customer against lifetimes 0.11.3, with the same parameters -----------------------

def test_each_cdnow_customer_agrees_with_lifetimes(cdnow, cdnow_fit):
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    _, shop = cdnow
    bg, gg = cdnow_fit.bgnbd, cdnow_fit.gamma_gamma
    theirs = BetaGeoFitter()
    theirs.params_ = pd.Series({"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b})
    spend = GammaGammaFitter()
    spend.params_ = pd.Series({"p": gg.p, "q": gg.q, "v": gg.v})
    x, t_x, T = shop.x.astype(float), shop.t_x_days / 7, shop.age_days / 7
    fields = cdnow_fit.fields

    np.testing.assert_allclose(fields.p_alive, theirs.conditional_probability_alive(x, t_x, T), rtol=0, atol=1e-5)
    for days, ours in ((90, fields.expected_orders_90d), (365, fields.expected_orders_365d)):
        expected = theirs.conditional_expected_number_of_purchases_up_to_time(days / 7, x, t_x, T)
        np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=0)
    value = spend.conditional_expected_average_profit(shop.x_m.astype(float), np.nan_to_num(shop.m))
    np.testing.assert_allclose(P.expected_order_value(gg, shop.x_m, shop.m), value, rtol=0, atol=0.01)
    np.testing.assert_allclose(fields.predicted_clv_365d, fields.expected_orders_365d * value, rtol=1e-4)


@pytest.mark.parametrize("params", [(2.2, 0.5, 3.5, 12.0), (0.3, 60.0, 0.25, 0.5), (0.05, 0.01, 0.5, 0.2),
                                    (5.0, 2.0, 1.5, 0.8)])
def test_expected_orders_agree_with_lifetimes_far_from_cdnow(params):
    """Up to 60 repeat dates, two years of history, a > 1 and a < 1, alpha from 0.01 to 60 weeks
    (z = t / (alpha + T + t) up to 0.9998, where the series needs the most terms)."""
    import pandas as pd
    from lifetimes import BetaGeoFitter

    x, t_x, age = (a.ravel() for a in np.meshgrid(np.arange(0, 61, 4), np.arange(0, 731, 45), np.arange(0, 731, 45),
                                                   indexing="ij"))
    keep = (t_x <= age) & ((x == 0) == (t_x == 0)) & (x <= t_x + (x == 0))
    x, t_x, age = x[keep], t_x[keep] / 7, age[keep] / 7
    theirs = BetaGeoFitter()
    theirs.params_ = pd.Series(dict(zip(("r", "alpha", "a", "b"), params)))
    for days in (90, 365):
        ours = P.expected_orders(P.BgNbdParams(*params), days / 7, x, t_x, age)
        expected = np.asarray(theirs.conditional_expected_number_of_purchases_up_to_time(days / 7, x, t_x, age))
        assert np.all(np.isfinite(ours))
        known = np.isfinite(expected)  # lifetimes' hyp2f1 overflows at alpha = 0.01, T = 0
        assert known.sum() >= len(x) - 1
        np.testing.assert_allclose(ours[known], expected[known], rtol=1e-9)


def test_lifetimes_fits_the_same_parameters_on_the_same_inputs(cdnow, cdnow_fit):
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    _, shop = cdnow
    theirs = BetaGeoFitter().fit(shop.x, shop.t_x_days / 7, shop.age_days / 7)
    bg = cdnow_fit.bgnbd
    assert [theirs.params_[k] for k in ("r", "alpha", "a", "b")] == pytest.approx(
        [bg.r, bg.alpha, bg.a, bg.b], rel=2e-3)
    repeat = shop.x_m > 0
    spend = GammaGammaFitter().fit(shop.x_m[repeat], shop.m[repeat])
    gg = cdnow_fit.gamma_gamma
    assert [spend.params_[k] for k in ("p", "q", "v")] == pytest.approx([gg.p, gg.q, gg.v], rel=2e-3)


# --- churn_risk against a simulation of the process -----------------------------------------

def simulate_no_order(bg: P.BgNbdParams, x: int, t_x: float, T: float, tau: float,  # noqa: N803
                      draws: int, rng: np.random.Generator) -> tuple[float, int]:
    """Simulated customers of the BG/NBD process (first order at 0, a Poisson(lambda) order
    stream, a drop-out with probability p after each repeat order), kept when their history up to
    T is (x repeat orders, the last within half a day of t_x); the share of them with no order in
    (T, T + tau], and how many were kept."""
    lam = rng.gamma(bg.r, 1 / bg.alpha, draws)
    p = rng.beta(bg.a, bg.b, draws)
    time = np.zeros(draws)
    last = np.zeros(draws)
    count = np.zeros(draws, dtype=np.int64)
    alive = np.ones(draws, dtype=bool)
    after = np.full(draws, np.inf)  # first order after T
    active = np.arange(draws)
    while active.size:
        time[active] += rng.exponential(1 / lam[active])
        past = time[active] > T
        after[active[past]] = time[active[past]]
        ordered = active[~past]
        count[ordered] += 1
        last[ordered] = time[ordered]
        alive[ordered] &= rng.random(ordered.size) >= p[ordered]
        active = ordered[alive[ordered] & (count[ordered] <= x)]
    kept = (count == x) & (np.abs(last - t_x) <= 0.5 / 7)
    no_order = ~alive[kept] | (after[kept] > T + tau)
    return float(no_order.mean()), int(kept.sum())


@pytest.mark.parametrize(("x", "t_x_days", "age_days"), [(0, 0, 100), (0, 0, 270), (1, 30, 60), (2, 150, 200),
                                                         (4, 200, 210)])
def test_churn_risk_matches_a_simulation_of_the_process(x, t_x_days, age_days):
    bg = P.BgNbdParams(0.243, 4.414, 0.793, 2.426)
    shop = P.ShopInputs(date(2026, 1, 1), np.array([x]), np.array([t_x_days]), np.array([age_days]),
                        np.array([x]), np.array([10.0 if x else np.nan]))
    risk = P.predict_customers(bg, P.GammaGammaParams(6.25, 3.74, 15.44), shop).churn_risk[0]
    rng = np.random.default_rng(20260101 + 97 * x + t_x_days)
    simulated, kept = simulate_no_order(bg, x, t_x_days / 7, age_days / 7, 90 / 7, 2_000_000, rng)
    assert kept >= 400
    standard_error = math.sqrt(simulated * (1 - simulated) / kept)
    assert abs(risk - simulated) <= 2 * standard_error, (risk, simulated, kept)


# --- the other fields ------------------------------------------------------------------------

def test_churn_risk_follows_its_formula_and_p_alive_is_one_without_a_repeat(cdnow, cdnow_fit):
    _, shop = cdnow
    bg, f = cdnow_fit.bgnbd, cdnow_fit.fields
    T = shop.age_days / 7
    assert np.all(f.p_alive[shop.x == 0] == 1.0)
    tau = 90 / 7
    formula = 1 - f.p_alive + f.p_alive * ((bg.alpha + T) / (bg.alpha + T + tau)) ** (bg.r + shop.x)
    np.testing.assert_allclose(f.churn_risk, formula, rtol=1e-12)
    bands = np.where(formula < 0.33, "low", np.where(formula < 0.66, "medium", "high"))
    assert np.array_equal(f.churn_band, bands)
    assert sum(cdnow_fit.churn_bands().values()) == 2357


def test_next_order_date_is_the_first_day_the_chance_of_no_order_falls_to_half(cdnow, cdnow_fit):
    _, shop = cdnow
    bg, f = cdnow_fit.bgnbd, cdnow_fit.fields
    T = shop.age_days / 7
    days = np.arange(1, 366, dtype=float)
    for i in range(0, len(shop), 7):
        chance = P.no_order_probability(bg, days, float(shop.x[i]), T[i], f.p_alive[i])
        below = np.flatnonzero(chance <= 0.5)
        expected = int(days[below[0]]) if below.size else -1
        assert f.next_order_days[i] == expected, i
        got = cdnow_fit.customer(i).next_order_date
        assert got == (None if expected < 0 else date(1997, 9, 30) + timedelta(days=expected))
    assert (f.next_order_days > 0).any() and (f.next_order_days == -1).any()


def test_one_customer_from_stored_parameters_gets_what_the_shop_run_gave_it(cdnow, cdnow_fit):
    customers, _ = cdnow
    for i in (0, 1, 2, 500, 2356):
        one = P.predict_one(cdnow_fit.bgnbd, cdnow_fit.gamma_gamma, customers[i], cdnow_fit.d_now)
        whole = cdnow_fit.customer(i)
        for f in dataclasses.fields(P.CustomerPrediction):
            mine, theirs = getattr(one, f.name), getattr(whole, f.name)
            assert mine == (pytest.approx(theirs, rel=1e-12) if isinstance(theirs, float) else theirs), f.name


# --- not enough data, failed fits ------------------------------------------------------------

def assert_insufficient(result: P.ShopPredictions, reason_part: str) -> None:
    assert result.status == P.STATUS_INSUFFICIENT
    assert reason_part in result.reason
    assert result.bgnbd is None and result.gamma_gamma is None and result.fields is None
    assert all(getattr(result.customer(0), f.name) is None for f in dataclasses.fields(P.CustomerPrediction))


def test_a_tiny_shop_of_one_order_customers_with_zero_amounts_is_insufficient_data():
    now = datetime(2026, 6, 1, tzinfo=UTC)
    customers = [P.customer_inputs([(now - timedelta(days=3 + i), Decimal("0"))], now) for i in range(20)]
    result = P.predict_shop(P.ShopInputs.from_customers(customers, P.prediction_day(now)))
    assert_insufficient(result, "20 customers with orders, fewer than 500")
    assert result.customers == 20 and result.churn_bands() == {"low": 0, "medium": 0, "high": 0}


def synthetic_shop(customers: int, seed: int, *, amount: float | None = None, dropout: bool = True) -> P.ShopInputs:
    """Customers of a BG/NBD-like process over 400 days up to d_now."""
    rng = np.random.default_rng(seed)
    age = rng.integers(0, 400, customers)
    lam = rng.gamma(0.5, 1 / 20, customers) if dropout else np.full(customers, 0.05)
    p = rng.beta(1.0, 3.0, customers) if dropout else np.zeros(customers)
    x = np.zeros(customers, dtype=np.int64)
    last = np.zeros(customers, dtype=np.int64)
    time = np.zeros(customers)
    alive = np.ones(customers, dtype=bool)
    active = np.arange(customers)
    while active.size:
        time[active] += rng.exponential(1 / lam[active])
        ordered = active[time[active] <= age[active]]
        x[ordered] += 1
        last[ordered] = np.floor(time[ordered])
        alive[ordered] &= rng.random(ordered.size) >= p[ordered]
        active = ordered[alive[ordered]]
    m = np.where(x > 0, amount if amount is not None else rng.gamma(6.0, 5.0, customers), np.nan)
    return P.ShopInputs(date(2026, 6, 1), x, np.minimum(last, age), age, x, m)


def test_a_shop_meeting_the_minimum_is_fitted():
    result = P.predict_shop(synthetic_shop(3000, 1))
    assert result.status == P.STATUS_OK, result.reason
    assert result.fields.finite() and result.customer(0).churn_band in ("low", "medium", "high")


@pytest.mark.parametrize(("change", "reason"), [
    (lambda s: s.__class__(s.d_now, s.x[:499], s.t_x_days[:499], s.age_days[:499], s.x_m[:499], s.m[:499]),
     "499 customers with orders, fewer than 500"),
    (lambda s: s.__class__(s.d_now, np.minimum(s.x, 0), np.minimum(s.t_x_days, 0), s.age_days, s.x_m * 0, s.m),
     "0 customers with a repeat order, fewer than 100"),
    (lambda s: s.__class__(s.d_now, np.minimum(s.x, 1), s.t_x_days, s.age_days, np.minimum(s.x_m, 1), s.m),
     "customers with 3 or more order dates, fewer than 20"),
    (lambda s: s.__class__(s.d_now, s.x, np.minimum(s.t_x_days, 179), np.minimum(s.age_days, 179), s.x_m, s.m),
     "179 days from the shop's first order, fewer than 180"),
    (lambda s: s.__class__(s.d_now, s.x, s.t_x_days, s.age_days + 30, s.x_m, s.m),
     "no order in the last 30 days"),
])
def test_each_minimum_data_condition_gives_insufficient_data_with_its_reason(change, reason):
    assert_insufficient(P.predict_shop(change(synthetic_shop(3000, 2))), reason)


def test_repeat_orders_all_worth_zero_give_insufficient_data_and_nothing_nan():
    result = P.predict_shop(synthetic_shop(3000, 3, amount=0.0))
    assert_insufficient(result, "no repeat order with an amount above zero")


def test_a_fit_that_runs_into_a_bound_gives_insufficient_data():
    # nobody ever drops out and everyone buys at the same rate: b and alpha run off to infinity
    result = P.predict_shop(synthetic_shop(3000, 4, dropout=False))
    assert_insufficient(result, "BG/NBD fit")
