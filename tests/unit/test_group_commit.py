"""connector.storage.group_commit: units from many threads, shared transactions, failures kept apart."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from connector.errors import StorageUnavailableError
from connector.storage.group_commit import ALONE_ATTEMPTS, GroupCommit, run_all


class RecordingStore:
    """A stand-in for Store.transaction(): records which units each transaction committed."""

    def __init__(self, unavailable: bool = False):
        self.committed: list[list[str]] = []
        self.unavailable = unavailable

    @contextlib.contextmanager
    def transaction(self):
        if self.unavailable:
            raise StorageUnavailableError("database unavailable: test")
        writes: list[str] = []
        yield writes  # the "connection": units append what they write
        self.committed.append(writes)  # reached only when no unit raised: a commit


def run_together(group: GroupCommit, works: dict[str, object], first_blocks: threading.Event) -> dict:
    """Start the unit 'first' (which blocks), queue the others behind it, then let it go."""
    outcomes: dict[str, object] = {}

    def call(name, work):
        try:
            outcomes[name] = group.run(work)
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            outcomes[name] = exc

    threads = [threading.Thread(target=call, args=("first", works.pop("first")))]
    threads[0].start()
    time.sleep(0.05)
    for name, work in works.items():
        threads.append(threading.Thread(target=call, args=(name, work)))
        threads[-1].start()
    deadline = time.monotonic() + 5
    while len(group._queued) < len(threads) - 1 and time.monotonic() < deadline:  # "first" is running
        time.sleep(0.01)
    first_blocks.set()
    for thread in threads:
        thread.join(5)
    return outcomes


def writer(name: str, fail: bool = False):
    def work(conn):
        conn.append(name)
        if fail:
            raise ValueError(f"{name} is broken")
        return f"{name} done"
    return work


def test_units_queued_while_a_transaction_runs_share_the_next_one():
    store = RecordingStore()
    release = threading.Event()

    def first(conn):
        release.wait(5)
        conn.append("first")
        return "first done"

    works = {"first": first, **{f"u{i}": writer(f"u{i}") for i in range(5)}}
    outcomes = run_together(GroupCommit(store), works, release)
    assert outcomes == {"first": "first done", **{f"u{i}": f"u{i} done" for i in range(5)}}
    assert store.committed[0] == ["first"]
    assert sorted(store.committed[1]) == [f"u{i}" for i in range(5)]  # one commit for the five
    assert len(store.committed) == 2


def test_a_failing_unit_fails_alone_and_the_others_commit():
    store = RecordingStore()
    release = threading.Event()
    works = {"first": lambda conn: release.wait(5) and "first done",
             "good": writer("good"), "bad": writer("bad", fail=True), "also_good": writer("also_good")}
    outcomes = run_together(GroupCommit(store), works, release)
    assert isinstance(outcomes["bad"], ValueError)
    assert (outcomes["good"], outcomes["also_good"]) == ("good done", "also_good done")
    assert ["good"] in store.committed and ["also_good"] in store.committed  # re-run one by one
    assert not any("bad" in writes for writes in store.committed)


def test_an_unavailable_database_fails_the_whole_group_at_once():
    group = GroupCommit(RecordingStore(unavailable=True))
    with pytest.raises(StorageUnavailableError):
        group.run(writer("x"))
    with pytest.raises(StorageUnavailableError):  # the lead was handed back
        group.run(writer("y"))


def test_many_threads_all_get_their_own_result():
    store = RecordingStore()
    group = GroupCommit(store)
    results: dict[int, str] = {}

    def call(i):
        results[i] = group.run(writer(f"w{i}"))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == {i: f"w{i} done" for i in range(200)}
    assert sorted(name for writes in store.committed for name in writes) == sorted(f"w{i}" for i in range(200))


def test_with_two_lanes_two_transactions_run_at_once_and_the_third_unit_waits():
    store = RecordingStore()
    group = GroupCommit(store, lanes=2)
    release, started = threading.Event(), threading.Semaphore(0)

    def blocking(name):
        def work(conn):
            started.release()
            release.wait(5)
            conn.append(name)
            return name
        return work

    results: dict[str, str] = {}
    threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, group.run(blocking(n)))) for n in "ab"]
    for thread in threads:
        thread.start()
    assert started.acquire(timeout=5) and started.acquire(timeout=5)  # both lanes busy at once
    threads.append(threading.Thread(target=lambda: results.__setitem__("c", group.run(writer("c")))))
    threads[-1].start()
    deadline = time.monotonic() + 5
    while not group._queued and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(group._queued) == 1  # no third lane: it waits
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == {"a": "a", "b": "b", "c": "c done"}
    assert sorted(map(tuple, store.committed)) == [("a",), ("b",), ("c",)]


class Batched:
    """A work that may run in a batch with its neighbours of the same `batch_key`."""

    def __init__(self, name: str, batch_key):
        self.name, self.batch_key = name, batch_key

    def __call__(self, conn):
        conn.append(self.name)
        return f"{self.name} alone"

    @staticmethod
    def run_batch(conn, batch):
        conn.append("+".join(work.name for work in batch))
        return [f"{work.name} in a batch of {len(batch)}" for work in batch]


def test_run_all_batches_neighbours_with_one_key_and_keeps_each_result_in_place():
    works = [Batched("a", "k"), Batched("b", "k"), writer("plain"), Batched("c", "k"), Batched("d", "other"),
             Batched("e", "other"), Batched("f", None)]
    conn: list[str] = []
    assert run_all(conn, works) == ["a in a batch of 2", "b in a batch of 2", "plain done", "c alone",
                                    "d in a batch of 2", "e in a batch of 2", "f alone"]
    assert conn == ["a+b", "plain", "c", "d+e", "f"]  # in arrival order: a batch never jumps a unit


def test_units_with_one_batch_key_queued_together_share_one_batch():
    store = RecordingStore()
    release = threading.Event()

    def first(conn):
        release.wait(5)
        return "first done"

    works = {"first": first, **{f"u{i}": Batched(f"u{i}", "orders") for i in range(4)}}
    outcomes = run_together(GroupCommit(store), works, release)
    assert all(outcomes[f"u{i}"] == f"u{i} in a batch of 4" for i in range(4))
    assert len(store.committed[1]) == 1  # one run_batch call wrote all four


class Deadlock(Exception):
    """What SQLAlchemy raises for PostgreSQL's deadlock_detected: the driver's error in `orig`."""

    def __init__(self):
        super().__init__("deadlock detected")
        self.orig = type("DriverError", (), {"sqlstate": "40P01"})()


def test_a_unit_that_deadlocks_runs_again_and_succeeds():
    store = RecordingStore()
    failures = iter([Deadlock(), Deadlock()])

    def work(conn):
        failure = next(failures, None)
        if failure is not None:
            raise failure
        conn.append("written")
        return "done"

    assert GroupCommit(store).run(work) == "done"  # alone from the start: run three times in all
    assert store.committed == [["written"]]


def test_a_unit_that_keeps_deadlocking_gets_the_error_after_three_transactions():
    store = RecordingStore()
    calls = []

    def work(conn):
        calls.append(1)
        raise Deadlock()

    with pytest.raises(Deadlock):
        GroupCommit(store).run(work)
    assert len(calls) == 1 + ALONE_ATTEMPTS and store.committed == []


def test_a_unit_failing_for_good_is_not_run_again():
    calls = []

    def work(conn):
        calls.append(1)
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        GroupCommit(RecordingStore()).run(work)
    assert len(calls) == 1
