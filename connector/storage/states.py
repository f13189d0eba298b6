"""Queries on evaluated stages: customers' stored states, the stage history, and the shop figures
(window totals and bands) of the last whole-shop evaluation."""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from typing import Iterable, Mapping, Sequence

from sqlalchemy import Connection, Row, delete, func, select

from connector.domain.stages import Bands
from connector.storage.schema import customers, stage_changes
from connector.storage.statements import STATE_COLUMNS
from connector.storage.values import StoredState, chunks, driver_rows, micros_to_money, money_to_micros, to_micros


class StateQueries:
    """The state, stage history and shop figure methods of `Store` (a mixin: `self` is the Store)."""

    # --- shop figures --------------------------------------------------------------------------

    def save_shop_figures(self, conn: Connection, shop_id: str, window_amount: Decimal, window_orders: int,
                          bands: Bands, now: datetime, window_known_orders: int | None = None) -> None:
        """`window_known_orders`: the window orders with a known amount (None: all of them)."""
        self._shop_figures_read.pop(shop_id, None)
        conn.execute(self.sql.save_shop_figures, dict(
            shop_id=shop_id, window_amount=money_to_micros(window_amount), window_orders=window_orders,
            window_known_orders=window_orders if window_known_orders is None else window_known_orders,
            recent_days=bands.recent, nurture_days=bands.nurture, risk_days=bands.risk,
            adaptive=bands.adaptive, computed_at=to_micros(now)))

    def load_shop_figures(self, conn: Connection, shop_id: str,
                          max_age: float = 0) -> tuple[Decimal, int, Bands, int] | None:
        """The shop figures stored by the last evaluation of the whole shop: (window amount, window
        orders, bands, window orders with a known amount). With `max_age`
        (seconds), figures this Store read at most that long ago are reused without a query: a
        recompute run by another process is then seen up to `max_age` later."""
        read_at, figures = self._shop_figures_read.get(shop_id, (None, None))
        if read_at is not None and time.monotonic() - read_at <= max_age:
            return figures
        row = conn.execute(self.sql.load_shop_figures, dict(shop_id=shop_id)).first()
        figures = None if row is None else (
            micros_to_money(row.window_amount), row.window_orders,
            Bands(row.recent_days, row.nurture_days, row.risk_days, row.adaptive), row.window_known_orders)
        self._shop_figures_read[shop_id] = (time.monotonic(), figures)
        return figures

    # --- customer states -----------------------------------------------------------------------

    def load_states(self, conn: Connection, shop_id: str) -> dict[str, StoredState]:
        return {key: StoredState(*state) for key, state in self.state_rows(conn, shop_id).items()}

    def state_rows(self, conn: Connection, shop_id: str) -> dict[str, tuple]:
        """customer_key -> stored state as a tuple of the `StoredState` fields, for every stored customer."""
        rows = driver_rows(conn, select(customers.c.customer_key, *STATE_COLUMNS).where(customers.c.shop_id == shop_id))
        return {row[0]: row[1:] for row in rows}

    def load_state(self, conn: Connection, shop_id: str, key: str) -> StoredState | None:
        row = conn.execute(self.sql.load_state, dict(shop_id=shop_id, customer_key=key)).first()
        return None if row is None else StoredState(*row)

    def load_states_for(self, conn: Connection, shop_id: str, keys: Sequence[str]) -> dict[str, StoredState]:
        found: dict[str, StoredState] = {}
        for chunk in chunks(keys):
            rows = conn.execute(self.sql.customers_states, dict(shop_id=shop_id, customer_keys=list(chunk)))
            found.update((row[0], StoredState(*row[1:])) for row in rows)
        return found

    def save_states(self, conn: Connection, shop_id: str, states: Mapping[str, StoredState], now: datetime,
                    unless_evaluated_after: datetime | None = None) -> None:
        """Upsert states evaluated at `now`. With `unless_evaluated_after`, a row that a webhook
        re-evaluated after that wall-clock instant is newer than this batch and is left alone."""
        if not states:
            return
        now_us = to_micros(now)
        guard = {} if unless_evaluated_after is None else dict(newest_us=max(now_us, to_micros(unless_evaluated_after)))
        rows = [dict(shop_id=shop_id, customer_key=key, evaluated_at=now_us, **guard, **state.columns())
                for key, state in states.items()]
        statement = self.sql.save_state if unless_evaluated_after is None else self.sql.save_state_unless_newer
        for chunk in chunks(rows, 5_000):
            conn.execute(statement, chunk)

    def add_stage_changes(self, conn: Connection, shop_id: str,
                          changes: Iterable[tuple[str, str, str | None, str]], now: datetime) -> None:
        """Append (customer_key, model, from_stage, to_stage) rows to the stage history."""
        at = to_micros(now)
        rows = [dict(shop_id=shop_id, customer_key=k, model=m, from_stage=f, to_stage=t, at=at) for k, m, f, t in changes]
        for chunk in chunks(rows, 5_000):
            conn.execute(self.sql.add_stage_change, chunk)


# --- stage history reads (customer view, dashboard) ----------------------------------------------

def stage_history(conn: Connection, shop_id: str, key: str) -> list[Row]:
    """A customer's recorded stage changes, oldest first (rows of `stage_changes`)."""
    return list(conn.execute(select(stage_changes).where(
        stage_changes.c.shop_id == shop_id, stage_changes.c.customer_key == key).order_by(stage_changes.c.id)))


def stage_movements(conn: Connection, shop_id: str, model: str, after: datetime,
                    until: datetime) -> list[tuple[str | None, str, int]]:
    """(from_stage, to_stage, count) of the changes of one model recorded in (after, until]."""
    query = (select(stage_changes.c.from_stage, stage_changes.c.to_stage, func.count())
             .where(stage_changes.c.shop_id == shop_id, stage_changes.c.model == model,
                    stage_changes.c.at > to_micros(after), stage_changes.c.at <= to_micros(until))
             .group_by(stage_changes.c.from_stage, stage_changes.c.to_stage))
    return [tuple(row) for row in conn.execute(query)]


def has_stage_history(conn: Connection, shop_id: str) -> bool:
    """Whether any stage change of the shop is recorded."""
    return conn.execute(select(stage_changes.c.id).where(stage_changes.c.shop_id == shop_id).limit(1)).first() is not None


def replace_stage_history(conn: Connection, shop_id: str, keys: Sequence[str],
                          changes: Sequence[tuple[str, str, str | None, str, int]], until: datetime) -> None:
    """Replace the stage history of the customers `keys` up to `until`: their changes recorded at
    or before it are deleted, and `changes`, (customer_key, model, from_stage, to_stage, at in
    micros) rows, appended in the order given (the history's ids follow it: give them oldest
    first). Changes recorded after `until` (a webhook meanwhile) are kept."""
    until_us = to_micros(until)
    for chunk in chunks(keys):
        conn.execute(delete(stage_changes).where(stage_changes.c.shop_id == shop_id, stage_changes.c.at <= until_us,
                                                 stage_changes.c.customer_key.in_(list(chunk))))
    rows = [dict(shop_id=shop_id, customer_key=k, model=m, from_stage=f, to_stage=t, at=at) for k, m, f, t, at in changes]
    for chunk in chunks(rows, 5_000):
        conn.execute(stage_changes.insert(), chunk)
