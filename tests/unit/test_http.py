"""adapters/http.py: the session, the classification of every status class, timeouts, and the retry helper."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests

from adapters import http
from connector.errors import FatalDestinationError, RetriableDestinationError

URL = "https://vendor.test/v1/contacts"
EMAIL = "jane.doe@example.com"
KEY = "sk-live-0123456789abcdef"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def call(**kwargs):
    return http.send(http.make_session(), "POST", URL, destination="acme-vendor", secrets=[KEY], json={}, **kwargs)


# --- session -----------------------------------------------------------------------------------

def test_the_session_says_who_we_are_and_every_call_has_both_timeouts(rsps):
    rsps.post(URL, status=200, json={})
    call()
    request = rsps.calls[0].request
    assert request.headers["User-Agent"].startswith("stagesync/")
    assert request.req_kwargs["timeout"] == http.TIMEOUT == (5, 15)


# --- classification ----------------------------------------------------------------------------

@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_a_success_is_returned(rsps, status):
    rsps.post(URL, status=status)
    assert call().status_code == status


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_client_errors_are_fatal_with_the_vendor_status_and_words(rsps, status):
    rsps.post(URL, status=status, json={"title": "Bad request", "detail": "customProperties.x is not a string"})
    with pytest.raises(FatalDestinationError) as caught:
        call()
    assert caught.value.status == status
    assert caught.value.destination == "acme-vendor"
    message = str(caught.value)
    assert f"POST /v1/contacts -> {status}" in message and "customProperties.x is not a string" in message


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retriable(rsps, status):
    rsps.post(URL, status=status, body="upstream trouble")
    with pytest.raises(RetriableDestinationError) as caught:
        call()
    assert caught.value.status == status and caught.value.retry_after is None
    assert "upstream trouble" in str(caught.value)


def test_429_is_retriable_and_honours_retry_after_in_seconds(rsps):
    rsps.post(URL, status=429, headers={"Retry-After": "17"}, json={"message": "slow down"})
    with pytest.raises(RetriableDestinationError) as caught:
        call()
    assert caught.value.status == 429 and caught.value.retry_after == 17.0


def test_retry_after_may_be_an_http_date():
    response = requests.Response()
    response.status_code = 503
    response.headers["Retry-After"] = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    response.request = requests.Request("POST", URL).prepare()
    with pytest.raises(RetriableDestinationError) as caught:
        http.classify(response, "acme-vendor", now=NOW)
    assert caught.value.retry_after == 90.0


@pytest.mark.parametrize("value, expected", [("0", 0.0), ("2.5", 2.5), ("-3", 0.0), ("soon", None), ("", None),
                                             (None, None), ("Mon, 01 Jun 2026 11:00:00 GMT", 0.0)])
def test_retry_after_values(value, expected):
    assert http.retry_after_seconds(value, NOW) == expected


def test_a_vendor_field_gives_the_wait_when_there_is_no_header(rsps):
    rsps.post(URL, status=429, json={"retryAfter": 42})
    with pytest.raises(RetriableDestinationError) as caught:
        call(retry_after=lambda r: float(r.json()["retryAfter"]))
    assert caught.value.retry_after == 42.0


def test_the_header_wins_over_the_vendor_field(rsps):
    rsps.post(URL, status=429, headers={"Retry-After": "3"}, json={"retryAfter": 42})
    with pytest.raises(RetriableDestinationError) as caught:
        call(retry_after=lambda r: 42.0)
    assert caught.value.retry_after == 3.0


def test_an_accepted_status_is_returned_for_the_caller_to_read(rsps):
    rsps.post(URL, status=404, json={"message": "No contact found for indexes 1"})
    assert call(accept=[404]).status_code == 404


@pytest.mark.parametrize("status", [400, 429, 500])
def test_no_message_holds_a_whole_email_or_key(rsps, status):
    rsps.post(URL, status=status, json={"errors": [{"detail": f"{EMAIL} is invalid for key {KEY}"}]})
    with pytest.raises((FatalDestinationError, RetriableDestinationError)) as caught:
        call()
    message = str(caught.value)
    assert EMAIL not in message and KEY not in message
    assert "ja***@ex***.com" in message and "sk***" in message


def test_the_query_string_never_reaches_a_message(rsps):
    rsps.post(URL, status=401, body="no")
    with pytest.raises(FatalDestinationError) as caught:
        http.send(http.make_session(), "POST", URL + "?token=s3cr3t-token", destination="hook")
    assert "s3cr3t" not in str(caught.value) and "/v1/contacts" in str(caught.value)


def test_a_long_vendor_answer_is_cut():
    response = requests.Response()
    response.status_code = 400
    response._content = b"x" * 5000
    assert len(http.vendor_message(response)) == http.MAX_MESSAGE


# --- transport failures ------------------------------------------------------------------------

@pytest.mark.parametrize("failure", [requests.exceptions.ConnectTimeout("connect timed out"),
                                     requests.exceptions.ReadTimeout("read timed out")])
def test_timeouts_are_retriable(rsps, failure):
    rsps.post(URL, body=failure)
    with pytest.raises(RetriableDestinationError, match="no answer within 5 s to connect or 15 s to read") as caught:
        call()
    assert caught.value.status is None


@pytest.mark.parametrize("failure", [requests.exceptions.ConnectionError("refused"),
                                     requests.exceptions.ChunkedEncodingError("cut")])
def test_dropped_connections_are_retriable(rsps, failure):
    rsps.post(URL, body=failure)
    with pytest.raises(RetriableDestinationError, match="connection failed"):
        call()


def test_a_request_that_cannot_be_made_is_fatal(rsps):
    rsps.post(URL, body=requests.exceptions.InvalidHeader("bad header"))
    with pytest.raises(FatalDestinationError, match="InvalidHeader"):
        call()


# --- with_retries ------------------------------------------------------------------------------

class Flaky:
    """Raises the given errors in turn, then returns "done"."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def retriable(retry_after=None):
    return RetriableDestinationError("busy", status=429, retry_after=retry_after)


def test_retries_transient_failures_and_returns_the_result():
    waits: list[float] = []
    fn = Flaky(retriable(), retriable())
    assert http.with_retries(fn, attempts=3, sleep=waits.append) == "done"
    assert fn.calls == 3 and len(waits) == 2


def test_waits_at_least_what_retry_after_asks():
    waits: list[float] = []
    http.with_retries(Flaky(retriable(retry_after=12.0)), attempts=2, max_wait=30, sleep=waits.append)
    assert waits[0] >= 12.0


def test_backoff_grows_and_stays_under_max_wait():
    waits: list[float] = []
    http.with_retries(Flaky(*[retriable() for _ in range(6)]), attempts=7, initial=1, max_wait=5,
                      sleep=waits.append)
    assert all(0 < w <= 5 for w in waits)
    assert waits[-1] == 5  # the cap is reached


def test_a_retry_after_longer_than_max_wait_is_raised_at_once_for_the_caller_to_reschedule():
    waits: list[float] = []
    fn = Flaky(retriable(retry_after=120.0))
    with pytest.raises(RetriableDestinationError) as caught:
        http.with_retries(fn, attempts=5, max_wait=30, sleep=waits.append)
    assert caught.value.retry_after == 120.0 and fn.calls == 1 and waits == []


def test_fatal_errors_are_not_retried():
    fn = Flaky(FatalDestinationError("no", status=400))
    with pytest.raises(FatalDestinationError):
        http.with_retries(fn, sleep=pytest.fail)
    assert fn.calls == 1


def test_the_last_error_is_raised_when_attempts_run_out():
    waits: list[float] = []
    fn = Flaky(retriable(), retriable(), RetriableDestinationError("still down", status=503))
    with pytest.raises(RetriableDestinationError, match="still down"):
        http.with_retries(fn, attempts=3, sleep=waits.append)
    assert fn.calls == 3 and len(waits) == 2


# --- helpers shared by the adapters ------------------------------------------------------------

def test_one_by_one_keeps_going_after_a_refusal_and_stops_on_a_transient_failure():
    busy = retriable()
    outcomes = {1: FatalDestinationError("refused"), 3: busy}
    sent = []

    def send_one(item):
        sent.append(item)
        if item in outcomes:
            raise outcomes[item]

    failures = http.one_by_one([0, 1, 2, 3, 4, 5], send_one)
    assert sent == [0, 1, 2, 3]
    assert [(f.index, f.error) for f in failures] == [(1, outcomes[1]), (3, busy), (4, busy), (5, busy)]


def test_one_by_one_raises_when_the_first_item_fails_transiently():
    with pytest.raises(RetriableDestinationError):
        http.one_by_one([0, 1], lambda item: (_ for _ in ()).throw(retriable()))


def test_iso_utc_writes_z():
    assert http.iso_utc(datetime(2026, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))) == "2026-05-01T12:30:00Z"
    assert http.iso_utc(datetime(2026, 5, 1, 12, 30)) == "2026-05-01T12:30:00Z"


# --- requests not safe to repeat (events no vendor de-duplicates) ------------------------------

def _refused() -> requests.ConnectionError:
    """What requests raises when nothing listens: the connection was never made."""
    import urllib3.exceptions

    cause = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, URL, cause))


@pytest.mark.parametrize("failure", [requests.exceptions.ReadTimeout(), requests.exceptions.ChunkedEncodingError(),
                                     requests.ConnectionError("Connection aborted. RemoteDisconnected")])
def test_a_once_request_that_may_have_arrived_has_an_unknown_outcome(rsps, failure):
    from connector.errors import OutcomeUnknownError

    rsps.post(URL, body=failure)
    with pytest.raises(OutcomeUnknownError):
        call(once=True)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_once_request_answered_5xx_has_an_unknown_outcome(rsps, status):
    from connector.errors import OutcomeUnknownError

    rsps.post(URL, status=status, json={"message": "oops"})
    with pytest.raises(OutcomeUnknownError) as caught:
        call(once=True)
    assert caught.value.status == status


@pytest.mark.parametrize("failure", [_refused(), requests.exceptions.ConnectTimeout()])
def test_a_once_request_never_sent_is_retriable(rsps, failure):
    rsps.post(URL, body=failure)
    with pytest.raises(RetriableDestinationError):
        call(once=True)


def test_a_once_request_refused_with_429_is_retriable(rsps):
    rsps.post(URL, status=429, headers={"Retry-After": "3"}, json={})
    with pytest.raises(RetriableDestinationError) as caught:
        call(once=True)
    assert caught.value.retry_after == 3.0
