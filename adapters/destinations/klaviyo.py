"""Klaviyo: custom profile properties, and a "Lifecycle Stage Changed" metric event.

JSON:API bodies, revision 2026-07-15 (the latest GA revision in Klaviyo's published OpenAPI,
github.com/klaviyo/openapi `openapi/stable.json`). One profile: `POST /api/profile-import`
(create or update by email or phone). Many: `POST /api/profile-bulk-import-jobs`, an asynchronous
job whose per-profile errors are only reported later by the job itself, each job under Klaviyo's
10,000 profiles and 5 MB. The bulk job needs the `lists:write` scope besides `profiles:write`; a key
without it is answered 403: from then on (for the life of the process) profiles go one by one through
`POST /api/profile-import`, which needs `profiles:write` only, rather than the batch becoming dead
letters. A property set to None is removed with `meta.patch_properties.unset`, and only through
`profile-import`: the bulk job cannot clear a field.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Sequence

from adapters.destinations.settings import ApiKeySettings
from adapters.http import HttpDestination, iso_utc, one_by_one
from connector.errors import DestinationError, RetriableDestinationError
from connector.domain.ports import ContactUpdate, ItemFailure, StageChange

log = logging.getLogger("stagesync.destinations.klaviyo")

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
# https://developers.klaviyo.com/en/reference/bulk_import_profiles: "Accepts up to 10,000 profiles per
# request" and "The maximum allowed payload size is 5MB"; its scopes: lists:write and profiles:write.
BATCH_SIZE = 10_000
MAX_JOB_BYTES = 5 * 1024 * 1024 - 64 * 1024  # 5 MB, less room for the envelope around the profiles
BULK_SCOPES = ("lists:write", "profiles:write")
# Without lists:write, profiles go one request each (create_or_update_profile: profiles:write only);
# a claim then carries as many as a minute of that budget can take.
SINGLE_BATCH = 100
# https://developers.klaviyo.com/en/docs/use_klaviyos_bulk_profile_import_api ("Clearing fields with null
# values"): the bulk job does not clear fields; "To remove a field value from a profile, use the Update
# Profile endpoint [...] or the Create or Update Profile endpoint", whose `meta.patch_properties.unset`
# lists the properties to remove (https://developers.klaviyo.com/en/reference/create_or_update_profile).
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

    def __init__(self, settings: KlaviyoSettings, session=None, *, shop: str | None = None):
        super().__init__(settings, session, shop=shop)
        self.bulk_allowed = True  # until Klaviyo answers 403 to a bulk job (the key lacks lists:write)

    def requests_for(self, n_updates: int) -> int:
        if n_updates <= 1 or not self.bulk_allowed:
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
            self._import_one(updates[0])
            return []
        # A profile losing a property goes alone: only profile-import can clear it (see above).
        singles = [i for i, u in enumerate(updates) if not self.bulk_allowed or None in u.properties.values()]
        bulk = [i for i in range(len(updates)) if i not in set(singles)]
        failures: list[ItemFailure] = []
        for chunk in self._jobs(updates, bulk):
            if not self.bulk_allowed:
                singles += chunk
                continue
            answer = self.call("POST", BULK_IMPORT, accept=(403,), json={"data": {
                "type": "profile-bulk-import-job",
                "attributes": {"profiles": {"data": [self._profile(updates[i]) for i in chunk]}}}})
            if answer.status_code == 403:
                # https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling: a 403 is a key
                # without the scope the endpoint needs; profile-import needs profiles:write only.
                log.warning("%s: Klaviyo refused a bulk import job (403: the key lacks %s); profiles are sent "
                            "one by one from now on", self.name, " or ".join(BULK_SCOPES))
                self.bulk_allowed = False
                self.max_batch = SINGLE_BATCH
                singles += chunk
        singles.sort()
        now, later = singles[:SINGLE_BATCH], singles[SINGLE_BATCH:]
        failures += [ItemFailure(now[f.index], f.error)
                     for f in self._one_by_one([updates[i] for i in now])]
        failures += [ItemFailure(i, RetriableDestinationError(
            f"{self.name}: sent one by one in a later call (the key cannot run bulk import jobs)",
            destination=self.name, retry_after=0)) for i in later]
        return sorted(failures, key=lambda f: f.index)  # an accepted job (202) reports refusals later, itself

    def _one_by_one(self, updates: list[ContactUpdate]) -> list[ItemFailure]:
        if len(updates) == 1:  # one_by_one raises a lone item's failure; here it is that item's only
            try:
                self._import_one(updates[0])
            except DestinationError as exc:
                return [ItemFailure(0, exc)]
            return []
        return one_by_one(updates, self._import_one)

    def _import_one(self, update: ContactUpdate) -> None:
        self.call("POST", PROFILE_IMPORT, json={"data": self._profile(update)})

    def _jobs(self, updates: Sequence[ContactUpdate], indexes: list[int]) -> list[list[int]]:
        """The bulk jobs for these profiles: each at most BATCH_SIZE profiles and MAX_JOB_BYTES of JSON."""
        jobs: list[list[int]] = []
        current: list[int] = []
        size = 0
        for i in indexes:
            weight = len(json.dumps(self._profile(updates[i])).encode("utf-8")) + 2  # as requests serialises it
            if current and (len(current) >= BATCH_SIZE or size + weight > MAX_JOB_BYTES):
                jobs.append(current)
                current, size = [], 0
            current.append(i)
            size += weight
        if current:
            jobs.append(current)
        return jobs

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
