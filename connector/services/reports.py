"""What the CLI and the HTTP API show of a snapshot: stage counts, export rows, explanations."""

from __future__ import annotations

from datetime import datetime
from typing import Iterator

from connector.services.evaluation import Snapshot
from connector.domain.stages import PHASES, RFM_STAGES, Evaluation, day, money
from connector.storage.currency import unconverted_orders
from connector.storage.store import Store

EXPORT_COLUMNS = ("email", "rfm", "phases", "orders_365d", "orders_total", "aov_365d", "total_spent",
                  "first_order_date", "last_order_date")


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def stage_counts(snap: Snapshot) -> dict:
    """`stagesync stages --json`: every stage of both models, zero counts included, in table order."""
    rfm = dict.fromkeys(RFM_STAGES, 0)
    phases = dict.fromkeys(PHASES, 0)
    for evaluation in snap.evaluations.values():
        rfm[evaluation.rfm] += 1
        phases[evaluation.phases] += 1
    return {"shop": snap.shop_id, "at": iso(snap.now), "rfm": rfm, "phases": phases}


def stage_table(counts: dict) -> str:
    total = sum(counts["rfm"].values()) or 1
    lines = [f"shop {counts['shop']} at {counts['at']}", "", f"{'rfm stage':<18}{'customers':>10}{'share':>8}"]
    lines += [f"{stage:<18}{n:>10,}{100 * n / total:>7.1f}%" for stage, n in counts["rfm"].items()]
    lines += ["", f"{'phase':<18}{'customers':>10}{'share':>8}"]
    lines += [f"{phase:<18}{n:>10,}{100 * n / total:>7.1f}%" for phase, n in counts["phases"].items()]
    return "\n".join(lines)


def export_row(key: str, evaluation: Evaluation) -> dict:
    f = evaluation.figures
    return {
        "email": key if "@" in key else "",
        "rfm": evaluation.rfm,
        "phases": evaluation.phases,
        "orders_365d": f.orders_365d,
        "orders_total": f.orders_total,
        "aov_365d": money(f.aov_365d),
        "total_spent": money(f.total_spent),
        "first_order_date": day(f.first_at),
        "last_order_date": day(f.last_at),
    }


def export_rows(snap: Snapshot) -> Iterator[dict]:
    """One row per customer, sorted by customer identity (email, else phone)."""
    for key in sorted(snap.evaluations):
        yield export_row(key, snap.evaluations[key])


def unconverted_note(count: int) -> str | None:
    """The sentence `explain`, the customer view and the dashboard show about orders in another
    currency that no rate converted, or None when every amount is known."""
    if not count:
        return None
    return (f"{count:,} order(s) in another currency with no exchange rate (set the shop's `rates`): "
            "counted as orders, left out of every amount")


def unconverted_of_customer(store: Store, shop_id: str, key: str) -> int:
    """The customer's valid orders whose amount no exchange rate converted (for `explain`)."""
    with store.read() as conn:
        return unconverted_orders(conn, shop_id, key).get(shop_id, 0)


def explain(snap: Snapshot, key: str, unconverted: int = 0) -> str:
    """A customer's stages and the numbers behind them, as `stagesync explain` prints them;
    `unconverted`: the customer's orders whose amount no exchange rate converted."""
    e = snap.evaluations[key]
    f = e.figures
    bands = snap.shop.bands
    shop_aov = money(snap.shop.shop_aov)
    lines = [
        f"customer        {key}",
        f"at              {iso(snap.now)}",
        f"rfm             {e.rfm}",
        f"phases          {e.phases}",
        "",
        f"orders_365d (F) {f.orders_365d}",
        f"orders_total    {f.orders_total}",
        f"recency (R)     {'-' if e.recency_days is None else f'{e.recency_days} days'}",
        f"aov_365d        {money(f.aov_365d) or '-'}   (shop AOV {shop_aov or '-'}, "
        f"high value: {'yes' if e.high_value else 'no'})",
        f"frequent        {'yes' if e.frequent else 'no'}   (F >= 3, or F = 2 and high value)",
        f"total_spent     {money(f.total_spent)}",
        f"first order     {day(f.first_at) or '-'}",
        f"last order      {day(f.last_at) or '-'}",
        f"recency bands   recent < {bands.recent} d, nurture < {bands.nurture} d, risk < {bands.risk} d "
        f"({'adaptive' if bands.adaptive else 'configured'})",
    ]
    note = unconverted_note(unconverted)
    if note:
        lines.append(f"unconverted     {note}")
    return "\n".join(lines)
