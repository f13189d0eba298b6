"""What every HTTP destination shares: one session factory, one response classifier, one retry helper.

The habit is meltano sdk's (`singer_sdk/exceptions.py`, `streams/rest.py`): a single function decides
whether a vendor answer is worth retrying (429, 5xx, timeouts, dropped connections) or not (any
other 4xx), and retries wrap exactly that. Messages carry the vendor's status and error text, with
every email and the account's secrets masked, so they can go to logs and dead letters as they are.

`HttpDestination` holds what the vendor adapters have in common (settings, session, `call()`); each
adapter in `adapters/destinations/` adds only its vendor's shapes.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Mapping, Sequence, TypeVar
from urllib.parse import urlsplit

import requests
import tenacity
import urllib3.exceptions
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from connector.errors import FatalDestinationError, OutcomeUnknownError, RetriableDestinationError, mask, scrub
from connector.domain.ports import Destination, ItemFailure, PropertyValue

if TYPE_CHECKING:
    from adapters.destinations.settings import HttpSettings

TIMEOUT = (5, 15)  # seconds: to connect, then between bytes of the answer
MAX_MESSAGE = 300  # characters of a vendor's error text kept in a message

T = TypeVar("T")


def user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"stagesync/{version('stagesync')}"
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "stagesync/0"


# What a request keeps when a redirect sends it to another host: nothing that could be a credential.
# requests itself drops only `Authorization` there (`Session.rebuild_auth`,
# https://requests.readthedocs.io/en/latest/api/#requests.Session.rebuild_auth); the vendors' own
# key headers (`api-key`, `X-API-KEY`, `X-Auth-Token`, ...) would go along to the new host.
REDIRECT_SAFE_HEADERS = frozenset({"user-agent", "accept", "accept-encoding", "content-type", "content-length",
                                   "connection", "transfer-encoding"})


class CredentialSafeSession(requests.Session):
    """A session that follows a redirect to another host (or scheme or port) without any header
    but REDIRECT_SAFE_HEADERS: the account's key never reaches a host it was not meant for."""

    def rebuild_auth(self, prepared_request, response):
        if self.should_strip_auth(response.request.url, prepared_request.url):
            for name in [n for n in prepared_request.headers if n.lower() not in REDIRECT_SAFE_HEADERS]:
                del prepared_request.headers[name]
            return  # no .netrc credentials for the new host either
        super().rebuild_auth(prepared_request, response)


def make_session() -> requests.Session:
    """A session for one destination or platform account (keep-alive, our User-Agent, redirects to
    another host without credentials). Timeouts go on each call."""
    s = CredentialSafeSession()
    s.headers["User-Agent"] = user_agent()
    return s


# --- classification -----------------------------------------------------------------------------

def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A `Retry-After` value (RFC 9110 10.2.3: delay-seconds or an HTTP-date) in seconds from now."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - (now or datetime.now(timezone.utc))).total_seconds())


def hide(text: str, secrets: Iterable[str]) -> str:
    """`text` with each secret masked and every email address masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, mask(secret))
    return scrub(text)


def vendor_message(response: requests.Response) -> str:
    """The vendor's own words about a failure, from the usual JSON error shapes or the raw text."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:MAX_MESSAGE]
    parts: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("title", "detail", "message", "error", "field", "code", "error_code"):
                value = node.get(key)
                if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) not in parts:
                    parts.append(str(value))
            for key in ("errors", "error"):
                if isinstance(node.get(key), (list, dict)):
                    collect(node[key])
        elif isinstance(node, list):
            for item in node[:5]:
                collect(item)

    collect(body)
    return ("; ".join(parts) or " ".join(response.text.split()))[:MAX_MESSAGE]


def _where(method: str, url: str) -> str:
    return f"{method} {urlsplit(url).path or '/'}"  # never the query string: tokens live there


def classify(response: requests.Response, destination: str, *, retry_after: float | None = None,
             secrets: Iterable[str] = (), now: datetime | None = None) -> None:
    """Return quietly on 1xx-3xx; raise RetriableDestinationError on 429 and 5xx (waiting `Retry-After`,
    else the vendor's own `retry_after` field), FatalDestinationError on any other 4xx."""
    status = response.status_code
    if status < 400:
        return
    request = response.request
    where = _where(request.method or "?", request.url or "") if request is not None else "request"
    summary = f"{destination}: {where} -> {status} {response.reason or ''}".rstrip()
    message = hide(f"{summary}: {vendor_message(response)}", secrets)
    if status == 429 or status >= 500:
        header = retry_after_seconds(response.headers.get("Retry-After"), now)
        raise RetriableDestinationError(message, status=status, destination=destination,
                                        retry_after=header if header is not None else retry_after)
    raise FatalDestinationError(message, status=status, destination=destination)


def never_sent(exc: requests.RequestException) -> bool:
    """Whether a failed request surely never reached the vendor: the connection itself could not be
    made (refused, unresolvable, no answer to connect). A read timeout, a reset or a truncated answer
    may come after the vendor has acted on the request."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError) or isinstance(exc, requests.exceptions.ReadTimeout):
        return False
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return isinstance(reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError))


def connection_failure(exc: requests.RequestException) -> tuple[str, bool]:
    """Why a connection could not be made, in a few words (`[Errno -2] Name or service not known`,
    `[Errno 111] Connection refused`), and whether the host's name did not resolve: no network, or
    a wrong domain, which no retry within the minute will mend."""
    reason = exc.args[0] if exc.args else exc
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    unresolved = isinstance(reason, urllib3.exceptions.NameResolutionError)
    text = str(reason)
    for marker in ("Failed to resolve ", "Failed to establish a new connection: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    if isinstance(reason, urllib3.exceptions.ConnectTimeoutError) \
            and not isinstance(reason, urllib3.exceptions.NewConnectionError):  # its subclass, in urllib3 2
        text = "no answer to connect"
    text = text.strip().strip("()") or type(reason).__name__
    return text[:MAX_MESSAGE], unresolved


def send(http: requests.Session, method: str, url: str, *, destination: str, secrets: Iterable[str] = (),
         retry_after: Callable[[requests.Response], float | None] | None = None, accept: Iterable[int] = (),
         timeout: tuple[float, float] = TIMEOUT, once: bool = False, **kwargs) -> requests.Response:
    """One vendor call with our timeouts, classified: it returns a successful answer, or one whose
    status the caller `accept`s to read itself; anything else is raised. `retry_after` reads the
    vendor's own "wait this long" from a 429/5xx answer that has no Retry-After header.

    `once`: the request is not safe to repeat (an event the vendor does not de-duplicate). Only what
    was surely refused stays retriable (a 429, a connection never made); a failure after the request
    may have been acted on (read timeout, dropped connection, 5xx) is an OutcomeUnknownError."""
    secrets = tuple(secrets)
    try:
        response = http.request(method, url, timeout=timeout, **kwargs)
    except requests.Timeout as exc:
        message = (f"{destination}: {_where(method, url)}: no answer within "
                   f"{timeout[0]:g} s to connect or {timeout[1]:g} s to read")
        if once and not never_sent(exc):
            raise OutcomeUnknownError(message + "; it may have been received", destination=destination) from None
        raise RetriableDestinationError(message, destination=destination) from None
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        message = f"{destination}: {_where(method, url)}: connection failed ({type(exc).__name__})"
        if once and not never_sent(exc):
            raise OutcomeUnknownError(message + "; it may have been received", destination=destination) from None
        raise RetriableDestinationError(message, destination=destination) from None
    except requests.RequestException as exc:  # a request that cannot be made (bad URL, header...)
        message = hide(f"{destination}: {_where(method, url)}: {type(exc).__name__}: {exc}", secrets)
        raise FatalDestinationError(message, destination=destination) from None
    if response.status_code in set(accept):
        return response
    vendor_wait = None
    if response.status_code == 429 or response.status_code >= 500:
        vendor_wait = retry_after(response) if retry_after else None
    try:
        classify(response, destination, retry_after=vendor_wait, secrets=secrets)
    except RetriableDestinationError as exc:
        if once and response.status_code != 429:
            raise OutcomeUnknownError(f"{exc}; it may have been received", status=exc.status,
                                      destination=destination) from None
        raise
    return response


# --- retries ------------------------------------------------------------------------------------

class JitteredBackoff(wait_base):
    """`initial` x 2^(retry - 1) plus up to one second of jitter, capped at `max_wait` (the shape of
    tenacity's wait_exponential_jitter, whose `initial=` keyword tenacity 9 deprecates; ours keeps
    the same waits on every tenacity release pyproject.toml allows)."""

    def __init__(self, initial: float = 1.0, max_wait: float = 60.0, jitter: float = 1.0):
        self.initial = initial
        self.max_wait = max_wait
        self.jitter = jitter

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exponent = max(retry_state.attempt_number - 1, 0)
        try:
            delay = self.initial * 2 ** exponent + random.uniform(0, self.jitter)
        except OverflowError:
            return self.max_wait
        return max(0.0, min(delay, self.max_wait))


class AtLeastRetryAfter(wait_base):
    """Wait as `backoff` says, but never less than the `retry_after` the vendor asked for
    (the error's `retry_after`; used for destinations and platform APIs alike)."""

    def __init__(self, backoff: wait_base):
        self.backoff = backoff

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        return max(self.backoff(retry_state), getattr(error, "retry_after", None) or 0.0)


class RetryAfterExceeds(stop_base):
    """Stop when the vendor asks for a longer pause than we hold a worker for: reschedule instead."""

    def __init__(self, max_wait: float):
        self.max_wait = max_wait

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        return (getattr(error, "retry_after", None) or 0.0) > self.max_wait


def with_retries(fn: Callable[[], T], *, attempts: int = 3, max_wait: float = 30.0, initial: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """Call `fn`, retrying RetriableDestinationError only, with jittered exponential backoff capped at
    `max_wait` and never sooner than the error's `retry_after`. The last error is raised as it is; so
    is one whose `retry_after` exceeds `max_wait` (the caller reschedules rather than block)."""
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(RetriableDestinationError),
        stop=tenacity.stop_after_attempt(attempts) | RetryAfterExceeds(max_wait),
        wait=AtLeastRetryAfter(JitteredBackoff(initial, max_wait)),
        sleep=sleep,
        reraise=True,
    )
    return retrying(fn)


# --- the common part of the vendor adapters ------------------------------------------------------

def iso_utc(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, the form every vendor accepts."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def one_by_one(items: Sequence[T], send_one: Callable[[T], object]) -> list[ItemFailure]:
    """Send items one request each. A refusal (fatal) concerns its item only; a transient failure
    stops the run: on the first item the whole call failed (raised), later it fails the rest.
    A single item's failure is the whole call's, and raised."""
    if len(items) == 1:
        send_one(items[0])
        return []
    failures: list[ItemFailure] = []
    for index, item in enumerate(items):
        try:
            send_one(item)
        except FatalDestinationError as exc:
            failures.append(ItemFailure(index, exc))
        except RetriableDestinationError as exc:
            if index == 0:
                raise
            failures.extend(ItemFailure(i, exc) for i in range(index, len(items)))
            break
    return failures


# How each field of docs/rules.md, 'Fields a destination can write', is typed in a tool that types its properties.
FIELD_KINDS = {"rfm": "text", "phases": "text", "orders_365d": "number", "orders_total": "number",
               "aov_365d": "number", "total_spent": "number", "first_order_date": "date",
               "last_order_date": "date", "rfm_since": "date", "p_alive": "number", "churn_risk": "number",
               "churn_band": "text", "expected_orders_90d": "number", "expected_orders_365d": "number",
               "predicted_clv_365d": "number", "next_order_date": "date"}


class HttpDestination(Destination):
    """Settings, one session and `call()`: what every vendor adapter has in common."""

    base_url_default: ClassVar[str] = ""
    has_events: ClassVar[bool] = False  # whether the vendor takes events at all

    def __init__(self, settings: HttpSettings, session: requests.Session | None = None, *,
                 shop: str | None = None):
        self.name = settings.name
        self.shop = shop  # the shop this account belongs to (sent by the webhook destination)
        # property name in the tool -> field (docs/rules.md, 'Fields a destination can write')
        self.properties = dict(settings.properties)
        self.api_key = str(getattr(settings, "api_key", "") or "")  # ApiKeySettings; masked in messages
        self.base_url = (settings.base_url or self.base_url_default).rstrip("/")
        self.rate_per_minute = settings.rate_per_minute or self.default_rate_per_minute
        self.supports_events = bool(settings.events and self.has_events)
        self.session = session if session is not None else make_session()
        # optional: seconds to wait for an answer
        self.timeout = (TIMEOUT[0], settings.timeout) if settings.timeout else TIMEOUT

    # --- helpers for the subclasses ---

    def headers(self) -> dict[str, str]:
        """The vendor's authentication and content headers."""
        return {}

    def vendor_retry_after(self, response: requests.Response) -> float | None:
        """The vendor's own "wait this long" on a 429/5xx, when it has one besides Retry-After."""
        return None

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        return send(self.session, method, self.base_url + path, destination=self.name, secrets=(self.api_key,),
                    retry_after=self.vendor_retry_after, headers=headers, timeout=self.timeout, **kwargs)

    def kind(self, prop: str) -> str:
        return FIELD_KINDS.get(self.properties.get(prop, ""), "text")

    def typed(self, prop: str, value: PropertyValue) -> Any:
        """A value as JSON for a typed tool: counts and amounts as numbers, the rest as written."""
        if value is None or self.kind(prop) != "number" or isinstance(value, int):
            return value
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return value
        return float(number) if "." in str(value) else int(number)

    def typed_properties(self, properties: Mapping[str, PropertyValue]) -> dict[str, Any]:
        return {name: self.typed(name, value) for name, value in properties.items()}
