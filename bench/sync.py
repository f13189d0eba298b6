"""Sync benchmark: how many vendor requests 5,000 simultaneous stage changes cost.

Builds a shop of N customers (one order each) on SQLite, evaluates it, syncs to a local fake
Omnisend over real HTTP, then moves time forward so that every customer changes stage at once
and syncs again, then recomputes unchanged and syncs a third time. Reports requests, contacts
and wall time per phase. Targets (issue 4): the 5,000 changes reach Omnisend in at most 60
requests; the unchanged recompute sends zero.

    .venv/bin/python bench/sync.py [--customers 5000] [--events] [--record]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connector.services import evaluation  # noqa: E402
from connector.domain.orders import Order  # noqa: E402
from connector.storage.store import Store  # noqa: E402
from connector.services.sync import SyncWorker  # noqa: E402
from tests.fakes.omnisend_shop import omnisend_shop, seed  # noqa: E402

# Recent enough that the stage changes of the second phase (AT + 35 days) fall inside the 7-day
# window in which stage changes are sent as events (connector.services.sync.EVENT_MAX_AGE).
AT = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=36)


def phase(name: str, store: Store, shop, settings, vendor, now: datetime) -> dict:
    before = len(vendor.requests)
    started = time.perf_counter()
    result = evaluation.recompute(store, shop, now)
    stats = SyncWorker(store, settings).drain()
    return {"phase": name, "stage changes": result.stage_changes, "contacts written": stats.sent,
            "requests": len(vendor.requests) - before, "events": stats.events,
            "seconds": round(time.perf_counter() - started, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--events", action="store_true", help="also send stage-change events")
    parser.add_argument("--record", action="store_true", help="append the results to bench/RESULTS.md")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, \
            omnisend_shop(f"sqlite:///{tmp}/bench.db", shop_id="bench", events=args.events) as env:
        vendor, settings, store = env.vendor, env.settings, env.store
        shop = settings.shops["bench"]
        seed(store, [Order.build(shop_id="bench", order_id=i, placed_at=AT - timedelta(days=10, minutes=i),
                                 total=Decimal(20 + i % 50), email=f"c{i}@example.com") for i in range(args.customers)])
        rows.append(phase("first evaluation", store, shop, settings, vendor, AT))
        rows.append(phase("every customer changes stage (+35 days)", store, shop, settings, vendor,
                          AT + timedelta(days=35)))
        rows.append(phase("unchanged recompute", store, shop, settings, vendor, AT + timedelta(days=35)))
    table = format_table(rows)
    print(table)
    moved = rows[1]
    verdict = (f"{args.customers:,} stage changes reached Omnisend in {moved['requests']} requests "
               f"(target <= 60: {'met' if moved['requests'] <= 60 else 'MISSED'}); "
               f"unchanged recompute sent {rows[2]['requests']} (target 0: "
               f"{'met' if rows[2]['requests'] == 0 else 'MISSED'})")
    print(verdict)
    if args.record:
        record(table, verdict, args)
    return 0


def format_table(rows: list[dict]) -> str:
    columns = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    lines = [" | ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "-|-".join("-" * w for w in widths)]
    lines += [" | ".join(str(r[c]).ljust(w) for c, w in zip(columns, widths)) for r in rows]
    return "\n".join(lines)


def record(table: str, verdict: str, args) -> None:
    import os
    import platform

    results = Path(__file__).with_name("RESULTS.md")
    command = "python bench/sync.py --record" + (" --events" if args.events else "") + \
        (f" --customers {args.customers}" if args.customers != 5000 else "")
    section = (f"\n## Sync: {args.customers:,} simultaneous stage changes to a fake Omnisend "
               f"({datetime.now(timezone.utc):%Y-%m-%d}, events {'on' if args.events else 'off'})\n\n"
               f"Command: `{command}`; machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
               f"SQLite, Omnisend's default 400 requests/minute, batches of 100.\n\n```\n{table}\n```\n\n{verdict}\n")
    with results.open("a", encoding="utf-8") as handle:
        handle.write(section)


if __name__ == "__main__":
    sys.exit(main())
