"""What a sync run did (`connector.services.sync`): totals, and per destination what it accepted and
refused, so that `stagesync sync` can say once that a destination refused everything (a wrong key)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DestinationRun:
    """What one destination of one shop did in a run: contacts written, refused for good, to retry,
    and the last failure's message (masked)."""

    sent: int = 0
    refused: int = 0
    retried: int = 0
    last_error: str | None = None

    @property
    def refused_all(self) -> bool:
        """It refused every contact it was sent (a wrong key, a revoked account)."""
        return self.refused > 0 and self.sent == 0


@dataclass
class SyncStats:
    """A run's totals (`stagesync sync` prints them), and each destination's own run."""

    claimed: int = 0
    sent: int = 0  # contacts written
    skipped: int = 0  # already as desired
    events: int = 0
    retried: int = 0
    dead: int = 0
    requests: int = 0
    destinations: dict[tuple[str, str], DestinationRun] = field(default_factory=dict)  # by (shop, destination)

    def add(self, other: "SyncStats") -> None:
        for name in self.__dataclass_fields__:
            if name != "destinations":
                setattr(self, name, getattr(self, name) + getattr(other, name))
        for key, run in other.destinations.items():
            mine = self.destinations.setdefault(key, DestinationRun())
            mine.sent += run.sent
            mine.refused += run.refused
            mine.retried += run.retried
            mine.last_error = run.last_error or mine.last_error
