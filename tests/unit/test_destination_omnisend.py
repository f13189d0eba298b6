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


def finished_batch(rsps, batch_id="b1", errors=(), responses=()):
    """The reads of a finished batch, shaped as "Get batch information" / "Get batch items" document them
    (api-docs.omnisend.com/reference/get_batches-batchid, .../get_batches-batchid-items: Batch, BatchItem)."""
    rsps.get(f"{BASE}/batches/{batch_id}", json={"batchID": batch_id, "endpoint": "contacts", "method": "POST",
                                                  "status": "finished", "totalCount": 100, "finishedCount": 100,
                                                  "errorsCount": len(errors)})
    rsps.get(f"{BASE}/batches/{batch_id}/items", json={"batchID": batch_id, "status": "finished",
                                                        "errors": list(errors), "responses": list(responses)})


def test_a_full_batch_is_one_call_to_the_batches_api(rsps):
    rsps.post(f"{BASE}/batches", status=201, json={"batchID": "b1", "totalCount": 100})
    finished_batch(rsps)
    updates = [ContactUpdate(f"c{i}@example.com", None, {"lifecycle_stage": "Lost"})
               for i in range(omnisend.BATCH_SIZE)]
    destination = create(settings())
    assert destination.max_batch == 100
    assert destination.upsert_contacts(updates) == []
    assert [c.request.method for c in rsps.calls] == ["POST", "GET", "GET"]
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


def test_events_are_never_batched_each_is_its_own_post(rsps):
    # api-docs.omnisend.com/reference/post_batches: "Before sending a batch of events, ensure there are no
    # automations [...] This could result in duplicate messages"; and eventID de-duplication does "not [work]
    # on real-time events used for automations" (api-docs.omnisend.com/reference/post_events).
    for _ in range(3):
        rsps.post(f"{BASE}/events", status=202)
    destination = create(settings())
    events = [change(event_id=f"e{i}") for i in range(3)]
    assert destination.max_event_batch == 1
    assert destination.send_events(events) == []
    assert [c.request.url for c in rsps.calls] == [f"{BASE}/events"] * 3
    assert body(rsps.calls[0])["eventID"] == str(uuid.uuid5(omnisend.EVENT_NAMESPACE, "e0"))


@pytest.mark.parametrize("failure", [dict(status=500, json={"title": "Internal server error"}),
                                     dict(body=requests.exceptions.ReadTimeout())])
def test_an_event_that_may_have_arrived_is_not_retried(rsps, failure):
    from connector.errors import OutcomeUnknownError

    rsps.post(f"{BASE}/events", **failure)
    with pytest.raises(OutcomeUnknownError):
        create(settings()).send_events([change()])
    assert len(rsps.calls) == 1


def test_an_event_refused_with_429_stays_retriable(rsps):
    rsps.post(f"{BASE}/events", status=429, json={"title": "Too Many Requests", "status": 429, "retryAfter": 5})
    with pytest.raises(RetriableDestinationError) as caught:
        create(settings()).send_events([change()])
    assert caught.value.retry_after == 5.0


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


def contact_request(email: str) -> dict:
    return {"identifiers": [{"type": "email", "id": email, "sendWelcomeMessage": False}],
            "customProperties": {"lifecycle_stage": "Lost"}}


def test_a_batch_is_read_back_until_finished_and_refused_items_carry_omnisends_reason(rsps):
    # POST /batches only starts an asynchronous batch (api-docs.omnisend.com/reference/post_batches:
    # "Creating batches is an asynchronous process"): the item refusals are known from its items only.
    rsps.post(f"{BASE}/batches", status=201, json={"batchID": "b9", "totalCount": 3})
    rsps.get(f"{BASE}/batches/b9", json={"batchID": "b9", "status": "inProgress", "totalCount": 3, "finishedCount": 1})
    finished_batch(rsps, "b9", errors=[{
        "itemID": "i2", "request": contact_request("bad@example.com"), "responseCode": 400, "status": "finished",
        "response": {"title": "Validation failed", "detail": "identifiers[0].id: invalid email"}}],
        responses=[{"itemID": "i1", "request": contact_request("a@example.com"), "responseCode": 200,
                    "status": "finished", "response": {"contactID": "c1"}},
                   {"itemID": "i3", "request": contact_request("c@example.com"), "responseCode": 200,
                    "status": "finished", "response": {"contactID": "c3"}}])
    destination = create(settings())
    waits = []
    destination.sleep = waits.append
    updates = [ContactUpdate(e, None, {"lifecycle_stage": "Lost"}) for e in
               ("a@example.com", "bad@example.com", "c@example.com")]
    failures = destination.upsert_contacts(updates)
    assert [f.index for f in failures] == [1]
    error = failures[0].error
    assert isinstance(error, FatalDestinationError) and error.status == 400
    assert "invalid email" in str(error) and "bad@example.com" not in str(error)
    assert waits == [1.0]  # one wait between the two reads of the batch
    assert [c.request.url.removeprefix(BASE) for c in rsps.calls] == [
        "/batches", "/batches/b9", "/batches/b9", "/batches/b9/items"]


def test_a_batch_still_running_after_the_bounded_reads_is_retried_later_not_counted_synced(rsps):
    rsps.post(f"{BASE}/batches", status=201, json={"batchID": "b5"})
    for _ in range(omnisend.BATCH_POLLS):
        rsps.get(f"{BASE}/batches/b5", json={"batchID": "b5", "status": "inProgress"})
    destination = create(settings())
    waits = []
    destination.sleep = waits.append
    with pytest.raises(RetriableDestinationError) as caught:
        destination.upsert_contacts([ANN, ContactUpdate("bo@example.com", None, {})])
    assert "still inProgress" in str(caught.value) and caught.value.retry_after
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0]  # backoff, capped, bounded
    assert destination.requests_for(2) == 1 + omnisend.BATCH_POLLS + 1  # every read is paid for in the rate


def test_the_waits_between_reads_and_before_a_resend_are_the_ones_given(rsps):
    rsps.post(f"{BASE}/batches", status=201, json={"batchID": "b6"})
    for _ in range(omnisend.BATCH_POLLS):
        rsps.get(f"{BASE}/batches/b6", json={"batchID": "b6", "status": "inProgress"})
    table = settings()
    destination = omnisend.Omnisend(omnisend.OmnisendSettings.build(table), poll_seconds=0.0,
                                    resend_after_seconds=0.0)
    waits = []
    destination.sleep = waits.append
    with pytest.raises(RetriableDestinationError) as caught:
        destination.upsert_contacts([ANN, ContactUpdate("bo@example.com", None, {})])
    assert waits == [0.0] * (omnisend.BATCH_POLLS - 1) and caught.value.retry_after == 0.0
    assert len(rsps.calls) == 1 + omnisend.BATCH_POLLS  # as many reads as with the production waits


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


def test_a_failed_read_of_a_batch_is_repeated_within_the_read_budget(rsps):
    rsps.post(f"{BASE}/batches", status=201, json={"batchID": "b7"})
    rsps.get(f"{BASE}/batches/b7", status=500, json={"title": "Internal server error"})
    finished_batch(rsps, "b7")
    destination = create(settings())
    destination.sleep = lambda seconds: None
    assert destination.upsert_contacts([ANN, ContactUpdate("bo@example.com", None, {})]) == []


def test_a_removed_property_is_cleared_with_an_empty_string_never_null(rsps):
    rsps.post(f"{BASE}/contacts", status=200, json={})
    create(settings()).upsert_contacts([ContactUpdate("ann@example.com", None, dict.fromkeys(PROPS))])
    assert body(rsps.calls[0])["customProperties"] == dict.fromkeys(PROPS, "")
