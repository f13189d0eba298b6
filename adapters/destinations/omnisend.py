"""Omnisend: custom contact properties, and a custom "lifecycle stage changed" event.

API version 2026-03-15, Omnisend's current stable version (it replaces v3 and v5, which the docs now
list as legacy; see "Migrate from v5 to v2026-03-15"). One contact: `POST /contacts` creates or
updates by email (or phone). Many: `POST /batches` of `POST contacts` items, processed
asynchronously, so per-item results are not known when the call returns. Identifiers are sent
without `channels`: a contact we create is never subscribed by us, and an existing one keeps its
subscription status.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Sequence

import requests

from adapters.destinations.settings import ApiKeySettings
from adapters.http import HttpDestination, iso_utc
from connector.config import DestinationSettings
from connector.domain.ports import ContactUpdate, ItemFailure, StageChange

# https://api-docs.omnisend.com/reference/authentication ("API key": Authorization header + Omnisend-Version)
BASE_URL = "https://api.omnisend.com/api"
API_VERSION = "2026-03-15"
AUTH_SCHEME = "Omnisend-API-Key"
CONTACTS = "/contacts"  # https://api-docs.omnisend.com/reference/post_contacts (create or update by identifier)
BATCHES = "/batches"  # https://api-docs.omnisend.com/reference/post_batches
EVENTS = "/events"  # https://api-docs.omnisend.com/reference/post_events
# https://api-docs.omnisend.com/reference/rate-limit-timeouts-errors: 400 requests/minute per brand
# (contacts, batches, events); a 429 carries a `retryAfter` field in seconds.
RATE_PER_MINUTE = 400
# https://api-docs.omnisend.com/reference/post_batches: "Each batch operation can include up to 100 actions."
BATCH_SIZE = 100
# https://api-docs.omnisend.com/reference/events: custom events need only a name, `origin` and the contact;
# `eventID` must be a UUID (used, with `eventTime`, to de-duplicate).
EVENT_NAME = "lifecycle stage changed"
ORIGIN = "api"
# https://api-docs.omnisend.com/v4.0/reference/contacts ("Custom properties" name restrictions).
PROPERTY_NAME = re.compile(r"[A-Za-z0-9_]{1,128}")
EVENT_NAMESPACE = uuid.UUID("5b0c4f3e-2a53-4d8e-9a55-7a1c8e4b6f01")  # stagesync's, for stable event UUIDs


@dataclass(frozen=True, kw_only=True)
class OmnisendSettings(ApiKeySettings):
    @classmethod
    def check(cls, table: DestinationSettings) -> list[str]:
        return super().check(table) + [
            f"properties.{name}: Omnisend property names use only latin letters, digits and _ (at most 128)"
            for name in table.properties if not PROPERTY_NAME.fullmatch(name)]


class Omnisend(HttpDestination):
    type_name = "omnisend"
    settings_class = OmnisendSettings
    base_url_default = BASE_URL
    default_rate_per_minute = RATE_PER_MINUTE
    max_batch = BATCH_SIZE
    max_event_batch = BATCH_SIZE
    has_events = True

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"{AUTH_SCHEME} {self.api_key}", "Omnisend-Version": API_VERSION,
                "Accept": "application/json"}

    def vendor_retry_after(self, response: requests.Response) -> float | None:
        try:
            value = response.json().get("retryAfter")
        except (ValueError, AttributeError):
            return None
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def _contact(self, update: ContactUpdate) -> dict:
        if update.email:
            identifier = {"type": "email", "id": update.email}
        else:
            identifier = {"type": "phone", "id": update.phone}
        return {"identifiers": [{**identifier, "sendWelcomeMessage": False}],
                "customProperties": self.typed_properties(update.properties)}

    def upsert_contacts(self, updates: Sequence[ContactUpdate]) -> list[ItemFailure]:
        self._post_one_or_batches(CONTACTS, "contacts", [self._contact(u) for u in updates])
        return []  # the batch runs asynchronously: item errors show in Omnisend's batch report only

    def send_events(self, events: Sequence[StageChange]) -> list[ItemFailure]:
        """One event: `POST /events`. More: `POST /batches` of `POST events` items (100 a batch),
        like contacts; Omnisend de-duplicates on each item's eventID, so a resent batch is harmless."""
        self._post_one_or_batches(EVENTS, "events", [self._event(e) for e in events])
        return []  # asynchronous, as for contacts

    def _post_one_or_batches(self, path: str, batch_endpoint: str, items: list[dict]) -> None:
        """One item: `POST path`. More: `POST /batches` of `POST batch_endpoint` items, 100 a batch."""
        if len(items) == 1:
            self.call("POST", path, json=items[0])
            return
        for start in range(0, len(items), BATCH_SIZE):
            self.call("POST", BATCHES, json={"method": "POST", "endpoint": batch_endpoint,
                                             "items": items[start:start + BATCH_SIZE]})

    def _event(self, event: StageChange) -> dict:
        at = iso_utc(event.at)
        return {
            "eventName": EVENT_NAME,
            "eventID": str(uuid.uuid5(EVENT_NAMESPACE, event.event_id)),
            "eventTime": at,
            "origin": ORIGIN,
            "contact": {"email": event.email} if event.email else {"phone": event.phone},
            "properties": {"model": event.model, "from": event.from_stage, "to": event.to_stage, "at": at},
        }
