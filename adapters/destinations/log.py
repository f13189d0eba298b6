"""Log: a dry run. Writes what would be sent to the `stagesync.destinations.log` logger, sends nothing.

Emails and phones are masked as on every log line; property values (stage labels, counts, amounts,
dates) are written as they are.
"""

from __future__ import annotations

import json
import logging
from typing import ClassVar, Sequence

from adapters.http import iso_utc
from connector.config import DestinationSettings
from connector.errors import mask
from connector.domain.ports import ContactUpdate, Destination, ItemFailure, StageChange

log = logging.getLogger("stagesync.destinations.log")

RATE_PER_MINUTE = 60_000  # nothing leaves the process: no limit worth the name
BATCH_SIZE = 1000


def _who(email: str | None, phone: str | None) -> str:
    return mask(email) if email else mask(phone)


class LogDestination(Destination):
    type_name = "log"
    default_rate_per_minute = RATE_PER_MINUTE
    max_batch = BATCH_SIZE
    max_event_batch = BATCH_SIZE
    options: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, settings: DestinationSettings, session=None, *, shop: str | None = None):
        self.name = settings.name
        self.shop = shop
        self.rate_per_minute = settings.rate_per_minute or RATE_PER_MINUTE
        self.supports_events = bool(settings.events)

    @classmethod
    def problems(cls, settings: DestinationSettings) -> list[str]:
        return [f"{key}: unknown option for log (it takes none)" for key in sorted(settings.options)]

    def upsert_contacts(self, updates: Sequence[ContactUpdate]) -> list[ItemFailure]:
        for update in updates:
            log.info("dry run destination=%s shop=%s contact=%s properties=%s", self.name, self.shop,
                     _who(update.email, update.phone), json.dumps(dict(update.properties), sort_keys=True))
        return []

    def send_events(self, events: Sequence[StageChange]) -> list[ItemFailure]:
        for event in events:
            log.info("dry run destination=%s shop=%s contact=%s event=%s model=%s from=%s to=%s at=%s",
                     self.name, self.shop, _who(event.email, event.phone), event.event_id, event.model,
                     event.from_stage, event.to_stage, iso_utc(event.at))
        return []
