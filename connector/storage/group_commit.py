"""Group commit: webhooks that arrive together share one transaction, and so one commit.

Each webhook's work (its order, its customers' stages, their outbox entries) still commits
atomically, before its 200; what is shared is the BEGIN, the COMMIT and its fsync, and on SQLite
the turn as the one writer. A thread that finds a free lane runs its unit at once; while every
lane is busy, units queue, and the thread finishing a transaction hands the whole queue (in
arrival order, as one transaction) to the first queued thread. So groups form only under load.

Units next to each other in a group that share a `batch_key` (an attribute of the unit's work)
run as one call of their `run_batch(conn, works)`, so that they share their statements too
(`connector.services.ingest`: the order deliveries of one shop).

If the shared transaction fails for a reason other than the database being unavailable (one
unit's bug, a PostgreSQL deadlock between two groups), it is rolled back and each unit runs again
in a transaction of its own, so that one bad delivery never fails the others; a unit that fails
there with a deadlock or a serialization failure (`is_transient`) is run again, up to
ALONE_ATTEMPTS transactions, rather than answered with an error.
"""

from __future__ import annotations

import itertools
import threading
from typing import Callable, Generic, Sequence, TypeVar

from sqlalchemy import Connection

from connector.errors import StorageUnavailableError

T = TypeVar("T")
MAX_GROUP = 64
TRANSIENT_SQLSTATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure
ALONE_ATTEMPTS = 3  # a unit re-run alone after a transient failure: at most this many transactions


class _Unit(Generic[T]):
    __slots__ = ("work", "wake", "group", "value", "error")

    def __init__(self, work: Callable[[Connection], T]):
        self.work = work
        self.wake = threading.Event()  # set when done, or when this unit's thread must lead `group`
        self.group: list[_Unit] | None = None
        self.value: T | None = None
        self.error: BaseException | None = None

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class GroupCommit:
    """Up to `lanes` transactions at a time; a unit arriving while every lane is busy queues, and
    the queue goes as one group into the next lane that frees up."""

    def __init__(self, store, lanes: int = 1):
        self.store = store
        self.lanes = lanes
        self._lock = threading.Lock()
        self._queued: list[_Unit] = []
        self._leaders = 0

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work(conn)` in a transaction, maybe shared with other threads' work; return its
        result (or raise its exception) once that transaction has committed (or failed)."""
        unit = _Unit(work)
        with self._lock:
            if self._leaders < self.lanes:  # a free lane (and so an empty queue): lead at once
                self._leaders += 1
                unit.group = [unit]
            else:
                self._queued.append(unit)
        if unit.group is None:
            unit.wake.wait()  # until done by another thread, or handed a group to lead
        if unit.group is not None:
            self._lead(unit.group)
        return unit.outcome()

    def _lead(self, group: list[_Unit]) -> None:
        try:
            self._commit(group)
        finally:
            with self._lock:
                if self._queued:  # the lane passes to the first waiting unit, with all that waits
                    following, self._queued = self._queued[:MAX_GROUP], self._queued[MAX_GROUP:]
                    following[0].group = following
                    following[0].wake.set()
                else:
                    self._leaders -= 1
            for unit in group:
                unit.group = None
                unit.wake.set()

    def _commit(self, group: list[_Unit]) -> None:
        try:
            with self.store.transaction() as conn:
                for unit, value in zip(group, run_all(conn, [unit.work for unit in group])):
                    unit.value = value
            return
        except StorageUnavailableError as exc:
            for unit in group:
                unit.error = exc
            return
        except Exception as exc:  # noqa: BLE001 - retried below, one unit at a time
            if len(group) == 1 and not is_transient(exc):
                group[0].error = exc
                return
        for unit in group:
            for _ in range(ALONE_ATTEMPTS):
                unit.value = unit.error = None
                try:
                    with self.store.transaction() as conn:
                        unit.value = unit.work(conn)
                    break
                except Exception as exc:  # noqa: BLE001 - handed to the unit's own thread
                    unit.error = exc
                    if not is_transient(exc):
                        break


def is_transient(exc: BaseException) -> bool:
    """A failure that running the same transaction again cures: PostgreSQL's deadlock_detected or
    serialization_failure (two groups that locked the same rows in crossed order)."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in TRANSIENT_SQLSTATES


def run_all(conn: Connection, works: Sequence[Callable[[Connection], T]]) -> list[T]:
    """Each work's result, in order; next to each other, works with the same `batch_key` (not
    None) run as one call of their `run_batch`."""
    values: list[T] = []
    for key, run in itertools.groupby(works, key=lambda work: getattr(work, "batch_key", None)):
        run = list(run)
        if key is None or len(run) == 1:
            values.extend(work(conn) for work in run)
        else:
            values.extend(run[0].run_batch(conn, run))
    return values
