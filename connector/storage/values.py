"""Values as the database holds them: instants in microseconds since the epoch, amounts in
millionths, a customer's stored state, and small helpers every query module shares.

Conversions between domain values (datetime, Decimal) and stored integers happen here only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Iterator, Mapping, Sequence

from sqlalchemy import Connection, Executable

from connector.domain.stages import WINDOW, CustomerFigures
from connector.storage.statements import FIGURE_COLUMNS

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = Decimal(1_000_000)
WINDOW_MICROS = int(WINDOW.total_seconds()) * 1_000_000


# --- conversions at the boundary ---------------------------------------------------------------

def to_micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


def money_to_micros(amount: Decimal) -> int:
    return int((amount * _MICRO).to_integral_value())


def micros_to_money(value: int | None) -> Decimal:
    return Decimal(value or 0).scaleb(-6)



# --- rows --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CustomerRow:
    """One customer's figures as aggregated by the database at some instant."""

    customer_key: str | None
    figures: CustomerFigures


@dataclass(frozen=True, slots=True)
class StoredState:
    rfm: str
    rfm_since: str
    phases: str
    phases_since: str
    orders_365d: int
    orders_total: int
    amount_365d: int
    total_spent: int
    first_order_at: int | None
    last_order_at: int | None
    known_orders_365d: int = 0  # window orders with a known amount: aov_365d = amount_365d / this

    def columns(self) -> dict:
        """The state as the `customers` columns that hold it (`dataclasses.asdict` would deep-copy
        each value: 7% of the storage time of a group of 20 webhooks, profiled)."""
        return {name: getattr(self, name) for name in self.__slots__}


def state_of(figures: CustomerFigures, rfm: str, phases: str, rfm_since: str, phases_since: str) -> StoredState:
    return StoredState(
        rfm=rfm, rfm_since=rfm_since, phases=phases, phases_since=phases_since,
        orders_365d=figures.orders_365d, orders_total=figures.orders_total,
        amount_365d=money_to_micros(figures.amount_365d), total_spent=money_to_micros(figures.total_spent),
        first_order_at=None if figures.first_at is None else to_micros(figures.first_at),
        last_order_at=None if figures.last_at is None else to_micros(figures.last_at),
        known_orders_365d=figures.amount_orders_365d,
    )


def figures_of(state: StoredState, first_window_at: datetime | None = None) -> CustomerFigures:
    return CustomerFigures(
        orders_365d=state.orders_365d, amount_365d=micros_to_money(state.amount_365d),
        orders_total=state.orders_total, total_spent=micros_to_money(state.total_spent),
        first_at=from_micros(state.first_order_at), last_at=from_micros(state.last_order_at),
        first_window_at=first_window_at, known_orders_365d=state.known_orders_365d,
    )



def figures_from_row(row) -> CustomerFigures:
    """A row of `statements.figures_select` (a driver tuple or a Row, in that column order)."""
    _, orders_365d, amount_365d, orders_total, total_spent, first_at, last_at, first_window_at, known = \
        row[:FIGURE_COLUMNS]
    return CustomerFigures(
        orders_365d=orders_365d, amount_365d=micros_to_money(amount_365d),
        orders_total=orders_total, total_spent=micros_to_money(total_spent),
        first_at=from_micros(first_at), last_at=from_micros(last_at), first_window_at=from_micros(first_window_at),
        known_orders_365d=known,
    )



# --- helpers -----------------------------------------------------------------------------------

def window_params(shop_id: str, now: datetime) -> dict:
    now_us = to_micros(now)
    return dict(shop_id=shop_id, now_us=now_us, start_us=now_us - WINDOW_MICROS)


def driver_rows(conn: Connection, statement: Executable) -> list[tuple]:
    """Every row of `statement`, run by SQLAlchemy (transaction, errors) but fetched as the
    driver's own tuples: for whole-shop reads, where building Row objects costs more than the query."""
    result = conn.execute(statement)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def chunks(items: Sequence, size: int = 500) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def canonical_json(value: Mapping) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

