"""Webhook: a signed HTTP POST of each contact's properties (and of each stage change) to any URL.

The body is `{"shop", "email", "phone", "properties", "changes"}`: a contact update has no changes,
a stage change sends the contact's properties with that one change. Deliveries are signed as
Standard Webhooks prescribes (https://www.standardwebhooks.com/, spec "Signature scheme"): headers
`webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">`, keyed by the base64-decoded `whsec_` secret, so any Standard Webhooks
library verifies them. A stage change keeps its event id as `webhook-id`, so a receiver can drop a
repeat; a contact update gets an id derived from its content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Sequence

from adapters.destinations.settings import HttpSettings
from adapters.http import HttpDestination, iso_utc, one_by_one
from connector.config import DestinationSettings
from connector.domain.ports import ContactUpdate, ItemFailure, StageChange

SECRET_PREFIX = "whsec_"  # Standard Webhooks spec, "Signature scheme": secrets are whsec_ + base64
# No vendor limit: a receiver is ours to size. 600/minute is a polite default; set rate_per_minute.
RATE_PER_MINUTE = 600
BATCH_SIZE = 100  # contacts per call of the sync worker; each one is its own POST


def secret_key(secret: str) -> bytes | None:
    """The HMAC key of a `whsec_<base64>` secret, or None when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    try:
        return base64.b64decode(secret[len(SECRET_PREFIX):], validate=True) or None
    except (binascii.Error, ValueError):
        return None


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for this id, timestamp and raw body."""
    signed = f"{msg_id}.{timestamp}.".encode("utf-8") + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


@dataclass(frozen=True, kw_only=True)
class WebhookSettings(HttpSettings):
    url: str
    secret: str = field(repr=False)

    @classmethod
    def check(cls, table: DestinationSettings) -> list[str]:
        found = super().check(table)
        url = table.options.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            found.append("url: is required, an http:// or https:// URL")
        secret = table.options.get("secret")
        if not isinstance(secret, str) or secret_key(secret) is None:
            found.append(f"secret: is required, a Standard Webhooks secret ({SECRET_PREFIX} followed by base64)")
        return found


class Webhook(HttpDestination):
    type_name = "webhook"
    settings_class = WebhookSettings
    default_rate_per_minute = RATE_PER_MINUTE
    max_batch = 1  # one POST per contact: one contact a call keeps every request within the rate
    has_events = True

    def __init__(self, settings: WebhookSettings, session=None, *, shop: str | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        super().__init__(settings, session, shop=shop)
        self.base_url = str(settings.base_url or settings.url)
        self.secret = settings.secret
        self.api_key = self.secret  # masked in every message, like the vendors' keys
        self.key = secret_key(self.secret) or b""
        self.clock = clock

    def _post(self, msg_id: str, payload: dict) -> None:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")
        timestamp = int(self.clock().timestamp())
        self.call("POST", "", data=body, headers={
            "Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self.key, msg_id, timestamp, body)})

    def _payload(self, email: str | None, phone: str | None, properties, changes: list) -> dict:
        return {"shop": self.shop, "email": email, "phone": phone, "properties": dict(properties),
                "changes": changes}

    def _send_update(self, update: ContactUpdate) -> None:
        payload = self._payload(update.email, update.phone, update.properties, [])
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()
        self._post(f"msg_{digest[:32]}", payload)

    def _send_event(self, event: StageChange) -> None:
        change = {"model": event.model, "from": event.from_stage, "to": event.to_stage, "at": iso_utc(event.at),
                  "event_id": event.event_id}
        self._post(event.event_id, self._payload(event.email, event.phone, event.properties, [change]))

    def upsert_contacts(self, updates: Sequence[ContactUpdate]) -> list[ItemFailure]:
        return one_by_one(updates, self._send_update)

    def send_events(self, events: Sequence[StageChange]) -> list[ItemFailure]:
        return one_by_one(events, self._send_event)
