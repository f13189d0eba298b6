"""Dashboard access kept in the database, so that every process agrees: open sessions (ended by
logout or expiry) and failed logins (the limits of docs/http.md, 'Dashboard').

Sessions are stored by the SHA-256 of their random id: the table alone does not let anybody
forge a cookie.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select

from connector.storage.schema import dashboard_sessions, login_failures
from connector.storage.values import to_micros


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def open_session(conn: Connection, session_id: str, expires_at: datetime, now: datetime) -> None:
    """Record a new session (and forget the expired ones)."""
    conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.expires_at <= to_micros(now)))
    conn.execute(insert(dashboard_sessions).values(id=_digest(session_id), expires_at=to_micros(expires_at)))


def session_open(conn: Connection, session_id: str, now: datetime) -> bool:
    """True while the session exists and has not expired."""
    expires = conn.execute(select(dashboard_sessions.c.expires_at).where(
        dashboard_sessions.c.id == _digest(session_id))).scalar()
    return expires is not None and expires > to_micros(now)


def close_session(conn: Connection, session_id: str) -> None:
    conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.id == _digest(session_id)))


def failed_logins(conn: Connection, client: str, since: datetime) -> tuple[int, int]:
    """(failures of this client, failures of every client) recorded after `since`."""
    since_us = to_micros(since)
    total = conn.execute(select(func.count()).select_from(login_failures).where(login_failures.c.at > since_us)).scalar()
    mine = conn.execute(select(func.count()).select_from(login_failures).where(
        login_failures.c.client == client, login_failures.c.at > since_us)).scalar()
    return mine or 0, total or 0


def record_failed_login(conn: Connection, client: str, now: datetime, keep: timedelta) -> None:
    """Count one failure; failures older than `keep` are forgotten."""
    conn.execute(delete(login_failures).where(login_failures.c.at <= to_micros(now - keep)))
    conn.execute(insert(login_failures).values(client=client[:64], at=to_micros(now)))
