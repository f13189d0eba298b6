"""Klaviyo adapter: JSON:API shapes of revision 2026-07-15, bulk import jobs, events, status classes, secrecy."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import requests

from adapters.destinations import create, klaviyo
from connector.config import DestinationSettings
from connector.errors import FatalDestinationError, RetriableDestinationError
from connector.domain.ports import ContactUpdate, StageChange

KEY = "pk_live_0123456789abcdef0123"
BASE = "https://a.klaviyo.com"
PROPS = {"lifecycle_stage": "rfm", "lifecycle_phase": "phases", "aov": "aov_365d"}
AT = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
ANN = ContactUpdate("ann@example.com", None, {"lifecycle_stage": "Champions", "lifecycle_phase": "Loyalty",
                                              "aov": "42.10"})


def settings(events=True, **overrides) -> DestinationSettings:
    values = dict(type="klaviyo", name="klaviyo", properties=PROPS, events=events, base_url=None,
                  rate_per_minute=None, options={"api_key": KEY})
    values.update(overrides)
    return DestinationSettings(**values)


def body(call) -> dict:
    return json.loads(call.request.body)


def test_one_profile_is_imported_with_its_properties(rsps):
    rsps.post(f"{BASE}/api/profile-import", status=200, json={"data": {"type": "profile", "id": "01H"}})
    assert create(settings()).upsert_contacts([ANN]) == []
    request = rsps.calls[0].request
    assert request.headers["Authorization"] == f"Klaviyo-API-Key {KEY}"
    assert request.headers["revision"] == "2026-07-15"
    assert request.headers["Content-Type"] == "application/vnd.api+json"
    assert request.headers["Accept"] == "application/vnd.api+json"
    assert body(rsps.calls[0]) == {"data": {"type": "profile", "attributes": {
        "email": "ann@example.com",
        "properties": {"lifecycle_stage": "Champions", "lifecycle_phase": "Loyalty", "aov": 42.1}}}}


def test_removed_properties_are_unset_not_nulled(rsps):
    rsps.post(f"{BASE}/api/profile-import", status=200, json={})
    create(settings()).upsert_contacts([ContactUpdate("ann@example.com", None, dict.fromkeys(PROPS))])
    sent = body(rsps.calls[0])["data"]
    assert sent["attributes"] == {"email": "ann@example.com", "properties": {}}
    assert sent["meta"] == {"patch_properties": {"unset": ["lifecycle_stage", "lifecycle_phase", "aov"]}}


def test_a_customer_known_by_phone_is_matched_on_phone_number(rsps):
    rsps.post(f"{BASE}/api/profile-import", status=201, json={})
    create(settings()).upsert_contacts([ContactUpdate(None, "+15005550006", {"lifecycle_stage": "Recent"})])
    assert body(rsps.calls[0])["data"]["attributes"]["phone_number"] == "+15005550006"


def test_a_full_batch_is_one_bulk_import_job(rsps):
    rsps.post(f"{BASE}/api/profile-bulk-import-jobs", status=202,
              json={"data": {"type": "profile-bulk-import-job", "id": "job1"}})
    updates = [ContactUpdate(f"c{i}@example.com", None, {"lifecycle_stage": "Lost"}) for i in range(klaviyo.BATCH_SIZE)]
    destination = create(settings())
    assert destination.max_batch == 10_000
    assert destination.upsert_contacts(updates) == []
    assert len(rsps.calls) == 1
    sent = body(rsps.calls[0])["data"]
    assert sent["type"] == "profile-bulk-import-job"
    profiles = sent["attributes"]["profiles"]["data"]
    assert len(profiles) == 10_000
    assert profiles[3] == {"type": "profile", "attributes": {"email": "c3@example.com",
                                                              "properties": {"lifecycle_stage": "Lost"}}}


def test_a_bulk_job_weighs_on_the_rate_budget_as_its_steady_limit_says():
    destination = create(settings())
    assert destination.default_rate_per_minute == 750
    assert destination.requests_for(1) == 1
    assert destination.requests_for(2) == destination.requests_for(10_000) == 5
    assert destination.requests_for(10_001) == 10


def test_the_stage_change_is_an_event_with_unique_id_and_time(rsps):
    rsps.post(f"{BASE}/api/events", status=202)
    event = StageChange("stagesync-acme-9", "ann@example.com", None, "phases", "Development", "Loyalty", AT)
    destination = create(settings())
    assert destination.supports_events and destination.send_events([event]) == []
    assert body(rsps.calls[0]) == {"data": {"type": "event", "attributes": {
        "properties": {"model": "phases", "from": "Development", "to": "Loyalty", "at": "2026-06-01T12:00:00Z"},
        "time": "2026-06-01T12:00:00Z",
        "unique_id": "stagesync-acme-9",
        "metric": {"data": {"type": "metric", "attributes": {"name": "Lifecycle Stage Changed"}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": "ann@example.com"}}},
    }}}


def test_a_throttled_event_fails_itself_and_those_after_it(rsps):
    rsps.post(f"{BASE}/api/events", status=202)
    rsps.post(f"{BASE}/api/events", status=429, headers={"Retry-After": "2"},
              json={"errors": [{"id": "x", "code": "throttled", "title": "Request was throttled.", "detail": "wait"}]})
    events = [StageChange(f"e{i}", "ann@example.com", None, "rfm", "Recent", "Loyalists", AT) for i in range(3)]
    failures = create(settings()).send_events(events)
    assert [f.index for f in failures] == [1, 2]
    assert all(isinstance(f.error, RetriableDestinationError) and f.error.retry_after == 2.0 for f in failures)


def test_events_are_off_unless_configured():
    assert not create(settings(events=False)).supports_events


def test_base_url_overrides_the_vendor(rsps):
    rsps.post("http://127.0.0.1:9999/api/profile-import", status=200, json={})
    create(settings(base_url="http://127.0.0.1:9999")).upsert_contacts([ANN])


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_fatal_with_klaviyo_s_error_detail(rsps, status):
    rsps.post(f"{BASE}/api/profile-import", status=status, json={"errors": [
        {"id": "e1", "status": status, "code": "invalid", "title": "Invalid input.", "detail": "phone_number is bad",
         "source": {"pointer": "/data/attributes/phone_number"}}]})
    with pytest.raises(FatalDestinationError) as caught:
        create(settings()).upsert_contacts([ANN])
    assert caught.value.status == status and "phone_number is bad" in str(caught.value)


def test_429_is_retriable_after_retry_after(rsps):
    rsps.post(f"{BASE}/api/profile-bulk-import-jobs", status=429, headers={"Retry-After": "30"}, json={"errors": []})
    with pytest.raises(RetriableDestinationError) as caught:
        create(settings()).upsert_contacts([ANN, ANN])
    assert caught.value.retry_after == 30.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retriable(rsps, status):
    rsps.post(f"{BASE}/api/profile-import", status=status)
    with pytest.raises(RetriableDestinationError):
        create(settings()).upsert_contacts([ANN])


@pytest.mark.parametrize("failure", [requests.exceptions.ConnectTimeout(), requests.exceptions.ConnectionError()])
def test_timeouts_and_connection_errors_are_retriable(rsps, failure):
    rsps.post(f"{BASE}/api/profile-import", body=failure)
    with pytest.raises(RetriableDestinationError):
        create(settings()).upsert_contacts([ANN])


def test_no_message_holds_the_email_or_the_key(rsps):
    rsps.post(f"{BASE}/api/profile-import", status=400,
              json={"errors": [{"detail": f"ann@example.com rejected for Klaviyo-API-Key {KEY}"}]})
    with pytest.raises(FatalDestinationError) as caught:
        create(settings()).upsert_contacts([ANN])
    assert KEY not in str(caught.value) and "ann@example.com" not in str(caught.value)
