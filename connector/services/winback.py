"""The win-back list: the customers of one stage, phase or churn band, most valuable first.

What the dashboard's list pages and their CSV download show: a snapshot's stages and figures
joined with the shop's predictions at the same instant (`predicting.predictions_at`), sorted by
predicted CLV (customers without one after, by total spent), and the shop's "value at risk".
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable

from connector.domain.stages import MODELS, day, money
from connector.services.csv_cells import safe_row
from connector.services.evaluation import Snapshot
from connector.storage.refs import refs_of
from connector.storage.store import Store

BANDS = ("low", "medium", "high")
AT_RISK_STAGES = ("cant_lose", "at_risk", "about_to_lose")  # the rfm stages whose CLV is "at risk"
CSV_COLUMNS = ("email", "phone", "rfm", "phases", "last_order_date", "orders_total", "total_spent", "churn_risk",
               "churn_band", "predicted_clv_365d", "next_order_date")


@dataclass(frozen=True)
class ListRow:
    customer_key: str
    rfm: str
    phases: str
    last_order_date: str | None
    orders_total: int
    total_spent: Decimal
    churn_risk: float | None
    churn_band: str | None
    predicted_clv_365d: float | None
    next_order_date: str | None


def selection(model: str | None, value: str | None) -> tuple[str, str] | None:
    """(model, value) when it names a stage of a model, a phase, or a churn band; else None."""
    if model in MODELS and value in MODELS[model]:
        return model, value
    if model == "churn_band" and value in BANDS:
        return model, value
    return None


def list_rows(snap: Snapshot, predictions, model: str, value: str) -> list[ListRow]:
    """The customers whose `model` (rfm, phases or churn_band) is `value`, by predicted CLV, then
    (without one) by total spent, both highest first."""
    rows = []
    for key, evaluation in snap.evaluations.items():
        p = predictions.customer(key)
        selected = p.churn_band if model == "churn_band" else getattr(evaluation, model)
        if selected != value:
            continue
        f = evaluation.figures
        rows.append(ListRow(key, evaluation.rfm, evaluation.phases, day(f.last_at), f.orders_total, f.total_spent,
                            p.churn_risk, p.churn_band, p.predicted_clv_365d,
                            p.next_order_date.isoformat() if p.next_order_date else None))
    rows.sort(key=lambda r: (r.predicted_clv_365d is None, -(r.predicted_clv_365d or 0), -r.total_spent,
                             r.customer_key))
    return rows


def row_refs(store: Store, shop_id: str, rows: Iterable[ListRow]) -> dict[str, str]:
    """customer_key -> the opaque ref a row's link names its customer by (no email in a URL)."""
    with store.transaction() as conn:
        return refs_of(store, conn, shop_id, [r.customer_key for r in rows])


def value_at_risk(snap: Snapshot, predictions) -> float | None:
    """The sum of predicted CLV of the customers in cant_lose, at_risk and about_to_lose; None
    when the shop has no predictions."""
    if predictions.fields is None:
        return None
    total = 0.0
    for key, evaluation in snap.evaluations.items():
        if evaluation.rfm in AT_RISK_STAGES:
            total += predictions.customer(key).predicted_clv_365d or 0.0
    return total


def csv_text(rows: Iterable[ListRow]) -> str:
    """The list as CSV (every row, not a page), with whole emails: what a win-back campaign needs; no
    cell a spreadsheet would take for a formula (connector/services/csv_cells.py)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        email, phone = (r.customer_key, "") if "@" in r.customer_key else ("", r.customer_key)
        writer.writerow(safe_row([email, phone, r.rfm, r.phases, r.last_order_date or "", r.orders_total, money(r.total_spent),
                         "" if r.churn_risk is None else f"{r.churn_risk:.4f}", r.churn_band or "",
                         "" if r.predicted_clv_365d is None else f"{r.predicted_clv_365d:.2f}",
                         r.next_order_date or ""]))
    return out.getvalue()
