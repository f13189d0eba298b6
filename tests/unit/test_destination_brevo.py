"""Brevo adapter: attributes, contact upsert, batch update with unknown contacts, events, statuses, secrecy."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import requests

from adapters.destinations import brevo, create
from connector.config import DestinationSettings
from connector.errors import FatalDestinationError, RetriableDestinationError
from connector.domain.ports import ContactUpdate, StageChange

KEY = "xkeysib-0123456789abcdef0123456789abcdef"
BASE = "https://api.brevo.com/v3"
PROPS = {"lifecycle_stage": "rfm", "orders": "orders_total", "spent": "total_spent", "first_order": "first_order_date"}
AT = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
ANN = ContactUpdate("ann@example.com", None, {"lifecycle_stage": "Champions", "orders": 7, "spent": "310.00",
                                              "first_order": "2024-02-01"})


def settings(events=True, **overrides) -> DestinationSettings:
    values = dict(type="brevo", name="brevo", properties=PROPS, events=events, base_url=None,
                  rate_per_minute=None, options={"api_key": KEY})
    values.update(overrides)
    return DestinationSettings(**values)


def body(call) -> dict:
    return json.loads(call.request.body)


def ready(rsps, props=PROPS):
    """Every attribute exists already: no creation."""
    rsps.get(f"{BASE}/contacts/attributes",
             json={"attributes": [{"name": brevo.attribute_name(p), "category": "normal", "type": "text"}
                                  for p in props]})
    return create(settings(properties=props))


def test_missing_attributes_are_created_with_their_type_then_the_contact_upserted(rsps):
    rsps.get(f"{BASE}/contacts/attributes", json={"attributes": [
        {"name": "FIRSTNAME", "category": "normal", "type": "text"},
        {"name": "LIFECYCLE_STAGE", "category": "normal", "type": "text"}]})
    rsps.post(f"{BASE}/contacts/attributes/normal/ORDERS", status=201)
    rsps.post(f"{BASE}/contacts/attributes/normal/SPENT", status=201)
    rsps.post(f"{BASE}/contacts/attributes/normal/FIRST_ORDER", status=201)
    rsps.post(f"{BASE}/contacts", status=201, json={"id": 42})
    destination = create(settings())
    assert destination.requests_for(1) == 2
    assert destination.upsert_contacts([ANN]) == []
    assert [body(c) for c in rsps.calls[1:4]] == [{"type": "float"}, {"type": "float"}, {"type": "date"}]
    request = rsps.calls[4].request
    assert request.headers["api-key"] == KEY and request.headers["Content-Type"] == "application/json"
    assert body(rsps.calls[4]) == {"email": "ann@example.com", "updateEnabled": True, "attributes": {
        "LIFECYCLE_STAGE": "Champions", "ORDERS": 7, "SPENT": 310.0, "FIRST_ORDER": "2024-02-01"}}
    assert destination.requests_for(1) == 1


def test_a_customer_known_by_phone_is_upserted_by_its_sms_attribute(rsps):
    destination = ready(rsps, {"lifecycle_stage": "rfm"})
    rsps.post(f"{BASE}/contacts", status=204)
    destination.upsert_contacts([ContactUpdate(None, "+33612345678", {"lifecycle_stage": "Recent"})])
    assert body(rsps.calls[1]) == {"updateEnabled": True,
                                   "attributes": {"LIFECYCLE_STAGE": "Recent", "SMS": "+33612345678"}}


def test_a_full_batch_is_one_call(rsps):
    destination = ready(rsps, {"lifecycle_stage": "rfm"})
    rsps.post(f"{BASE}/contacts/batch", status=204)
    updates = [ContactUpdate(f"c{i}@example.com", None, {"lifecycle_stage": "Lost"}) for i in range(brevo.BATCH_SIZE)]
    updates[5] = ContactUpdate(None, "+33600000005", {"lifecycle_stage": "Lost"})
    assert destination.upsert_contacts(updates) == []
    assert len(rsps.calls) == 2
    contacts = body(rsps.calls[1])["contacts"]
    assert len(contacts) == 100
    assert contacts[0] == {"email": "c0@example.com", "attributes": {"LIFECYCLE_STAGE": "Lost"}}
    assert contacts[5] == {"sms": "+33600000005", "attributes": {"LIFECYCLE_STAGE": "Lost"}}


def test_unknown_contacts_of_a_batch_are_created_and_the_others_sent_again(rsps):
    destination = ready(rsps, {"lifecycle_stage": "rfm"})
    rsps.post(f"{BASE}/contacts/batch", status=404,
              json={"code": "document_not_found", "message": "No contact found for indexes 1,3"})
    rsps.post(f"{BASE}/contacts", status=201, json={"id": 7})
    rsps.post(f"{BASE}/contacts", status=400, json={"code": "invalid_parameter", "message": "Invalid phone number"})
    rsps.post(f"{BASE}/contacts/batch", status=204)
    updates = [ContactUpdate(f"c{i}@example.com", None, {"lifecycle_stage": "Lost"}) for i in range(4)]
    failures = destination.upsert_contacts(updates)
    assert [body(c)["email"] for c in rsps.calls[2:4]] == ["c1@example.com", "c3@example.com"]
    assert [c["email"] for c in body(rsps.calls[4])["contacts"]] == ["c0@example.com", "c2@example.com"]
    assert [f.index for f in failures] == [3] and isinstance(failures[0].error, FatalDestinationError)


def test_another_404_of_a_batch_is_fatal(rsps):
    destination = ready(rsps, {"lifecycle_stage": "rfm"})
    rsps.post(f"{BASE}/contacts/batch", status=404, json={"code": "document_not_found", "message": "List not found"})
    with pytest.raises(FatalDestinationError, match="List not found"):
        destination.upsert_contacts([ANN, ANN])


def test_a_partial_answer_fails_the_contacts_it_names(rsps):
    destination = ready(rsps, {"lifecycle_stage": "rfm"})
    rsps.post(f"{BASE}/contacts/batch", status=207,
              json={"successIds": ["a@example.com"], "failureIds": ["b@example.com"]})
    updates = [ContactUpdate(f"{x}@example.com", None, {"lifecycle_stage": "Lost"}) for x in "ab"]
    failures = destination.upsert_contacts(updates)
    assert [f.index for f in failures] == [1] and "b@example.com" not in str(failures[0].error)


def test_the_stage_change_is_a_brevo_event(rsps):
    rsps.post(f"{BASE}/events", status=204)
    destination = create(settings())
    event = StageChange("stagesync-acme-3", "ann@example.com", None, "rfm", "At risk", "Can't lose", AT)
    assert destination.supports_events and destination.send_events([event]) == []
    assert body(rsps.calls[0]) == {
        "event_name": "lifecycle_stage_changed", "event_date": "2026-06-01T12:00:00Z",
        "identifiers": {"email_id": "ann@example.com"},
        "event_properties": {"model": "rfm", "from": "At risk", "to": "Can't lose", "at": "2026-06-01T12:00:00Z",
                             "event_id": "stagesync-acme-3"}}


def test_events_are_off_unless_configured():
    assert not create(settings(events=False)).supports_events


def test_base_url_and_rate(rsps):
    rsps.get("http://127.0.0.1:9999/contacts/attributes", json={"attributes": [{"name": "LIFECYCLE_STAGE"}]})
    rsps.post("http://127.0.0.1:9999/contacts", status=204)
    destination = create(settings(base_url="http://127.0.0.1:9999", properties={"lifecycle_stage": "rfm"},
                                  rate_per_minute=120))
    destination.upsert_contacts([ContactUpdate("ann@example.com", None, {"lifecycle_stage": "Lost"})])
    assert destination.rate_per_minute == 120 and brevo.Brevo.default_rate_per_minute == 600


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_fatal(rsps, status):
    destination = ready(rsps)
    rsps.post(f"{BASE}/contacts", status=status, json={"code": "unauthorized", "message": "Key not found"})
    with pytest.raises(FatalDestinationError) as caught:
        destination.upsert_contacts([ANN])
    assert caught.value.status == status and "Key not found" in str(caught.value)


def test_429_waits_for_the_rate_limit_reset_header(rsps):
    destination = ready(rsps)
    rsps.post(f"{BASE}/contacts", status=429, headers={"x-sib-ratelimit-reset": "12"},
              json={"code": "too_many_requests", "message": "Too many requests"})
    with pytest.raises(RetriableDestinationError) as caught:
        destination.upsert_contacts([ANN])
    assert caught.value.status == 429 and caught.value.retry_after == 12.0


def test_429_with_retry_after(rsps):
    rsps.post(f"{BASE}/events", status=429, headers={"Retry-After": "4"})
    with pytest.raises(RetriableDestinationError) as caught:
        create(settings()).send_events([StageChange("e", "a@example.com", None, "rfm", "A", "B", AT)])
    assert caught.value.retry_after == 4.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retriable(rsps, status):
    destination = ready(rsps)
    rsps.post(f"{BASE}/contacts", status=status)
    with pytest.raises(RetriableDestinationError):
        destination.upsert_contacts([ANN])


@pytest.mark.parametrize("failure", [requests.exceptions.ReadTimeout(), requests.exceptions.ConnectionError()])
def test_timeouts_and_connection_errors_are_retriable(rsps, failure):
    rsps.get(f"{BASE}/contacts/attributes", body=failure)
    with pytest.raises(RetriableDestinationError):
        create(settings()).upsert_contacts([ANN])


def test_no_message_holds_the_email_or_the_key(rsps):
    destination = ready(rsps)
    rsps.post(f"{BASE}/contacts", status=400,
              json={"code": "invalid_parameter", "message": f"ann@example.com: api-key {KEY} not allowed"})
    with pytest.raises(FatalDestinationError) as caught:
        destination.upsert_contacts([ANN])
    assert KEY not in str(caught.value) and "ann@example.com" not in str(caught.value)
