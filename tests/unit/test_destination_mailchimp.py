"""Mailchimp adapter: data center from the key, merge fields, member upsert, batch subscribe errors, statuses."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
import requests

from adapters.destinations import create, mailchimp, validate
from connector.config import DestinationSettings
from connector.errors import FatalDestinationError, RetriableDestinationError
from connector.domain.ports import ContactUpdate

KEY = "0123456789abcdef0123456789abcdef-us21"
BASE = "https://us21.api.mailchimp.com/3.0"
LIST = "a1b2c3d4e5"
PROPS = {"stage": "rfm", "lifecycle_phase": "phases", "orders": "orders_365d", "last_order": "last_order_date"}
ANN = ContactUpdate("Ann@Example.com", None, {"stage": "Champions", "lifecycle_phase": "Loyalty", "orders": 4,
                                              "last_order": "2026-05-30"})
PHASE_TAG = mailchimp.merge_tag("lifecycle_phase")
EXISTING = {"merge_fields": [
    {"merge_id": 1, "tag": "FNAME", "name": "First Name", "type": "text"},
    {"merge_id": 5, "tag": "STAGE", "name": "stage", "type": "text"},
    {"merge_id": 6, "tag": "ORDERS365", "name": "orders", "type": "number"},  # made by hand: its tag is kept
], "total_items": 3}


def settings(**overrides) -> DestinationSettings:
    values = dict(type="mailchimp", name="mailchimp", properties=PROPS, events=True, base_url=None,
                  rate_per_minute=None, options={"api_key": KEY, "list_id": LIST})
    values.update(overrides)
    return DestinationSettings(**values)


def body(call) -> dict:
    return json.loads(call.request.body)


def merge_fields_ready(rsps):
    """The audience has STAGE and ORDERS365; the two other fields get created."""
    rsps.get(f"{BASE}/lists/{LIST}/merge-fields", json=EXISTING)
    rsps.post(f"{BASE}/lists/{LIST}/merge-fields", json={"tag": PHASE_TAG, "name": "lifecycle_phase"})
    rsps.post(f"{BASE}/lists/{LIST}/merge-fields", json={"tag": "LAST_ORDER", "name": "last_order"})


def test_merge_tags_are_upper_case_within_ten_characters_and_stable():
    assert mailchimp.merge_tag("stage") == "STAGE"
    assert mailchimp.merge_tag("last_order") == "LAST_ORDER"
    long = mailchimp.merge_tag("lifecycle_phase")
    assert long == mailchimp.merge_tag("lifecycle_phase") and len(long) == 10 and long.startswith("LIFECY")
    assert mailchimp.merge_tag("lifecycle_stage") != long
    assert all(len(mailchimp.merge_tag(n)) <= 10 for n in ["a" * 40, "1st", "é-é", "x"])


def test_the_data_center_comes_from_the_key_and_auth_is_basic(rsps):
    merge_fields_ready(rsps)
    rsps.put(f"{BASE}/lists/{LIST}/members/{hashlib.md5(b'ann@example.com').hexdigest()}", json={"id": "m"})
    create(settings()).upsert_contacts([ANN])
    auth = rsps.calls[0].request.headers["Authorization"]
    assert auth.startswith("Basic ") and base64.b64decode(auth[6:]).decode().endswith(f":{KEY}")


def test_missing_merge_fields_are_created_once_then_the_member_is_upserted(rsps):
    merge_fields_ready(rsps)
    member_url = f"{BASE}/lists/{LIST}/members/{hashlib.md5(b'ann@example.com').hexdigest()}"
    rsps.put(member_url, json={"id": "m"})
    rsps.put(member_url, json={"id": "m"})
    destination = create(settings())
    assert destination.requests_for(1) == 2  # the first call also lists the merge fields
    assert destination.upsert_contacts([ANN]) == []
    assert destination.requests_for(1) == 1
    destination.upsert_contacts([ANN])  # no second listing
    assert rsps.calls[0].request.url.endswith("merge-fields?count=1000")
    assert body(rsps.calls[1]) == {"tag": PHASE_TAG, "name": "lifecycle_phase", "type": "text",
                                   "required": False, "public": False}
    assert body(rsps.calls[2])["type"] == "date"
    assert body(rsps.calls[3]) == {"email_address": "Ann@Example.com", "status_if_new": "transactional",
                                   "merge_fields": {"STAGE": "Champions", PHASE_TAG: "Loyalty", "ORDERS365": 4,
                                                    "LAST_ORDER": "2026-05-30"}}
    assert len(rsps.calls) == 5


def test_a_removed_property_is_written_empty(rsps):
    rsps.get(f"{BASE}/lists/{LIST}/merge-fields", json={"merge_fields": [{"tag": "STAGE", "name": "stage"}]})
    rsps.put(f"{BASE}/lists/{LIST}/members/{hashlib.md5(b'bob@example.com').hexdigest()}", json={})
    create(settings(properties={"stage": "rfm"})).upsert_contacts([ContactUpdate("bob@example.com", None,
                                                                                 {"stage": None})])
    assert body(rsps.calls[1])["merge_fields"] == {"STAGE": ""}


def test_a_batch_is_one_batch_subscribe_call_and_its_errors_fail_their_members(rsps):
    rsps.get(f"{BASE}/lists/{LIST}/merge-fields", json={"merge_fields": [{"tag": "STAGE", "name": "stage"}]})
    rsps.post(f"{BASE}/lists/{LIST}", json={
        "new_members": [], "updated_members": [], "total_created": 497, "total_updated": 1, "error_count": 2,
        "errors": [{"email_address": "C2@example.com", "error": "c2@example.com looks fake or invalid",
                    "error_code": "ERROR_GENERIC", "field": "email_address"},
                   {"email_address": "c9@example.com", "error": "Member in compliance state",
                    "error_code": "ERROR_CONTACT_EXISTS"}]})
    updates = [ContactUpdate(f"c{i}@example.com", None, {"stage": "Lost"}) for i in range(mailchimp.BATCH_SIZE - 1)]
    updates.append(ContactUpdate(None, "+33612345678", {"stage": "Lost"}))
    destination = create(settings(properties={"stage": "rfm"}))
    assert destination.max_batch == 500
    failures = destination.upsert_contacts(updates)
    assert len(rsps.calls) == 2
    sent = body(rsps.calls[1])
    assert sent["update_existing"] is True and len(sent["members"]) == 499
    assert sent["members"][0] == {"email_address": "c0@example.com", "status_if_new": "transactional",
                                  "merge_fields": {"STAGE": "Lost"}}
    assert all("status" not in m for m in sent["members"])
    assert [f.index for f in failures] == [2, 9, 499]
    assert all(isinstance(f.error, FatalDestinationError) for f in failures)
    assert "ERROR_GENERIC" in str(failures[0].error) and "c2@example.com" not in str(failures[0].error).lower()
    assert "phone only" in str(failures[2].error)


def test_a_single_customer_without_email_is_refused_without_a_call(rsps):
    with pytest.raises(FatalDestinationError, match="need an email"):
        create(settings()).upsert_contacts([ContactUpdate(None, "+33612345678", {"stage": "Lost"})])


def test_mailchimp_takes_no_events_even_when_asked():
    assert not create(settings(events=True)).supports_events


def test_base_url_overrides_the_data_center(rsps):
    rsps.get(f"http://127.0.0.1:9999/lists/{LIST}/merge-fields", json={"merge_fields": [{"tag": "STAGE",
                                                                                          "name": "stage"}]})
    rsps.put(f"http://127.0.0.1:9999/lists/{LIST}/members/{hashlib.md5(b'ann@example.com').hexdigest()}", json={})
    destination = create(settings(base_url="http://127.0.0.1:9999", properties={"stage": "rfm"}, rate_per_minute=30))
    destination.upsert_contacts([ANN])
    assert destination.rate_per_minute == 30


def test_check_config_wants_a_list_id_and_a_key_with_its_data_center():
    problems = validate(settings(options={"api_key": "nodatacenter", "listid": "x"}))
    assert any(p.startswith("list_id: is required") for p in problems)
    assert any("ends with its data center" in p for p in problems)
    assert any(p.startswith("listid: unknown option") for p in problems)
    assert all("nodatacenter" not in p for p in problems)
    assert validate(settings()) == []


def with_fields(rsps):
    rsps.get(f"{BASE}/lists/{LIST}/merge-fields", json={"merge_fields": [{"tag": "STAGE", "name": "stage"}]})
    return create(settings(properties={"stage": "rfm"}))


MEMBER = f"{BASE}/lists/{LIST}/members/{hashlib.md5(b'ann@example.com').hexdigest()}"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_fatal(rsps, status):
    destination = with_fields(rsps)
    rsps.put(MEMBER, status=status, json={"type": "https://mailchimp.com/developer/marketing/docs/errors/",
                                          "title": "Invalid Resource", "status": status,
                                          "detail": "Ann@Example.com looks fake or invalid, please enter a real one."})
    with pytest.raises(FatalDestinationError) as caught:
        destination.upsert_contacts([ANN])
    assert caught.value.status == status and "Invalid Resource" in str(caught.value)
    assert "Ann@Example.com" not in str(caught.value)


def test_too_many_connections_is_retriable(rsps):
    destination = with_fields(rsps)
    rsps.put(MEMBER, status=429, headers={"Retry-After": "5"}, json={"title": "Too Many Requests"})
    with pytest.raises(RetriableDestinationError) as caught:
        destination.upsert_contacts([ANN])
    assert caught.value.retry_after == 5.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retriable(rsps, status):
    destination = with_fields(rsps)
    rsps.put(MEMBER, status=status)
    with pytest.raises(RetriableDestinationError):
        destination.upsert_contacts([ANN])


@pytest.mark.parametrize("failure", [requests.exceptions.ReadTimeout(), requests.exceptions.ConnectionError()])
def test_timeouts_and_connection_errors_are_retriable(rsps, failure):
    rsps.get(f"{BASE}/lists/{LIST}/merge-fields", body=failure)
    with pytest.raises(RetriableDestinationError):
        create(settings()).upsert_contacts([ANN])


def test_no_message_holds_the_key(rsps):
    rsps.get(f"{BASE}/lists/{LIST}/merge-fields", status=401,
             json={"title": "API Key Invalid", "detail": f"Your API key {KEY} may be invalid"})
    with pytest.raises(FatalDestinationError) as caught:
        create(settings()).upsert_contacts([ANN])
    assert KEY not in str(caught.value)
