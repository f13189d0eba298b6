"""Omnisend adapter: request shapes of API 2026-03-15, batching, events, every status class, secrecy."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest
import requests

from adapters.destinations import create, omnisend
from connector.config import DestinationSettings
from connector.errors import FatalDestinationError, RetriableDestinationError
from connector.domain.ports import ContactUpdate, StageChange

KEY = "omni-key-0123456789abcdef"
BASE = "https://api.omnisend.com/api"
PROPS = {"lifecycle_stage": "rfm", "orders_365d": "orders_365d", "spent": "total_spent", "since": "rfm_since"}
AT = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
ANN = ContactUpdate("ann@example.com", None, {"lifecycle_stage": "Champions", "orders_365d": 4, "spent": "120.50",
                                              "since": "2026-05-02"})


def settings(events=True, **overrides) -> DestinationSettings:
    values = dict(type="omnisend", name="omnisend", properties=PROPS, events=events, base_url=None,
                  rate_per_minute=None, options={"api_key": KEY})
    values.update(overrides)
    return DestinationSettings(**values)


def body(call) -> dict:
    return json.loads(call.request.body)


def change(email="ann@example.com", phone=None, event_id="stagesync-acme-7") -> StageChange:
    return StageChange(event_id, email, phone, "rfm", "Loyalists", "Champions", AT, {"lifecycle_stage": "Champions"})


def test_one_contact_is_upserted_by_email_with_typed_custom_properties(rsps):
    rsps.post(f"{BASE}/contacts", status=200, json={"id": "c1"})
    assert create(settings()).upsert_contacts([ANN]) == []
    request = rsps.calls[0].request
    assert request.headers["Authorization"] == f"Omnisend-API-Key {KEY}"
    assert request.headers["Omnisend-Version"] == "2026-03-15"
    assert request.headers["Content-Type"] == "application/json"
    assert body(rsps.calls[0]) == {
        "identifiers": [{"type": "email", "id": "ann@example.com", "sendWelcomeMessage": False}],
        "customProperties": {"lifecycle_stage": "Champions", "orders_365d": 4, "spent": 120.5, "since": "2026-05-02"},
    }


def test_a_customer_known_by_phone_is_identified_by_phone(rsps):
    rsps.post(f"{BASE}/contacts", status=201, json={"id": "c2"})
    create(settings()).upsert_contacts([ContactUpdate(None, "+33612345678", {"lifecycle_stage": "Recent"})])
    assert body(rsps.calls[0])["identifiers"] == [{"type": "phone", "id": "+33612345678", "sendWelcomeMessage": False}]


def test_no_subscription_status_is_ever_sent(rsps):
    rsps.post(f"{BASE}/contacts", status=200, json={})
    create(settings()).upsert_contacts([ANN])
    assert "channels" not in json.dumps(body(rsps.calls[0]))


def test_a_full_batch_is_one_call_to_the_batches_api(rsps):
    rsps.post(f"{BASE}/batches", status=201, json={"batchID": "b1", "totalCount": 100})
    updates = [ContactUpdate(f"c{i}@example.com", None, {"lifecycle_stage": "Lost"})
               for i in range(omnisend.BATCH_SIZE)]
    destination = create(settings())
    assert destination.max_batch == 100
    assert destination.upsert_contacts(updates) == []
    assert len(rsps.calls) == 1
    sent = body(rsps.calls[0])
    assert sent["method"] == "POST" and sent["endpoint"] == "contacts" and len(sent["items"]) == 100
    assert sent["items"][7] == {"identifiers": [{"type": "email", "id": "c7@example.com", "sendWelcomeMessage": False}],
                                "customProperties": {"lifecycle_stage": "Lost"}}


def test_the_stage_change_is_a_custom_event_with_a_stable_uuid(rsps):
    rsps.post(f"{BASE}/events", status=202)
    destination = create(settings())
    assert destination.supports_events
    assert destination.send_events([change()]) == []
    sent = body(rsps.calls[0])
    assert sent == {
        "eventName": "lifecycle stage changed",
        "eventID": str(uuid.uuid5(omnisend.EVENT_NAMESPACE, "stagesync-acme-7")),
        "eventTime": "2026-06-01T12:00:00Z",
        "origin": "api",
        "contact": {"email": "ann@example.com"},
        "properties": {"model": "rfm", "from": "Loyalists", "to": "Champions", "at": "2026-06-01T12:00:00Z"},
    }
    assert uuid.UUID(sent["eventID"]).version == 5


def test_many_events_go_through_the_batches_api_100_at_a_time(rsps):
    rsps.post(f"{BASE}/batches", status=200, json={"batchID": "b1"})
    rsps.post(f"{BASE}/batches", status=200, json={"batchID": "b2"})
    destination = create(settings())
    events = [change(event_id=f"e{i}") for i in range(150)]
    assert destination.send_events(events) == []
    first, second = body(rsps.calls[0]), body(rsps.calls[1])
    assert (first["method"], first["endpoint"], len(first["items"]), len(second["items"])) == ("POST", "events", 100, 50)
    assert first["items"][0]["eventID"] == str(uuid.uuid5(omnisend.EVENT_NAMESPACE, "e0"))
    assert destination.requests_for_events(150) == 2


def test_events_are_off_unless_configured():
    assert not create(settings(events=False)).supports_events


def test_base_url_and_rate_come_from_settings(rsps):
    rsps.post("http://127.0.0.1:9999/contacts", status=200, json={})
    destination = create(settings(base_url="http://127.0.0.1:9999/", rate_per_minute=60))
    destination.upsert_contacts([ANN])
    assert destination.rate_per_minute == 60 and omnisend.Omnisend.default_rate_per_minute == 400


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_fatal(rsps, status):
    rsps.post(f"{BASE}/contacts", status=status, json={"title": "Problem", "detail": "nope"})
    with pytest.raises(FatalDestinationError) as caught:
        create(settings()).upsert_contacts([ANN])
    assert caught.value.status == status and "nope" in str(caught.value)


def test_429_waits_for_the_retry_after_field_of_the_problem(rsps):
    rsps.post(f"{BASE}/contacts", status=429, json={"type": "https://problems.omnisend.com/rate-limit-exceeded",
                                                     "title": "Too Many Requests", "status": 429, "retryAfter": 60})
    with pytest.raises(RetriableDestinationError) as caught:
        create(settings()).upsert_contacts([ANN])
    assert caught.value.retry_after == 60.0


def test_429_with_retry_after_header(rsps):
    rsps.post(f"{BASE}/batches", status=429, headers={"Retry-After": "7"}, json={})
    with pytest.raises(RetriableDestinationError) as caught:
        create(settings()).upsert_contacts([ANN, ANN])
    assert caught.value.status == 429 and caught.value.retry_after == 7.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retriable(rsps, status):
    rsps.post(f"{BASE}/contacts", status=status, json={"title": "Internal server error"})
    with pytest.raises(RetriableDestinationError):
        create(settings()).upsert_contacts([ANN])


@pytest.mark.parametrize("failure", [requests.exceptions.ReadTimeout(), requests.exceptions.ConnectionError()])
def test_timeouts_and_connection_errors_are_retriable(rsps, failure):
    rsps.post(f"{BASE}/contacts", body=failure)
    with pytest.raises(RetriableDestinationError):
        create(settings()).upsert_contacts([ANN])


def test_no_message_holds_the_email_or_the_key(rsps):
    rsps.post(f"{BASE}/contacts", status=403, json={"detail": f"key {KEY} may not write ann@example.com"})
    with pytest.raises(FatalDestinationError) as caught:
        create(settings()).upsert_contacts([ANN])
    assert KEY not in str(caught.value) and "ann@example.com" not in str(caught.value)


def test_check_config_lists_a_missing_key_and_bad_property_names():
    from adapters.destinations import validate

    problems = validate(settings(options={}, properties={"lifecycle stage": "rfm"}))
    assert any(p.startswith("api_key: is required") for p in problems)
    assert any("properties.lifecycle stage" in p for p in problems)
    assert validate(settings()) == []
