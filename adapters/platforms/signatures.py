"""The raw side of a webhook delivery, shared by every platform adapter.

Three small pieces, stdlib only:
- `header()`: case-insensitive header lookup (Flask's `EnvironHeaders` or a plain dict);
- the two signature schemes in use, each a `verify_*()` with its `sign_*()` beside it, so that
  tests and the demo build real signatures. Both compare with `hmac.compare_digest`, on the raw
  bytes, before anything is parsed; there is no way to turn verification off;
- `read_json()` / `Fields`: strict decoding of an already verified body into typed values, each
  failure a `PayloadError` that names the platform, the topic and the field.

No message ever holds a secret, a signature or a field's value (emails live in those values).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

from connector.errors import PayloadError, SignatureError, quoted
from connector.domain.orders import MAX_TEXT, normalise_email, to_utc, unstorable


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The stripped value of header `name`, whatever its case; None when absent or blank."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    if value is None:
        return None
    return value.strip() or None


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _b64decode(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


# --- Scheme 1: base64(HMAC-SHA256(secret, raw body)) -------------------------------------------
# Shopify (X-Shopify-Hmac-Sha256, https://shopify.dev/docs/apps/build/webhooks/verify-deliveries)
# and WooCommerce (X-WC-Webhook-Signature, WC_Webhook::generate_signature in
# woocommerce/includes/class-wc-webhook.php) both sign the raw body this way with the shared secret.

def sign_body_hmac(body: bytes, secret: str) -> str:
    """The base64 HMAC-SHA256 of the raw body, as Shopify and WooCommerce send it."""
    return base64.b64encode(_hmac_sha256(secret.encode("utf-8"), body)).decode("ascii")


def verify_body_hmac(body: bytes, secret: str, received: str | None, *, where: str, header_name: str) -> None:
    """Raise SignatureError unless `received` is the body's HMAC under `secret`."""
    if not secret:
        raise SignatureError(f"{where}: no webhook secret is configured for this shop")
    if received is None:
        raise SignatureError(f"{where}: the {header_name} header is missing")
    digest = _b64decode(received)
    if digest is None:
        raise SignatureError(f"{where}: the {header_name} header is not base64")
    if not hmac.compare_digest(digest, _hmac_sha256(secret.encode("utf-8"), body)):
        raise SignatureError(f"{where}: the {header_name} header does not match the body "
                             "(wrong secret, or the body was changed on the way)")


# --- Scheme 2: Standard Webhooks ----------------------------------------------------------------
# https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
# ("Signature scheme", "Webhook headers"); the same as svix `python/svix/webhooks.py`:
# HMAC-SHA256 keyed by base64-decode(secret without "whsec_") over "{id}.{timestamp}.{body}",
# sent as a space-separated list of "v1,<base64>" (several during a key rotation; one match is enough).
STANDARD_SECRET_PREFIX = "whsec_"
STANDARD_TOLERANCE = timedelta(minutes=5)  # the spec's recommended replay window, both ways


def standard_secret_bytes(secret: str) -> bytes | None:
    """The HMAC key of a `whsec_<base64>` secret (the prefix is optional, as in svix), or None when
    it is not one. The base64 may leave its `=` padding off: the reference library adds it back
    (`base64.b64decode(whsecret + "==")` in standard-webhooks libraries/python/standardwebhooks/
    webhooks.py), and so does this, then decodes strictly (only base64 characters)."""
    encoded = secret[len(STANDARD_SECRET_PREFIX):] if secret.startswith(STANDARD_SECRET_PREFIX) else secret
    encoded = encoded.strip()
    if not encoded:
        return None
    return _b64decode(encoded + "=" * (-len(encoded) % 4)) or None


def standard_key(secret: str, *, where: str = "standard") -> bytes:
    """The HMAC key of a `whsec_<base64>` secret; SignatureError when it is not one."""
    key = standard_secret_bytes(secret)
    if not key:
        raise SignatureError(f"{where}: the shop's webhook_secret is not a Standard Webhooks secret "
                             f"({STANDARD_SECRET_PREFIX} followed by base64)")
    return key


def sign_standard(body: bytes, secret: str, msg_id: str, timestamp: int) -> str:
    """The `webhook-signature` value ("v1,<base64>") for this id, timestamp and raw body."""
    signed = f"{msg_id}.{timestamp}.".encode("utf-8") + body
    return "v1," + base64.b64encode(_hmac_sha256(standard_key(secret), signed)).decode("ascii")


def verify_standard(body: bytes, secret: str, msg_id: str | None, timestamp: str | None,
                    signatures: str | None, now: datetime, *, where: str = "standard") -> None:
    """Raise SignatureError unless one `v1` signature matches and the timestamp is within 5 minutes of `now`."""
    for name, value in (("webhook-id", msg_id), ("webhook-timestamp", timestamp), ("webhook-signature", signatures)):
        if value is None:
            raise SignatureError(f"{where}: the {name} header is missing")
    assert msg_id is not None and timestamp is not None and signatures is not None
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 15):
        raise SignatureError(f"{where}: the webhook-timestamp header is not whole unix seconds")
    age = to_utc(now).timestamp() - int(timestamp)
    if abs(age) > STANDARD_TOLERANCE.total_seconds():
        when = f"{int(age)} s old" if age > 0 else f"{int(-age)} s in the future"
        raise SignatureError(f"{where}: the webhook-timestamp is {when} "
                             f"(tolerance {int(STANDARD_TOLERANCE.total_seconds())} s): a replay or a wrong clock")
    key = standard_key(secret, where=where)
    expected = [_hmac_sha256(key, id_bytes + f".{timestamp}.".encode("ascii") + body) for id_bytes in _id_bytes(msg_id)]
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        candidate = _b64decode(encoded) if version == "v1" else None
        if candidate is not None and any(hmac.compare_digest(candidate, one) for one in expected):
            return
    raise SignatureError(f"{where}: no v1 signature in webhook-signature matches the body "
                         "(wrong secret, or the body was changed on the way)")


def _id_bytes(msg_id: str) -> list[bytes]:
    """The webhook-id as the sender signed it: its UTF-8 bytes ("{id}.{timestamp}.{body}" is signed
    as UTF-8, https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md,
    'Signature scheme'). A WSGI server hands header values over as ISO-8859-1 text (PEP 3333), so a
    non-ASCII id's raw bytes are its latin-1 encoding; a value given as text is encoded as UTF-8."""
    candidates = [msg_id.encode("utf-8", "surrogatepass")]
    try:
        raw = msg_id.encode("latin-1")
    except UnicodeEncodeError:
        return candidates
    return candidates if raw == candidates[0] else [raw, *candidates]


# --- Reading a verified body ----------------------------------------------------------------------

# Ids are stored in String(128) columns (connector/storage/schema.py): a longer one is a malformed payload
# (400), never a database error; a longer delivery id is replaced by its digest.
MAX_ID_LENGTH = 128


def delivery_key(value: str | None) -> str | None:
    """A delivery id that fits the store: the id itself, or "sha256:<hex>" of a longer one or of
    one no text column can hold (a NUL character, a lone surrogate)."""
    if value is None or not unstorable(value, MAX_ID_LENGTH):
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
               int: "a number", Decimal: "a number", float: "a number", type(None): "null"}


def _kind(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_json(headers: Mapping[str, str], body: bytes, where: str) -> "Fields":
    """The body as a JSON object; PayloadError for another content type, bad UTF-8 or bad JSON.

    Numbers with a fraction become exact `Decimal`s, never floats. A missing Content-Type is
    accepted (tests, curl); a present one must be JSON.
    """
    content_type = header(headers, "Content-Type")
    if content_type is not None:
        media = content_type.split(";", 1)[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise PayloadError(f"{where}: Content-Type must be application/json (got {quoted(media) or 'nothing'})")
    if not body.strip():
        raise PayloadError(f"{where}: the body is empty")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PayloadError(f"{where}: the body is not UTF-8") from None
    try:
        data = json.loads(text, parse_float=Decimal, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"{where}: the body is not valid JSON ({exc.msg} at line {exc.lineno} "
                           f"column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise PayloadError(f"{where}: the body is not valid JSON ({reason})") from None
    if not isinstance(data, dict):
        raise PayloadError(f"{where}: the body must be a JSON object (got {_kind(data)})")
    return Fields(data, where)


class Fields:
    """Typed reads from one JSON object. Missing and null are the same; a wrong type is an error.

    Every error names the field by its path (`customer.email`), never by its value.
    """

    def __init__(self, data: Mapping[str, Any], where: str, path: str = ""):
        self.data = data
        self.where = where
        self.path = path

    def renamed(self, where: str) -> "Fields":
        """The same object, its errors attributed to `where` (e.g. once the topic is known)."""
        return Fields(self.data, where, self.path)

    def _name(self, key: str) -> str:
        return f"{self.path}{key}"

    def error(self, key: str, problem: str) -> PayloadError:
        return PayloadError(f"{self.where}: field '{self._name(key)}' {problem}")

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def _present(self, key: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None and required:
            raise self.error(key, "is missing")
        return value

    def text(self, key: str, *, required: bool = False) -> str | None:
        """A string; a blank one counts as missing."""
        value = self._present(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(key, f"must be a string (got {_kind(value)})")
        if not value.strip():
            if required:
                raise self.error(key, "is empty")
            return None
        return value

    def email(self, key: str) -> str | None:
        """An email address, normalised; an error for one stagesync cannot store (over 320
        characters, a NUL character), as for an order's email."""
        email = normalise_email(self.text(key))
        if email is not None and (problem := unstorable(email, MAX_TEXT["email"])):
            raise self.error(key, problem)
        return email

    def ident(self, key: str, *, required: bool = True) -> str | None:
        """An identifier given as a whole number or a non-empty string, as a string."""
        value = self._present(key, required)
        if value is None:
            return None
        return self._as_ident(key, value)

    def _as_ident(self, key: str, value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            ident = str(value)
        elif isinstance(value, str) and value.strip():
            ident = value.strip()
        else:
            raise self.error(key, f"must be an id (a whole number or a non-empty string; got {_kind(value)})")
        if problem := unstorable(ident, MAX_ID_LENGTH):
            raise self.error(key, problem)
        return ident

    def amount(self, key: str, *, required: bool = True) -> Decimal | None:
        """A finite decimal from a string or a number, exactly (`Decimal(str(x))`)."""
        value = self._present(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
            raise self.error(key, f"must be a decimal amount (got {_kind(value)})")
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise self.error(key, "must be a decimal amount such as \"12.50\"") from None
        if not amount.is_finite():
            raise self.error(key, "must be a finite decimal amount")
        return amount

    def moment(self, key: str, *, required: bool = False) -> datetime | None:
        """An ISO 8601 date-time, in UTC (a value without an offset is taken as UTC)."""
        value = self.text(key, required=required)
        if value is None:
            return None
        try:
            return to_utc(datetime.fromisoformat(value.strip()))
        except ValueError:
            raise self.error(key, "must be an ISO 8601 date-time such as 2025-03-14T10:30:00Z") from None

    def flag(self, key: str) -> bool:
        value = self.data.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false (got {_kind(value)})")
        return value

    def child(self, key: str) -> "Fields":
        """A nested object (empty when missing or null)."""
        value = self.data.get(key)
        if value is None:
            value = {}
        elif not isinstance(value, dict):
            raise self.error(key, f"must be an object (got {_kind(value)})")
        return Fields(value, self.where, f"{self._name(key)}.")

    def items(self, key: str) -> list[Any]:
        """A list (empty when missing or null)."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(key, f"must be an array (got {_kind(value)})")
        return value

    def children(self, key: str) -> list["Fields"]:
        """A list of objects (empty when missing or null)."""
        result = []
        for index, item in enumerate(self.items(key)):
            if not isinstance(item, dict):
                raise self.error(f"{key}[{index}]", f"must be an object (got {_kind(item)})")
            result.append(Fields(item, self.where, f"{self._name(key)}[{index}]."))
        return result

    def idents(self, key: str) -> tuple[str, ...]:
        """A list of ids (whole numbers or strings), as strings."""
        return tuple(self._as_ident(f"{key}[{i}]", value) for i, value in enumerate(self.items(key)))


def require_shape(data: "Fields", topic: str, allowed: frozenset[str], required: tuple[str, ...]) -> None:
    """A destructive topic is acted on only when the body has that topic's shape: every `required`
    field present and no field outside `allowed`. The topic header is not signed (only the body
    is), so a signed body of another topic re-sent under a destructive topic is refused (400)
    instead of deleting anything (docs/http.md, 'Destructive topics')."""
    missing = [key for key in required if not data.has(key)]
    unexpected = sorted(key for key in data.data if key not in allowed)
    if missing or unexpected:
        problem = (f"lacks {', '.join(missing)}" if missing else "") + ("; " if missing and unexpected else "") + (
            f"has fields a {topic} body never has ({', '.join(quoted(k, 40) for k in unexpected[:5])})" if unexpected else "")
        raise PayloadError(f"{data.where}: not a {topic} body: it {problem}; nothing deleted")

