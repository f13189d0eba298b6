"""Log: a dry run. Writes what would be sent to the `stagesync.destinations.log` logger, sends nothing.

Emails and phones are masked as on every log line; property values (stage labels, counts, amounts,
dates) are written as they are.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Sequence

from adapters.destinations.settings import BaseSettings
from adapters.http import iso_utc
from connector.errors import mask
from connector.domain.ports import ContactUpdate, Destination, ItemFailure, StageChange

log = logging.getLogger("stagesync.destinations.log")

RATE_PER_MINUTE = 60_000  # nothing leaves the process: no limit worth the name
BATCH_SIZE = 1000


def _who(email: str | None, phone: str | None) -> str:
    return mask(email) if email else mask(phone)


@dataclass(frozen=True, kw_only=True)
class LogSettings(BaseSettings):
    """The log takes no key of its own."""


class LogDestination(Destination):
    type_name = "log"
    settings_class = LogSettings
    default_rate_per_minute = RATE_PER_MINUTE
    max_batch = BATCH_SIZE
    max_event_batch = BATCH_SIZE

    def __init__(self, settings: LogSettings, session=None, *, shop: str | None = None):
        self.name = settings.name
        self.shop = shop
        self.rate_per_minute = settings.rate_per_minute or RATE_PER_MINUTE
        self.supports_events = bool(settings.events)

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
