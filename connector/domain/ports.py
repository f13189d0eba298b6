"""The ports between the core and its adapters. The core depends on these; adapters implement them.

A destination adapter only translates: desired contact properties and stage-change events
in, vendor HTTP calls out. Batching, rate limiting, retries and dead letters live in
`connector.services.sync`, which drives destinations through this port.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Mapping, Sequence

PropertyValue = str | int | None


@dataclass(frozen=True, slots=True)
class ContactUpdate:
    """The desired custom properties of one contact (names and values as written in the tool).

    A value of None removes the property (e.g. after a `customers/redact`).
    """

    email: str | None
    phone: str | None
    properties: Mapping[str, PropertyValue]


@dataclass(frozen=True, slots=True)
class StageChange:
    """One "lifecycle stage changed" event. `event_id` is stable: resending it is harmless."""

    event_id: str
    email: str | None
    phone: str | None
    model: str  # "rfm" or "phases"
    from_stage: str | None  # label as written (None: first stage)
    to_stage: str
    at: datetime
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ItemFailure:
    """One item of a batch that the vendor refused; the others succeeded."""

    index: int
    error: Exception


class Destination(abc.ABC):
    """An email tool account (or the log). One instance per configured destination."""

    type_name: ClassVar[str]
    # The vendor's documented limits; each subclass names the doc next to its values.
    default_rate_per_minute: ClassVar[int]
    max_batch: ClassVar[int] = 1  # contacts one `upsert_contacts` call carries in one request
    max_event_batch: ClassVar[int] = 1  # events one `send_events` call carries in one request
    supports_events: ClassVar[bool] = False

    @abc.abstractmethod
    def upsert_contacts(self, updates: Sequence[ContactUpdate]) -> list[ItemFailure]:
        """Write these contacts' properties (one item: the single upsert; more: the batch endpoint).

        Raises RetriableDestinationError / FatalDestinationError when the whole call failed;
        returns the items the vendor refused one by one when the call as a whole succeeded.
        """

    def send_events(self, events: Sequence[StageChange]) -> list[ItemFailure]:
        """Send stage-change events (only called when `supports_events`)."""
        raise NotImplementedError(f"{self.type_name} takes no events")

    def requests_for(self, n_updates: int) -> int:
        """How many HTTP requests `upsert_contacts` makes for n items (for the rate limiter)."""
        return -(-n_updates // self.max_batch) if n_updates else 0

    def requests_for_events(self, n_events: int) -> int:
        """How many HTTP requests `send_events` makes for n events."""
        return -(-n_events // self.max_event_batch) if n_events else 0
