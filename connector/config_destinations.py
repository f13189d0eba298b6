"""The `[[shops.destinations]]` tables of `stagesync.toml` -> `DestinationSettings`
(docs/configuration.md#shopsdestinations).

Only the keys every destination shares are checked here (type, name, properties, events,
base_url, rate_per_minute); the rest stay in `options` until the destination's typed settings
are built from them (`adapters/destinations/settings.py`). Problems go to the caller's `problem`
so that `connector.config` reports them with every other one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from connector.domain import ports

# The valid names are those of the registered adapters (connector.domain.ports: names only, nothing imported).
DESTINATION_TYPES = tuple(ports.DESTINATION_ADAPTERS)
FIELDS = ("rfm", "phases", "orders_365d", "orders_total", "aov_365d", "total_spent",
          "first_order_date", "last_order_date", "rfm_since", "p_alive", "churn_risk", "churn_band",
          "expected_orders_90d", "expected_orders_365d", "predicted_clv_365d", "next_order_date")
DEFAULT_PROPERTIES = {"lifecycle_stage": "rfm"}
ID = re.compile(r"[a-z0-9_-]{1,64}")  # the form of a destination name, and of a shop id
COMMON_KEYS = frozenset({"type", "name", "properties", "events", "base_url", "rate_per_minute"})


@dataclass(frozen=True)
class DestinationSettings:
    """One `[[shops.destinations]]` table as read; the destination's own keys stay in `options`
    until its typed settings are built from it (`adapters/destinations/settings.py`)."""

    type: str
    name: str  # unique within the shop; defaults to the type
    # property name in the tool -> field of docs/rules.md, 'Fields a destination can write'
    properties: Mapping[str, str]
    events: bool
    base_url: str | None
    rate_per_minute: int | None
    options: Mapping[str, Any] = field(repr=False)  # api_key, list_id, url, secret ...


def read_destinations(raw: Any, where: str, problem: Callable[[str, str], None]) -> tuple[DestinationSettings, ...]:
    """The shop's destinations at `where` (e.g. `shops[acme]`); each problem is `problem(key, message)`
    and the table that has one is left out or read with its default."""
    if not isinstance(raw, list):
        problem(f"{where}.destinations", "must be an array of tables ([[shops.destinations]])")
        return ()
    result: list[DestinationSettings] = []
    names: set[str] = set()
    for index, item in enumerate(raw):
        spot = f"{where}.destinations[{index}]"
        if not isinstance(item, dict):
            problem(spot, "must be a table")
            continue
        kind = item.get("type")
        if kind not in DESTINATION_TYPES:
            problem(f"{spot}.type", f"must be one of {', '.join(DESTINATION_TYPES)} (got {kind!r})")
            continue
        name = item.get("name", kind)
        if not isinstance(name, str) or not ID.fullmatch(name):
            problem(f"{spot}.name", f"must match {ID.pattern}")
        elif name in names:
            problem(f"{spot}.name", f"duplicate destination name {name!r}; set a distinct `name`")
        names.add(str(name))
        properties = item.get("properties", DEFAULT_PROPERTIES)
        if not isinstance(properties, dict) or not properties:
            problem(f"{spot}.properties", "must be a non-empty table of property = field")
            properties = dict(DEFAULT_PROPERTIES)
        for prop, source_field in properties.items():
            if source_field not in FIELDS:
                problem(f"{spot}.properties.{prop}", f"unknown field {source_field!r} (fields: {', '.join(FIELDS)})")
        events = item.get("events", False)
        if not isinstance(events, bool):
            problem(f"{spot}.events", "must be true or false")
            events = False
        base_url = item.get("base_url")
        if base_url is not None and not (isinstance(base_url, str) and base_url.startswith(("http://", "https://"))):
            problem(f"{spot}.base_url", "must be an http:// or https:// URL")
        rate = item.get("rate_per_minute")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or rate < 1):
            problem(f"{spot}.rate_per_minute", "must be a positive whole number")
            rate = None
        options = {k: v for k, v in item.items() if k not in COMMON_KEYS}
        result.append(DestinationSettings(
            type=kind, name=str(name), properties=dict(properties), events=events,
            base_url=base_url, rate_per_minute=rate, options=options,
        ))
    return tuple(result)
