"""Klaviyo: custom profile properties, and a "Lifecycle Stage Changed" metric event.

JSON:API bodies, revision 2026-07-15 (the latest GA revision in Klaviyo's published OpenAPI,
github.com/klaviyo/openapi `openapi/stable.json`). One profile: `POST /api/profile-import`
(create or update by email or phone). Many: `POST /api/profile-bulk-import-jobs`, an asynchronous
job whose per-profile errors are only reported later by the job itself. A property set to None is
removed with `meta.patch_properties.unset`, because the bulk import ignores nulls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from adapters.destinations.settings import ApiKeySettings
from adapters.http import HttpDestination, iso_utc, one_by_one
from connector.domain.ports import ContactUpdate, ItemFailure, StageChange

# https://developers.klaviyo.com/en/reference/api_overview ("Authentication", "Versioning")
BASE_URL = "https://a.klaviyo.com"
REVISION = "2026-07-15"
AUTH_SCHEME = "Klaviyo-API-Key"
JSON_API = "application/vnd.api+json"
PROFILE_IMPORT = "/api/profile-import"  # https://developers.klaviyo.com/en/reference/create_or_update_profile
BULK_IMPORT = "/api/profile-bulk-import-jobs"  # https://developers.klaviyo.com/en/reference/bulk_import_profiles
EVENTS = "/api/events"  # https://developers.klaviyo.com/en/reference/create_event
# Rate limits, per account, from each operation's reference page (x-klaviyo-ratelimit in stable.json):
#   create_or_update_profile  POST /api/profile-import           burst 75/s,  steady 750/m
#   bulk_import_profiles      POST /api/profile-bulk-import-jobs burst 10/s,  steady 150/m
#   create_event              POST /api/events                   burst 350/s, steady 3500/m
# A 429 carries Retry-After (https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling).
RATE_PER_MINUTE = 750
BULK_JOB_COST = 750 // 150  # a bulk job spends as much of the budget as 5 single imports
# https://developers.klaviyo.com/en/reference/bulk_import_profiles: "Accepts up to 10,000 profiles per request."
BATCH_SIZE = 10_000
METRIC_NAME = "Lifecycle Stage Changed"


@dataclass(frozen=True, kw_only=True)
class KlaviyoSettings(ApiKeySettings):
    pass


class Klaviyo(HttpDestination):
    type_name = "klaviyo"
    settings_class = KlaviyoSettings
    base_url_default = BASE_URL
    default_rate_per_minute = RATE_PER_MINUTE
    max_batch = BATCH_SIZE
    has_events = True

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"{AUTH_SCHEME} {self.api_key}", "revision": REVISION,
                "Accept": JSON_API, "Content-Type": JSON_API}

    def requests_for(self, n_updates: int) -> int:
        if n_updates <= 1:
            return n_updates
        return BULK_JOB_COST * -(-n_updates // BATCH_SIZE)

    def _profile(self, update: ContactUpdate) -> dict:
        attributes: dict = {"email": update.email} if update.email else {"phone_number": update.phone}
        attributes["properties"] = {name: self.typed(name, value) for name, value in update.properties.items()
                                    if value is not None}
        profile = {"type": "profile", "attributes": attributes}
        removed = [name for name, value in update.properties.items() if value is None]
        if removed:
            profile["meta"] = {"patch_properties": {"unset": removed}}
        return profile

    def upsert_contacts(self, updates: Sequence[ContactUpdate]) -> list[ItemFailure]:
        if len(updates) == 1:
            self.call("POST", PROFILE_IMPORT, json={"data": self._profile(updates[0])})
            return []
        for start in range(0, len(updates), BATCH_SIZE):
            profiles = [self._profile(u) for u in updates[start:start + BATCH_SIZE]]
            self.call("POST", BULK_IMPORT, json={"data": {
                "type": "profile-bulk-import-job", "attributes": {"profiles": {"data": profiles}}}})
        return []  # an accepted job (202) reports refused profiles later, in the job's import errors

    def send_events(self, events: Sequence[StageChange]) -> list[ItemFailure]:
        return one_by_one(events, self._send_event)

    def _send_event(self, event: StageChange) -> None:
        identity = {"email": event.email} if event.email else {"phone_number": event.phone}
        self.call("POST", EVENTS, json={"data": {"type": "event", "attributes": {
            "properties": {"model": event.model, "from": event.from_stage, "to": event.to_stage,
                           "at": iso_utc(event.at)},
            "time": iso_utc(event.at),
            "unique_id": event.event_id,
            "metric": {"data": {"type": "metric", "attributes": {"name": METRIC_NAME}}},
            "profile": {"data": {"type": "profile", "attributes": identity}},
        }}})
