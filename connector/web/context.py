"""What a request of the Flask app reaches through `current_app`: the settings, the clock and the store.

Kept apart from `connector.web.app` so that the views of other modules (dashboard, metrics) use
the store without importing the app factory back.
"""

from __future__ import annotations

from flask import current_app

from connector.storage.store import Store

EXTENSION = "stagesync"
WEBHOOK_BUSY_TIMEOUT_MS = 800  # docs/architecture.md, 'The webhook path': answer within 1 s; a locked SQLite answers 503 instead


def app_state() -> dict:
    """The app's `stagesync` extension: settings, store (or None until first use), clock, store_lock."""
    return current_app.extensions[EXTENSION]


def get_store() -> Store:
    """The app's store, opened on first use in each worker process (never at import or fork time)."""
    state = app_state()
    if state["store"] is None:
        with state["store_lock"]:  # gunicorn's threads may all arrive at once
            if state["store"] is None:
                state["store"] = Store.open(state["settings"].database_url, migrate=False,
                                            busy_timeout_ms=WEBHOOK_BUSY_TIMEOUT_MS, pre_ping=False,
                                            statement_timeout_ms=WEBHOOK_BUSY_TIMEOUT_MS)
    return state["store"]
