"""The canonical order and customer identity (docs/rules.md, 'Words', 'Customer identity' and 'Valid orders').

Every platform adapter translates its payload into an `Order`; everything downstream
(storage, stage models, sync) only ever sees this shape. Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

import phonenumbers

OrderStatus = Literal["placed", "cancelled", "voided", "refunded", "deleted", "pending"]
ORDER_STATUSES: tuple[str, ...] = ("placed", "cancelled", "voided", "refunded", "deleted", "pending")
# Statuses that take an order out of every count, whatever its amounts. `pending`: stored but not
# placed yet (the checkout did not complete: unpaid, payment failed, abandoned); it counts once a
# later version of it is placed (docs/rules.md, 'Valid orders').
_EXCLUDED_STATUSES = frozenset({"cancelled", "voided", "deleted", "pending"})

ZERO = Decimal(0)
_SPACES = re.compile(r"[\s().\-/]")
# Bounds that keep every stored value exact and within its column (connector/storage/schema.py): amounts
# are 64-bit integer millionths, so one order stays far below 9.2e12; instants are UTC microseconds.
MAX_AMOUNT = Decimal(10) ** 10
# Exchange rates (shop units per foreign unit) outside these are a typo, not a currency pair: the widest
# real pairs (a rial or a dong against a dinar) stay within 1e-6 .. 1e6.
MIN_RATE = Decimal("1e-9")
MAX_RATE = Decimal("1e9")


def plausible_rate(rate: Decimal | None) -> bool:
    """A finite rate within MIN_RATE .. MAX_RATE."""
    return rate is not None and rate.is_finite() and MIN_RATE <= rate <= MAX_RATE
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)
MAX_TEXT = {"order_id": 128, "email": 320, "customer_id": 128}
_CURRENCY = re.compile(r"[A-Z]{3}")


def email_as_written(raw: str | None) -> str | None:
    """The address as the shop spelled it (trimmed), when that differs from its normalised form; None
    otherwise. Customers are keyed by the normalised address, but destinations get this spelling:
    Omnisend's email identifier is case-sensitive (api-docs.omnisend.com/reference/contacts)."""
    if raw is None:
        return None
    written = raw.strip()
    return written if "@" in written and written != written.lower() else None


def normalise_email(raw: str | None) -> str | None:
    """Trimmed and lower-cased; None for an empty or address-less value."""
    if raw is None:
        return None
    email = raw.strip().lower()
    return email if "@" in email else None


@functools.lru_cache(maxsize=4096)  # an adapter and Order.build may both ask; customers come back
def normalise_phone(raw: str | None, default_region: str | None = None) -> str | None:
    """E.164 (`+33612345678`), or None when the value is not a possible phone number.

    A number without a `+` or `00` prefix needs the shop's `default_region` (ISO 3166 alpha-2).
    """
    if raw is None:
        return None
    compact = _SPACES.sub("", raw.strip())
    if not compact:
        return None
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    try:
        parsed = phonenumbers.parse(compact, None if compact.startswith("+") else default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def customer_key(email: str | None, phone: str | None) -> str | None:
    """A customer's identity within a shop: normalised email, else E.164 phone, else None.

    Orders without a key are stored and counted in the shop's figures, never synced.
    """
    return email or phone or None


def contact_key(email: str | None, phone: str | None, country: str | None) -> str | None:
    """The customer key of an email (else a phone number) as written, each read only as what it says
    it is; phones without a country code are read in `country`."""
    return customer_key(normalise_email(email), normalise_phone(phone, country))


def to_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC (docs/cli.md, 'import'). ValueError outside
    the years 1900 to 2199 (an instant at datetime's own bounds cannot even be moved to UTC)."""
    try:
        utc = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"{moment.year:04d}-... is not a plausible date") from None
    if not EARLIEST <= utc < LATEST:
        raise ValueError(f"{utc.date().isoformat()} is outside the years {EARLIEST.year} to {LATEST.year - 1}")
    return utc


def unstorable(value: str, limit: int) -> str | None:
    """Why a text column of `limit` characters cannot hold `value` (a NUL character, a lone
    surrogate, its length), or None when it can."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text"
    if len(value) > limit:
        return f"is longer than {limit} characters"
    return None


def _text(name: str, value: str | None) -> str | None:
    """A text value that the database can hold: no NUL, valid Unicode, within its column."""
    if value is not None and (problem := unstorable(value, MAX_TEXT.get(name, 320))):
        raise ValueError(f"{name} {problem}")
    return value


@dataclass(frozen=True, slots=True)
class Order:
    """One order of one shop, as every platform's adapter delivers it.

    `email` and `phone` must already be normalised (use `Order.build` from raw values).
    `updated_at` orders versions of the same order: an older version never overwrites a newer one.
    """

    shop_id: str
    order_id: str
    placed_at: datetime
    total: Decimal
    refunded: Decimal = ZERO
    status: OrderStatus = "placed"
    test: bool = False
    email: str | None = None
    phone: str | None = None
    customer_id: str | None = None
    currency: str | None = None
    updated_at: datetime | None = None
    email_spelling: str | None = None  # the address as the shop wrote it, when not already normalised
    # The platform's exchange rate for this order, shop-currency units per unit of `currency`
    # (None when it sends none); `amount_known` is False for an order in another currency that
    # no rate could convert: it counts as an order, its amount stays out of every money figure.
    exchange_rate: Decimal | None = field(default=None, compare=False)
    amount_known: bool = True
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(
        cls,
        *,
        shop_id: str,
        order_id: str | int,
        placed_at: datetime,
        total: Decimal | str | int,
        refunded: Decimal | str | int = ZERO,
        status: str = "placed",
        test: bool = False,
        email: str | None = None,
        phone: str | None = None,
        customer_id: str | int | None = None,
        currency: str | None = None,
        updated_at: datetime | None = None,
        default_region: str | None = None,
    ) -> "Order":
        """An order from raw values: identity normalised, times in UTC, amounts as Decimal."""
        if status not in ORDER_STATUSES:
            raise ValueError(f"unknown order status {status!r}; expected one of {', '.join(ORDER_STATUSES)}")
        try:
            total_d, refunded_d = Decimal(str(total)), Decimal(str(refunded or 0))
        except InvalidOperation:
            raise ValueError("amounts must be decimal numbers") from None
        if not total_d.is_finite() or not refunded_d.is_finite():
            raise ValueError("amounts must be finite decimals")
        if total_d < 0 or refunded_d < 0:
            raise ValueError("amounts must not be negative")
        if total_d > MAX_AMOUNT or refunded_d > MAX_AMOUNT:
            raise ValueError(f"amounts must not exceed {MAX_AMOUNT:,}")
        if currency and not _CURRENCY.fullmatch(currency.upper()):
            raise ValueError("currency must be a 3-letter ISO 4217 code")
        return cls(
            shop_id=shop_id,
            order_id=_text("order_id", str(order_id)),
            placed_at=to_utc(placed_at),
            total=total_d,
            refunded=refunded_d,
            status=status,  # type: ignore[arg-type]
            test=bool(test),
            email=normalise_email(_text("email", email)),
            email_spelling=email_as_written(email),
            phone=normalise_phone(_text("phone", phone), default_region),
            customer_id=None if customer_id in (None, "", 0, "0") else _text("customer_id", str(customer_id)),
            currency=currency.upper() if currency else None,
            updated_at=to_utc(updated_at) if updated_at else None,
        )

    @property
    def customer_key(self) -> str | None:
        return customer_key(self.email, self.phone)

    @property
    def is_valid(self) -> bool:
        """Counts in the stage models: placed (not pending), not test, not cancelled/voided/deleted,
        not fully refunded."""
        if self.test or self.status in _EXCLUDED_STATUSES:
            return False
        if self.status == "refunded" and self.refunded == ZERO:
            # A "refunded" status without an amount means the whole order was refunded; by the rule
            # of docs/rules.md, 'Valid orders' (refunded >= total and total > 0), a zero-total order
            # still counts.
            return self.total == ZERO
        return not (self.total > ZERO and self.refunded >= self.total)

    @property
    def amount(self) -> Decimal:
        """What the order is worth to the stage models: total less partial refunds, 0 when not valid
        or when its amount is in another currency that could not be converted."""
        if not self.is_valid or not self.amount_known:
            return ZERO
        return max(self.total - self.refunded, ZERO)


_CENT = Decimal("0.01")


def in_shop_currency(order: Order, shop_currency: str | None, rates: "dict[str, Decimal] | None" = None) -> Order:
    """`order` with its amounts in the shop's currency (docs/rules.md, 'Amounts and currencies').

    An order in another currency is converted with the rate the platform sent
    (`order.exchange_rate`), else with the shop's `rates` table (shop units per foreign unit);
    with neither it keeps its foreign amounts, flagged `amount_known=False`, so that it counts as
    an order but never as money. A foreign amount is never read as the shop's currency."""
    if order.currency is None or shop_currency is None or order.currency == shop_currency.upper():
        return order if order.amount_known else dataclasses.replace(order, amount_known=True)
    rate = order.exchange_rate or (rates or {}).get(order.currency)
    if not plausible_rate(rate):
        return dataclasses.replace(order, amount_known=False)
    total, refunded = order.total * rate, order.refunded * rate
    if total > MAX_AMOUNT or refunded > MAX_AMOUNT:  # before quantize(), which fails past 28 digits
        return dataclasses.replace(order, amount_known=False)
    total, refunded = total.quantize(_CENT, ROUND_HALF_UP), refunded.quantize(_CENT, ROUND_HALF_UP)
    return dataclasses.replace(order, total=total, refunded=refunded, currency=shop_currency.upper(),
                               exchange_rate=None, amount_known=True)
