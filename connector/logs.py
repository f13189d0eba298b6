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
        for key in ("shop", "platform", "request_id", "destination"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("STAGESYNC_LOG_FORMAT", "").lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("STAGESYNC_LOG_LEVEL") or "INFO").upper())
