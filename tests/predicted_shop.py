"""Order histories for the `predicted` model's wiring tests: a BG/NBD shop with enough data
(simulated with a fixed seed) and a tiny one below the minimum, as CSV rows to import."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from connector.services.generate import CSV_COLUMNS, write_csv  # noqa: F401 (re-exported for the tests)


def _row(number: int, customer: int, placed: datetime, total: float) -> dict[str, str]:
    return {"order_id": f"p{number}", "email": f"buyer{customer}@example.com",
            "placed_at": placed.strftime("%Y-%m-%dT%H:%M:%SZ"), "total": f"{total:.2f}", "status": "placed",
            "refunded": "", "customer_id": str(customer), "phone": "", "currency": "EUR"}


def simulated_orders(now: datetime, customers: int = 700, seed: int = 11) -> list[dict[str, str]]:
    """The BG/NBD process (purchase rate ~ Gamma(r=0.9, alpha=6 weeks), dropout after each order
    ~ Beta(0.8, 2.5)) over two years, with Gamma-distributed order values: enough for a fit."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    for customer in range(customers):
        rate = rng.gammavariate(0.9, 1 / 6)  # orders a week
        drop = rng.betavariate(0.8, 2.5)
        spend = rng.gammavariate(6.0, 8.0)
        placed = now - timedelta(days=rng.uniform(1, 720))
        while placed < now:
            rows.append(_row(len(rows) + 1, customer, placed, rng.gammavariate(4.0, spend / 4)))
            if rng.random() < drop:
                break
            placed += timedelta(weeks=rng.expovariate(rate))
    return rows


def tiny_orders(now: datetime) -> list[dict[str, str]]:
    """20 one-order customers, no repeat order, every amount zero."""
    return [_row(i + 1, i, now - timedelta(days=3 + i), 0.0) for i in range(20)]
