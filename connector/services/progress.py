"""Progress of long work (import, backfill, recompute) on a terminal; silent when not a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """`Progress("importing")(done, total)` redraws one line on stderr, at most 10 times a second."""

    def __init__(self, label: str, stream: TextIO | None = None, unit: str = "rows"):
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last_draw < 0.1 and (total is None or done < total):
            return
        self._last_draw = now
        rate = done / max(now - self.started, 1e-9)
        share = f" / {total:,} ({100 * done / total:.0f}%)" if total else ""
        self.stream.write(f"\r{self.label}: {done:,}{share} {self.unit}, {rate:,.0f}/s ")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
