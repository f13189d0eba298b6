"""AWS Lambda entry points (deploy/serverless.yml): the Flask app behind API Gateway, and the
scheduled jobs `sync` (every minute), `recompute` (daily) and `poll` (every 15 minutes), and
`backfill`, invoked by hand.

Importing this module reads, opens and imports nothing heavy (STYLE habit 4). The first
invocation in a container loads the settings (the packaged `$STAGESYNC_CONFIG`, secrets and
`$STAGESYNC_DATABASE_URL` from the environment), opens the store (upgrading its schema when
needed) and, for HTTP, builds the app; the container's later ("warm") invocations reuse them.
On Lambda, logs go to stderr (CloudWatch) in stagesync's format; elsewhere logging is left as
the host set it.

HTTP events of API Gateway's HTTP API (payload 2.0) and REST API (payload 1.0) go through
`serverless_wsgi.handle_request`, which gives the app the body as the platform signed it:
base64-decoded when the event says `isBase64Encoded`, otherwise its text encoded as UTF-8.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Mapping

from connector.errors import ConfigError, StagesyncError, StorageUnavailableError, UserError

if TYPE_CHECKING:
    from flask import Flask

    from connector.config import DestinationSettings, Settings, ShopSettings
    from connector.domain.ports import Destination
    from connector.storage.store import Store

log = logging.getLogger("stagesync.lambda")

# Stop claiming outbox batches when less than this remains of the invocation: one batch, with
# its in-call retries (connector.services.sync: 3 attempts, waits capped at 30 s), must fit. What is
# left is drained by the next run, a minute later.
SYNC_STOP_MARGIN_MS = 60_000


class JobFailed(StagesyncError):
    """A scheduled job failed for some shops (the others were done); Lambda counts an error."""


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Runtime:
    """What one Lambda container keeps between invocations."""

    settings: Settings
    store: Store
    clock: Callable[[], datetime] = _utc_now
    # None: connector.services.sync's default (the destination registry).
    destination_factory: Callable[[DestinationSettings], Destination] | None = None
    # None: connector.services.backfill's poll, imported when first needed.
    poller: Callable[[Store, ShopSettings, datetime], Any] | None = None
    # None: connector.services.webhook_status's watch, run after each shop's poll.
    watcher: Callable[[Store, ShopSettings, datetime], Any] | None = None
    _app: Flask | None = field(default=None, repr=False)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None, **options) -> "Runtime":
        """Load `$STAGESYNC_CONFIG` (default ./stagesync.toml, i.e. /var/task on Lambda) with the
        environment's secrets, and open the database it names, migrating it if needed."""
        from connector import config
        from connector.storage.store import Store

        env = os.environ if env is None else env
        settings = config.load(env.get("STAGESYNC_CONFIG") or None, env=env)
        if env.get("AWS_LAMBDA_FUNCTION_NAME") and settings.database_url.startswith("sqlite"):
            raise ConfigError(["database_url: on AWS Lambda every container has its own throwaway disk; "
                               "set STAGESYNC_DATABASE_URL to a PostgreSQL database"])
        from sqlalchemy.exc import DBAPIError

        from connector.storage.engine import reason

        try:
            store = Store.open(settings.database_url)
        except DBAPIError as exc:  # connecting or migrating: nothing is cached, the next invocation tries again
            raise StorageUnavailableError(f"database unavailable: {reason(exc)}") from exc
        return cls(settings, store, **options)

    @property
    def app(self) -> Flask:
        """The HTTP function's Flask app. It opens a store of its own on first use, as each worker of
        `stagesync serve` does, with the web's statement, lock and pool timeouts (a hung database is a
        503 within about a second: docs/configuration.md, 'Database timeouts'); `self.store`, with no
        statement timeout, serves the scheduled jobs, whose bulk statements may run long."""
        if self._app is None:
            from connector.web.app import create_app

            self._app = create_app(self.settings, clock=self.clock)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            from connector.web.context import EXTENSION

            web_store = self._app.extensions[EXTENSION]["store"]
            if web_store is not None:
                web_store.close()
        self.store.close()


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def current() -> Runtime:
    """The container's runtime, created on first use."""
    global _runtime
    if _runtime is None:
        with _runtime_lock:
            if _runtime is None:
                if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):  # on Lambda: stagesync's log format to CloudWatch
                    from connector.logs import configure

                    configure()
                _runtime = Runtime.from_environment()
    return _runtime


def use(runtime: Runtime | None) -> Runtime | None:
    """Install `runtime` (None: load from the environment on next use); return the previous one.
    For tests, and for embedding the handlers with other settings."""
    global _runtime
    with _runtime_lock:
        previous, _runtime = _runtime, runtime
    return previous


# --- HTTP --------------------------------------------------------------------------------------

def http_handler(event: dict, context: Any) -> dict:
    """API Gateway (HTTP API or REST API, Lambda proxy integration) -> the Flask app. A database
    that does not answer on a cold start is a 503, as in the app (docs/architecture.md, 'The path of
    one webhook'): the platform retries."""
    import serverless_wsgi

    try:
        app = current().app
    except StorageUnavailableError as exc:
        log.error("cold start: %s", exc)
        return {"statusCode": 503, "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"error": "storage unavailable, retry later"}), "isBase64Encoded": False}
    return serverless_wsgi.handle_request(app, event, context)


# --- scheduled jobs ----------------------------------------------------------------------------

def sync_handler(event: dict, context: Any) -> dict:
    """Drain the outbox into the email tools, until nothing is due or the time is nearly up."""
    from connector.services.sync import SyncStats, SyncWorker

    runtime = current()
    options = {"destination_factory": runtime.destination_factory} if runtime.destination_factory else {}
    worker = SyncWorker(runtime.store, runtime.settings, clock=runtime.clock, worker_id=_worker_id(context),
                        shops=_shops_option(event, runtime), **options)
    total = SyncStats()
    while True:
        stats = worker.run_once()
        total.add(stats)
        if not stats.claimed:
            break
        if _remaining_ms(context) < SYNC_STOP_MARGIN_MS:
            log.info("sync stopping before the invocation's deadline; the next run goes on")
            break
    result = {**asdict(total), "drained": not stats.claimed}
    log.info("sync %s", " ".join(f"{k}={v}" for k, v in result.items()))
    return result


def recompute_handler(event: dict, context: Any) -> dict:
    """Re-evaluate every customer (of `event["shop"]`, else of every shop) now; store and queue
    what changed. An `at` is refused: a replayed date is never stored as the live stages."""
    from connector.services.evaluation import recompute

    runtime = current()
    if _option(event, "at") is not None:
        raise UserError("recompute has no `at`: it evaluates now (replay a date with `stages --at`)")
    now = runtime.clock()
    results = {}
    for shop in _selected_shops(event, runtime):
        result = recompute(runtime.store, shop, now)
        log.info("recompute shop=%s customers=%d changed=%d stage_changes=%d queued=%d", shop.id,
                 result.customers, result.written, result.stage_changes, result.queued)
        results[shop.id] = asdict(result)
    return {"at": now.isoformat(), "shops": results}


def poll_handler(event: dict, context: Any) -> dict:
    """Fetch the orders changed since the last poll from each shop's platform API (the shops
    with an `api` table; `event["shop"]` for one), then check each polled shop's webhooks (an
    ERROR line per problem, for a CloudWatch metric filter). A shop that fails does not stop the others."""
    runtime = current()
    poll = runtime.poller or platform_poll()
    results: dict[str, Any] = {}
    failed: list[str] = []
    for shop in _selected_shops(event, runtime):
        if not shop.api:
            continue
        try:
            outcome = poll(runtime.store, shop, runtime.clock())
        except StorageUnavailableError:
            raise
        except StagesyncError as exc:
            log.error("poll shop=%s failed: %s", shop.id, exc)
            failed.append(shop.id)
            continue
        results[shop.id] = _plain(outcome)
        log.info("poll shop=%s %s", shop.id, results[shop.id])
        (runtime.watcher or webhook_watch())(runtime.store, shop, runtime.clock())
    if failed:
        raise JobFailed(f"poll failed for shop(s) {', '.join(failed)}; the others were polled")
    return {"shops": results}


def webhook_watch() -> Callable[[Store, ShopSettings, datetime], Any]:
    """After a shop's poll: an ERROR log line per webhook problem, with `auto_repair` an install."""
    from connector.services.webhook_status import watch

    return watch


def platform_poll() -> Callable[[Store, ShopSettings, datetime], Any]:
    """`stagesync poll` for one shop."""
    from connector.services.backfill import poll

    return poll


def backfill_handler(event: dict, context: Any) -> dict:
    """Read a shop's order history from its platform API (`stagesync backfill`), then recompute.
    Invoked by hand: `{"shop": "acme", "since": "2024-01-01"}`. An interrupted backfill (the
    15-minute limit) resumes where it stopped when invoked again with the same `since`."""
    from connector.services.backfill import backfill

    runtime = current()
    shop_id = _option(event, "shop")
    if shop_id is None:
        raise UserError('backfill needs the shop: invoke with {"shop": "<id>"}')
    shop = runtime.settings.shop(shop_id)
    if not shop.api:
        raise UserError(f"shop {shop.id} has no `api` table in the configuration: nothing to read")
    result = backfill(runtime.store, shop, runtime.clock(), since=_instant_option(event, "since"))
    log.info("backfill shop=%s fetched=%d stored=%d resumed=%s", shop.id, result.fetched, result.stored,
             result.resumed)
    return {"shop": shop.id, **_plain(result)}


# --- event options -----------------------------------------------------------------------------

def _option(event: Any, name: str) -> str | None:
    """An option of a manual invocation (`serverless invoke -f recompute -d '{"shop": "acme"}'`);
    a scheduled event (EventBridge) carries none."""
    value = event.get(name) if isinstance(event, dict) else None
    return str(value) if value not in (None, "") else None


def _selected_shops(event: Any, runtime: Runtime) -> list[ShopSettings]:
    shop_id = _option(event, "shop")
    return [runtime.settings.shop(shop_id)] if shop_id else list(runtime.settings.shops.values())


def _shops_option(event: Any, runtime: Runtime) -> set[str] | None:
    shop_id = _option(event, "shop")
    return {runtime.settings.shop(shop_id).id} if shop_id else None


def _instant_option(event: Any, name: str) -> datetime | None:
    from connector.services.csv_import import instant_option

    return instant_option(_option(event, name), f"{name}:")


def _remaining_ms(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() if callable(remaining) else float("inf")


def _worker_id(context: Any) -> str:
    """Unique per container: its log stream names the execution environment."""
    return f"lambda:{getattr(context, 'log_stream_name', None) or uuid.uuid4().hex}"


def _plain(value: Any) -> Any:
    """A poll outcome as JSON data (Lambda serialises what a handler returns)."""
    return json.loads(json.dumps(asdict(value) if is_dataclass(value) else value, default=str))
