"""Destination adapters: one module per email tool, each translating desired contact properties and
stage-change events into its vendor's HTTP calls, and nothing else (batching decisions, rate
limiting, persistent retries and dead letters live in `connector.services.sync`).

    destination = destinations.create(settings, shop=shop.id)     # ConfigError when misconfigured
    failures = destination.upsert_contacts(updates)                 # Retriable/FatalDestinationError
    if destination.supports_events:
        failures += destination.send_events(changes)

`validate(settings)` lists every problem of one destination's settings, for `stagesync check-config`.
"""

from __future__ import annotations

import requests

from adapters.destinations.brevo import Brevo
from adapters.destinations.klaviyo import Klaviyo
from adapters.destinations.log import LogDestination
from adapters.destinations.mailchimp import Mailchimp
from adapters.destinations.omnisend import Omnisend
from adapters.destinations.webhook import Webhook
from connector.config import DestinationSettings
from connector.errors import ConfigError
from connector.domain.ports import Destination

DESTINATIONS: dict[str, type[Destination]] = {
    "omnisend": Omnisend,
    "klaviyo": Klaviyo,
    "mailchimp": Mailchimp,
    "brevo": Brevo,
    "webhook": Webhook,
    "log": LogDestination,
}


def _unknown(kind: object) -> str:
    return f"type {kind!r} is not a destination (available: {', '.join(sorted(DESTINATIONS))})"


def validate(settings: DestinationSettings) -> list[str]:
    """Every problem with these settings (missing api_key, list_id, url, ...); empty when usable."""
    cls = DESTINATIONS.get(settings.type)
    if cls is None:
        return [_unknown(settings.type)]
    return cls.problems(settings)


def create(settings: DestinationSettings, session: requests.Session | None = None, *,
           shop: str | None = None) -> Destination:
    """The adapter for these settings; ConfigError listing every problem (or the valid names)."""
    problems = validate(settings)
    if problems:
        raise ConfigError([f"destination {settings.name!r}: {p}" for p in problems])
    return DESTINATIONS[settings.type](settings, session, shop=shop)
