"""A destination that refuses every call with one permanent error, as an email tool does with a
wrong key or an unknown property: what the sync worker turns into dead letters and a last error."""

from __future__ import annotations

from connector.domain.ports import Destination
from connector.errors import FatalDestinationError


class Refusing(Destination):
    type_name = "refusing"
    default_rate_per_minute = 60_000
    max_batch = 100

    def __init__(self, message: str, status: int):
        self.message, self.status = message, status

    def upsert_contacts(self, updates):
        raise FatalDestinationError(self.message, status=self.status)
