"""Seeded, realistic order histories with many edge cases, for tests, benchmarks and the demo.

Edge cases are placed relative to an instant `at`: orders exactly 365 days before it and one
second either side, recencies on every band boundary (39/40, 89/90, 179/180 days), orders after
`at`, cancelled, refunded (fully and partly), test-free zero totals, phone-only and anonymous
orders. Rows use the CSV columns of docs/cli.md, 'import'.
"""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Iterator

CSV_COLUMNS = ("order_id", "email", "placed_at", "total", "status", "refunded", "customer_id", "phone", "currency")
BOUNDARY_OFFSETS = (
    timedelta(days=365), timedelta(days=365, seconds=-1), timedelta(days=365, seconds=1),
    timedelta(days=39), timedelta(days=40), timedelta(days=89), timedelta(days=90),
    timedelta(days=179), timedelta(days=180), timedelta(days=40, seconds=-1), timedelta(0),
)
_PARIS_SUMMER = timezone(timedelta(hours=2))


def _stamp(moment: datetime, rng: random.Random) -> str:
    # Mix the accepted ISO forms: Z, an offset, and no offset (UTC).
    form = rng.random()
    if form < 0.6:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if form < 0.8:
        return moment.replace(tzinfo=None).isoformat(timespec="seconds")
    return moment.astimezone(_PARIS_SUMMER).isoformat(timespec="seconds")


def generate_orders(n_orders: int, n_customers: int, at: datetime, *, seed: int = 7,
                    years: float = 2.0, currency: str = "EUR") -> Iterator[dict[str, str]]:
    """`n_orders` CSV rows over `n_customers` customers, mostly within `years` before `at`."""
    rng = random.Random(seed)
    span = timedelta(days=365 * years)
    # Customer habits: a few heavy buyers, many one-timers, per-customer basket size.
    weights = [rng.paretovariate(1.3) for _ in range(n_customers)]
    baskets = [Decimal(rng.choice((9, 19, 29, 49, 79, 120, 250))) for _ in range(n_customers)]
    customer_ids = rng.choices(range(n_customers), weights=weights, k=n_orders)
    for number, customer in enumerate(customer_ids, start=1):
        roll = rng.random()
        if roll < 0.08:
            placed = at - rng.choice(BOUNDARY_OFFSETS)
        elif roll < 0.10:
            placed = at + timedelta(days=rng.randint(0, 30), seconds=rng.randint(1, 86_000))  # after `at`
        else:
            placed = at - timedelta(seconds=rng.randint(0, int(span.total_seconds())))
        total = (baskets[customer] * Decimal(rng.randint(50, 150)) / 100).quantize(Decimal("0.01"))
        status, refunded = "placed", ""
        kind = rng.random()
        if kind < 0.03:
            status = "cancelled"
        elif kind < 0.05:
            status, refunded = "refunded", ""  # fully refunded
        elif kind < 0.08:
            refunded = str((total * Decimal(rng.randint(1, 99)) / 100).quantize(Decimal("0.01")))
        elif kind < 0.09:
            refunded = str(total)  # fully refunded by amount
        elif kind < 0.10:
            total = Decimal("0.00")
        email, phone = f"customer{customer}@example.com", ""
        identity = rng.random()
        if customer % 97 == 0:
            email, phone = "", f"+3361{customer:07d}"[:12]
        elif identity < 0.002:
            email = ""  # anonymous: stored and counted, never a customer
        elif identity < 0.05:
            email = f"  Customer{customer}@EXAMPLE.com "  # normalisation
        yield {
            "order_id": f"o{number}",
            "email": email,
            "placed_at": _stamp(placed, rng),
            "total": str(total),
            "status": status,
            "refunded": refunded,
            "customer_id": str(customer),
            "phone": phone,
            "currency": currency,
        }


def write_csv(path: str | Path, rows: Iterable[dict[str, str]]) -> Path:
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path
