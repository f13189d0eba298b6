"""The address each destination gets for a customer: as the shop last spelled it.

Customers are keyed by the normalised (trimmed, lower-cased) address (docs/rules.md), but Omnisend
treats the email identifier as case-sensitive ("treats uppercase and lowercase letters as distinct",
api-docs.omnisend.com/reference/contacts), so a contact its own shop integration created as
`Alice@Example.com` is another contact than `alice@example.com`. Each order keeps the spelling it
came with (`orders.email_spelling`, NULL when already normalised); the customer's latest order
(by placed_at, then order id) decides.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from connector.storage.schema import orders
from connector.storage.values import chunks


def last_spellings(conn: Connection, shop_id: str, keys: list[str]) -> dict[str, str]:
    """customer key -> the address as their latest order spelled it, for email keys only."""
    found: dict[str, str] = {}
    emails = [k for k in keys if "@" in k]
    for chunk in chunks(emails):
        rows = conn.execute(select(orders.c.customer_key, orders.c.email_spelling).where(
            orders.c.shop_id == shop_id, orders.c.customer_key.in_(chunk))
            .order_by(orders.c.customer_key, orders.c.placed_at, orders.c.order_id))
        for key, spelling in rows:
            found[key] = spelling if spelling and spelling.strip().lower() == key else key
    return found
