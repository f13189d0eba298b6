"""Orders whose amount is in another currency that no rate converted (`orders.amount_known` false).

They count as orders (F, R, orders_total) but never as money (docs/rules.md, 'Amounts and
currencies'); this query lets the metrics, `explain` and the dashboard say how many there are.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from connector.storage.schema import orders


def unconverted_orders(conn: Connection, shop_id: str | None = None, customer_key: str | None = None) -> dict[str, int]:
    """Valid orders with an unconverted amount, by shop (one shop or one customer when given)."""
    query = select(orders.c.shop_id, func.count()).where(
        orders.c.amount_known.is_(False), orders.c.valid.is_(True)).group_by(orders.c.shop_id)
    if shop_id is not None:
        query = query.where(orders.c.shop_id == shop_id)
    if customer_key is not None:
        query = query.where(orders.c.customer_key == customer_key)
    return {shop: int(n) for shop, n in conn.execute(query).all()}
