"""Fixtures the HTTP integration tests share: one shop per webhook platform (ids equal to the
platform names, each with the `log` destination) on the test's database, and its store."""

from __future__ import annotations

import pytest

from connector import config
from connector.storage.store import Store
from tests.fakes.senders import shops_toml


@pytest.fixture
def platform_shops(database_url):
    return config.parse(shops_toml(database_url), env={})


@pytest.fixture
def platform_store(platform_shops):
    store = Store.open(platform_shops.database_url)
    yield store
    store.close()
