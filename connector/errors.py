"""One error hierarchy for stagesync. Mapped to HTTP status or exit codes at the edges only
(`connector.web.app`, `connector.cli`). Messages never hold a whole secret or email (`mask`)."""

from __future__ import annotations

import re

# An email address as a vendor's answer or a URL may echo it: a plain or quoted local part
# (`"alice smith"@example.com`), and the `@` as it is, percent-encoded (`%40`, in a URL) or escaped
# in JSON (`\u0040`) or HTML (`&#64;`). Local parts are at most 64 characters (RFC 5321 4.5.3.1.1).
_AT = r"(?:@|%40|\\u0040|&#0*64;|&#x0*40;)"
_LOCAL = r"(?:\\?\"[^\"\r\n]{1,64}?\\?\"|[\w.+'%!#$*^`{|}~-]{1,64})"
_EMAIL = re.compile(_LOCAL + _AT + r"[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
_AT_SIGN = re.compile(_AT, re.IGNORECASE)


class StagesyncError(Exception):
    """Base of every error stagesync raises on purpose."""


class ConfigError(StagesyncError):
    """The configuration is invalid; `problems` lists every problem found, not just the first."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems))


class UserError(StagesyncError):
    """A mistake on the command line or in an input file: one clear line, exit 1."""


class UnknownShopError(UserError):
    def __init__(self, shop_id: str, known: list[str] | tuple[str, ...] = ()):
        self.shop_id = shop_id
        listed = ", ".join(known) if known else "none configured"
        super().__init__(f"unknown shop {shop_id!r} (configured: {listed})")


class SignatureError(StagesyncError):
    """A webhook's signature is missing or does not match its raw body (HTTP 401)."""


class PayloadError(StagesyncError):
    """A correctly signed webhook whose body cannot be understood (HTTP 400)."""


class StorageUnavailableError(StagesyncError):
    """The database does not answer (HTTP 503, so that the platform retries)."""


class DestinationError(StagesyncError):
    """A destination (email tool) refused or failed a request."""

    def __init__(self, message: str, *, status: int | None = None, destination: str = ""):
        self.status = status
        self.destination = destination
        super().__init__(message)


class RetriableDestinationError(DestinationError):
    """429, 5xx, timeout, connection error: try again later, after `retry_after` seconds if known."""

    def __init__(self, message: str, *, status: int | None = None, destination: str = "",
                 retry_after: float | None = None):
        self.retry_after = retry_after
        super().__init__(message, status=status, destination=destination)


class FatalDestinationError(DestinationError):
    """Any other refusal: retrying will not help; the item becomes a dead letter."""


class OutcomeUnknownError(FatalDestinationError):
    """A request that is not safe to repeat (an event that may fire an automation) failed after it may
    have reached the vendor: a timeout waiting for the answer, a 5xx, a dropped connection. It is
    recorded (a dead letter), never resent automatically."""


class PlatformApiError(StagesyncError):
    """A shop platform's API (backfill, polling) failed for good, e.g. bad credentials."""


class RetriablePlatformError(PlatformApiError):
    """429, 5xx, a throttled GraphQL query, a timeout: worth another try, after `retry_after`
    seconds when the platform said how long. Raised as it is once the retries are spent."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class PlatformAuthError(PlatformApiError):
    """The platform refused the shop's API credentials (401/403, a failed login)."""


def mask(value: str | None, keep: int = 2) -> str:
    """A secret or an email, recognisable but never whole: `ab***@ex***.com`, `sk***`."""
    if not value:
        return ""
    if "@" in value:
        local, _, domain = value.partition("@")
        host, dot, tld = domain.rpartition(".")
        return f"{local[:keep]}***@{(host or tld)[:keep]}***{dot}{tld if host else ''}"
    return f"{value[:keep]}***" if len(value) > 2 * keep + 2 else "***"


QUOTE_LIMIT = 80  # characters of a platform's own words (topic, scope, type) quoted in an error or a log


def quoted(text: str, limit: int = QUOTE_LIMIT) -> str:
    """Words taken from a payload (a topic, a scope, an event type), as an error or a log line
    quotes them: on one line (control characters escaped) and at most `limit` characters, so that a
    signed but absurd payload cannot fill an answer or the log."""
    shown = text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= limit else f"{shown[:limit]}... ({len(text):,} characters)"


def scrub(text: str) -> str:
    """A message from elsewhere (a vendor's answer, say) with every email address in it masked,
    however it is written (`_EMAIL`)."""
    return _EMAIL.sub(lambda m: mask(_AT_SIGN.sub("@", m.group(0), count=1)), text)
