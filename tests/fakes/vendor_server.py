"""A local fake vendor HTTP server on loopback, for end-to-end tests and benchmarks.

A real threaded HTTP server (werkzeug) in a background thread: stagesync talks to it over real
HTTP through `base_url`. It records every request with its arrival time, and can inject faults:
a share of answers as 500 or 429 (with Retry-After), answers delayed past the client's timeout,
or a whole outage. Vendor behaviour is supplied as routes (see `omnisend_routes`).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

Handler = Callable[["FakeVendor", Request, re.Match], Response]


@dataclass
class Faults:
    error_share: float = 0.0  # share of requests answered 500 or 429
    retry_after: float = 0.5  # seconds, on the 429s
    slow_share: float = 0.0  # share of requests answered only after `slow_seconds`
    slow_seconds: float = 0.0
    down: bool = False  # every request answered 503
    seed: int = 1


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict
    body: bytes
    at: float  # time.monotonic() on arrival
    answered: int = 0
    finished: float = 0.0  # time.monotonic() when the answer was ready

    @property
    def json(self):
        return json.loads(self.body) if self.body else None


@dataclass
class FakeVendor:
    routes: list[tuple[str, re.Pattern, Handler]] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    requests: list[Recorded] = field(default_factory=list)
    state: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self._rng = random.Random(self.faults.seed)
        self._server = None
        self._thread = None

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(pattern + r"\Z"), handler))

    # --- the WSGI side ----------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        recorded = Recorded(request.method, request.path, dict(request.headers), request.get_data(), time.monotonic())
        with self.lock:
            self.requests.append(recorded)
            roll, slow_roll = self._rng.random(), self._rng.random()
        response = self._answer(request, roll, slow_roll)
        recorded.answered, recorded.finished = response.status_code, time.monotonic()
        return response(environ, start_response)

    def _answer(self, request: Request, roll: float, slow_roll: float) -> Response:
        faults = self.faults
        if faults.down:
            return _json({"error": "down for maintenance"}, 503)
        if slow_roll < faults.slow_share:
            time.sleep(faults.slow_seconds)
        if roll < faults.error_share / 2:
            return _json({"error": "internal error"}, 500)
        if roll < faults.error_share:
            return _json({"error": "too many requests"}, 429, {"Retry-After": f"{faults.retry_after:g}"})
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if method == request.method and match:
                with self.lock:
                    return handler(self, request, match)
        return _json({"error": f"no route {request.method} {request.path}"}, 404)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> str:
        self._server = make_server("127.0.0.1", 0, self, threaded=True)
        # A short poll interval: `stop` waits for it (werkzeug's default, 0.5 s, cost each test a second).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "FakeVendor":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- measures ---------------------------------------------------------------------------

    def max_requests_in_window(self, seconds: float) -> int:
        """The most requests that arrived within any window of `seconds` (a sliding window)."""
        times = sorted(r.at for r in self.requests)
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= seconds:
                start += 1
            best = max(best, end - start + 1)
        return best


def _json(payload, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(payload), status=status, headers=headers or {}, mimetype="application/json")


# --- Omnisend ------------------------------------------------------------------------------------
# The endpoints adapters/destinations/omnisend.py calls (Omnisend API 2026-03-15): POST /contacts
# upserts one contact by identifier, POST /events records a custom event, POST /batches starts an
# asynchronous batch of up to 100 contact upserts (api-docs.omnisend.com/reference/post_batches: 201
# with `batchID`), which GET /batches/{batchID} reports `inProgress` on its first read and `finished`
# after, and GET /batches/{batchID}/items lists as `responses` and `errors` (BatchItem: `request`,
# `response`, `responseCode`). Contacts end up in state["contacts"] by identifier, exactly as spelled
# (the email identifier is case-sensitive: api-docs.omnisend.com/reference/contacts). An identifier
# listed in state["refuse"] (identifier -> reason) is refused with a 400, inside batches too.

def _omnisend_upsert(vendor: FakeVendor, contact: dict) -> str:
    identifier = contact["identifiers"][0]["id"]
    stored = vendor.state.setdefault("contacts", {}).setdefault(identifier, {})
    for name, value in contact.get("customProperties", {}).items():
        if value == "":  # an empty string clears a property (adapters/destinations/omnisend.py, CLEARED)
            stored.pop(name, None)
        else:
            stored[name] = value
    return identifier


def _omnisend_refusal(vendor: FakeVendor, contact: dict) -> dict | None:
    reason = vendor.state.get("refuse", {}).get(contact["identifiers"][0]["id"])
    if reason is None:
        return None
    return {"type": "https://problems.omnisend.com/validation-failed", "title": "Validation failed",
            "status": 400, "detail": reason}


def _omnisend_contact(vendor: FakeVendor, request: Request, match) -> Response:
    contact = request.get_json()
    refusal = _omnisend_refusal(vendor, contact)
    if refusal:
        return _json(refusal, 400)
    identifier = _omnisend_upsert(vendor, contact)
    return _json({"contactID": f"c-{identifier}"})


def _omnisend_batch(vendor: FakeVendor, request: Request, match) -> Response:
    body = request.get_json()
    if body.get("endpoint") not in ("contacts", "events") or not 1 <= len(body.get("items", [])) <= 100:
        return _json({"title": "Validation failed", "status": 400, "detail": "bad batch"}, 400)
    responses, errors = [], []
    for n, item in enumerate(body["items"]):
        answer = {"itemID": f"i{n}", "request": item, "status": "finished"}
        refusal = _omnisend_refusal(vendor, item) if body["endpoint"] == "contacts" else None
        if refusal:
            errors.append({**answer, "responseCode": 400, "response": refusal})
        elif body["endpoint"] == "contacts":
            responses.append({**answer, "responseCode": 200, "response": {"contactID": _omnisend_upsert(vendor, item)}})
        else:
            vendor.state.setdefault("events", {})[item["eventID"]] = item
            responses.append({**answer, "responseCode": 202, "response": {}})
    vendor.state["batch_count"] = vendor.state.get("batch_count", 0) + 1
    batch_id = f"b-{vendor.state['batch_count']}"
    vendor.state.setdefault("batches", {})[batch_id] = {
        "batchID": batch_id, "endpoint": body["endpoint"], "method": "POST", "reads": 0,
        "totalCount": len(body["items"]), "responses": responses, "errors": errors}
    return _json({"batchID": batch_id, "totalCount": len(body["items"])}, 201)


def _omnisend_batch_info(vendor: FakeVendor, request: Request, match) -> Response:
    batch = vendor.state.get("batches", {}).get(match.group("batch"))
    if batch is None:
        return _json({"title": "Not found", "status": 404}, 404)
    batch["reads"] += 1
    finished = batch["reads"] > 1  # asynchronous: still running when first read
    return _json({"batchID": batch["batchID"], "endpoint": batch["endpoint"], "method": batch["method"],
                  "status": "finished" if finished else "inProgress", "totalCount": batch["totalCount"],
                  "finishedCount": batch["totalCount"] if finished else 0,
                  "errorsCount": len(batch["errors"]) if finished else 0})


def _omnisend_batch_items(vendor: FakeVendor, request: Request, match) -> Response:
    batch = vendor.state.get("batches", {}).get(match.group("batch"))
    if batch is None:
        return _json({"title": "Not found", "status": 404}, 404)
    return _json({"batchID": batch["batchID"], "status": "finished", "responses": batch["responses"],
                  "errors": batch["errors"], "errorsCount": len(batch["errors"])})


def _omnisend_event(vendor: FakeVendor, request: Request, match) -> Response:
    event = request.get_json()
    vendor.state.setdefault("events", {})[event["eventID"]] = event
    vendor.state.setdefault("event_posts", []).append(event["eventID"])  # every post, repeats included
    return Response(status=202)  # api-docs.omnisend.com/reference/post_events: 202 Accepted, no body


def omnisend_vendor(faults: Faults | None = None) -> FakeVendor:
    vendor = FakeVendor(faults=faults or Faults())
    vendor.route("POST", r"(?:/api)?/contacts", _omnisend_contact)
    vendor.route("POST", r"(?:/api)?/batches", _omnisend_batch)
    vendor.route("GET", r"(?:/api)?/batches/(?P<batch>[^/]+)", _omnisend_batch_info)
    vendor.route("GET", r"(?:/api)?/batches/(?P<batch>[^/]+)/items", _omnisend_batch_items)
    vendor.route("POST", r"(?:/api)?/events", _omnisend_event)
    return vendor
