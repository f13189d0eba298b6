"""The two stage models of docs/rules.md: `rfm` (Omnisend's lifecycle stages) and `phases`.

Pure functions of (customer figures, shop figures, settings, now): no clock, no I/O.
`customer_figures` derives one customer's figures from their orders; the store computes the
very same figures with one SQL aggregation for a whole shop (`connector.storage.store`), and both feed
`evaluate`. The whole-shop recompute hands the store's integers (amounts in millionths, instants
in UTC microseconds) to `evaluate_micros` instead: the same rule functions, on plain values, with
no datetime or Decimal per customer. Amounts are exact either way; day counts are exact integer
arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Iterable, Sequence

from connector.domain.orders import Order, ZERO

WINDOW = timedelta(days=365)
DAY = timedelta(days=1)
DAY_MICROS = 86_400 * 1_000_000
ADAPTIVE_MIN_RETURNING = 100
BAND_MIN, BAND_MAX = 7, 365

RFM_STAGES: tuple[str, ...] = (
    "prospect", "champion", "loyalist", "recent", "high_potential",
    "needs_nurturing", "cant_lose", "at_risk", "about_to_lose", "lost",
)
PHASES: tuple[str, ...] = ("conquest", "conversion", "development", "loyalty", "disengagement")
MODELS = {"rfm": RFM_STAGES, "phases": PHASES}


@dataclass(frozen=True, slots=True)
class RfmSettings:
    recent_days: int = 40
    nurture_days: int = 90
    risk_days: int = 180
    adaptive: bool = True
    value_ratio: Decimal = Decimal(1)


@dataclass(frozen=True, slots=True)
class PhaseSettings:
    loyal_orders: int = 4
    churn_days: int = 180


@dataclass(frozen=True, slots=True)
class CustomerFigures:
    """One customer's valid orders placed at or before `now`, summarised.

    `first_window_at` is the customer's first order inside the 365-day window; the last window
    order is `last_at` whenever `orders_365d > 0`. `known_orders_365d`: the window orders whose
    amount is known (an order in another currency that no rate converted counts in F but not in
    any amount: docs/rules.md, 'Amounts and currencies'); None means all of them.
    """

    orders_365d: int = 0
    amount_365d: Decimal = ZERO
    orders_total: int = 0
    total_spent: Decimal = ZERO
    first_at: datetime | None = None
    last_at: datetime | None = None
    first_window_at: datetime | None = None
    known_orders_365d: int | None = None

    @property
    def amount_orders_365d(self) -> int:
        """The window orders whose amounts make `amount_365d`: the divisor of the AOV."""
        return self.orders_365d if self.known_orders_365d is None else self.known_orders_365d

    @property
    def aov_365d(self) -> Decimal | None:
        """Known window amounts / window orders with a known amount; None when none is known."""
        known = self.amount_orders_365d
        return self.amount_365d / known if known else None

    def recency_days(self, now: datetime) -> int | None:
        """R: whole days since the last valid order, floor((now - last) / 24 h)."""
        return None if self.last_at is None else (now - self.last_at) // DAY


@dataclass(frozen=True, slots=True)
class Bands:
    recent: int
    nurture: int
    risk: int
    adaptive: bool = False


@dataclass(frozen=True, slots=True)
class ShopFigures:
    """What the rfm model needs of the whole shop at `now`."""

    window_amount: Decimal  # sum of all known window amounts of the shop (customers without identity too)
    window_orders: int  # number of all window orders of the shop
    bands: Bands
    window_known_orders: int | None = None  # window orders with a known amount; None: all of them

    @property
    def amount_orders(self) -> int:
        """The window orders whose amounts make `window_amount`: the divisor of the shop AOV."""
        return self.window_orders if self.window_known_orders is None else self.window_known_orders

    @property
    def shop_aov(self) -> Decimal | None:
        return self.window_amount / self.amount_orders if self.amount_orders else None


@dataclass(frozen=True, slots=True)
class ShopMicros:
    """What `evaluate_micros` needs of the whole shop: the window amount in integer millionths."""

    window_amount: int
    window_orders: int
    bands: Bands
    value_ratio: Fraction
    window_known_orders: int | None = None  # window orders with a known amount; None: all of them

    @property
    def amount_orders(self) -> int:
        return self.window_orders if self.window_known_orders is None else self.window_known_orders


@dataclass(frozen=True, slots=True)
class Evaluation:
    rfm: str
    phases: str
    figures: CustomerFigures
    recency_days: int | None
    high_value: bool
    frequent: bool


def in_window(placed_at: datetime, now: datetime) -> bool:
    return now - WINDOW < placed_at <= now


def customer_figures(orders: Iterable[Order], now: datetime) -> CustomerFigures:
    """Figures of one customer's orders at `now` (orders after `now` and invalid ones ignored)."""
    counted = sorted((o for o in orders if o.is_valid and o.placed_at <= now), key=lambda o: o.placed_at)
    window = [o for o in counted if in_window(o.placed_at, now)]
    return CustomerFigures(
        orders_365d=len(window),
        amount_365d=sum((o.amount for o in window), ZERO),
        orders_total=len(counted),
        total_spent=sum((o.amount for o in counted), ZERO),
        first_at=counted[0].placed_at if counted else None,
        last_at=counted[-1].placed_at if counted else None,
        first_window_at=window[0].placed_at if window else None,
        known_orders_365d=sum(1 for o in window if o.amount_known),
    )


def _round_half_up(value: Fraction) -> int:
    return int((value + Fraction(1, 2)).__floor__())


def _clamp(days: int) -> int:
    return max(BAND_MIN, min(BAND_MAX, days))


def interval_key(value: Fraction) -> tuple[float, Fraction]:
    """The sort key of an interval: exact order, compared mostly as floats (a correctly rounded
    division never inverts two values, so the Fraction is compared only where two floats tie)."""
    return value.numerator / value.denominator, value


def median_of_sorted(ordered: Sequence[Fraction]) -> Fraction:
    """The median of values already in ascending order."""
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _median(values: Sequence[Fraction]) -> Fraction:
    return median_of_sorted(sorted(values, key=interval_key))


def purchase_interval(figures: CustomerFigures) -> Fraction | None:
    """A returning customer's mean days between window orders: (last - first) / (F - 1), exact."""
    if figures.orders_365d < 2 or figures.first_window_at is None or figures.last_at is None:
        return None
    span = figures.last_at - figures.first_window_at
    return interval_of_span((span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds, figures.orders_365d)


def interval_of_span(span_micros: int, orders_365d: int) -> Fraction:
    """Mean days between F window orders whose first and last are `span_micros` apart, exact."""
    return Fraction(span_micros, DAY_MICROS * (orders_365d - 1))


def recency_bands(intervals: Sequence[Fraction], settings: RfmSettings) -> Bands:
    """Adaptive bands from the returning customers' purchase intervals, else the configured ones."""
    if not settings.adaptive or len(intervals) < ADAPTIVE_MIN_RETURNING:
        return bands_of_median(None, settings)
    return bands_of_median(_median(intervals), settings)


def bands_of_median(p: Fraction | None, settings: RfmSettings) -> Bands:
    """The bands for a median purchase interval `p` (None: too few returning customers, or bands
    not adaptive): the configured ones unless the fitted ones are strictly increasing."""
    configured = Bands(settings.recent_days, settings.nurture_days, settings.risk_days)
    if not settings.adaptive or p is None:
        return configured
    recent, nurture, risk = (_clamp(_round_half_up(p * k)) for k in (1, Fraction(9, 4), Fraction(9, 2)))
    if not recent < nurture < risk:
        return configured
    return Bands(recent, nurture, risk, adaptive=True)


def shop_figures(
    customers: Iterable[CustomerFigures],
    window_amount: Decimal,
    window_orders: int,
    settings: RfmSettings,
    window_known_orders: int | None = None,
) -> ShopFigures:
    """Shop figures from every customer's figures plus the shop's window totals."""
    intervals = [i for i in map(purchase_interval, customers) if i is not None]
    return ShopFigures(window_amount, window_orders, recency_bands(intervals, settings), window_known_orders)


def is_high_value(amount_365d: Decimal | int, orders_365d: int, window_amount: Decimal | int, window_orders: int,
                  value_ratio: Decimal | Fraction) -> bool:
    """AOV >= shop_aov * value_ratio, cross-multiplied so that nothing divides or rounds.

    Amounts are Decimals or the store's integer millionths alike, as long as the customer's and
    the shop's are the same kind. `orders_365d` and `window_orders` are the orders whose amounts
    are summed (those with a known amount): no AOV, so not high value, when none is known.
    """
    if orders_365d == 0 or window_orders == 0:
        return False
    numerator, denominator = value_ratio.as_integer_ratio()
    return amount_365d * window_orders * denominator >= window_amount * orders_365d * numerator


def is_frequent(orders_365d: int, high_value: bool) -> bool:
    return orders_365d >= 3 or (orders_365d == 2 and high_value)


def rfm_stage(orders_total: int, orders_365d: int, recency: int | None, frequent: bool, high_value: bool,
              bands: Bands) -> str:
    """docs/rules.md, 'The `rfm` model': first match wins."""
    if orders_total == 0:
        return "prospect"
    if orders_365d == 0:
        return "lost"
    assert recency is not None
    if recency < bands.recent:
        if frequent and high_value:
            return "champion"
        return "loyalist" if frequent else "recent"
    if recency < bands.nurture:
        return "high_potential" if frequent or high_value else "needs_nurturing"
    if recency < bands.risk:
        return "cant_lose" if frequent or high_value else "at_risk"
    return "about_to_lose"


def phase(orders_total: int, orders_365d: int, recency: int | None, settings: PhaseSettings) -> str:
    """docs/rules.md, 'The `phases` model': first match wins."""
    if orders_total == 0:
        return "conquest"
    assert recency is not None
    if recency >= settings.churn_days:
        return "disengagement"
    if orders_365d >= settings.loyal_orders:
        return "loyalty"
    if orders_total >= 2:
        return "development"
    return "conversion"


def evaluate(
    figures: CustomerFigures,
    shop: ShopFigures,
    rfm: RfmSettings,
    phases: PhaseSettings,
    now: datetime,
) -> Evaluation:
    """Both models for one customer at `now`."""
    recency = figures.recency_days(now)
    high_value = is_high_value(figures.amount_365d, figures.amount_orders_365d, shop.window_amount,
                               shop.amount_orders, rfm.value_ratio)
    frequent = is_frequent(figures.orders_365d, high_value)
    return Evaluation(
        rfm=rfm_stage(figures.orders_total, figures.orders_365d, recency, frequent, high_value, shop.bands),
        phases=phase(figures.orders_total, figures.orders_365d, recency, phases),
        figures=figures,
        recency_days=recency,
        high_value=high_value,
        frequent=frequent,
    )


def evaluate_micros(orders_365d: int, amount_365d: int, orders_total: int, last_at: int | None,
                    shop: ShopMicros, phases: PhaseSettings, now: int,
                    known_orders_365d: int | None = None) -> tuple[str, str]:
    """(rfm, phases) of one customer from the store's integers: amounts in millionths, instants
    in UTC microseconds. The rules of `evaluate`, without a datetime or a Decimal per customer."""
    recency = None if last_at is None else (now - last_at) // DAY_MICROS
    known = orders_365d if known_orders_365d is None else known_orders_365d
    high_value = is_high_value(amount_365d, known, shop.window_amount, shop.amount_orders, shop.value_ratio)
    frequent = is_frequent(orders_365d, high_value)
    return (rfm_stage(orders_total, orders_365d, recency, frequent, high_value, shop.bands),
            phase(orders_total, orders_365d, recency, phases))


def money(value: Decimal | None) -> str | None:
    """An amount as written to destinations and exports: 2 decimals, half up."""
    return None if value is None else str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def day(moment: datetime | None) -> str | None:
    return None if moment is None else moment.date().isoformat()


def fields(evaluation: Evaluation, rfm_since: date | None = None) -> dict[str, object]:
    """The fields a destination can write, by their names in docs/rules.md, 'Fields a destination can write'."""
    f = evaluation.figures
    return {
        "rfm": evaluation.rfm,
        "phases": evaluation.phases,
        "orders_365d": f.orders_365d,
        "orders_total": f.orders_total,
        "aov_365d": money(f.aov_365d),
        "total_spent": money(f.total_spent),
        "first_order_date": day(f.first_at),
        "last_order_date": day(f.last_at),
        "rfm_since": rfm_since.isoformat() if rfm_since else None,
    }
