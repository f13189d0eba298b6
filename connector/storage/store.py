"""`Store`: one object for the database of a stagesync installation, with every query method.

It is the engine and its transactions (`connector.storage.engine.Database`) plus the query
methods of each table family: orders and refunds (`orders`), customers' figures and redaction
(`customers`), stored states, stage history and shop figures (`states`), deliveries and cursors
(`intake`), and the outbox (`outbox`). Services receive a Store and compose its writes in one
transaction (`with store.transaction() as conn: store.upsert_order(conn, ...)`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from connector.domain.stages import Bands
from connector.storage.customers import CustomerQueries
from connector.storage.engine import Database
from connector.storage.intake import IntakeQueries
from connector.storage.orders import OrderQueries
from connector.storage.outbox import OutboxQueries
from connector.storage.states import StateQueries


class Store(OrderQueries, CustomerQueries, StateQueries, IntakeQueries, OutboxQueries, Database):
    """A database of one stagesync installation (all shops)."""

    def __init__(self, engine, reader=None):
        super().__init__(engine, reader)
        # StateQueries.load_shop_figures: shop_id -> (monotonic time read, figures)
        self._shop_figures_read: dict[str, tuple[float, tuple[Decimal, int, Bands] | None]] = {}
        # connector.services.intake_health.note_accepted: (shop_id, topic) -> when this process last noted it
        self.topics_noted: dict[tuple[str, str], datetime] = {}
