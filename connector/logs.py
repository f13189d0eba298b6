"""Logging setup: readable text, or one JSON object a line with STAGESYNC_LOG_FORMAT=json.

Messages are written so that no secret or whole email reaches them (see `connector.errors.mask`);
`scrub` runs over every formatted line as a last guard.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone

from connector.errors import scrub


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        for key in ("shop", "platform", "request_id", "destination", "answer", "topic", "status", "ms",
                    "rejected"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


QUIET_LIBRARIES = ("alembic", "urllib3", "werkzeug")


def configure(default_level: str = "INFO") -> None:
    """Log to stderr at $STAGESYNC_LOG_LEVEL, else `default_level` (the CLI keeps one-shot
    commands at WARNING so their output is only what they print)."""
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("STAGESYNC_LOG_FORMAT", "").lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((os.environ.get("STAGESYNC_LOG_LEVEL") or default_level).upper())
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
