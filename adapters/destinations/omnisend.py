"""Omnisend: custom contact properties, and a custom "lifecycle stage changed" event.

API version 2026-03-15, Omnisend's current stable version (it replaces v3 and v5, which the docs now
list as legacy; see "Migrate from v5 to v2026-03-15"). One contact: `POST /contacts` creates or
updates by email (or phone). Many: `POST /batches` of `POST contacts` items, processed
asynchronously: the batch is read back (`GET /batches/{id}`) until it is finished, then its items
(`GET /batches/{id}/items`), and each item Omnisend refused is reported with Omnisend's reason. A
batch still unfinished after a few bounded reads is sent again later (contact upserts are
idempotent), never counted as synced. Identifiers are sent
without `channels`: a contact we create is never subscribed by us, and an existing one keeps its
subscription status.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Sequence

import requests

from adapters.destinations.settings import ApiKeySettings
from adapters.http import HttpDestination, hide, iso_utc, one_by_one
from connector.config import DestinationSettings
from connector.errors import FatalDestinationError, RetriableDestinationError, mask
from connector.domain.ports import ContactUpdate, ItemFailure, StageChange

# https://api-docs.omnisend.com/reference/authentication ("API key": Authorization header + Omnisend-Version)
BASE_URL = "https://api.omnisend.com/api"
API_VERSION = "2026-03-15"
AUTH_SCHEME = "Omnisend-API-Key"
CONTACTS = "/contacts"  # https://api-docs.omnisend.com/reference/post_contacts (create or update by identifier)
BATCHES = "/batches"  # https://api-docs.omnisend.com/reference/post_batches
# https://api-docs.omnisend.com/reference/get_batches-batchid ("Get batch information": `status`,
# `totalCount`, `finishedCount`, `errorsCount`) and .../get_batches-batchid-items ("Get batch items":
# `responses` and `errors`, each item with its `request`, `response` and `responseCode`).
BATCH = "/batches/{batch_id}"
BATCH_ITEMS = "/batches/{batch_id}/items"
# https://api-docs.omnisend.com/reference/get_batches (the `status` filter): pending, inProgress,
# finished, stopped. Only `finished` and `stopped` are final.
BATCH_DONE = frozenset({"finished", "stopped"})
# Bounded polling: up to 6 reads, waiting 1, 2, 4, 8, 8, 8 s (31 s at most) between them. Every read
# is one request of the 400/minute budget, reserved with the batch (see `requests_for`). Omnisend's
# reference gives no polling interval (https://api-docs.omnisend.com/reference/post_batches: "Creating
# batches is an asynchronous process"; .../get_batches-batchid reports `status` and `finishedCount`), only
# the budget (https://api-docs.omnisend.com/reference/rate-limit-timeouts-errors): these waits are ours.
# `Omnisend(poll_seconds=..., resend_after_seconds=...)` replaces the first wait and the resend delay.
BATCH_POLLS = 6
POLL_FIRST_SECONDS = 1.0
POLL_MAX_SECONDS = 8.0
RETRY_UNFINISHED_SECONDS = 60.0  # a batch still running: send it again after this long
EVENTS = "/events"  # https://api-docs.omnisend.com/reference/post_events
# https://api-docs.omnisend.com/reference/rate-limit-timeouts-errors: 400 requests/minute per brand
# (contacts, batches, events); a 429 carries a `retryAfter` field in seconds.
RATE_PER_MINUTE = 400
# https://api-docs.omnisend.com/reference/post_batches: "Each batch operation can include up to 100 actions."
BATCH_SIZE = 100
# https://api-docs.omnisend.com/reference/events: custom events need only a name, `origin` and the contact;
# `eventID` must be a UUID (used, with `eventTime`, to de-duplicate historical events only).
EVENT_NAME = "lifecycle stage changed"
ORIGIN = "api"
# https://api-docs.omnisend.com/v4.0/reference/contacts ("Custom properties" name restrictions).
# Removing a value: the 2026-03-15 contract (ContactRequest.customProperties, an object of values, "You can
# add your own custom properties") documents neither a null value nor a removal operation; a property is
# cleared by writing an empty string, a value of the documented string type, not a null of unknown effect.
CLEARED = ""
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
    max_event_batch = 1  # one outcome at a time: see send_events
    has_events = True

    def __init__(self, settings: OmnisendSettings, session=None, *, shop: str | None = None,
                 poll_seconds: float = POLL_FIRST_SECONDS, resend_after_seconds: float = RETRY_UNFINISHED_SECONDS):
        super().__init__(settings, session, shop=shop)
        self.sleep = time.sleep  # between reads of a running batch (replaced in tests)
        self.poll_seconds = poll_seconds  # the first wait between two reads of a running batch, then doubled
        self.resend_after_seconds = resend_after_seconds  # a batch still unfinished is sent again after this

    def requests_for(self, n_updates: int) -> int:
        if n_updates <= 1:
            return n_updates
        # each batch: the POST, up to BATCH_POLLS reads of its status, one read of its items
        return -(-n_updates // BATCH_SIZE) * (2 + BATCH_POLLS)

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
        properties = {name: CLEARED if value is None else value
                      for name, value in self.typed_properties(update.properties).items()}
        return {"identifiers": [{**identifier, "sendWelcomeMessage": False}], "customProperties": properties}

    def upsert_contacts(self, updates: Sequence[ContactUpdate]) -> list[ItemFailure]:
        if len(updates) == 1:
            self.call("POST", CONTACTS, json=self._contact(updates[0]))
            return []
        failures: list[ItemFailure] = []
        for start in range(0, len(updates), BATCH_SIZE):
            chunk = list(updates[start:start + BATCH_SIZE])
            answer = self.call("POST", BATCHES, json={"method": "POST", "endpoint": "contacts",
                                                      "items": [self._contact(u) for u in chunk]}).json()
            failures += [ItemFailure(start + f.index, f.error)
                         for f in self._batch_outcome(str(answer.get("batchID") or ""), chunk)]
        return failures

    def _batch_outcome(self, batch_id: str, chunk: list[ContactUpdate]) -> list[ItemFailure]:
        """Read the batch until it is final, then its items: Omnisend's refusals, per contact."""
        if not batch_id:
            raise FatalDestinationError(f"{self.name}: POST /batches answered without a batchID",
                                        destination=self.name)
        budget = [BATCH_POLLS + 1]  # reads of this batch, failed ones included (all reserved in the rate)

        def read(path: str) -> dict:
            wait = self.poll_seconds
            while True:
                budget[0] -= 1
                try:
                    return self.call("GET", path).json()
                except RetriableDestinationError as exc:  # a read is safe to repeat, within the budget
                    if budget[0] <= 0 or (exc.retry_after or 0) > POLL_MAX_SECONDS:
                        raise
                    self.sleep(max(wait, exc.retry_after or 0))
                    wait = min(POLL_MAX_SECONDS, wait * 2)

        status = ""
        for attempt in range(BATCH_POLLS):
            status = str(read(BATCH.format(batch_id=batch_id)).get("status") or "")
            if status in BATCH_DONE:
                break
            if attempt + 1 < BATCH_POLLS and budget[0] > 1:
                self.sleep(min(POLL_MAX_SECONDS, self.poll_seconds * 2 ** attempt))
            else:
                raise RetriableDestinationError(
                    f"{self.name}: batch {batch_id} still {status or 'unknown'} after {attempt + 1} reads; "
                    f"its contacts will be sent again", destination=self.name, retry_after=self.resend_after_seconds)
        report = read(BATCH_ITEMS.format(batch_id=batch_id))
        index_of = {self._identifier(u): i for i, u in enumerate(chunk)}
        failed: dict[int, Exception] = {}
        confirmed: set[int] = set()
        unmatched_errors = 0
        for item in report.get("errors") or []:
            index = index_of.get(self._request_identifier(item.get("request")))
            if index is None:
                unmatched_errors += 1
            else:
                failed[index] = self._item_error(batch_id, chunk[index], item)
        for item in report.get("responses") or []:
            index = index_of.get(self._request_identifier(item.get("request")))
            code = item.get("responseCode")
            if index is not None and index not in failed:
                if isinstance(code, int) and code >= 400:
                    failed[index] = self._item_error(batch_id, chunk[index], item)
                else:
                    confirmed.add(index)
        if status != "finished" or unmatched_errors:
            # A stopped batch, or refusals we cannot tie to a contact: only confirmed items count as synced.
            why = (f"batch {batch_id} was {status}" if status != "finished"
                   else f"batch {batch_id} reported {unmatched_errors} refusal(s) naming no contact of ours")
            for index in range(len(chunk)):
                if index not in failed and index not in confirmed:
                    failed[index] = RetriableDestinationError(f"{self.name}: {why}", destination=self.name,
                                                              retry_after=self.resend_after_seconds)
        return [ItemFailure(i, failed[i]) for i in sorted(failed)]

    @staticmethod
    def _identifier(update: ContactUpdate) -> str:
        return update.email if update.email else str(update.phone)

    @staticmethod
    def _request_identifier(request) -> str | None:
        """The identifier of a batch item's original request (a contact body as we sent it)."""
        if isinstance(request, str):
            try:
                request = json.loads(request)
            except ValueError:
                return None
        if not isinstance(request, dict):
            return None
        identifiers = request.get("identifiers") or []
        if identifiers and isinstance(identifiers[0], dict):
            return identifiers[0].get("id")
        return None

    def _item_error(self, batch_id: str, update: ContactUpdate, item: dict) -> Exception:
        code = item.get("responseCode")
        response = item.get("response")
        if isinstance(response, dict):
            reason = "; ".join(str(response[k]) for k in ("title", "detail", "error", "message")
                               if isinstance(response.get(k), (str, int)))
            reason = reason or str(response)
        else:
            reason = str(response or item.get("status") or "refused")
        who = mask(update.email) if update.email else "a phone contact"
        message = hide(f"{self.name}: batch {batch_id} refused {who}: {code or ''} {reason}".strip(),
                       [self.api_key])
        if isinstance(code, int) and (code == 429 or code >= 500):
            return RetriableDestinationError(message, status=code, destination=self.name)
        return FatalDestinationError(message, status=code if isinstance(code, int) else None, destination=self.name)

    def send_events(self, events: Sequence[StageChange]) -> list[ItemFailure]:
        """Each event on its own `POST /events`, sent at most once unless surely refused.

        Omnisend de-duplicates on `eventID` only for historical events: "Along with 'eventTime' used for
        historical event deduplication (not working on real-time events used for automations)"
        (api-docs.omnisend.com/reference/post_events, EventRequest.eventID), and the batches reference
        warns that batched events can make automations send duplicate messages
        (api-docs.omnisend.com/reference/post_batches, "WARNING"). So a stage-change event, which may
        start a merchant's flow, is never batched and never resent after the request may have
        arrived: only a 429 or a connection never made is retried (adapters/http.py `send(once=True)`)."""
        return one_by_one(events, lambda event: self.call("POST", EVENTS, json=self._event(event), once=True))

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
