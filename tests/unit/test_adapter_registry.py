"""One registry form for every port (adapters/registry.py over the names in connector.domain.ports): names
known without importing anything, each adapter imported on first use, an unknown name refused with
the valid ones; and the configuration's valid names are the registries'."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from adapters import registry
from adapters.destinations.settings import BaseSettings
from adapters.platforms.api import ApiClient
from adapters.registry import Registry
from connector import config
from connector.domain import ports
from connector.errors import ConfigError
from connector.domain.ports import Destination

ROOT = Path(__file__).resolve().parents[2]


def test_a_target_is_a_module_or_a_module_attribute_imported_when_first_asked_for():
    things = Registry("thing", {"dumps": "json:dumps", "module": "json", "broken": "no_such_module:Thing"})
    assert list(things) == ["dumps", "module", "broken"] and len(things) == 3 and "broken" in things
    assert things["dumps"] is json.dumps and things.load("module") is json
    with pytest.raises(ModuleNotFoundError):
        things["broken"]


@pytest.mark.parametrize("name", ["nope", "", None, "JSON"])
def test_an_unknown_name_is_refused_with_the_valid_names(name):
    things = Registry("thing", {"zeta": "json", "alpha": "json"})
    with pytest.raises(ConfigError) as caught:
        things.load(name)
    assert caught.value.problems == [f"unknown thing {name!r} (available: alpha, zeta)"]
    assert things.get(name) is None and name not in things


def test_reading_the_configuration_imports_no_adapter():
    probe = "import sys, connector.config; print(sorted(m for m in sys.modules if m.startswith('adapters')))"
    run = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["[]"]


def test_the_configuration_takes_its_valid_names_from_the_registries():
    assert tuple(registry.PLATFORMS) == tuple(ports.WEBHOOK_ADAPTERS) == config.PLATFORMS
    assert tuple(registry.PLATFORM_APIS) == tuple(ports.API_CLIENTS)
    assert tuple(registry.DESTINATIONS) == tuple(ports.DESTINATION_ADAPTERS) == config.DESTINATION_TYPES
    with pytest.raises(ConfigError) as caught:
        config.parse('[[shops]]\nid = "a"\nplatform = "magento"\nwebhook_secret = "s"\n'
                     '[[shops.destinations]]\ntype = "sendgrid"\n', env={})
    assert f"shops[a].platform: must be one of {', '.join(registry.PLATFORMS)} (got 'magento')" in caught.value.problems
    assert any(p.startswith("shops[a].destinations[0].type: must be one of omnisend, klaviyo,")
               for p in caught.value.problems)


@pytest.mark.parametrize("name", list(registry.PLATFORMS))
def test_every_registered_platform_is_a_webhook_adapter_of_that_name(name):
    platform = registry.PLATFORMS.load(name)
    assert platform.NAME == name
    assert all(callable(getattr(platform, f)) for f in ("is_ping", "verify", "parse", "sign"))


@pytest.mark.parametrize("name", list(registry.PLATFORM_APIS))
def test_every_registered_api_client_is_an_api_client_of_a_registered_platform(name):
    client = registry.PLATFORM_APIS.load(name)
    assert issubclass(client, ApiClient) and client.platform == name and name in registry.PLATFORMS


@pytest.mark.parametrize("name", list(registry.DESTINATIONS))
def test_every_registered_destination_names_its_typed_settings(name):
    cls = registry.DESTINATIONS.load(name)
    assert issubclass(cls, Destination) and cls.type_name == name
    assert issubclass(cls.settings_class, BaseSettings) and dataclasses.is_dataclass(cls.settings_class)
    assert cls.settings_class.__dataclass_params__.frozen
