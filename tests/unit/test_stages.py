"""The stage models of docs/rules.md: every table row, every boundary (`connector.domain.stages`).

All times hang off one fixed `NOW`; no test reads the clock. Unless a test says otherwise the
shop's average order value is 50.00 and the recency bands are the defaults 40 / 90 / 180, so a
"cheap" order (10.00) is never high value and a "dear" one (80.00) always is.
"""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from itertools import count

import pytest

from connector.domain.orders import Order
from connector.domain.stages import (
    Bands,
    PhaseSettings,
    RfmSettings,
    ShopFigures,
    customer_figures,
    evaluate,
    fields,
    purchase_interval,
    recency_bands,
    shop_figures,
)

NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
DEFAULT_BANDS = Bands(40, 90, 180)
RFM = RfmSettings()
PHASES = PhaseSettings()
_order_ids = count(1)


def ago(days: float = 0, seconds: float = 0, microseconds: int = 0) -> datetime:
    return NOW - timedelta(days=days, seconds=seconds, microseconds=microseconds)


def order(placed_at: datetime | float, total: str = "50.00", **overrides) -> Order:
    """One order of jane@example.com; `placed_at` may be a number of days before NOW."""
    if not isinstance(placed_at, datetime):
        placed_at = ago(placed_at)
    return Order.build(
        shop_id="acme", order_id=next(_order_ids), placed_at=placed_at, total=total,
        email="jane@example.com", **overrides,
    )


def cheap(days_ago: float) -> Order:
    return order(days_ago, "10.00")


def dear(days_ago: float) -> Order:
    return order(days_ago, "80.00")


def shop(window_amount: str = "200.00", window_orders: int = 4, bands: Bands = DEFAULT_BANDS) -> ShopFigures:
    """Shop figures given outright; the default shop_aov is 200.00 / 4 = 50.00."""
    return ShopFigures(Decimal(window_amount), window_orders, bands)


def day_of(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).date().isoformat()


def judge(orders, shop_figs: ShopFigures | None = None, rfm: RfmSettings = RFM, phases: PhaseSettings = PHASES):
    return evaluate(customer_figures(orders, NOW), shop_figs or shop(), rfm, phases, NOW)


# --- 2.1 rfm: every row of the table --------------------------------------------------------


@pytest.mark.parametrize(
    "orders, stage",
    [
        pytest.param([], "prospect", id="prospect_without_any_order"),
        pytest.param([order(5, status="cancelled"), order(5, test=True)], "prospect", id="prospect_with_only_invalid_orders"),
        pytest.param([order(ago(seconds=-1))], "prospect", id="prospect_with_only_orders_after_now"),
        pytest.param([dear(400), dear(500)], "lost", id="lost_with_only_orders_older_than_a_year"),
        pytest.param([dear(30), dear(20), dear(10)], "champion", id="champion_recent_frequent_and_high_value"),
        pytest.param([dear(20), dear(10)], "champion", id="champion_two_high_value_orders_are_frequent"),
        pytest.param([cheap(30), cheap(20), cheap(10)], "loyalist", id="loyalist_recent_frequent_not_high_value"),
        pytest.param([cheap(10)], "recent", id="recent_single_cheap_order"),
        pytest.param([dear(10)], "recent", id="recent_high_value_but_single_order_is_not_frequent"),
        pytest.param([cheap(20), cheap(10)], "recent", id="recent_two_cheap_orders_are_not_frequent"),
        pytest.param([cheap(500), cheap(400), cheap(10)], "recent", id="recent_orders_older_than_a_year_do_not_make_frequent"),
        pytest.param([cheap(70), cheap(60), cheap(50)], "high_potential", id="high_potential_frequent"),
        pytest.param([dear(50)], "high_potential", id="high_potential_high_value"),
        pytest.param([cheap(50)], "needs_nurturing", id="needs_nurturing_neither_frequent_nor_high_value"),
        pytest.param([cheap(140), cheap(130), cheap(120)], "cant_lose", id="cant_lose_frequent"),
        pytest.param([dear(120)], "cant_lose", id="cant_lose_high_value"),
        pytest.param([cheap(120)], "at_risk", id="at_risk_neither_frequent_nor_high_value"),
        pytest.param([cheap(200)], "about_to_lose", id="about_to_lose_single_cheap_order"),
        pytest.param([dear(300), dear(250), dear(200)], "about_to_lose", id="about_to_lose_even_frequent_and_high_value"),
        pytest.param([cheap(364)], "about_to_lose", id="about_to_lose_last_order_almost_a_year_ago"),
    ],
)
def test_rfm_stage_table(orders, stage):
    assert judge(orders).rfm == stage


# --- 2.2 phases: every row of the table -----------------------------------------------------


@pytest.mark.parametrize(
    "orders, phase",
    [
        pytest.param([], "conquest", id="conquest_without_any_order"),
        pytest.param([order(5, status="voided"), order(5, refunded="50.00")], "conquest", id="conquest_with_only_invalid_orders"),
        pytest.param([order(ago(days=-1))], "conquest", id="conquest_with_only_orders_after_now"),
        pytest.param([cheap(200)], "disengagement", id="disengagement_when_recency_passes_churn_days"),
        pytest.param([cheap(400)], "disengagement", id="disengagement_for_a_lost_customer"),
        pytest.param([cheap(230), cheap(220), cheap(210), cheap(200)], "disengagement", id="disengagement_wins_over_loyalty"),
        pytest.param([cheap(40), cheap(30), cheap(20), cheap(10)], "loyalty", id="loyalty_with_four_window_orders"),
        pytest.param([cheap(50), cheap(40), cheap(30), cheap(20), cheap(10)], "loyalty", id="loyalty_with_more_than_four"),
        pytest.param([cheap(30), cheap(20), cheap(10)], "development", id="development_three_window_orders_are_not_loyalty"),
        pytest.param([cheap(500), cheap(10)], "development", id="development_second_order_older_than_a_year"),
        pytest.param([cheap(600), cheap(500), cheap(400), cheap(10)], "development", id="development_loyalty_counts_window_orders_only"),
        pytest.param([cheap(10)], "conversion", id="conversion_single_order"),
        pytest.param([cheap(10), order(5, status="cancelled")], "conversion", id="conversion_cancelled_second_order_does_not_count"),
    ],
)
def test_phase_table(orders, phase):
    assert judge(orders).phases == phase


@pytest.mark.parametrize(
    "settings, orders, phase",
    [
        pytest.param(PhaseSettings(churn_days=90), [cheap(89)], "conversion", id="custom_churn_days_minus_one"),
        pytest.param(PhaseSettings(churn_days=90), [cheap(90)], "disengagement", id="custom_churn_days_reached"),
        pytest.param(PhaseSettings(churn_days=365), [cheap(364)], "conversion", id="churn_days_365_last_order_364_days_ago"),
        pytest.param(PhaseSettings(loyal_orders=3), [cheap(30), cheap(20), cheap(10)], "loyalty", id="custom_loyal_orders_reached"),
        pytest.param(PhaseSettings(loyal_orders=3), [cheap(20), cheap(10)], "development", id="custom_loyal_orders_not_reached"),
    ],
)
def test_phase_settings(settings, orders, phase):
    assert judge(orders, phases=settings).phases == phase


# --- recency boundaries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "placed_at, recency, stage, phase",
    [
        pytest.param(ago(0), 0, "recent", "conversion", id="order_exactly_now_is_recency_0"),
        pytest.param(ago(39), 39, "recent", "conversion", id="recency_39_is_recent"),
        pytest.param(ago(40, seconds=-1), 39, "recent", "conversion", id="one_second_short_of_40_days_is_recency_39"),
        pytest.param(ago(40), 40, "needs_nurturing", "conversion", id="recency_40_leaves_recent"),
        pytest.param(ago(40, seconds=86_399), 40, "needs_nurturing", "conversion", id="recency_is_floored_to_whole_days"),
        pytest.param(ago(89), 89, "needs_nurturing", "conversion", id="recency_89_is_needs_nurturing"),
        pytest.param(ago(90), 90, "at_risk", "conversion", id="recency_90_leaves_nurture"),
        pytest.param(ago(179), 179, "at_risk", "conversion", id="recency_179_is_at_risk_and_not_churned"),
        pytest.param(ago(180, microseconds=-1), 179, "at_risk", "conversion", id="one_microsecond_short_of_180_days"),
        pytest.param(ago(180), 180, "about_to_lose", "disengagement", id="recency_180_is_about_to_lose_and_churned"),
        pytest.param(ago(365, seconds=-1), 364, "about_to_lose", "disengagement", id="window_edge_minus_one_second_is_inside"),
        pytest.param(ago(365, microseconds=-1), 364, "about_to_lose", "disengagement", id="window_edge_minus_one_microsecond_is_inside"),
        pytest.param(ago(365), 365, "lost", "disengagement", id="exactly_365_days_ago_is_outside_the_window"),
        pytest.param(ago(365, seconds=1), 365, "lost", "disengagement", id="365_days_and_one_second_ago_is_outside"),
    ],
)
def test_recency_and_window_boundaries(placed_at, recency, stage, phase):
    result = judge([order(placed_at, "10.00")])
    assert (result.recency_days, result.rfm, result.phases) == (recency, stage, phase)


@pytest.mark.parametrize(
    "placed_at, in_window",
    [
        pytest.param(ago(0), True, id="now_itself_is_inside"),
        pytest.param(ago(365, seconds=-1), True, id="365_days_minus_one_second_is_inside"),
        pytest.param(ago(365), False, id="exactly_365_days_is_outside"),
        pytest.param(ago(365, seconds=1), False, id="365_days_plus_one_second_is_outside"),
    ],
)
def test_window_is_open_at_365_days_and_closed_at_now(placed_at, in_window):
    figures = customer_figures([order(placed_at)], NOW)
    assert figures.orders_365d == (1 if in_window else 0)
    assert figures.orders_total == 1


@pytest.mark.parametrize(
    "future",
    [
        pytest.param(ago(seconds=-1), id="one_second_after_now"),
        pytest.param(ago(days=-30), id="a_month_after_now"),
    ],
)
def test_orders_after_now_are_ignored(future):
    result = judge([cheap(100), order(future, "500.00"), order(future, "500.00")])
    f = result.figures
    assert (f.orders_365d, f.orders_total, f.total_spent, f.last_at) == (1, 1, Decimal("10.00"), ago(100))
    assert (result.recency_days, result.rfm, result.phases) == (100, "at_risk", "conversion")


def test_replaying_an_earlier_instant_sees_only_the_orders_placed_by_then():
    orders = [cheap(100), cheap(50), cheap(10)]
    earlier = NOW - timedelta(days=60)
    result = evaluate(customer_figures(orders, earlier), shop(), RFM, PHASES, earlier)
    assert (result.figures.orders_365d, result.recency_days, result.rfm) == (1, 40, "needs_nurturing")


# --- high value and frequent ----------------------------------------------------------------


@pytest.mark.parametrize(
    "totals, shop_figs, ratio, high_value, frequent",
    [
        pytest.param(["50.00", "50.00"], shop(), "1", True, True, id="aov_equal_to_shop_aov_is_high_value"),
        pytest.param(["49.99", "50.00"], shop(), "1", False, False, id="aov_half_a_cent_below_is_not_high_value"),
        pytest.param(["49.99", "49.99"], shop(), "1", False, False, id="aov_a_cent_below_is_not_high_value"),
        pytest.param(["50.00"], shop(), "1", True, False, id="single_high_value_order_is_not_frequent"),
        pytest.param(["10.00", "10.00", "10.00"], shop(), "1", False, True, id="three_orders_are_frequent_without_value"),
        pytest.param(["80.00", "80.00", "80.00"], shop(), "1", True, True, id="three_high_value_orders"),
        pytest.param(["75.00", "75.00"], shop(), "1.5", True, True, id="value_ratio_above_one_reached_exactly"),
        pytest.param(["74.99", "75.00"], shop(), "1.5", False, False, id="value_ratio_above_one_missed"),
        pytest.param(["60.00", "60.00"], shop(), "1.5", False, False, id="above_shop_aov_but_below_ratio"),
        pytest.param(["25.00", "25.00"], shop(), "0.5", True, True, id="value_ratio_below_one_reached_exactly"),
        pytest.param(["24.99"], shop(), "0.5", False, False, id="value_ratio_below_one_missed"),
        pytest.param(["33.33"], shop("100.00", 3), "1", False, False, id="exact_arithmetic_33_33_below_a_third_of_100"),
        pytest.param(["33.34"], shop("100.00", 3), "1", True, False, id="exact_arithmetic_33_34_above_a_third_of_100"),
        pytest.param(["100.00"], shop("100.00", 3), "3", True, False, id="exact_arithmetic_three_thirds_are_whole"),
        pytest.param(["90.00", "10.00"], shop(), "1", True, True, id="aov_not_the_single_orders_decides"),
    ],
)
def test_high_value_and_frequent(totals, shop_figs, ratio, high_value, frequent):
    orders = [order(10 + i, total) for i, total in enumerate(totals)]
    result = judge(orders, shop_figs, RfmSettings(value_ratio=Decimal(ratio)))
    assert (result.high_value, result.frequent) == (high_value, frequent)


def test_a_lost_customer_is_never_high_value():
    result = judge([dear(400)])
    assert (result.high_value, result.frequent, result.rfm) == (False, False, "lost")


@pytest.mark.parametrize(
    "totals, stage",
    [
        pytest.param(["50.00", "50.00"], "champion", id="two_orders_at_shop_aov_make_a_champion"),
        pytest.param(["49.99", "49.99"], "recent", id="two_orders_just_below_shop_aov_stay_recent"),
    ],
)
def test_two_orders_are_frequent_only_when_high_value(totals, stage):
    assert judge([order(20, totals[0]), order(10, totals[1])]).rfm == stage


def test_value_ratio_moves_a_champion_to_loyalist():
    orders = [order(30, "60.00"), order(20, "60.00"), order(10, "60.00")]
    assert judge(orders).rfm == "champion"
    assert judge(orders, rfm=RfmSettings(value_ratio=Decimal("1.25"))).rfm == "loyalist"


# --- valid orders in the figures ------------------------------------------------------------


def test_invalid_orders_leave_every_count_and_sum():
    orders = [
        order(10, "50.00"),
        order(11, "100.00", status="cancelled"),
        order(12, "100.00", status="voided"),
        order(13, "100.00", status="deleted"),
        order(14, "100.00", test=True),
        order(15, "100.00", refunded="100.00"),
        order(16, "100.00", status="refunded"),
        order(500, "100.00", status="cancelled"),
    ]
    out = fields(judge(orders))
    assert (out["orders_365d"], out["orders_total"], out["aov_365d"], out["total_spent"]) == (1, 1, "50.00", "50.00")
    assert out["rfm"] == "recent"  # three cancelled orders do not make her frequent
    assert out["first_order_date"] == out["last_order_date"] == day_of(ago(10))


def test_cancelled_order_leaves_the_window_and_recency():
    result = judge([cheap(100), order(5, "10.00", status="cancelled")])
    assert (result.figures.orders_365d, result.recency_days, result.rfm) == (1, 100, "at_risk")


def test_partial_refunds_lower_aov_and_total_spent():
    out = fields(judge([order(10, "100.00", refunded="40.00"), order(20, "50.00"), order(400, "30.00", refunded="5.00")]))
    assert (out["aov_365d"], out["total_spent"], out["orders_365d"], out["orders_total"]) == ("55.00", "135.00", 2, 3)


def test_partial_refund_can_take_away_high_value():
    assert judge([order(20, "80.00"), order(10, "80.00")]).rfm == "champion"
    assert judge([order(20, "80.00", refunded="70.00"), order(10, "80.00")]).rfm == "recent"  # AOV 45


def test_zero_total_order_counts_with_amount_zero():
    out = fields(judge([order(10, "0")]))
    assert (out["rfm"], out["orders_365d"], out["orders_total"], out["aov_365d"], out["total_spent"]) == (
        "recent", 1, 1, "0.00", "0.00")


def test_zero_total_orders_count_towards_frequency():
    result = judge([order(30, "0"), order(20, "0"), order(10, "0")])
    assert (result.figures.orders_365d, result.frequent, result.high_value, result.rfm) == (3, True, False, "loyalist")


# --- fields() -------------------------------------------------------------------------------


def test_fields_of_a_returning_customer():
    orders = [
        order(datetime(2025, 1, 10, 8, tzinfo=timezone.utc), "100.00"),
        order(datetime(2026, 3, 1, 9, tzinfo=timezone.utc), "10.00"),
        # 23:30 on 31 May at UTC-2 is 01:30 on 1 June in UTC: dates are UTC dates
        order(datetime(2026, 5, 31, 23, 30, tzinfo=timezone(timedelta(hours=-2))), "20.01"),
    ]
    out = fields(judge(orders), rfm_since=date(2026, 5, 1))
    assert out == {
        "rfm": "recent",
        "phases": "development",
        "orders_365d": 2,
        "orders_total": 3,
        "aov_365d": "15.01",  # 30.01 / 2 = 15.005, half up
        "total_spent": "130.01",
        "first_order_date": "2025-01-10",
        "last_order_date": "2026-06-01",
        "rfm_since": "2026-05-01",
    }


def test_fields_of_a_lost_customer_have_no_aov():
    out = fields(judge([order(400, "50.00")]))
    assert (out["rfm"], out["orders_365d"], out["orders_total"], out["aov_365d"], out["total_spent"]) == (
        "lost", 0, 1, None, "50.00")
    assert out["first_order_date"] == out["last_order_date"] == day_of(ago(400))


def test_fields_of_a_prospect():
    out = fields(judge([order(5, status="cancelled")]))
    assert out == {
        "rfm": "prospect", "phases": "conquest", "orders_365d": 0, "orders_total": 0, "aov_365d": None,
        "total_spent": "0.00", "first_order_date": None, "last_order_date": None, "rfm_since": None,
    }


@pytest.mark.parametrize(
    "totals, aov",
    [
        pytest.param(["10.005"], "10.01", id="half_cent_rounds_up"),
        pytest.param(["10.004"], "10.00", id="below_half_cent_rounds_down"),
        pytest.param(["0.01", "0.00"], "0.01", id="half_a_cent_average_rounds_up"),
        pytest.param(["1.00", "1.01"], "1.01", id="1_005_rounds_up_not_to_even"),
        pytest.param(["10.00", "10.00", "10.01"], "10.00", id="repeating_decimal_rounds_down"),
        pytest.param(["10.00", "10.01", "10.01"], "10.01", id="repeating_decimal_rounds_up"),
        pytest.param(["1234.5"], "1234.50", id="always_two_decimals"),
        pytest.param(["7"], "7.00", id="whole_amount_gets_two_decimals"),
    ],
)
def test_aov_has_two_decimals_rounded_half_up(totals, aov):
    orders = [order(10 + i, total) for i, total in enumerate(totals)]
    assert fields(judge(orders))["aov_365d"] == aov


def test_total_spent_has_two_decimals_rounded_half_up():
    assert fields(judge([order(10, "0.005"), order(400, "2.5")]))["total_spent"] == "2.51"


# --- purchase interval ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "orders, interval",
    [
        pytest.param([cheap(10)], None, id="single_window_order_has_no_interval"),
        pytest.param([cheap(500), cheap(10)], None, id="orders_outside_the_window_do_not_return"),
        pytest.param([cheap(30), cheap(9)], Fraction(21), id="two_orders_21_days_apart"),
        pytest.param([cheap(30), cheap(20), cheap(9)], Fraction(21, 2), id="span_divided_by_f_minus_one"),
        pytest.param([order(ago(30)), order(ago(9, seconds=43_200))], Fraction(41, 2), id="span_in_real_days"),
        pytest.param([cheap(500), cheap(30), cheap(10)], Fraction(20), id="first_window_order_not_first_ever"),
        pytest.param([order(50, status="cancelled"), cheap(30), cheap(10)], Fraction(20), id="invalid_orders_ignored"),
        pytest.param([cheap(30), cheap(10), order(ago(days=-5))], Fraction(20), id="orders_after_now_ignored"),
        pytest.param([cheap(10), cheap(10)], Fraction(0), id="same_instant_orders_have_interval_zero"),
    ],
)
def test_purchase_interval(orders, interval):
    assert purchase_interval(customer_figures(orders, NOW)) == interval


# --- adaptive recency bands -----------------------------------------------------------------


def _p(value) -> list[Fraction]:
    """Exactly 100 returning customers, all with the purchase interval `value`."""
    return [Fraction(value)] * 100


@pytest.mark.parametrize(
    "intervals, bands",
    [
        pytest.param([Fraction(20)] * 99, Bands(40, 90, 180), id="99_returning_customers_keep_the_defaults"),
        pytest.param(_p(20), Bands(20, 45, 90, adaptive=True), id="100_returning_customers_adapt"),
        pytest.param([Fraction(10)] * 50 + [Fraction(20)] + [Fraction(30)] * 50, Bands(20, 45, 90, adaptive=True),
                     id="median_of_an_odd_count_is_the_middle_one"),
        pytest.param([Fraction(30)] * 50 + [Fraction(20)] + [Fraction(10)] * 50, Bands(20, 45, 90, adaptive=True),
                     id="median_does_not_depend_on_input_order"),
        pytest.param([Fraction(10)] * 50 + [Fraction(11)] * 50, Bands(11, 24, 47, adaptive=True),
                     id="median_of_an_even_count_averages_the_middle_two_10_5_rounds_up"),
        pytest.param([Fraction(1)] * 49 + [Fraction(10), Fraction(11)] + [Fraction(300)] * 49,
                     Bands(11, 24, 47, adaptive=True), id="even_median_ignores_the_extremes"),
        pytest.param(_p(Fraction(21, 2)), Bands(11, 24, 47, adaptive=True), id="p_10_5_rounds_half_up_to_11"),
        pytest.param(_p(Fraction(20_999, 2_000)), Bands(10, 24, 47, adaptive=True), id="p_just_below_10_5_rounds_down"),
        pytest.param(_p(10), Bands(10, 23, 45, adaptive=True), id="nurture_2_25_p_22_5_rounds_half_up"),
        pytest.param(_p(Fraction(101, 9)), Bands(11, 25, 51, adaptive=True), id="risk_4_5_p_50_5_rounds_half_up"),
        pytest.param(_p(Fraction(13, 2)), Bands(7, 15, 29, adaptive=True), id="p_6_5_rounds_up_to_7"),
        pytest.param(_p(4), Bands(7, 9, 18, adaptive=True), id="recent_clamped_up_to_7"),
        pytest.param(_p(100), Bands(100, 225, 365, adaptive=True), id="risk_clamped_down_to_365"),
        pytest.param(_p(162), Bands(40, 90, 180), id="nurture_and_risk_both_clamp_to_365_use_defaults"),
        pytest.param(_p(200), Bands(40, 90, 180), id="p_200_clamps_to_365_twice_use_defaults"),
        pytest.param(_p(3), Bands(40, 90, 180), id="recent_and_nurture_both_clamp_to_7_use_defaults"),
        pytest.param(_p(1), Bands(40, 90, 180), id="all_three_clamp_to_7_use_defaults"),
        pytest.param(_p(0), Bands(40, 90, 180), id="same_day_reorders_use_defaults"),
    ],
)
def test_recency_bands(intervals, bands):
    assert recency_bands(intervals, RFM) == bands


def test_p_162_really_is_a_fallback_case():
    # 2.25 * 162 = 364.5 rounds half up to 365, the same as the clamped risk band
    assert recency_bands(_p(162), RFM) == Bands(40, 90, 180)
    assert recency_bands(_p(Fraction(1619, 10)), RFM) == Bands(162, 364, 365, adaptive=True)


@pytest.mark.parametrize(
    "intervals",
    [
        pytest.param(_p(1), id="adaptive_bands_not_increasing"),
        pytest.param([Fraction(20)] * 99, id="too_few_returning_customers"),
    ],
)
def test_fallback_uses_the_configured_bands_not_the_built_in_defaults(intervals):
    settings = RfmSettings(recent_days=30, nurture_days=60, risk_days=120)
    assert recency_bands(intervals, settings) == Bands(30, 60, 120)


def test_adaptive_false_keeps_the_configured_bands():
    settings = RfmSettings(recent_days=30, nurture_days=60, risk_days=120, adaptive=False)
    assert recency_bands([Fraction(20)] * 150, settings) == Bands(30, 60, 120)


def _returning_customer(interval_days: int, last_days_ago: int = 25) -> list[Order]:
    return [cheap(last_days_ago + interval_days), cheap(last_days_ago)]


def _shop_of(customers: list[list[Order]], settings: RfmSettings = RFM) -> ShopFigures:
    """Shop figures built the way the store builds them, from every customer's orders."""
    every = [o for orders in customers for o in orders if o.is_valid and NOW - timedelta(days=365) < o.placed_at <= NOW]
    figures = [customer_figures(orders, NOW) for orders in customers]
    return shop_figures(figures, sum((o.amount for o in every), Decimal(0)), len(every), settings)


@pytest.mark.parametrize(
    "returning, one_time, bands",
    [
        pytest.param(99, 0, DEFAULT_BANDS, id="99_returning_customers_keep_the_defaults"),
        pytest.param(99, 200, DEFAULT_BANDS, id="one_time_customers_are_not_returning"),
        pytest.param(100, 0, Bands(20, 45, 90, adaptive=True), id="100_returning_customers_adapt"),
    ],
)
def test_shop_figures_adapt_from_returning_customers(returning, one_time, bands):
    customers = [_returning_customer(20) for _ in range(returning)] + [[cheap(5)] for _ in range(one_time)]
    assert _shop_of(customers).bands == bands


def test_shop_figures_carry_the_window_totals():
    figs = _shop_of([[cheap(10), cheap(400)], [dear(20), order(30, "90.00", status="cancelled")]])
    assert (figs.window_amount, figs.window_orders, figs.shop_aov) == (Decimal("90.00"), 2, Decimal("45.00"))


def test_adaptive_bands_change_a_customers_stage():
    customers = [_returning_customer(20) for _ in range(100)]
    adaptive = shop(bands=_shop_of(customers).bands)  # shop_aov stays 50.00
    fixed = shop(bands=_shop_of(customers, RfmSettings(adaptive=False)).bands)
    jane = [cheap(25)]
    assert judge(jane, adaptive).rfm == "needs_nurturing"  # R 25 >= adaptive recent 20
    assert judge(jane, fixed).rfm == "recent"
    assert judge([cheap(90)], adaptive).rfm == "about_to_lose"  # R 90 >= adaptive risk 90
    assert judge([cheap(90)], fixed).rfm == "at_risk"


def test_adaptive_bands_do_not_move_churn_days():
    adaptive = _shop_of([_returning_customer(20) for _ in range(100)])
    assert judge([cheap(179)], adaptive).phases == "conversion"
