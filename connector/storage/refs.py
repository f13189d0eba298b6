"""Opaque customer references: what URLs name a customer by, instead of an email or a phone.

A ref is a random token made the first time a customer needs one and kept (stable across
requests, processes and restarts); nothing about the customer can be read from it. Redacting
the customer (or the shop) deletes it with the rest (`connector.storage.customers`).
"""

from __future__ import annotations

import secrets
from typing import Iterable

from sqlalchemy import Connection, select

from connector.storage.engine import Database
from connector.storage.schema import customer_refs
from connector.storage.values import chunks

REF_BYTES = 12  # 96 random bits, 16 URL-safe characters


def refs_of(store: Database, conn: Connection, shop_id: str, keys: Iterable[str]) -> dict[str, str]:
    """customer_key -> ref for these customers, making (and storing) the refs that do not exist yet.
    Two requests making one customer's ref at once agree: the first stored wins."""
    wanted = sorted(set(keys))
    found = _stored(conn, shop_id, wanted)
    missing = [key for key in wanted if key not in found]
    if missing:
        statement = store.insert_for(customer_refs).on_conflict_do_nothing()
        conn.execute(statement, [dict(shop_id=shop_id, customer_key=key, ref=secrets.token_urlsafe(REF_BYTES))
                                 for key in missing])
        found.update(_stored(conn, shop_id, missing))
    return found


def customer_of_ref(conn: Connection, shop_id: str, ref: str) -> str | None:
    """The customer_key a ref stands for in the shop, None for an unknown ref."""
    return conn.execute(select(customer_refs.c.customer_key).where(
        customer_refs.c.shop_id == shop_id, customer_refs.c.ref == ref)).scalar()


def _stored(conn: Connection, shop_id: str, keys: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in chunks(keys, 500):
        found.update((key, ref) for key, ref in conn.execute(select(customer_refs.c.customer_key, customer_refs.c.ref).where(
            customer_refs.c.shop_id == shop_id, customer_refs.c.customer_key.in_(chunk))))
    return found
