"""An independent, deliberately plain implementation of docs/rules.md, for cross-checks.

Written from the text of docs/rules.md alone (it imports nothing from `connector`), so that the pure core,
the SQL aggregation and the exports can all be compared against it. It favours obviousness over
cleverness: amounts are summed as decimals under a trap that refuses any rounding, divided and
compared as exact `Fraction`s; every duration is an integer of microseconds.

Input: plain dicts `{order_id, customer_key, placed_at, total, refunded, status, test}`.
Output: `{customer_key: {rfm, phases, orders_365d, orders_total, aov_365d, total_spent,
first_order_date, last_order_date}}`.

Readings of docs/rules.md this module commits to (each one a place a disagreement may surface):
- an order with status "refunded" and no refunded amount is fully refunded, unless its total
  is 0: "fully refunded" needs total > 0, and "a zero-total order counts";
- an order's amount is `total - refunded`, never below 0;
- orders without a customer key count in the shop's window (shop_aov) but belong to no
  customer, so they never make a "returning customer" for the adaptive bands;
- every customer key seen in the input is reported, even one whose orders are all invalid or
  all after `now` (then `prospect` / `conquest`).
"""

from __future__ import annotations

import decimal
import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Iterable

MICROS_PER_DAY = 24 * 60 * 60 * 1_000_000
WINDOW_MICROS = 365 * MICROS_PER_DAY

DEFAULT_RFM = {"recent_days": 40, "nurture_days": 90, "risk_days": 180, "adaptive": True, "value_ratio": 1}
DEFAULT_PHASES = {"loyal_orders": 4, "churn_days": 180}
RETURNING_CUSTOMERS_FOR_ADAPTIVE = 100
STATUSES = ("placed", "cancelled", "voided", "refunded", "deleted")


def _micros(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def _aware(moment: datetime) -> datetime:
    """A naive datetime is taken as UTC, as the CSV import does (docs/cli.md, 'import')."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


# Sums of decimals are exact as long as no digit is dropped; this context makes a dropped digit an error.
EXACT = decimal.Context(prec=200, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])
ZERO = Decimal(0)


def _decimal(value) -> Decimal:
    """A Decimal, int or str as a Decimal (a float through its shortest repr)."""
    if value is None:
        return ZERO
    return value if isinstance(value, Decimal) else Decimal(str(value).strip())


def _exact_sum(amounts) -> Decimal:
    total = ZERO
    for amount in amounts:
        total = EXACT.add(total, amount)
    return total


def _valid_amount(order: dict) -> Decimal | None:
    """The order's amount when it is a valid order (docs/rules.md, 'Valid orders'), else None."""
    if order.get("test"):
        return None
    status = order.get("status") or "placed"
    if status not in STATUSES:
        raise ValueError(f"order {order.get('order_id')!r}: unknown status {status!r}")
    if status in ("cancelled", "voided", "deleted"):
        return None
    total = _decimal(order["total"])
    refunded = _decimal(order.get("refunded"))
    if status == "refunded" and refunded == 0 and total > 0:
        return None  # the whole order refunded; a zero-total order still counts (docs/rules.md, 'Valid orders')
    if total > 0 and refunded >= total:
        return None
    return max(EXACT.subtract(total, refunded), ZERO)


def round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def money(value: Fraction) -> str:
    """Two decimals, half up (amounts here are never negative)."""
    cents = round_half_up(value * 100)
    return f"{cents // 100}.{cents % 100:02d}"


def _utc_day(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d")


def _median(values: list[Fraction]) -> Fraction:
    ordered = sorted(values)
    n = len(ordered)
    if n % 2 == 1:
        return ordered[n // 2]
    return (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def reference_bands(intervals: list[Fraction], rfm: dict) -> tuple[int, int, int]:
    """(recent, nurture, risk) from the returning customers' purchase intervals (docs/rules.md, 'Adaptive bands')."""
    configured = (int(rfm["recent_days"]), int(rfm["nurture_days"]), int(rfm["risk_days"]))
    if not rfm["adaptive"] or len(intervals) < RETURNING_CUSTOMERS_FOR_ADAPTIVE:
        return configured
    p = _median(intervals)
    bands = tuple(min(365, max(7, round_half_up(p * factor))) for factor in (1, Fraction(9, 4), Fraction(9, 2)))
    recent, nurture, risk = bands
    if recent < nurture < risk:
        return bands
    return configured


class _Customer:
    __slots__ = ("window", "all_valid")

    def __init__(self) -> None:
        self.window: list[tuple[datetime, Decimal]] = []  # valid orders inside the window
        self.all_valid: list[tuple[datetime, Decimal]] = []  # valid orders placed <= now


def _collect(orders: Iterable[dict], now: datetime):
    now = _aware(now)
    customers: dict[str, _Customer] = {}
    shop_window_sum = ZERO
    shop_window_count = 0
    for order in orders:
        key = order.get("customer_key")
        if key is not None and key not in customers:
            customers[key] = _Customer()
        placed_at = _aware(order["placed_at"])
        if placed_at > now:
            continue
        amount = _valid_amount(order)
        if amount is None:
            continue
        in_window = _micros(now - placed_at) < WINDOW_MICROS  # now - 365 d < placed_at <= now
        if in_window:
            shop_window_sum = EXACT.add(shop_window_sum, amount)
            shop_window_count += 1
        if key is None:
            continue
        customers[key].all_valid.append((placed_at, amount))
        if in_window:
            customers[key].window.append((placed_at, amount))
    return customers, shop_window_sum, shop_window_count


def _interval(window: list[tuple[datetime, Decimal]]) -> Fraction | None:
    """(last - first window order, in days) / (F - 1) for a returning customer."""
    if len(window) < 2:
        return None
    moments = [placed_at for placed_at, _ in window]
    span = _micros(max(moments) - min(moments))
    return Fraction(span, MICROS_PER_DAY) / (len(window) - 1)


def reference_stages(
    orders: Iterable[dict],
    now: datetime,
    rfm_settings: dict | None = None,
    phase_settings: dict | None = None,
) -> dict[str, dict]:
    """Every customer's fields of docs/rules.md, 'Fields a destination can write' (but `rfm_since`) at `now`.

    `rfm_settings` / `phase_settings` take the keys of `stagesync.toml`'s `rfm` / `phases`
    tables; missing keys take the defaults of docs/configuration.md.
    """
    rfm = {**DEFAULT_RFM, **(rfm_settings or {})}
    phases = {**DEFAULT_PHASES, **(phase_settings or {})}
    now = _aware(now)
    customers, shop_sum, shop_count = _collect(orders, now)
    intervals = [i for i in (_interval(c.window) for c in customers.values()) if i is not None]
    recent_days, nurture_days, risk_days = reference_bands(intervals, rfm)
    ratio = Fraction(_decimal(rfm["value_ratio"]))
    shop_aov = Fraction(shop_sum) / shop_count if shop_count else None
    high_value_from = None if shop_aov is None else shop_aov * ratio

    result: dict[str, dict] = {}
    for key, customer in customers.items():
        f = len(customer.window)
        orders_total = len(customer.all_valid)
        window_sum = _exact_sum(amount for _, amount in customer.window)
        aov = Fraction(window_sum) / f if f else None
        high_value = f > 0 and aov >= high_value_from
        frequent = f >= 3 or (f == 2 and high_value)

        if orders_total == 0:
            rfm_stage, phase, recency = "prospect", "conquest", None
            first = last = None
        else:
            moments = [placed_at for placed_at, _ in customer.all_valid]
            first, last = min(moments), max(moments)
            recency = _micros(now - last) // MICROS_PER_DAY
            rfm_stage = _rfm_stage(f, recency, frequent, high_value, recent_days, nurture_days, risk_days)
            phase = _phase(f, orders_total, recency, phases)

        result[key] = {
            "rfm": rfm_stage,
            "phases": phase,
            "orders_365d": f,
            "orders_total": orders_total,
            "aov_365d": None if aov is None else money(aov),
            "total_spent": money(Fraction(_exact_sum(amount for _, amount in customer.all_valid))),
            "first_order_date": None if first is None else _utc_day(first),
            "last_order_date": None if last is None else _utc_day(last),
        }
    return result


def _rfm_stage(f, recency, frequent, high_value, recent_days, nurture_days, risk_days) -> str:
    if f == 0:
        return "lost"
    if recency < recent_days and frequent and high_value:
        return "champion"
    if recency < recent_days and frequent:
        return "loyalist"
    if recency < recent_days:
        return "recent"
    if recency < nurture_days and (frequent or high_value):
        return "high_potential"
    if recency < nurture_days:
        return "needs_nurturing"
    if recency < risk_days and (frequent or high_value):
        return "cant_lose"
    if recency < risk_days:
        return "at_risk"
    return "about_to_lose"


def _phase(f, orders_total, recency, phases: dict) -> str:
    if recency >= phases["churn_days"]:
        return "disengagement"
    if f >= phases["loyal_orders"]:
        return "loyalty"
    if orders_total >= 2:
        return "development"
    return "conversion"


def reference_shop_bands(orders: Iterable[dict], now: datetime, rfm_settings: dict | None = None) -> tuple[int, int, int]:
    """The recency bands the reference uses for this shop at `now` (to check a scenario's premise)."""
    rfm = {**DEFAULT_RFM, **(rfm_settings or {})}
    customers, _, _ = _collect(orders, now)
    intervals = [i for i in (_interval(c.window) for c in customers.values()) if i is not None]
    return reference_bands(intervals, rfm)
