"""A database that hangs or runs out of room: webhooks and /healthz answer 503 promptly (the platform
retries) instead of holding the request for a minute or answering 500 (docs/configuration.md,
'Database timeouts')."""

from __future__ import annotations

import socket
import time
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, event

from connector import config
from connector.storage.store import Store
from connector.web.app import create_app
from tests.conftest import NOW, fresh_database_url
from tests.fakes.senders import ShopifySender, shops_toml

# Not a benchmark: without the timeouts these requests take 40 s to over two minutes; with them,
# the connect timeout (2 s, libpq's least) or the statement timeout (0.8 s) and a little more.
PROMPTLY_S = 5.0


def timed(call):
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


@pytest.fixture
def silent_server():
    """A loopback "PostgreSQL" that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield listener.getsockname()[1]
    listener.close()


def test_a_database_that_accepts_and_never_answers_gives_503_promptly(silent_server):
    url = f"postgresql+psycopg://stagesync@127.0.0.1:{silent_server}/stagesync"
    client = create_app(config.parse(shops_toml(url), env={}), clock=lambda: NOW).test_client()
    delivery = ShopifySender().order(1, "ann@example.com", "10.00", NOW - timedelta(days=1))

    answer, elapsed = timed(lambda: client.post("/webhooks/shopify", data=delivery.body, headers=delivery.headers))
    assert answer.status_code == 503 and elapsed < PROMPTLY_S

    health, elapsed = timed(lambda: client.get("/healthz"))
    assert health.status_code == 503 and elapsed < PROMPTLY_S


def test_a_table_locked_by_another_session_gives_503_promptly(postgres_url, tmp_path, request):
    url = fresh_database_url("postgresql", tmp_path, request)
    client = create_app(config.parse(shops_toml(url), env={}), clock=lambda: NOW).test_client()
    delivery = ShopifySender().order(1, "ann@example.com", "10.00", NOW - timedelta(days=1))
    assert client.get("/healthz").status_code == 200

    locker = create_engine(url)
    with locker.connect() as conn:
        conn.exec_driver_sql("BEGIN")
        conn.exec_driver_sql("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")  # as a VACUUM FULL or a migration
        answer, elapsed = timed(lambda: client.post("/webhooks/shopify", data=delivery.body,
                                                    headers=delivery.headers))
        assert answer.status_code == 503 and elapsed < PROMPTLY_S
        health, elapsed = timed(lambda: client.get("/healthz"))
        assert health.status_code == 503 and elapsed < PROMPTLY_S
        conn.exec_driver_sql("ROLLBACK")
    locker.dispose()

    again = client.post("/webhooks/shopify", data=delivery.body, headers=delivery.headers)
    assert again.status_code == 200 and client.get("/healthz").status_code == 200


def test_a_full_sqlite_database_gives_503_and_fails_healthz(tmp_path):
    url = f"sqlite:///{tmp_path / 'stagesync.db'}"
    Store.open(url).close()  # migrated
    settings = config.parse(shops_toml(url), env={})
    store = Store.open(url, migrate=False)

    @event.listens_for(store.engine, "connect")
    def _no_room(dbapi_connection, _record):  # SQLite's own "disk full": no page beyond the file's size
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    store.engine.dispose()
    client = create_app(settings, store=store, clock=lambda: NOW).test_client()
    sender = ShopifySender()
    statuses = []
    for number in range(1, 400):  # until the file would have to grow
        delivery = sender.order(number, f"customer{number}@example.com", "10.00", NOW - timedelta(days=1))
        statuses.append(client.post("/webhooks/shopify", data=delivery.body, headers=delivery.headers).status_code)
        if statuses[-1] != 200:
            break
    assert statuses[-1] == 503 and set(statuses[:-1]) <= {200}
    assert client.get("/healthz").status_code == 503
    store.close()
