"""Group commit: webhooks that arrive together share one transaction, and so one commit.

Each webhook's work (its order, its customers' stages, their outbox entries) still commits
atomically, before its 200; what is shared is the BEGIN, the COMMIT and its fsync, and on SQLite
the turn as the one writer. The first thread to arrive leads: it runs every unit queued so far,
in arrival order, in one transaction, commits, and hands the lead to the next waiting thread.

If the shared transaction fails for a reason other than the database being unavailable (one
unit's bug, a PostgreSQL deadlock between two groups), it is rolled back and each unit runs again
in a transaction of its own, so that one bad delivery never fails the others.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, TypeVar

from sqlalchemy import Connection

from connector.errors import StorageUnavailableError

T = TypeVar("T")
MAX_GROUP = 64


class _Unit(Generic[T]):
    __slots__ = ("work", "wake", "leads", "done", "value", "error")

    def __init__(self, work: Callable[[Connection], T]):
        self.work = work
        self.wake = threading.Event()  # set when done, or when this unit's thread must lead
        self.leads = False
        self.done = False
        self.value: T | None = None
        self.error: BaseException | None = None

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class GroupCommit:
    def __init__(self, store):
        self.store = store
        self._lock = threading.Lock()
        self._queued: list[_Unit] = []
        self._leader_active = False

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work(conn)` in a transaction, maybe shared with other threads' work; return its
        result (or raise its exception) once that transaction has committed (or failed)."""
        unit = _Unit(work)
        with self._lock:
            self._queued.append(unit)
            if not self._leader_active:
                self._leader_active = unit.leads = True
        if not unit.leads:
            unit.wake.wait()
        if not unit.done:  # made leader: this unit is first in the queue
            self._lead()
        return unit.outcome()

    def _lead(self) -> None:
        with self._lock:
            group, self._queued = self._queued[:MAX_GROUP], self._queued[MAX_GROUP:]
        try:
            self._commit(group)
        finally:
            for unit in group:
                unit.done = True
                unit.wake.set()
            with self._lock:
                if self._queued:
                    self._queued[0].leads = True
                    self._queued[0].wake.set()
                else:
                    self._leader_active = False

    def _commit(self, group: list[_Unit]) -> None:
        try:
            with self.store.transaction() as conn:
                for unit in group:
                    unit.value = unit.work(conn)
            return
        except StorageUnavailableError as exc:
            for unit in group:
                unit.error = exc
            return
        except Exception as exc:  # noqa: BLE001 - retried below, one unit at a time
            if len(group) == 1:
                group[0].error = exc
                return
        for unit in group:
            unit.value = unit.error = None
            try:
                with self.store.transaction() as conn:
                    unit.value = unit.work(conn)
            except Exception as exc:  # noqa: BLE001 - handed to the unit's own thread
                unit.error = exc
