"""What a verified webhook asks stagesync to do, independent of the platform that sent it.

A platform adapter (`adapters.platforms.<name>.parse`) turns one delivery into an `Inbound`:
a delivery id for de-duplication plus a list of actions. `connector.services.ingest` applies the actions
in one transaction. Pure data: no I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Union

from connector.domain.orders import Order


@dataclass(frozen=True, slots=True)
class UpsertOrder:
    """Store this version of the order unless a newer one (by `updated_at`) is stored already."""

    order: Order


@dataclass(frozen=True, slots=True)
class DeleteOrder:
    """The order was deleted on the platform: it stops counting (kept as status `deleted`)."""

    order_id: str
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RecordRefund:
    """A refund of `amount` on a stored order; recorded once per `refund_id` (replays change nothing)."""

    order_id: str
    refund_id: str
    amount: Decimal
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SeeCustomer:
    """A customer exists (e.g. a sign-up) even without orders: a `prospect` / `conquest`."""

    email: str | None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class RedactCustomer:
    """Privacy: delete this customer's orders and state, by every identity named (email, phone,
    the platform's customer id, orders), and queue the removal of synced properties."""

    email: str | None
    phone: str | None = None
    order_ids: tuple[str, ...] = ()
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class RedactShop:
    """Privacy: delete everything stored for this shop."""


@dataclass(frozen=True, slots=True)
class RecordDataRequest:
    """Privacy: a customer asked for their data; recorded (whatever it names) so that the store
    owner can list it and export the data."""

    email: str | None
    phone: str | None = None
    request_id: str | None = None
    customer_id: str | None = None
    orders_requested: tuple[str, ...] = ()


Action = Union[UpsertOrder, DeleteOrder, RecordRefund, SeeCustomer, RedactCustomer, RedactShop, RecordDataRequest]


@dataclass(frozen=True, slots=True)
class Inbound:
    """One verified delivery. No actions means `ignored` (a ping, a test order, an unknown topic)."""

    topic: str
    delivery_id: str | None = None
    actions: tuple[Action, ...] = ()
    # Why nothing is done, for the log and the `ignored` answer (e.g. "test order", "ping").
    ignored_reason: str | None = None
    # Set for platforms whose webhook carries only an id (BigCommerce): the order to fetch.
    fetch_order_id: str | None = None
    extra: dict = field(default_factory=dict, compare=False)
