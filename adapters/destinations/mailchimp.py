"""Mailchimp: audience merge fields on the members of one audience (`list_id`). No events.

Marketing API 3.0. Before the first write, the audience's merge fields are listed and the missing
ones created; a property maps to the field of the same name, else to a tag derived from its name.
Members are upserted with `status_if_new: "transactional"`: a customer we add is not subscribed to
marketing (no consent is implied by an order), and an existing member keeps the status it has.
One member: `PUT /lists/{list_id}/members/{md5 of the lower-cased email}`. Many: the batch
subscribe `POST /lists/{list_id}` with `update_existing`, whose `errors` name refused members.
Mailchimp identifies members by email only: a customer known by phone alone is refused.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Sequence

from requests.auth import HTTPBasicAuth

from adapters.destinations.settings import ApiKeySettings
from adapters.http import HttpDestination, hide
from connector.config import DestinationSettings
from connector.errors import FatalDestinationError, mask
from connector.domain.ports import ContactUpdate, ItemFailure

# https://mailchimp.com/developer/marketing/docs/fundamentals/ ("Connecting to the API": the data
# center is the API key's suffix, e.g. -us21; HTTP Basic auth with any user name and the key).
BASE_URL = "https://{dc}.api.mailchimp.com/3.0"
AUTH_USER = "stagesync"
# https://mailchimp.com/developer/marketing/api/list-merges/ (list merge fields, add merge field)
MERGE_FIELDS = "/lists/{list_id}/merge-fields"
# https://mailchimp.com/developer/marketing/api/list-members/add-or-update-list-member/
MEMBER = "/lists/{list_id}/members/{subscriber_hash}"
# https://mailchimp.com/developer/marketing/api/lists/batch-subscribe-or-unsubscribe/
BATCH_SUBSCRIBE = "/lists/{list_id}"
# https://mailchimp.com/developer/marketing/docs/fundamentals/ ("API limits"): no per-minute quota,
# but at most 10 simultaneous connections per account; 5 requests/s stays well below that.
RATE_PER_MINUTE = 300
# https://mailchimp.com/developer/marketing/api/lists/batch-subscribe-or-unsubscribe/:
# "Up to 500 members may be added or updated with each API call."
BATCH_SIZE = 500
# https://mailchimp.com/developer/marketing/api/list-members/add-or-update-list-member/ (status_if_new:
# subscribed, unsubscribed, cleaned, pending or transactional; transactional = not opted in to marketing).
STATUS_IF_NEW = "transactional"
# https://mailchimp.com/developer/marketing/docs/merge-fields/ (tags: upper-case letters, digits and _,
# at most 10 characters in the audience settings); GET merge-fields returns 10 unless `count` is given.
TAG_LENGTH = 10
MERGE_FIELDS_PAGE = 1000
MERGE_TYPES = {"text": "text", "number": "number", "date": "date"}


def merge_tag(name: str) -> str:
    """A deterministic merge tag for a property name: itself upper-cased when it fits, else a prefix
    and a digest (so that two long names never share a tag)."""
    clean = re.sub(r"[^A-Z0-9_]", "_", name.upper())
    if not clean[:1].isalpha():
        clean = "P" + clean
    if len(clean) <= TAG_LENGTH and clean == name.upper():
        return clean
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:4].upper()
    return clean.replace("_", "")[:TAG_LENGTH - 4] + digest


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode("utf-8")).hexdigest()


@dataclass(frozen=True, kw_only=True)
class MailchimpSettings(ApiKeySettings):
    list_id: str

    @classmethod
    def check(cls, table: DestinationSettings) -> list[str]:
        found = super().check(table)
        key = table.options.get("api_key")
        if isinstance(key, str) and key and not table.base_url and not re.fullmatch(r".+-[a-z]+[0-9]+", key):
            found.append("api_key: a Mailchimp key ends with its data center, e.g. -us21")
        if not isinstance(table.options.get("list_id"), str) or not table.options["list_id"].strip():
            found.append("list_id: is required (the audience id, in Audience > Settings > Audience name and defaults)")
        return found


class Mailchimp(HttpDestination):
    type_name = "mailchimp"
    settings_class = MailchimpSettings
    default_rate_per_minute = RATE_PER_MINUTE
    max_batch = BATCH_SIZE

    def __init__(self, settings: MailchimpSettings, session=None, *, shop: str | None = None):
        super().__init__(settings, session, shop=shop)
        self.list_id = settings.list_id
        if not settings.base_url:
            self.base_url = BASE_URL.format(dc=self.api_key.rpartition("-")[2])
        self.tags: dict[str, str] | None = None  # property name -> merge tag, once ensured

    def headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    def call(self, method: str, path: str, **kwargs):
        return super().call(method, path, auth=HTTPBasicAuth(AUTH_USER, self.api_key), **kwargs)

    def requests_for(self, n_updates: int) -> int:
        setup = 1 if self.tags is None and n_updates else 0  # listing the merge fields, the first time
        return super().requests_for(n_updates) + setup

    def ensure_merge_fields(self) -> dict[str, str]:
        """The merge tag of each configured property, creating the fields the audience lacks."""
        if self.tags is None:
            listed = self.call("GET", MERGE_FIELDS.format(list_id=self.list_id),
                               params={"count": MERGE_FIELDS_PAGE}).json().get("merge_fields", [])
            by_name = {f.get("name"): f.get("tag") for f in listed}
            existing_tags = {f.get("tag") for f in listed}
            tags: dict[str, str] = {}
            for prop in self.properties:
                tag = by_name.get(prop) or merge_tag(prop)
                if tag not in existing_tags:
                    created = self.call("POST", MERGE_FIELDS.format(list_id=self.list_id), json={
                        "tag": tag, "name": prop, "type": MERGE_TYPES[self.kind(prop)],
                        "required": False, "public": False}).json()
                    tag = created.get("tag") or tag
                tags[prop] = tag
            self.tags = tags
        return self.tags

    def _member(self, update: ContactUpdate) -> dict:
        tags = self.ensure_merge_fields()
        merge_fields = {tags.get(name, merge_tag(name)): "" if value is None else self.typed(name, value)
                        for name, value in update.properties.items()}
        return {"email_address": update.email, "status_if_new": STATUS_IF_NEW, "merge_fields": merge_fields}

    def _no_email(self) -> FatalDestinationError:
        return FatalDestinationError(f"{self.name}: Mailchimp members need an email; this customer has a phone only",
                                     destination=self.name)

    def upsert_contacts(self, updates: Sequence[ContactUpdate]) -> list[ItemFailure]:
        if len(updates) == 1:
            if not updates[0].email:
                raise self._no_email()
            member = self._member(updates[0])
            path = MEMBER.format(list_id=self.list_id, subscriber_hash=subscriber_hash(updates[0].email))
            self.call("PUT", path, json=member)
            return []
        failures = [ItemFailure(i, self._no_email()) for i, u in enumerate(updates) if not u.email]
        sendable = [(i, u) for i, u in enumerate(updates) if u.email]
        for start in range(0, len(sendable), BATCH_SIZE):
            chunk = sendable[start:start + BATCH_SIZE]
            answer = self.call("POST", BATCH_SUBSCRIBE.format(list_id=self.list_id), json={
                "members": [self._member(u) for _, u in chunk], "update_existing": True}).json()
            index_of = {u.email.strip().lower(): i for i, u in chunk}
            for error in answer.get("errors") or []:
                index = index_of.get(str(error.get("email_address", "")).strip().lower())
                if index is not None:
                    detail = hide(f"{error.get('error_code') or ''} {error.get('error') or ''}".strip(), [self.api_key])
                    failures.append(ItemFailure(index, FatalDestinationError(
                        f"{self.name}: member {mask(updates[index].email)} refused: {detail}",
                        destination=self.name)))
        return sorted(failures, key=lambda f: f.index)
