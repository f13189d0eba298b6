"""Shared fixtures: a real SQLite file and a real PostgreSQL server for every storage test."""

from __future__ import annotations

import itertools
import os
import socket
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from connector import config
from connector.storage.store import Store

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
ENGINES = ("sqlite", "postgresql")
# For `database_url` of a long test (`parametrize("database_url", SLOW_ON_POSTGRESQL, indirect=True)`):
# `make test-fast` runs it on SQLite only, `make test` on both engines.
SLOW_ON_POSTGRESQL = (pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.slow))
_database_numbers = itertools.count(1)
# One template per pytest process: `make test-fast` runs several (pytest-xdist), which may share one
# server (STAGESYNC_TEST_PG_URL).
TEMPLATE_DATABASE = f"stagesync_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Only loopback: a test that reaches for the internet fails loudly instead of hanging."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and self.family in (socket.AF_INET, socket.AF_INET6) \
                and not (host.startswith("127.") or host in ("localhost", "::1")):
            raise OSError(f"network access to {host} blocked in tests")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def postgres_url():
    """The admin URL of the session's PostgreSQL server (started here unless provided)."""
    provided = os.environ.get("STAGESYNC_TEST_PG_URL")
    if provided:
        yield provided
        return
    from tests.pg_server import PostgresServer

    server = PostgresServer()
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres_url):
    """A database migrated once; each test gets a fresh copy of it (CREATE DATABASE ... TEMPLATE)."""
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {TEMPLATE_DATABASE}")
        conn.exec_driver_sql(f"CREATE DATABASE {TEMPLATE_DATABASE}")
    url = make_url(postgres_url).set(database=TEMPLATE_DATABASE)
    Store.open(url.render_as_string(hide_password=False)).close()
    yield admin
    admin.dispose()


def _drop_database(admin, name: str) -> None:
    """Drop a test's database when the test ends: the server's data directory stays small, so
    neither the disk nor the session's teardown pays for a thousand leftover databases."""
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def fresh_database_url(kind: str, tmp_path, request) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'stagesync.db'}"
    admin = request.getfixturevalue("postgres_template")
    name = f"test_{os.getpid()}_{next(_database_numbers)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DATABASE}")
    request.addfinalizer(lambda: _drop_database(admin, name))
    url = make_url(request.getfixturevalue("postgres_url")).set(database=name)
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=ENGINES)
def database_url(request, tmp_path):
    """A fresh, migrated database on each engine: the test runs once on SQLite, once on PostgreSQL."""
    return fresh_database_url(request.param, tmp_path, request)


@pytest.fixture
def store(database_url):
    opened = Store.open(database_url)
    yield opened
    opened.close()


SHOP_TOML = """
database_url = "{database_url}"
admin_token = "test-admin-token"

[[shops]]
id = "acme"
platform = "shopify"
webhook_secret = "shpss_test_secret"
currency = "EUR"

  [[shops.destinations]]
  type = "log"
"""


@pytest.fixture
def settings(database_url):
    return config.parse(SHOP_TOML.format(database_url=database_url), env={})


@pytest.fixture
def shop(settings):
    return settings.shops["acme"]
