"""Webhook destination: Standard Webhooks signatures (the spec's test vector and our own verifier), body
shape, one POST per contact and per change, statuses, configuration, secrecy."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest
import requests

from adapters.destinations import create, validate, webhook
from adapters.platforms.signatures import verify_standard
from connector.config import DestinationSettings
from connector.errors import FatalDestinationError, RetriableDestinationError
from connector.domain.ports import ContactUpdate, StageChange

URL = "https://hooks.example.net/stagesync"
SECRET = "whsec_" + base64.b64encode(b"stagesync-webhook-destination-key").decode()
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
ANN = ContactUpdate("ann@example.com", None, {"lifecycle_stage": "Champions", "orders": 4})


def settings(events=True, **overrides) -> DestinationSettings:
    values = dict(type="webhook", name="hook", properties={"lifecycle_stage": "rfm", "orders": "orders_365d"},
                  events=events, base_url=None, rate_per_minute=None, options={"url": URL, "secret": SECRET})
    values.update(overrides)
    return DestinationSettings(**values)


def destination(**overrides) -> webhook.Webhook:
    return webhook.Webhook(webhook.WebhookSettings.build(settings(**overrides)), shop="acme", clock=lambda: NOW)


def test_signing_matches_the_standard_webhooks_test_vector():
    key = webhook.secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert webhook.sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}') == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_contact_update_is_a_signed_post_our_own_verifier_accepts(rsps):
    rsps.post(URL, status=204)
    assert destination().upsert_contacts([ANN]) == []
    request = rsps.calls[0].request
    headers = request.headers
    assert headers["Content-Type"] == "application/json" and headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    assert headers["webhook-id"].startswith("msg_")
    verify_standard(request.body, SECRET, headers["webhook-id"], headers["webhook-timestamp"],
                    headers["webhook-signature"], NOW)
    assert json.loads(request.body) == {"shop": "acme", "email": "ann@example.com", "phone": None,
                                        "properties": {"lifecycle_stage": "Champions", "orders": 4}, "changes": []}


def test_the_same_update_keeps_its_id_so_a_receiver_can_drop_a_repeat(rsps):
    rsps.post(URL, status=200)
    rsps.post(URL, status=200)
    rsps.post(URL, status=200)
    hook = destination()
    hook.upsert_contacts([ANN])
    hook.upsert_contacts([ANN])
    hook.upsert_contacts([ContactUpdate("ann@example.com", None, {"lifecycle_stage": "Lost", "orders": 0})])
    ids = [c.request.headers["webhook-id"] for c in rsps.calls]
    assert ids[0] == ids[1] != ids[2]


def test_a_stage_change_carries_the_properties_and_the_change_under_its_event_id(rsps):
    rsps.post(URL, status=200)
    event = StageChange("stagesync-acme-12", None, "+33612345678", "rfm", "Recent", "Loyalists", NOW,
                        {"lifecycle_stage": "Loyalists", "orders": 2})
    hook = destination()
    assert hook.supports_events and hook.send_events([event]) == []
    request = rsps.calls[0].request
    assert request.headers["webhook-id"] == "stagesync-acme-12"
    assert json.loads(request.body) == {
        "shop": "acme", "email": None, "phone": "+33612345678",
        "properties": {"lifecycle_stage": "Loyalists", "orders": 2},
        "changes": [{"model": "rfm", "from": "Recent", "to": "Loyalists", "at": "2026-06-01T12:00:00Z",
                     "event_id": "stagesync-acme-12"}]}


def test_each_contact_is_its_own_post_and_a_refusal_fails_only_its_contact(rsps):
    rsps.post(URL, status=200)
    rsps.post(URL, status=422, json={"error": "unknown property"})
    rsps.post(URL, status=200)
    hook = destination()
    updates = [ContactUpdate(f"c{i}@example.com", None, {"lifecycle_stage": "Lost"}) for i in range(3)]
    assert hook.requests_for(3) == 3
    failures = hook.upsert_contacts(updates)
    assert [f.index for f in failures] == [1] and failures[0].error.status == 422


def test_a_struggling_receiver_stops_the_run_and_fails_the_rest(rsps):
    rsps.post(URL, status=200)
    rsps.post(URL, status=503, headers={"Retry-After": "9"})
    updates = [ContactUpdate(f"c{i}@example.com", None, {"lifecycle_stage": "Lost"}) for i in range(4)]
    failures = destination().upsert_contacts(updates)
    assert [f.index for f in failures] == [1, 2, 3]
    assert all(isinstance(f.error, RetriableDestinationError) and f.error.retry_after == 9 for f in failures)


def test_base_url_overrides_the_configured_url(rsps):
    rsps.post("http://127.0.0.1:9999/in", status=200)
    destination(base_url="http://127.0.0.1:9999/in").upsert_contacts([ANN])


def test_the_registry_builds_it_with_the_shop(rsps):
    rsps.post(URL, status=200)
    create(settings(), shop="acme").upsert_contacts([ANN])
    assert json.loads(rsps.calls[0].request.body)["shop"] == "acme"


def test_events_are_off_unless_configured():
    assert not destination(events=False).supports_events


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_fatal(rsps, status):
    rsps.post(URL, status=status, body="rejected")
    with pytest.raises(FatalDestinationError) as caught:
        destination().upsert_contacts([ANN])
    assert caught.value.status == status and "rejected" in str(caught.value)


def test_429_is_retriable_after_retry_after(rsps):
    rsps.post(URL, status=429, headers={"Retry-After": "11"})
    with pytest.raises(RetriableDestinationError) as caught:
        destination().upsert_contacts([ANN])
    assert caught.value.retry_after == 11.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retriable(rsps, status):
    rsps.post(URL, status=status)
    with pytest.raises(RetriableDestinationError):
        destination().upsert_contacts([ANN])


@pytest.mark.parametrize("failure", [requests.exceptions.ConnectTimeout(), requests.exceptions.ConnectionError()])
def test_timeouts_and_connection_errors_are_retriable(rsps, failure):
    rsps.post(URL, body=failure)
    with pytest.raises(RetriableDestinationError):
        destination().upsert_contacts([ANN])


def test_no_message_holds_the_email_or_the_secret(rsps):
    rsps.post(URL, status=400, body=f"bad signature for ann@example.com with {SECRET}")
    with pytest.raises(FatalDestinationError) as caught:
        destination().upsert_contacts([ANN])
    assert SECRET not in str(caught.value) and "ann@example.com" not in str(caught.value)


@pytest.mark.parametrize("options, wanted", [
    ({}, ["url: is required", "secret: is required"]),
    ({"url": "ftp://x", "secret": "plain"}, ["url: is required", "secret: is required"]),
    ({"url": URL, "secret": "whsec_not base64!"}, ["secret: is required"]),
    ({"url": URL, "secret": SECRET, "api_key": "k"}, ["api_key: unknown option"]),
])
def test_check_config_wants_a_url_and_a_whsec_secret(options, wanted):
    problems = validate(settings(options=options))
    assert len(problems) == len(wanted) and all(p.startswith(w) for p, w in zip(problems, wanted))
    assert all("plain" not in p for p in problems)


def test_a_good_configuration_has_no_problem():
    assert validate(settings()) == []
