"""One customer as the admin API shows it: stages now, the numbers behind them, stored history.

Cheap enough for a request: one indexed query for the customer, the shop figures stored by the
last recompute (refreshed for small shops), no whole-shop aggregation.
"""

from __future__ import annotations

from datetime import datetime

from connector.config import ShopSettings
from connector.services.evaluation import NO_FIGURES, current_shop_figures
from connector.domain.orders import customer_key, normalise_email, normalise_phone
from connector.services.reports import iso, unconverted_note
from connector.domain.stages import evaluate, fields, money
from connector.storage.intake import data_requests_of
from connector.storage.states import stage_history
from connector.storage.store import Store
from connector.storage.values import from_micros


def customer_view(store: Store, shop: ShopSettings, identity: str, now: datetime, replay: bool = False) -> dict | None:
    """With `replay` (an `at` asked for), the predictions come from a fit of the shop at `now`."""
    from connector.services.predicting import one_customer  # numpy: not on the webhook path's imports

    key = customer_key(normalise_email(identity), normalise_phone(identity, shop.country))
    if key is None:
        return None
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
