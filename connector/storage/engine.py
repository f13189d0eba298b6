"""The database engine and its transactions, for SQLite and PostgreSQL alike.

`Database.open(url)` connects and upgrades the schema in place (Alembic, `migrations/`). Writes
go through `transaction()`; every query that writes takes that connection, so a caller composes
several writes into one atomic commit (a webhook's order, stages and outbox entry together). A
database that does not answer raises StorageUnavailableError. The queries themselves live in the
per-table modules that `connector.storage.store.Store` gathers.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from connector.errors import StorageUnavailableError
from connector.storage import statements
from connector.storage.group_commit import GroupCommit

HEAD_REVISION = "0011"
MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
GROUP_COMMIT_LANES = 2  # PostgreSQL: webhook transactions in flight per process (connector.storage.group_commit)


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3, the driver stagesync ships with."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url



class Database:
    """The engines of one stagesync installation (all shops), their transactions and migrations."""

    def __init__(self, engine: Engine, reader: Engine | None = None):
        self.engine = engine
        self.reader = reader or engine  # SQLite: a second engine whose reads take no write lock
        self.sql = statements.for_dialect(engine.dialect.name)
        # Webhooks arriving together share a transaction. SQLite has one writer anyway; PostgreSQL
        # runs a few transactions at once, so that their round trips overlap.
        self.commits = GroupCommit(self, lanes=1 if engine.dialect.name == "sqlite" else GROUP_COMMIT_LANES)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
             pre_ping: bool = True):
        """Connect; `busy_timeout_ms` bounds how long SQLite waits for another writer's lock.

        `pre_ping` tests each pooled PostgreSQL connection before use (one round trip). The webhook
        receiver turns it off: a connection that died fails its statement, the pool drops it, and
        the answer is a 503 that the platform retries.
        """
        url = normalise_url(url)
        if url.startswith("sqlite"):
            store = cls(_sqlite_engine(url, immediate=True, busy_timeout_ms=busy_timeout_ms),
                        _sqlite_engine(url, immediate=False, busy_timeout_ms=busy_timeout_ms))
        else:
            store = cls(create_engine(url, pool_pre_ping=pre_ping, pool_size=5, max_overflow=5))
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
        with _unavailable_as_error(), self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (on SQLite, one that takes no write lock)."""
        with _unavailable_as_error(), self.reader.connect() as conn:
            yield conn

    def analyze(self, *tables: str) -> None:
        """After a bulk write (import, backfill, recompute), refresh PostgreSQL's statistics of these
        tables at once rather than when autovacuum gets to it: until then the planner takes the
        shop's rows for a handful and scans them all for a webhook's few orders and customers."""
        if self.dialect == "postgresql" and tables:
            with self.transaction() as conn:
                conn.exec_driver_sql("ANALYZE " + ", ".join(tables))

    def ping(self) -> bool:
        try:
            with self.reader.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
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


@contextlib.contextmanager
def _unavailable_as_error() -> Iterator[None]:
    """A database that does not answer becomes StorageUnavailableError (HTTP 503, CLI exit 1)."""
    try:
        yield
    except DBAPIError as exc:
        if exc.connection_invalidated or _is_unavailable(exc):
            raise StorageUnavailableError(f"database unavailable: {type(exc.orig).__name__}") from exc
        raise


def _is_unavailable(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(s in text for s in ("could not connect", "connection refused", "server closed", "terminating connection",
                                   "database is locked", "unable to open database", "disk i/o error",
                                   "connection is closed"))

