"""The log destination: a dry run that writes what would be sent, masked, and sends nothing."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest
import responses

from adapters.destinations import create, validate
from connector.config import DestinationSettings
from connector.domain.ports import ContactUpdate, StageChange

AT = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def settings(events=True, **options) -> DestinationSettings:
    return DestinationSettings(type="log", name="dry", properties={"lifecycle_stage": "rfm"}, events=events,
                               base_url=None, rate_per_minute=None, options=options)


def test_updates_are_logged_masked_and_nothing_is_sent(caplog):
    caplog.set_level(logging.INFO, logger="stagesync.destinations.log")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        failures = create(settings(), shop="acme").upsert_contacts([
            ContactUpdate("jane.doe@example.com", None, {"lifecycle_stage": "Champions"}),
            ContactUpdate(None, "+33612345678", {"lifecycle_stage": None})])
    assert failures == [] and len(mock.calls) == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "stagesync.destinations.log"]
    assert len(lines) == 2
    assert "shop=acme" in lines[0] and 'properties={"lifecycle_stage": "Champions"}' in lines[0]
    assert "ja***@ex***.com" in lines[0] and "jane.doe@example.com" not in caplog.text
    assert "+33612345678" not in caplog.text and "+3***" in lines[1]


def test_events_are_logged_when_configured(caplog):
    caplog.set_level(logging.INFO, logger="stagesync.destinations.log")
    destination = create(settings())
    assert destination.supports_events
    destination.send_events([StageChange("stagesync-acme-5", "jane.doe@example.com", None, "rfm", "Recent",
                                         "Loyalists", AT)])
    assert "event=stagesync-acme-5 model=rfm from=Recent to=Loyalists at=2026-06-01T12:00:00Z" in caplog.text
    assert "jane.doe@example.com" not in caplog.text


def test_events_are_off_unless_configured():
    assert not create(settings(events=False)).supports_events


@pytest.mark.parametrize("options, problems", [({}, []), ({"api_key": "x"}, ["api_key: unknown option for log"])])
def test_the_log_takes_no_option(options, problems):
    assert [p.split(" (")[0] for p in validate(settings(**options))] == problems
