"""Fixtures the HTTP integration tests share: one shop per webhook platform (ids equal to the
platform names, each with the `log` destination) on the test's database, its store, its
configuration file for the CLI, and the web app over them with a clock the test can move."""

from __future__ import annotations

from datetime import datetime

import pytest

from connector import config
from connector.storage.store import Store
from connector.web.app import create_app
from tests.conftest import NOW
from tests.fakes.senders import shops_toml


class Clock:
    """The web app's clock: NOW until a test sets `now`."""

    def __init__(self, now: datetime = NOW):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def platform_shops(database_url):
    return config.parse(shops_toml(database_url), env={})


@pytest.fixture
def platform_config_file(tmp_path, database_url):
    """The same shops as `platform_shops`, as a file for `stagesync --config`."""
    path = tmp_path / "stagesync.toml"
    path.write_text(shops_toml(database_url))
    return path


@pytest.fixture
def platform_store(platform_shops):
    store = Store.open(platform_shops.database_url)
    yield store
    store.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def app(platform_shops, platform_store, clock):
    return create_app(platform_shops, store=platform_store, clock=clock)


@pytest.fixture
def client(app):
    return app.test_client()
