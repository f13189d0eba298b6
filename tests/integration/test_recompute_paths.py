"""`recompute` (the store's integers) against the snapshot it replaced, on both engines.

Before each recompute, the states the snapshot-based recompute stored are worked out from
`snapshot` + `next_state` over the stored states; the integer path must store exactly those,
with as many stage changes, for a generated shop full of edge cases, day after day.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from connector.domain.orders import Order, in_shop_currency
from connector.services import evaluation
from connector.services.csv_import import row_to_order
from connector.services.generate import generate_orders
from connector.storage.values import StoredState
from tests.conftest import NOW


def snapshot_states(store, shop, now) -> tuple[dict[str, StoredState], int, int]:
    """(states to store, customers changed, stage changes) as `snapshot` + `next_state` give them."""
    snap = evaluation.snapshot(store, shop, now)
    with store.read() as conn:
        stored = store.load_states(conn, shop.id)
    states, changed, changes = {}, 0, 0
    for key, result in snap.evaluations.items():
        states[key] = evaluation.next_state(result, stored.get(key), now)
        if states[key] != stored.get(key):
            changed += 1
            changes += len(list(evaluation.stage_changes(key, stored.get(key), states[key])))
    return states, changed, changes


def test_recompute_stores_what_the_snapshot_gives_day_after_day(store, shop):
    orders = [row_to_order(row, shop) for row in generate_orders(3_000, 400, NOW, seed=11)]
    with store.transaction() as conn:
        store.upsert_orders(conn, orders)
        signed_up = StoredState("prospect", "2026-01-01", "conquest", "2026-01-01", 0, 0, 0, 0, None, None)
        stale = StoredState("recent", "2026-01-01", "conversion", "2026-01-01", 1, 1, 5_000_000, 5_000_000, 0, 0)
        store.save_states(conn, shop.id, {"signed-up@example.com": signed_up, "stale@example.com": stale}, NOW)
    for days in (0, 1, 35, 90, 200, 400):
        now = NOW + timedelta(days=days)
        expected, changed, changes = snapshot_states(store, shop, now)
        result = evaluation.recompute(store, shop, now)
        with store.read() as conn:
            assert store.load_states(conn, shop.id) == expected, days
        assert (result.customers, result.written, result.stage_changes) == (len(expected), changed, changes), days
    assert expected["signed-up@example.com"] == signed_up
    assert expected["stale@example.com"].rfm == "prospect"


def test_unconverted_orders_count_in_f_but_in_no_amount_on_every_path(store, shop):
    """Orders in another currency that no rate converts (docs/rules.md, 'Amounts and currencies')
    count as orders but never as money. The per-webhook path (`evaluate_customers`), the integer
    recompute and the snapshot store the same states for a shop with some of them."""
    generated = [row_to_order(row, shop) for row in generate_orders(1_500, 200, NOW, seed=5)]
    orders = [in_shop_currency(replace(o, currency="USD"), shop.currency, shop.rates) if i % 4 == 0 else o
              for i, o in enumerate(generated)]
    orders += [in_shop_currency(Order.build(shop_id=shop.id, order_id=f"usd-{n}", placed_at=NOW - timedelta(days=n),
                                            total=Decimal("80.00"), email="only-usd@example.com", currency="USD"),
                                shop.currency, shop.rates) for n in (3, 30)]
    assert sum(not o.amount_known for o in orders) > 300
    keys = sorted({o.customer_key for o in orders if o.customer_key})
    with store.transaction() as conn:
        store.upsert_orders(conn, orders)
        evaluation.evaluate_customers(store, conn, shop, keys, NOW)  # the webhook path, every customer at once
    expected, _, _ = snapshot_states(store, shop, NOW)
    with store.read() as conn:
        assert store.load_states(conn, shop.id) == expected
    assert evaluation.recompute(store, shop, NOW).written == 0  # the integer path finds nothing to change
    only_usd = expected["only-usd@example.com"]
    assert (only_usd.orders_365d, only_usd.known_orders_365d, only_usd.amount_365d, only_usd.total_spent) == \
        (2, 0, 0, 0)
    snap = evaluation.snapshot(store, shop, NOW)
    assert snap.evaluations["only-usd@example.com"].figures.aov_365d is None
    assert snap.evaluations["only-usd@example.com"].high_value is False
    known = [o for o in orders if o.is_valid and o.amount_known and NOW - timedelta(days=365) < o.placed_at <= NOW]
    assert snap.shop.shop_aov == sum(o.amount for o in known) / len(known)
