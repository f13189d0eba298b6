"""Brevo: contact attributes, and a "lifecycle_stage_changed" event (Brevo's Events API).

API v3. Attributes must exist before a contact can hold them: the account's attributes are listed
before the first write and the missing ones created (`normal` category, upper-case names). One
contact: `POST /contacts` with `updateEnabled` (create or update). Many: `POST /contacts/batch`,
which updates existing contacts only; when Brevo answers that some of them do not exist, those are
created one by one with `POST /contacts` and the others sent again. A contact known by phone only
is identified by its `SMS` attribute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import requests

from adapters.destinations.settings import ApiKeySettings
from adapters.http import HttpDestination, classify, iso_utc, one_by_one, retry_after_seconds
from connector.errors import FatalDestinationError
from connector.domain.ports import ContactUpdate, ItemFailure, StageChange

# https://developers.brevo.com/docs/authentication-schemes (the `api-key` header)
BASE_URL = "https://api.brevo.com/v3"
AUTH_HEADER = "api-key"
ATTRIBUTES = "/contacts/attributes"  # https://developers.brevo.com/reference/get-attributes
NEW_ATTRIBUTE = "/contacts/attributes/normal/{name}"  # https://developers.brevo.com/reference/create-attribute
CONTACTS = "/contacts"  # https://developers.brevo.com/reference/create-contact (updateEnabled: create or update)
CONTACTS_BATCH = "/contacts/batch"  # https://developers.brevo.com/reference/update-batch-contacts
EVENTS = "/events"  # https://developers.brevo.com/reference/create-event
# https://developers.brevo.com/docs/api-limits ("General rate limits", every account): all /v3/contacts
# endpoints and POST /v3/events: 10 requests/s and 36,000 requests/hour, i.e. 600/minute on average.
RATE_PER_MINUTE = 600
# https://developers.brevo.com/docs/limit-headers: no Retry-After; x-sib-ratelimit-reset is the number
# of seconds until the window resets.
RESET_HEADER = "x-sib-ratelimit-reset"
# https://developers.brevo.com/reference/update-batch-contacts documents no maximum; 100 contacts keep a
# request small and a refusal cheap to replay.
BATCH_SIZE = 100
# https://developers.brevo.com/reference/create-attribute: types text, date, float, boolean, ...
ATTRIBUTE_TYPES = {"text": "text", "number": "float", "date": "date"}
# https://developers.brevo.com/reference/create-event: event_name is alphanumeric, - and _ only.
EVENT_NAME = "lifecycle_stage_changed"
MISSING_INDEXES = re.compile(r"indexes\s+([\d,\s]+)", re.IGNORECASE)


def attribute_name(prop: str) -> str:
    """Brevo's spelling of a property: upper case, letters, digits and _."""
    return re.sub(r"[^A-Z0-9_]", "_", prop.upper())


@dataclass(frozen=True, kw_only=True)
class BrevoSettings(ApiKeySettings):
    pass


class Brevo(HttpDestination):
    type_name = "brevo"
    settings_class = BrevoSettings
    base_url_default = BASE_URL
    default_rate_per_minute = RATE_PER_MINUTE
    max_batch = BATCH_SIZE
    has_events = True

    def __init__(self, settings: BrevoSettings, session=None, *, shop: str | None = None):
        super().__init__(settings, session, shop=shop)
        self.attributes_ready = False

    def headers(self) -> dict[str, str]:
        return {AUTH_HEADER: self.api_key, "Accept": "application/json"}

    def vendor_retry_after(self, response: requests.Response) -> float | None:
        return retry_after_seconds(response.headers.get(RESET_HEADER))

    def requests_for(self, n_updates: int) -> int:
        return super().requests_for(n_updates) + (0 if self.attributes_ready or not n_updates else 1)

    def ensure_attributes(self) -> None:
        if self.attributes_ready:
            return
        listed = self.call("GET", ATTRIBUTES).json().get("attributes", [])
        existing = {str(a.get("name", "")).upper() for a in listed}
        for prop in self.properties:
            name = attribute_name(prop)
            if name not in existing:
                self.call("POST", NEW_ATTRIBUTE.format(name=name),
                          json={"type": ATTRIBUTE_TYPES[self.kind(prop)]})
        self.attributes_ready = True

    def _attributes(self, update: ContactUpdate) -> dict:
        return {attribute_name(name): self.typed(name, value) for name, value in update.properties.items()}

    def _create_or_update(self, update: ContactUpdate) -> None:
        body: dict = {"attributes": self._attributes(update), "updateEnabled": True}
        if update.email:
            body["email"] = update.email
        else:
            body["attributes"]["SMS"] = update.phone
        self.call("POST", CONTACTS, json=body)

    def _batch_item(self, update: ContactUpdate) -> dict:
        identity = {"email": update.email} if update.email else {"sms": update.phone}
        return {**identity, "attributes": self._attributes(update)}

    def upsert_contacts(self, updates: Sequence[ContactUpdate]) -> list[ItemFailure]:
        self.ensure_attributes()
        if len(updates) == 1:
            self._create_or_update(updates[0])
            return []
        return self._batch(list(updates), list(range(len(updates))))

    def _batch(self, updates: list[ContactUpdate], indexes: list[int], retry_missing: bool = True) -> list[ItemFailure]:
        answer = self.call("POST", CONTACTS_BATCH, json={"contacts": [self._batch_item(u) for u in updates]},
                           accept=(404,) if retry_missing else ())
        if answer.status_code != 404:
            return self._refused(answer, updates, indexes)
        missing = self._missing(answer, len(updates))
        if not missing:
            classify(answer, self.name, secrets=[self.api_key])  # a 404 of another kind: raised as it is
        # Contacts Brevo does not know yet: create them one by one, then send the others again.
        failures = [ItemFailure(indexes[missing[f.index]], f.error)
                    for f in one_by_one([updates[i] for i in missing], self._create_or_update)]
        rest = sorted(set(range(len(updates))) - set(missing))
        if rest:
            failures += self._batch([updates[i] for i in rest], [indexes[i] for i in rest], retry_missing=False)
        return sorted(failures, key=lambda f: f.index)

    @staticmethod
    def _missing(answer: requests.Response, count: int) -> list[int]:
        """The batch positions Brevo reports as unknown contacts ("No contact found for indexes 3,4")."""
        try:
            message = str(answer.json().get("message", ""))
        except (ValueError, AttributeError):
            return []
        match = MISSING_INDEXES.search(message)
        found = sorted({int(n) for n in re.findall(r"\d+", match.group(1))}) if match else []
        return [i for i in found if i < count]

    def _refused(self, answer: requests.Response, updates: list[ContactUpdate],
                 indexes: list[int]) -> list[ItemFailure]:
        """A 207 lists `failureIds`; those naming one of our contacts are that contact's failure."""
        if answer.status_code != 207:
            return []
        try:
            failed = {str(x).strip().lower() for x in answer.json().get("failureIds") or []}
        except ValueError:
            return []
        return [ItemFailure(indexes[i], FatalDestinationError(f"{self.name}: Brevo did not update this contact",
                                                               status=207, destination=self.name))
                for i, u in enumerate(updates) if (u.email or u.phone or "").strip().lower() in failed]

    def send_events(self, events: Sequence[StageChange]) -> list[ItemFailure]:
        return one_by_one(events, self._send_event)

    def _send_event(self, event: StageChange) -> None:
        identifiers = {"email_id": event.email} if event.email else {"phone_id": event.phone}
        self.call("POST", EVENTS, json={
            "event_name": EVENT_NAME,
            "event_date": iso_utc(event.at),
            "identifiers": identifiers,
            "event_properties": {"model": event.model, "from": event.from_stage, "to": event.to_stage,
                                 "at": iso_utc(event.at), "event_id": event.event_id},
        })
