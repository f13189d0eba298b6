"""What the CLI and the HTTP API show of a snapshot: stage counts, export rows, explanations."""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Iterator

from connector.services.evaluation import Snapshot
from connector.domain.stages import PHASES, RFM_STAGES, Evaluation, day, fields, money
from connector.storage.currency import unconverted_orders
from connector.storage.store import Store

EXPORT_COLUMNS = ("email", "rfm", "phases", "orders_365d", "orders_total", "aov_365d", "total_spent",
                  "first_order_date", "last_order_date")
# docs/rules.md, 'Predictions': after the columns above, unrounded, empty unless the shop's status is `ok`
PREDICTED_COLUMNS = ("p_alive", "churn_risk", "churn_band", "expected_orders_90d", "expected_orders_365d",
                     "predicted_clv_365d", "next_order_date")


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
    """The export columns: the customer's email, then the fields a destination can write (without
    `rfm_since`, which the export does not carry), in the same order."""
    written = fields(evaluation)
    del written["rfm_since"]
    return {"email": key if "@" in key else "", **written}


def export_rows(snap: Snapshot, predicted: Callable[[str], dict] | None = None) -> Iterator[dict]:
    """One row per customer, sorted by customer identity (email, else phone); with `predicted`
    (customer key -> `PREDICTED_COLUMNS` values), those columns after the others."""
    for key in sorted(snap.evaluations):
        row = export_row(key, snap.evaluations[key])
        if predicted is not None:
            row.update(predicted(key))
        yield row


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


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def explain_predictions(details: dict) -> list[str]:
    """The `explain` lines of a customer's predictions and the numbers behind them
    (`connector.services.predicting.customer_details`)."""
    d = details
    if d["status"] != "ok":
        return [f"predictions     {d['status']}: {d['reason']} (every predicted field empty)"]
    lines = [f"predictions     ok (shop fit of {d['fitted_on']})"]
    i = d["inputs"]
    if i is not None:
        m = "-" if i["m"] is None else f"{i['m']:.2f}"
        lines.append(f"inputs          x = {i['x']} repeat dates, t_x = {i['t_x']:.2f} weeks, T = {i['T']:.2f} weeks, "
                     f"m = {m}")
    bg, gg = d["bgnbd"], d["gamma_gamma"]
    lines += [
        f"BG/NBD          r = {bg['r']:.4g}, alpha = {bg['alpha']:.4g} weeks, a = {bg['a']:.4g}, b = {bg['b']:.4g}",
        f"Gamma-Gamma     p = {gg['p']:.4g}, q = {gg['q']:.4g}, v = {gg['v']:.4g}",
        f"p_alive         {_number(d['p_alive'], 6)}",
        f"churn_risk      {_number(d['churn_risk'], 6)}   (P(no order in the next 90 days), band "
        f"{d['churn_band'] or '-'})",
        f"expected orders {_number(d['expected_orders_90d'])} in 90 days, {_number(d['expected_orders_365d'])} in 365 days",
        f"predicted CLV   {_number(d['predicted_clv_365d'], 2)}   (365 days x expected order value, undiscounted)",
        f"next order date {d['next_order_date'] or '-'}",
    ]
    return lines


def explain(snap: Snapshot, key: str, unconverted: int = 0, predicted: dict | None = None) -> str:
    """A customer's stages and the numbers behind them, as `stagesync explain` prints them;
    `unconverted`: the customer's orders whose amount no exchange rate converted; with `predicted`
    (`predicting.customer_details`), their predictions too."""
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
    if predicted is not None:
        lines += ["", *explain_predictions(predicted)]
    return "\n".join(lines)
