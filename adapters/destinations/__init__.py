"""Destination adapters: one module per email tool, each translating desired contact properties and
stage-change events into its vendor's HTTP calls, and nothing else (batching decisions, rate
limiting, persistent retries and dead letters live in `connector.services.sync`). Each module holds its
adapter class and its typed settings (`<Name>Settings`, see `settings.py`); the classes are
registered by type name in `adapters/registry.py` and imported on first use.

    destination = destinations.create(table, shop=shop.id)          # ConfigError when misconfigured
    failures = destination.upsert_contacts(updates)                 # Retriable/FatalDestinationError
    if destination.supports_events:
        failures += destination.send_events(changes)

`validate(table)` lists every problem of one destination's table, for `stagesync check-config`.
"""

from __future__ import annotations

import requests

from adapters.registry import DESTINATIONS
from connector.config import DestinationSettings
from connector.errors import ConfigError
from connector.domain.ports import Destination

__all__ = ["DESTINATIONS", "create", "validate"]


def validate(table: DestinationSettings) -> list[str]:
    """Every problem with this table (missing api_key, list_id, url, ...); empty when usable."""
    if table.type not in DESTINATIONS:
        return [DESTINATIONS.unknown(table.type)]
    return DESTINATIONS[table.type].settings_class.problems(table)


def create(table: DestinationSettings, session: requests.Session | None = None, *,
           shop: str | None = None) -> Destination:
    """The adapter for this table, built from its typed settings; ConfigError listing every problem
    (each naming the destination and the key) or, for an unknown type, the valid ones."""
    problems = validate(table)
    if problems:
        raise ConfigError([f"destination {table.name!r}: {p}" for p in problems])
    cls = DESTINATIONS.load(table.type)
    return cls(cls.settings_class.build(table), session, shop=shop)
