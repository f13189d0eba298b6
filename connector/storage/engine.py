"""The database engine and its transactions, for SQLite and PostgreSQL alike.

`Database.open(url)` connects and upgrades the schema in place (Alembic, `migrations/`). Writes
go through `transaction()`; every query that writes takes that connection, so a caller composes
several writes into one atomic commit (a webhook's order, stages and outbox entry together). A
database that does not answer raises StorageUnavailableError. The queries themselves live in the
per-table modules that `connector.storage.store.Store` gathers.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import NullPool

from connector.errors import StorageUnavailableError
from connector.storage import statements
from connector.storage.group_commit import GroupCommit

HEAD_REVISION = "0011"
MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
GROUP_COMMIT_LANES = 2  # PostgreSQL: webhook transactions in flight per process (connector.storage.group_commit)
# libpq's connect_timeout, in whole seconds, and 2 is its least (a smaller value counts as 2):
# https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-CONNECT-TIMEOUT
CONNECT_TIMEOUT_S = 2
SQLITE_MIN_FREE_BYTES = 1024 * 1024  # /healthz fails below this much free disk beside a SQLite file


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3, the driver stagesync ships with."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def mask_url(url: str) -> str:
    """A database URL fit for a message: its password replaced by ***."""
    try:
        return make_url(normalise_url(url)).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@", 1)[-1] if "@" in url else url


def _where(url: str) -> str:
    """Which database a message is about: the SQLite file, or host:port/database (no user, no password)."""
    try:
        parsed = make_url(normalise_url(url))
    except ArgumentError:
        return "?"
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite {parsed.database or ':memory:'}"
    return f"postgresql {parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def reachability_problem(url: str) -> str | None:
    """Why this database cannot be used, in one line, or None: a SQLite file's folder must exist and
    be writable (nothing is created); PostgreSQL must accept a connection within CONNECT_TIMEOUT_S.
    For `check-config`, which validates without changing anything."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"{mask_url(url)!r} is not a database URL"
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return None
        folder = Path(parsed.database).resolve().parent
        if not folder.is_dir():
            return f"the folder of the SQLite file {parsed.database!r} does not exist: {folder}"
        if not os.access(folder, os.W_OK):
            return f"the folder of the SQLite file {parsed.database!r} is not writable by this user: {folder}"
        return None
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except DBAPIError as exc:
        return f"cannot connect to {_where(url)}: {reason(exc)}"
    finally:
        engine.dispose()
    return None


class Database:
    """The engines of one stagesync installation (all shops), their transactions and migrations."""

    def __init__(self, engine: Engine, reader: Engine | None = None):
        self.where = _where(engine.url.render_as_string(hide_password=True))
        self.disk_full = False  # SQLite: the last write failed for want of room (/healthz fails until one succeeds)
        self.engine = engine
        self.reader = reader or engine  # SQLite: a second engine whose reads take no write lock
        self.sql = statements.for_dialect(engine.dialect.name)
        # Webhooks arriving together share a transaction. SQLite has one writer anyway; PostgreSQL
        # runs a few transactions at once, so that their round trips overlap.
        self.commits = GroupCommit(self, lanes=1 if engine.dialect.name == "sqlite" else GROUP_COMMIT_LANES)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
             pre_ping: bool = True, statement_timeout_ms: int | None = None):
        """Connect; `busy_timeout_ms` bounds how long SQLite waits for another writer's lock.

        `pre_ping` tests each pooled PostgreSQL connection before use (one round trip). The webhook
        receiver turns it off: a connection that died fails its statement, the pool drops it, and
        the answer is a 503 that the platform retries.

        PostgreSQL: a connection attempt gives up after CONNECT_TIMEOUT_S. `statement_timeout_ms`
        (the web app's: it answers within a second) also bounds each statement, the wait for a
        table lock, and the wait for a pooled connection, so that a database that accepts
        connections and then hangs turns into StorageUnavailableError instead of a held request.
        """
        url = normalise_url(url)
        try:
            make_url(url)
        except ArgumentError:
            raise StorageUnavailableError(f"database_url {mask_url(url)!r} is not a database URL "
                                          f"(sqlite:///PATH or postgresql://USER@HOST/DATABASE)") from None
        if url.startswith("sqlite"):
            store = cls(_sqlite_engine(url, immediate=True, busy_timeout_ms=busy_timeout_ms),
                        _sqlite_engine(url, immediate=False, busy_timeout_ms=busy_timeout_ms))
        else:
            connect_args: dict = {"connect_timeout": CONNECT_TIMEOUT_S}
            pool: dict = {}
            if statement_timeout_ms:
                # Server settings for each session (https://www.postgresql.org/docs/current/runtime-config-client.html):
                # statement_timeout ends any statement that runs longer, lock_timeout any wait for a lock.
                connect_args["options"] = (f"-c statement_timeout={int(statement_timeout_ms)} "
                                           f"-c lock_timeout={int(statement_timeout_ms)}")
                pool["pool_timeout"] = statement_timeout_ms / 1000
            store = cls(create_engine(url, pool_pre_ping=pre_ping, pool_size=5, max_overflow=5,
                                      connect_args=connect_args, **pool))
        if migrate:
            store.migrate()
        return store

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()
        if self.reader is not self.engine:
            self.reader.dispose()

    def migrate(self) -> None:
        """Upgrade the schema to the newest revision (a no-op, with no Alembic import, when current)."""
        try:
            with self.engine.connect() as conn:
                current = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            if current == HEAD_REVISION:
                return
        except DBAPIError:
            pass  # no alembic_version table yet: a new database
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.transaction() as conn:
            if self.dialect == "postgresql":  # several processes may start at once
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7243540)")
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One atomic unit of writes; a database that does not answer raises StorageUnavailableError."""
        try:
            with _unavailable_as_error(self.where), self.engine.begin() as conn:
                yield conn
        except StorageUnavailableError as exc:
            self.disk_full = self.disk_full or any(s in str(exc).lower() for s in _NO_ROOM)
            raise
        self.disk_full = False

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (on SQLite, one that takes no write lock)."""
        with _unavailable_as_error(self.where), self.reader.connect() as conn:
            yield conn

    def analyze(self, *tables: str) -> None:
        """After a bulk write (import, backfill, recompute), refresh PostgreSQL's statistics of these
        tables at once rather than when autovacuum gets to it: until then the planner takes the
        shop's rows for a handful and scans them all for a webhook's few orders and customers."""
        if self.dialect == "postgresql" and tables:
            with self.transaction() as conn:
                conn.exec_driver_sql("ANALYZE " + ", ".join(tables))

    def ping(self) -> bool:
        """Whether a webhook could be stored now: the orders table answers a read (PostgreSQL: within
        the statement timeout, so a table locked by someone else fails too) and, on SQLite, the
        disk has room (its last write did not fail for want of it, and some free space remains)."""
        if self.dialect == "sqlite" and (self.disk_full or _free_bytes(self.engine) < SQLITE_MIN_FREE_BYTES):
            return False
        try:
            with self.reader.connect() as conn:
                conn.exec_driver_sql("SELECT 1 FROM orders LIMIT 1").all()
            return True
        except Exception:  # noqa: BLE001 - any failure means "not healthy"
            return False

    def insert_for(self, table):
        """The dialect's INSERT for `table`, which has `on_conflict_do_nothing` / `_do_update`."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)


# --- helpers -----------------------------------------------------------------------------------

def _sqlite_engine(url: str, *, immediate: bool, busy_timeout_ms: int) -> Engine:
    engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" below issue BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA synchronous=FULL")  # a 200 to a webhook means the order survives a crash
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # Writers take the lock up front: no deadlocked lock upgrade between two writers.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _free_bytes(engine: Engine) -> int:
    """Free disk space beside a SQLite database file (a very large number for an in-memory one)."""
    path = engine.url.database
    if not path or path == ":memory:":
        return 1 << 62
    try:
        stats = os.statvfs(Path(path).resolve().parent)
    except OSError:
        return 1 << 62  # the read in ping() says what is wrong
    return stats.f_bavail * stats.f_frsize


@contextlib.contextmanager
def _unavailable_as_error(where: str = "") -> Iterator[None]:
    """A database that does not answer becomes StorageUnavailableError (HTTP 503, CLI exit 1), with
    the reason the driver gave on one line (no password: the drivers never quote it)."""
    try:
        yield
    except PoolTimeoutError as exc:
        raise StorageUnavailableError(f"database unavailable ({where}): every connection is busy") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated or _is_unavailable(exc):
            raise StorageUnavailableError(f"database unavailable ({where}): {reason(exc)}") from exc
        raise


def reason(exc: DBAPIError) -> str:
    """The driver's own words about a failure: its first line, at most 200 characters."""
    lines = [line.strip() for line in str(exc.orig).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc.orig).__name__)[:200]


_NO_ROOM = ("database or disk is full", "no space left")
_UNAVAILABLE = (
    "could not connect", "connection refused", "server closed", "terminating connection", "connection is closed",
    "connection failed", "connection timeout", "timeout expired", "failed to resolve host",
    "could not translate host", "name or service not known", "no route to host", "network is unreachable",
    "statement timeout", "lock timeout", "canceling statement",  # our statement_timeout / lock_timeout
    "database is locked", "unable to open database", "disk i/o error", *_NO_ROOM,
    "read-only file system", "attempt to write a readonly database",
)


def _is_unavailable(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(s in text for s in _UNAVAILABLE)

