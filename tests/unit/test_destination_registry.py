"""The destination registry: every configured type has an adapter, unknown names are refused with the
valid ones, and create() refuses a configuration that check-config would report."""

from __future__ import annotations

import pytest

from adapters import destinations
from connector import config
from connector.config import DestinationSettings
from connector.errors import ConfigError
from connector.domain.ports import Destination


def settings(kind: str, **options) -> DestinationSettings:
    return DestinationSettings(type=kind, name=kind, properties={"lifecycle_stage": "rfm"}, events=True,
                               base_url=None, rate_per_minute=None, options=options)


GOOD = {
    "omnisend": {"api_key": "k"},
    "klaviyo": {"api_key": "k"},
    "mailchimp": {"api_key": "k-us21", "list_id": "a1"},
    "brevo": {"api_key": "k"},
    "webhook": {"url": "https://example.net/hook", "secret": "whsec_c3RhZ2VzeW5j"},
    "log": {},
}


def test_every_type_the_configuration_accepts_has_an_adapter():
    assert sorted(destinations.DESTINATIONS) == sorted(config.DESTINATION_TYPES) == sorted(GOOD)


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_each_type_builds_its_adapter_with_its_documented_limits(kind):
    destination = destinations.create(settings(kind, **GOOD[kind]))
    assert isinstance(destination, destinations.DESTINATIONS[kind]) and isinstance(destination, Destination)
    assert destination.type_name == kind
    assert destination.default_rate_per_minute > 0 and destination.max_batch >= 1
    assert destination.rate_per_minute == destination.default_rate_per_minute
    assert destination.supports_events == (kind != "mailchimp")


@pytest.mark.parametrize("kind", ["sendgrid", "", "Omnisend"])
def test_an_unknown_type_is_refused_with_the_valid_names(kind):
    with pytest.raises(ConfigError, match="available: brevo, klaviyo, log, mailchimp, omnisend, webhook"):
        destinations.create(settings(kind))
    assert "available: brevo" in destinations.validate(settings(kind))[0]


def test_create_refuses_what_validate_reports_naming_the_destination():
    with pytest.raises(ConfigError) as caught:
        destinations.create(settings("mailchimp"))
    assert caught.value.problems[0].startswith("destination 'mailchimp': api_key: is required")
    assert any("list_id: is required" in p for p in caught.value.problems)


def test_check_config_reports_destination_problems(tmp_path, capsys):
    from connector.cli import main

    path = tmp_path / "stagesync.toml"
    path.write_text(f"""
database_url = "sqlite:///{tmp_path / 'db.sqlite'}"
[[shops]]
id = "acme"
platform = "shopify"
webhook_secret = "s"
  [[shops.destinations]]
  type = "mailchimp"
  api_key = "abc-us21"
""", encoding="utf-8")
    assert main(["--config", str(path), "check-config"]) == 1
    assert "shops[acme].destinations[mailchimp]: list_id: is required" in capsys.readouterr().err
