"""One customer as the admin API shows it: stages now, the numbers behind them, stored history.

Cheap enough for a request: one indexed query for the customer, the shop figures stored by the
last recompute (refreshed for small shops), no whole-shop aggregation. Web pages and the admin
API name a customer by its opaque `ref` (`connector.storage.refs`), never by email or phone in a
URL: `find_customer` turns an email or phone (sent in a request body) into the view with its ref.
"""

from __future__ import annotations

from datetime import datetime

from connector.config import ShopSettings
from connector.services.evaluation import NO_FIGURES, current_shop_figures
from connector.domain.orders import contact_key
from connector.services.reports import iso, unconverted_note
from connector.domain.stages import evaluate, fields, money
from connector.storage.intake import data_requests_of
from connector.storage.refs import customer_of_ref, refs_of
from connector.storage.states import stage_history
from connector.storage.store import Store
from connector.storage.values import from_micros


def identity_key(shop: ShopSettings, identity: str | None) -> str | None:
    """The customer key an email or a phone number (as a person types it) stands for in the shop."""
    if not identity:
        return None
    return contact_key(identity, identity, shop.country)


def find_customer(store: Store, shop: ShopSettings, key: str | None, now: datetime,
                  replay: bool = False) -> dict | None:
    """The view of the customer `key` (`identity_key`, `connector.domain.orders.contact_key`), with
    its `ref` (made on first need); None when the shop has no such customer (then no ref is made)."""
    view = None if key is None else view_of_key(store, shop, key, now, replay)
    if view is not None:
        with store.transaction() as conn:
            view["ref"] = refs_of(store, conn, shop.id, [key])[key]
    return view


def ref_of_key(store: Store, shop: ShopSettings, key: str | None, now: datetime) -> str | None:
    """The ref of the customer `key` (made on first need), without building its view; None when the
    shop has no such customer (then no ref is made)."""
    if key is None:
        return None
    with store.transaction() as conn:
        figures, state = store.customer_figures_and_state(conn, shop.id, key, now)
        if figures is None and state is None:
            return None
        return refs_of(store, conn, shop.id, [key])[key]


def customer_by_ref(store: Store, shop: ShopSettings, ref: str, now: datetime, replay: bool = False) -> dict | None:
    """The view of the customer a ref stands for; None for an unknown ref."""
    with store.read() as conn:
        key = customer_of_ref(conn, shop.id, ref)
    view = None if key is None else view_of_key(store, shop, key, now, replay)
    if view is not None:
        view["ref"] = ref
    return view


def view_of_key(store: Store, shop: ShopSettings, key: str, now: datetime, replay: bool = False) -> dict | None:
    """With `replay` (an `at` asked for), the predictions come from a fit of the shop at `now`."""
    from connector.services.predicting import one_customer  # numpy: not on the webhook path's imports

    with store.read() as conn:
        figures, state = store.customer_figures_and_state(conn, shop.id, key, now)
        if figures is None and state is None:
            return None
        shop_figures = current_shop_figures(store, conn, shop, now, save=False)
        history = stage_history(conn, shop.id, key)
        requests = data_requests_of(conn, shop.id, key)
        orders = store.customer_orders(conn, shop.id, key)
        predicted = one_customer(store, conn, shop, key, orders, now, replay)
        history_rows = [{"model": h.model, "from": h.from_stage, "to": h.to_stage, "at": iso(from_micros(h.at))}
                        for h in history]
        request_rows = [{"request_id": r.request_id, "received_at": iso(from_micros(r.received_at))}
                        for r in requests]
    evaluation = evaluate(figures or NO_FIGURES, shop_figures, shop.rfm, shop.phases, now)
    since = state.rfm_since if state and state.rfm == evaluation.rfm else None
    view = fields(evaluation)
    view.update(rfm_since=since, customer=key, at=iso(now), recency_days=evaluation.recency_days,
                high_value=evaluation.high_value, frequent=evaluation.frequent,
                shop_aov_365d=money(shop_figures.shop_aov),
                bands={"recent": shop_figures.bands.recent, "nurture": shop_figures.bands.nurture,
                       "risk": shop_figures.bands.risk, "adaptive": shop_figures.bands.adaptive},
                history=history_rows, data_requests=request_rows, predictions=predicted,
                orders=[{"order_id": o.order_id, "placed_at": iso(o.placed_at), "total": str(o.total),
                         "refunded": str(o.refunded), "status": o.status, "counts": o.is_valid,
                         "currency": o.currency, "amount_known": o.amount_known} for o in orders],
                unconverted=unconverted_note(sum(o.is_valid and not o.amount_known for o in orders)))
    return view
