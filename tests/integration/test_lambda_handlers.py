"""The AWS Lambda handlers on both engines: API Gateway events (HTTP API payload 2.0 and REST API
payload 1.0, plain and base64 bodies) through the HTTP handler, and the scheduled jobs."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.platforms import shopify
from connector import config
from connector.web import lambda_handlers as handlers
from connector.web.app import create_app
from connector.errors import ConfigError, PlatformApiError, UnknownShopError, UserError
from connector.storage.schema import customers, deliveries, orders, outbox, stage_changes, synced
from connector.storage.store import Store
from tests.conftest import NOW, fresh_database_url

ROOT = Path(__file__).resolve().parents[2]
SECRET = "shpss_lambda_test_secret_0123456789"
PLACED = NOW - timedelta(days=3)
API_HOST = "abc123def4.execute-api.eu-west-3.amazonaws.com"

LAMBDA_TOML = """
admin_token = "test-admin-token"

[[shops]]
id = "acme"
platform = "shopify"
webhook_secret = "${ACME_WEBHOOK_SECRET}"
currency = "EUR"
api = { shop_domain = "acme.myshopify.com", access_token = "${ACME_SHOPIFY_TOKEN}" }

  [[shops.destinations]]
  type = "log"
  name = "log-a"

  [[shops.destinations]]
  type = "log"
  name = "log-b"

[[shops]]
id = "walk-in"
platform = "standard"
webhook_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"""
ENV = {"ACME_WEBHOOK_SECRET": SECRET, "ACME_SHOPIFY_TOKEN": "shpat_lambda_test"}

SCHEDULED_EVENT = {  # what EventBridge sends a scheduled function
    "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
    "source": "aws.events", "account": "123456789012", "time": "2026-06-01T12:00:00Z", "region": "eu-west-3",
    "resources": ["arn:aws:events:eu-west-3:123456789012:rule/stagesync-dev-SyncEventsRuleSchedule1"],
    "detail": {},
}


class Context:
    """The parts of Lambda's context object the handlers use."""

    function_name = "stagesync-dev-sync"
    aws_request_id = "8f5e2a4c-0d1b-4c2e-9a7f-3b6d5e4c1a20"
    log_stream_name = "2026/06/01/[$LATEST]0123456789abcdef0123456789abcdef"

    def __init__(self, remaining_ms: int = 900_000):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


# --- fixtures ----------------------------------------------------------------------------------

@pytest.fixture
def lambda_env(monkeypatch, tmp_path, database_url):
    """A function's environment: the packaged configuration, secrets and the database URL."""
    config_file = tmp_path / "stagesync.toml"
    config_file.write_text(LAMBDA_TOML, encoding="utf-8")
    monkeypatch.setenv("STAGESYNC_CONFIG", str(config_file))
    monkeypatch.setenv("STAGESYNC_DATABASE_URL", database_url)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    handlers.use(None)
    yield database_url
    runtime = handlers.use(None)
    if runtime is not None:
        runtime.close()


@pytest.fixture
def runtime(lambda_env):
    """The container's runtime as a cold start builds it, with the clock frozen at NOW."""
    built = handlers.Runtime.from_environment(clock=lambda: NOW)
    handlers.use(built)
    return built


@pytest.fixture
def reference_store(database_url, tmp_path, request):
    """A second database of the same engine, written through the Flask test client."""
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    (tmp_path / "reference").mkdir()
    opened = Store.open(fresh_database_url(kind, tmp_path / "reference", request))
    yield opened
    opened.close()


# --- API Gateway events ------------------------------------------------------------------------

def order_delivery(order_id: int = 5873412096157, email: str = "zoe.lefevre@example.com",
                   secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    """A Shopify orders/create delivery from the documented fixture, signed over its exact bytes:
    pretty-printed, with non-ASCII text, so any re-encoding on the way would break the signature."""
    payload = json.loads((ROOT / "tests/fixtures/shopify/orders/create.json").read_text(encoding="utf-8"))
    stamp = PLACED.isoformat().replace("+00:00", "Z")
    payload.update(id=order_id, email=email, contact_email=email, created_at=stamp, processed_at=stamp,
                   updated_at=stamp, note="Livraison après 18 h — merci ! 🎁")
    payload["customer"].update(email=email, first_name="Zoë", last_name="Lefèvre")
    body = json.dumps(payload, ensure_ascii=False, indent=2).encode("utf-8")
    return body, shopify.sign(body, secret, topic="orders/create")


def _body(body: bytes, base64_encoded: bool) -> str:
    return base64.b64encode(body).decode("ascii") if base64_encoded else body.decode("utf-8")


def http_api_event(method: str, path: str, headers: dict[str, str], body: bytes = b"",
                   base64_encoded: bool = False) -> dict:
    """API Gateway HTTP API, payload format 2.0 (header names arrive lower-cased)."""
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {**{k.lower(): v for k, v in headers.items()}, "host": API_HOST,
                    "content-length": str(len(body)), "x-forwarded-proto": "https", "x-forwarded-port": "443",
                    "user-agent": "Shopify-Captain-Hook"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123def4", "domainName": API_HOST,
            "domainPrefix": "abc123def4", "requestId": "Yk3mTgZ4CGkEMbQ=", "routeKey": "$default",
            "stage": "$default", "time": "01/Jun/2026:12:00:00 +0000", "timeEpoch": 1780315200000,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7",
                     "userAgent": "Shopify-Captain-Hook"},
        },
        "body": _body(body, base64_encoded), "isBase64Encoded": base64_encoded,
    }


def rest_api_event(method: str, path: str, headers: dict[str, str], body: bytes = b"",
                   base64_encoded: bool = False) -> dict:
    """API Gateway REST API, Lambda proxy integration, payload format 1.0, stage `dev`."""
    headers = {**headers, "Host": API_HOST, "X-Forwarded-Proto": "https", "X-Forwarded-Port": "443",
               "User-Agent": "Shopify-Captain-Hook"}
    return {
        "resource": "/{proxy+}", "path": path, "httpMethod": method,
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")}, "stageVariables": None,
        "requestContext": {
            "resourceId": "x1y2z3", "resourcePath": "/{proxy+}", "httpMethod": method, "path": f"/dev{path}",
            "accountId": "123456789012", "apiId": "abc123def4", "stage": "dev", "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "requestTimeEpoch": 1780315200000,
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "Shopify-Captain-Hook"},
        },
        "body": _body(body, base64_encoded) if body else None, "isBase64Encoded": base64_encoded,
    }


EVENT_FORMATS = {"http-api-v2": http_api_event, "rest-api-v1": rest_api_event}


@pytest.fixture(params=sorted(EVENT_FORMATS))
def event_format(request):
    return EVENT_FORMATS[request.param]


def answer_json(answer: dict) -> dict:
    assert answer["isBase64Encoded"] is False
    return json.loads(answer["body"])


# --- database views ----------------------------------------------------------------------------

def count(store: Store, table) -> int:
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def stored(store: Store) -> dict[str, list[tuple]]:
    """Every stored order, customer state and stage change, in key order."""
    with store.read() as conn:
        return {table.name: [tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key.columns))]
                for table in (orders, customers, stage_changes)}


def handler_store() -> Store:
    return handlers.current().store


# --- import time -------------------------------------------------------------------------------

def test_importing_the_handlers_reads_opens_and_imports_nothing_heavy():
    probe = ("import sys, connector.web.lambda_handlers as h; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & "
             "{'flask', 'werkzeug', 'sqlalchemy', 'psycopg', 'alembic', 'serverless_wsgi', 'requests', 'adapters'}), "
             "h._runtime)")
    run = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "STAGESYNC_CONFIG": "/nonexistent/stagesync.toml"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["[]", "None"]


def test_the_first_invocation_loads_the_environment_and_warm_ones_reuse_it(lambda_env):
    event = http_api_event("GET", "/healthz", {})
    first = handlers.http_handler(event, Context())
    runtime = handlers.current()
    second = handlers.http_handler(event, Context())
    assert first["statusCode"] == second["statusCode"] == 200
    assert handlers.current() is runtime and runtime.app is runtime.app
    assert runtime.settings.shops["acme"].webhook_secret == SECRET  # the secret came from the environment
    assert runtime.settings.database_url == lambda_env  # $STAGESYNC_DATABASE_URL wins over the file


def test_on_lambda_a_sqlite_database_is_refused_with_a_message(lambda_env, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "stagesync-dev-http")
    monkeypatch.setenv("STAGESYNC_DATABASE_URL", f"sqlite:///{tmp_path / 'lambda.db'}")
    with pytest.raises(ConfigError, match="STAGESYNC_DATABASE_URL to a PostgreSQL database"):
        handlers.Runtime.from_environment()


def test_a_database_down_at_a_cold_start_is_503_and_the_next_invocation_tries_again(monkeypatch, tmp_path):
    config_file = tmp_path / "stagesync.toml"
    config_file.write_text(LAMBDA_TOML, encoding="utf-8")
    for name, value in {**ENV, "STAGESYNC_CONFIG": str(config_file),
                        "STAGESYNC_DATABASE_URL": "postgresql+psycopg://stagesync@127.0.0.1:1/stagesync"}.items():
        monkeypatch.setenv(name, value)
    handlers.use(None)
    body, headers = order_delivery()
    answer = handlers.http_handler(http_api_event("POST", "/webhooks/acme", headers, body), Context())
    assert (answer["statusCode"], answer_json(answer)) == (503, {"error": "storage unavailable, retry later"})
    assert handlers.use(None) is None  # nothing half-built was kept
    monkeypatch.setenv("STAGESYNC_DATABASE_URL", f"sqlite:///{tmp_path / 'up-again.db'}")
    try:
        assert handlers.http_handler(http_api_event("GET", "/healthz", {}), Context())["statusCode"] == 200
    finally:
        handlers.use(None).close()


# --- HTTP --------------------------------------------------------------------------------------

@pytest.mark.parametrize("base64_encoded", [False, True], ids=["plain-body", "base64-body"])
def test_a_webhook_through_api_gateway_is_stored_exactly_as_through_flask(runtime, reference_store, event_format,
                                                                            base64_encoded):
    body, headers = order_delivery()
    answer = handlers.http_handler(event_format("POST", "/webhooks/acme", headers, body, base64_encoded), Context())
    assert (answer["statusCode"], answer_json(answer)) == (200, {"status": "accepted"})

    client = create_app(config.parse(LAMBDA_TOML, env=ENV), store=reference_store, clock=lambda: NOW).test_client()
    assert client.post("/webhooks/acme", data=body, headers=headers).get_json() == {"status": "accepted"}

    through_lambda = stored(runtime.store)
    assert through_lambda == stored(reference_store)
    assert len(through_lambda["orders"]) == 1
    assert len(through_lambda["customers"]) == 1 and through_lambda["customers"][0][1] == "zoe.lefevre@example.com"


def test_the_same_delivery_twice_is_a_duplicate(runtime, event_format):
    body, headers = order_delivery()
    answers = [handlers.http_handler(event_format("POST", "/webhooks/acme", headers, body), Context())
               for _ in range(2)]
    assert [answer_json(a) for a in answers] == [{"status": "accepted"}, {"status": "duplicate"}]
    assert count(runtime.store, orders) == count(runtime.store, deliveries) == 1


@pytest.mark.parametrize("base64_encoded", [False, True], ids=["plain-body", "base64-body"])
@pytest.mark.parametrize("tamper", ["wrong-secret", "changed-body", "no-signature"])
def test_a_bad_signature_is_401_and_nothing_is_stored(runtime, event_format, base64_encoded, tamper):
    body, headers = order_delivery(secret="not-the-shop-secret" if tamper == "wrong-secret" else SECRET)
    if tamper == "changed-body":
        body = body.replace(b'"total_price": "', b'"total_price": "1')
    if tamper == "no-signature":
        headers.pop(shopify.HMAC_HEADER)
    answer = handlers.http_handler(event_format("POST", "/webhooks/acme", headers, body, base64_encoded), Context())
    assert answer["statusCode"] == 401
    assert all(count(runtime.store, table) == 0 for table in (orders, customers, outbox, deliveries))


def test_a_base64_body_reaches_the_verifier_byte_for_byte_even_when_it_is_not_utf8(runtime, event_format):
    body = b'{"id": 1, "note": "\xff\xfe not UTF-8"}'
    headers = shopify.sign(body, SECRET, topic="orders/create")
    answer = handlers.http_handler(event_format("POST", "/webhooks/acme", headers, body, True), Context())
    assert answer["statusCode"] == 400  # the signature held (else 401): signed but malformed
    assert count(runtime.store, orders) == 0


def test_an_unknown_shop_is_404_and_the_admin_api_needs_its_token(runtime, event_format):
    body, headers = order_delivery()
    assert handlers.http_handler(event_format("POST", "/webhooks/nosuch", headers, body), Context())[
        "statusCode"] == 404
    path = "/shops/acme/stages"
    assert handlers.http_handler(event_format("GET", path, {}), Context())["statusCode"] == 401
    authorised = handlers.http_handler(event_format("GET", path, {"Authorization": "Bearer test-admin-token"}),
                                       Context())
    assert authorised["statusCode"] == 200


# --- scheduled jobs ----------------------------------------------------------------------------

def receive_order(event_format=http_api_event, order_id: int = 5873412096157,
                  email: str = "zoe.lefevre@example.com") -> None:
    body, headers = order_delivery(order_id, email)
    answer = handlers.http_handler(event_format("POST", "/webhooks/acme", headers, body), Context())
    assert answer_json(answer) == {"status": "accepted"}


def test_sync_drains_the_outbox_into_the_log_destinations(runtime, caplog):
    receive_order()
    assert count(runtime.store, outbox) == 2  # one per destination
    with caplog.at_level("INFO", logger="stagesync.destinations.log"):
        result = handlers.sync_handler(SCHEDULED_EVENT, Context())
    assert (result["sent"], result["dead"], result["drained"]) == (2, 0, True)
    assert count(runtime.store, outbox) == 0 and count(runtime.store, synced) == 2
    dry_runs = [r.getMessage() for r in caplog.records if r.name == "stagesync.destinations.log"]
    assert len(dry_runs) == 2 and all("zo***@ex***.com" in line and "lifecycle_stage" in line for line in dry_runs)
    assert not any("zoe.lefevre@example.com" in r.getMessage() for r in caplog.records)
    assert handlers.sync_handler(SCHEDULED_EVENT, Context())["claimed"] == 0  # nothing left to do


def test_sync_stops_claiming_when_the_invocation_is_nearly_out_of_time(runtime):
    receive_order()
    nearly_out = Context(remaining_ms=handlers.SYNC_STOP_MARGIN_MS - 1)
    first = handlers.sync_handler(SCHEDULED_EVENT, nearly_out)
    assert (first["sent"], first["drained"]) == (1, False)  # one batch (one destination), then stop
    assert count(runtime.store, outbox) == 1
    second = handlers.sync_handler(SCHEDULED_EVENT, Context())
    assert (second["sent"], second["drained"]) == (1, True)
    assert count(runtime.store, outbox) == 0


def test_recompute_writes_the_stages_that_changed_with_time_and_queues_them(runtime):
    receive_order()
    handlers.sync_handler(SCHEDULED_EVENT, Context())
    with runtime.store.read() as conn:
        assert conn.execute(select(customers.c.rfm)).scalar_one() == "recent"
    later = NOW + timedelta(days=120)  # 123 days since the order
    runtime.clock = lambda: later
    result = handlers.recompute_handler(SCHEDULED_EVENT, Context())
    assert result["at"] == later.isoformat()
    assert result["shops"]["acme"]["written"] == 1 and result["shops"]["acme"]["queued"] == 2
    assert result["shops"]["walk-in"]["customers"] == 0
    with runtime.store.read() as conn:
        assert conn.execute(select(customers.c.rfm)).scalar_one() not in ("recent", "prospect")
    assert count(runtime.store, outbox) == 2
    assert handlers.recompute_handler(SCHEDULED_EVENT, Context())["shops"]["acme"]["written"] == 0


def test_recompute_takes_a_shop_and_refuses_an_instant_when_invoked_by_hand(runtime):
    receive_order()
    result = handlers.recompute_handler({"shop": "acme"}, Context())
    assert list(result["shops"]) == ["acme"]
    with pytest.raises(UnknownShopError):
        handlers.recompute_handler({"shop": "nosuch"}, Context())
    with pytest.raises(UserError, match="stages --at"):  # a replayed date is never stored as the live stages
        handlers.recompute_handler({"shop": "acme", "at": "2026-10-01"}, Context())
    assert count(runtime.store, outbox) == 2


class RecordingPoller:
    """Stands in for connector.services.backfill.poll; `failing` shops raise a platform API error."""

    def __init__(self, failing: set[str] = frozenset()):
        self.calls: list[tuple[str, object]] = []
        self.failing = failing

    def __call__(self, store, shop, now):
        self.calls.append((shop.id, now))
        if shop.id in self.failing:
            raise PlatformApiError(f"{shop.platform} answered 503")
        return {"fetched": 0, "stored": 0}


def test_poll_reads_every_shop_that_has_an_api_table(runtime):
    runtime.poller = poller = RecordingPoller()
    assert handlers.poll_handler(SCHEDULED_EVENT, Context()) == {"shops": {"acme": {"fetched": 0, "stored": 0}}}
    assert poller.calls == [("acme", NOW)]  # walk-in has no `api`: nothing to poll


def test_each_polled_shop_has_its_webhooks_watched_after_its_poll(runtime):
    from connector.services.webhook_status import watch

    runtime.poller = RecordingPoller()
    watched = []
    runtime.watcher = lambda store, shop, now: watched.append((shop.id, now))
    handlers.poll_handler(SCHEDULED_EVENT, Context())
    assert watched == [("acme", NOW)]
    assert handlers.webhook_watch() is watch


def test_a_failing_poll_is_reported_as_a_failed_invocation_after_the_other_shops(runtime):
    runtime.poller = RecordingPoller(failing={"acme"})
    with pytest.raises(handlers.JobFailed, match="acme"):
        handlers.poll_handler(SCHEDULED_EVENT, Context())


def test_poll_and_backfill_run_the_platform_readers(runtime):
    from connector.services import backfill

    assert handlers.platform_poll() is backfill.poll
    with pytest.raises(UserError, match="needs the shop"):
        handlers.backfill_handler({}, Context())
    with pytest.raises(UserError, match="no `api` table"):
        handlers.backfill_handler({"shop": "walk-in"}, Context())


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # a lock that holds statements: PostgreSQL's
def test_the_http_function_answers_503_promptly_while_the_orders_table_is_locked(runtime, event_format):
    """The HTTP function has the web's statement and lock timeouts, like `stagesync serve`: a locked
    table is a 503 within seconds (the platform retries), not a request held until Lambda's timeout."""
    import time

    from sqlalchemy import create_engine

    body, headers = order_delivery()
    locker = create_engine(runtime.settings.database_url)
    with locker.connect() as conn:
        conn.exec_driver_sql("BEGIN")
        conn.exec_driver_sql("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")  # as a VACUUM FULL would
        started = time.monotonic()
        answer = handlers.http_handler(event_format("POST", "/webhooks/acme", headers, body, False), Context())
        elapsed = time.monotonic() - started
        conn.exec_driver_sql("ROLLBACK")
    locker.dispose()
    assert answer["statusCode"] == 503 and elapsed < 5.0
    again = handlers.http_handler(event_format("POST", "/webhooks/acme", headers, body, False), Context())
    assert again["statusCode"] == 200
