"""What every shop platform's API client shares: one classified HTTP call, one retry policy, the
base class, and the lookup of a shop's client (backfill and polling; webhooks are elsewhere). The
port a client implements (`OrderSource`) and the `Page` it yields are in `connector.domain.ports`; the
clients are registered by name in `adapters/registry.py`.

- `PlatformHttp.once()` makes one call with our timeouts and classifies the answer, as meltano's
  sdk does (`singer_sdk/exceptions.py`): 429, 5xx, timeouts and dropped connections are
  `RetriablePlatformError` (carrying the platform's `Retry-After`); 401 and 403 are
  `PlatformAuthError`, one line naming the shop and the platform; any other 4xx is a
  `PlatformApiError`. Messages carry the platform's own words with secrets and emails masked.
- `PlatformHttp.retrying(fn)` retries exactly the retriable errors (tenacity, jittered exponential
  backoff, never sooner than the platform asked). The sleep is injected: tests never wait.
- `ApiClient` holds what the clients have in common (settings, base URL, the HTTP helper);
  `api_client(shop)` picks the shop's client, imported on first use (the Shopify SDK is heavy).

A client translates and nothing else: platform pages in, canonical `Order`s out. Storage,
checkpoints and stage evaluation live in `connector.services.backfill`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import datetime, timezone
from typing import Any, Callable, ClassVar, Iterable, Mapping, TypeVar
from urllib.parse import urlsplit

import requests
import tenacity

from adapters.http import (
    AtLeastRetryAfter, JitteredBackoff, RetryAfterExceeds, connection_failure, make_session, retry_after_seconds,
    vendor_message,
)
from adapters.registry import PLATFORM_APIS
from connector.config import ShopSettings
from connector.errors import (
    ConfigError, PayloadError, PlatformApiError, PlatformAuthError, RetriablePlatformError, UserError, mask, scrub,
)
from connector.domain.inbound import UpsertOrder
from connector.domain.orders import Order
from connector.domain.ports import OrderSource, Page  # the port a client implements and the pages it yields

log = logging.getLogger("stagesync.platforms")

TIMEOUT = (5, 60)  # seconds: to connect, then between bytes of the answer (bulk files are large)
ATTEMPTS = 6  # tries of one call before giving up (the pipeline keeps its checkpoint: run it again)
MAX_WAIT = 600.0  # seconds: the longest pause a platform may ask for before we give up instead
MAX_MESSAGE = 300

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def pause(seconds: float) -> None:
    """The default sleep (looked up when called, so that a test can replace `time.sleep`)."""
    time.sleep(seconds)


def iso_z(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, seconds precision: the form every platform's filters accept."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --- one HTTP call, classified ------------------------------------------------------------------

class PlatformHttp:
    """The HTTP side of one shop's API client: our timeouts, classification, retries."""

    def __init__(self, shop: ShopSettings, platform: str, *, secrets: Iterable[str] = (),
                 session: requests.Session | None = None, sleep: Callable[[float], None] = pause,
                 attempts: int = ATTEMPTS, max_wait: float = MAX_WAIT, auth_hint: str = "",
                 vendor_retry_after: Callable[[requests.Response], float | None] | None = None,
                 timeout: tuple[float, float] = TIMEOUT):
        self.shop = shop
        self.platform = platform
        self.secrets = tuple(s for s in secrets if s)
        self.session = session if session is not None else make_session()
        self.sleep = sleep
        self.attempts = attempts
        self.max_wait = max_wait
        self.auth_hint = auth_hint
        self.vendor_retry_after = vendor_retry_after
        self.timeout = timeout

    @property
    def where(self) -> str:
        return f"shop {self.shop.id} ({self.platform})"

    def hide(self, text: str) -> str:
        for secret in self.secrets:
            if len(secret) >= 4:
                text = text.replace(secret, mask(secret))
        return scrub(" ".join(text.split()))[:MAX_MESSAGE * 2]

    def once(self, method: str, url: str, *, ok: Iterable[int] = (200,), **kwargs) -> requests.Response:
        """One call; returns the response when its status is in `ok`, else raises the classified error."""
        parts = urlsplit(url)
        path, host = parts.path or "/", parts.netloc.rpartition("@")[2]  # never the query string nor a userinfo
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.exceptions.ConnectTimeout:
            raise RetriablePlatformError(f"{self.where}: cannot reach {host}: no answer within "
                                         f"{self.timeout[0]:g} s to connect") from None
        except requests.Timeout:
            raise RetriablePlatformError(f"{self.where}: {method} {host}{path}: no answer within "
                                         f"{self.timeout[1]:g} s to read") from None
        except requests.exceptions.ChunkedEncodingError as exc:
            raise RetriablePlatformError(f"{self.where}: {method} {host}{path}: the answer was cut short "
                                         f"({type(exc).__name__})") from None
        except requests.ConnectionError as exc:
            reason, unresolved = connection_failure(exc)
            message = self.hide(f"{self.where}: cannot reach {host}: {reason}")
            if unresolved:  # no network or a wrong domain: retrying for a minute mends neither
                raise PlatformApiError(message + " (no network, or a wrong domain?)") from None
            raise RetriablePlatformError(message) from None
        except requests.RequestException as exc:
            raise PlatformApiError(self.hide(f"{self.where}: {method} {path}: {type(exc).__name__}: {exc}")) from None
        if response.status_code in tuple(ok):
            return response
        raise self.error_for(response, method, path)

    def error_for(self, response: requests.Response, method: str = "", path: str = "") -> PlatformApiError:
        status = response.status_code
        said = vendor_message(response)[:MAX_MESSAGE]
        where = f"{method} {path}".strip()
        if status in (401, 403):
            hint = f"; {self.auth_hint}" if self.auth_hint else ""
            return PlatformAuthError(self.hide(
                f"{self.where}: the {self.platform} API refused the credentials (HTTP {status}"
                f"{': ' + said if said else ''}){hint}"))
        message = self.hide(f"{self.where}: {where} -> {status} {response.reason or ''}".rstrip()
                            + (f": {said}" if said else ""))
        if status == 429 or status >= 500:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            if wait is None and self.vendor_retry_after is not None:
                wait = self.vendor_retry_after(response)
            return RetriablePlatformError(message, status=status, retry_after=wait)
        return PlatformApiError(message)

    def retrying(self, fn: Callable[[], T], *, attempts: int | None = None) -> T:
        """Call `fn`, retrying RetriablePlatformError only; the last error is raised as it is."""
        def note(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning("%s: retrying in %.1f s after: %s", self.where, state.upcoming_sleep, error)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RetriablePlatformError),
            stop=tenacity.stop_after_attempt(attempts or self.attempts) | RetryAfterExceeds(self.max_wait),
            wait=AtLeastRetryAfter(JitteredBackoff(1.0, 60.0)),
            sleep=self.sleep,
            before_sleep=note,
            reraise=True,
        )
        return retrying(fn)

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        """`once()` with retries."""
        return self.retrying(lambda: self.once(method, url, **kwargs))


def json_body(response: requests.Response, where: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise PlatformApiError(f"{where}: the API answered {response.status_code} with a body that is not JSON") from None


# --- what goes into an API path -----------------------------------------------------------------

_WHOLE_NUMBER = re.compile(r"[0-9]{1,20}")
_HANDLE = re.compile(r"[A-Za-z0-9_-]{1,100}")


def path_id(value: Any, what: str) -> str:
    """An id put into an API path (an order id, a shop id): a whole number, or PlatformApiError.
    Taken as it came, `../` or `?` in it would reach another endpoint of the store's API with our
    credentials."""
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not _WHOLE_NUMBER.fullmatch(text):
        raise PlatformApiError(f"{what} {scrub(str(value))[:40]!r} is not a whole number: not put in an API path")
    return text


def path_handle(value: Any, what: str) -> str:
    """A configured name put into an API path (a store hash): letters, digits, '-' and '_' only."""
    text = str(value).strip()
    if not _HANDLE.fullmatch(text):
        raise PlatformApiError(f"{what} must be letters and digits only, not put in an API path as it is")
    return text


# --- the common part of the clients ---------------------------------------------------------------

class ApiClient:
    """Settings, base URL and the HTTP helper: what every platform's client has in common."""

    platform: ClassVar[str]
    versioned: ClassVar[bool] = True
    base_url_default: ClassVar[str] = ""
    required: ClassVar[tuple[str, ...]] = ()
    optional: ClassVar[tuple[str, ...]] = ("base_url",)
    secret_keys: ClassVar[tuple[str, ...]] = ()
    auth_hint: ClassVar[str] = ""

    def __init__(self, shop: ShopSettings, *, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = pause, clock: Callable[[], datetime] = utcnow,
                 attempts: int = ATTEMPTS):
        problems = self.problems(shop.api)
        if problems:
            raise ConfigError([f"shops[{shop.id}].api.{p}" for p in problems])
        self.shop = shop
        self.api: Mapping[str, Any] = shop.api
        self.base_url = str(self.api.get("base_url") or self.base_url_default).rstrip("/")
        self.sleep = sleep
        self.clock = clock
        self.http = PlatformHttp(shop, self.platform, secrets=[str(self.api.get(k) or "") for k in self.secret_keys],
                                 session=session, sleep=sleep, attempts=attempts, auth_hint=self.auth_hint,
                                 vendor_retry_after=self.vendor_retry_after)

    @classmethod
    def problems(cls, api: Mapping[str, Any]) -> list[str]:
        """What keeps this `api` table from working (key: problem), never a secret's value."""
        found = [f"{key}: is required" for key in cls.required
                 if not isinstance(api.get(key), (str, int)) or not str(api.get(key)).strip()]
        found += [f"{key}: unknown key for {cls.platform} (keys: {', '.join(cls.required + cls.optional)})"
                  for key in sorted(set(api) - set(cls.required) - set(cls.optional))]
        base_url = api.get("base_url")
        if base_url is not None and not (isinstance(base_url, str) and base_url.startswith(("http://", "https://"))):
            found.append("base_url: must be an http:// or https:// URL")
        return found

    @property
    def where(self) -> str:
        return self.http.where

    def vendor_retry_after(self, response: requests.Response) -> float | None:
        """The platform's own "wait this long" on a 429/5xx, besides Retry-After."""
        return None

    def skip(self, record: Any, reason: str) -> None:
        ident = record.get("id") if isinstance(record, dict) else None
        log.warning("%s: order %s not stored: %s", self.where, ident if ident is not None else "?", reason)


def through_webhook_adapter(adapter, headers: Mapping[str, str], payload: Any, shop: ShopSettings) -> Order | None:
    """An API record mapped by the platform's webhook adapter (`adapter.parse`), so that webhooks
    and backfill map orders identically; None when the adapter ignores it (a test order, a draft).
    PayloadError when the record cannot be understood."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    inbound = adapter.parse({"Content-Type": "application/json", **headers}, body, shop)
    orders = [action.order for action in inbound.actions if isinstance(action, UpsertOrder)]
    return orders[0] if orders else None


def map_records(client: ApiClient, records: Iterable[Any], mapper: Callable[[Any], Order | None]) -> tuple[tuple[Order, ...], int]:
    """(orders, skipped): every record through `mapper`, unreadable ones logged and skipped."""
    orders: list[Order] = []
    skipped = 0
    for record in records:
        try:
            order = mapper(record)
        except (PayloadError, ValueError, TypeError, KeyError) as exc:
            client.skip(record, str(exc) if isinstance(exc, PayloadError) else f"unreadable record ({type(exc).__name__})")
            order = None
        if order is None:
            skipped += 1
        else:
            orders.append(order)
    return tuple(orders), skipped


# --- the registry -------------------------------------------------------------------------------

CLIENTS = PLATFORM_APIS  # platform -> its client class, imported on first use (adapters/registry.py)


def client_class(platform: str) -> type[ApiClient]:
    if platform not in CLIENTS:
        raise UserError(f"platform {platform!r} has no API client for backfill and polling "
                        f"(API clients: {', '.join(sorted(CLIENTS))})")
    return CLIENTS[platform]


def api_client(shop: ShopSettings, **kw) -> OrderSource:
    """The API client of `shop`'s platform, built from its `api` table."""
    cls = client_class(shop.platform)
    if not shop.api:
        raise UserError(f"shop {shop.id} ({shop.platform}) has no `api` table in the configuration: "
                        "nothing to read orders with (see docs/platform-apis.md)")
    return cls(shop, **kw)


def api_problems(shop: ShopSettings) -> list[str]:
    """What keeps `shop`'s `api` table from working (for `stagesync check-config`); never a secret."""
    if not shop.api:
        return []
    if shop.platform not in CLIENTS:
        return [f"shops[{shop.id}].api: platform {shop.platform} has no API client "
                f"(API clients: {', '.join(sorted(CLIENTS))})"]
    return [f"shops[{shop.id}].api.{p}" for p in client_class(shop.platform).problems(shop.api)]
