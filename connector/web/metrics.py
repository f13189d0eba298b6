"""`GET /metrics` in the Prometheus text exposition format, and the latency of every HTTP request.

The counters and the database levels are `connector.services.metrics`'s; this blueprint installs
one `Metrics` per app, times each request and serves the exposition.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST

from connector.services.metrics import Metrics
from connector.web.context import get_store

EXTENSION = "stagesync_metrics"

blueprint = Blueprint("metrics", __name__)


def metrics_of(app) -> Metrics:
    return app.extensions[EXTENSION]


# --- the blueprint -------------------------------------------------------------------------------

@blueprint.record_once
def _install(state) -> None:
    state.app.extensions.setdefault(EXTENSION, Metrics())


@blueprint.before_app_request
def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


@blueprint.after_app_request
def _observe(response: Response) -> Response:
    started = g.get("metrics_started")
    if started is not None:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics_of(current_app).request_done(request.method, route, response.status_code,
                                             time.perf_counter() - started)
    return response


@blueprint.get("/metrics")
def scrape():
    state = current_app.extensions["stagesync"]
    body = metrics_of(current_app).exposition(get_store(), state["settings"], state["clock"]())
    return Response(body, mimetype=None, content_type=CONTENT_TYPE_LATEST)
