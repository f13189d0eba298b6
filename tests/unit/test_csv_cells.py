"""CSV files stagesync writes open in a spreadsheet as data, never as formulas (CSV injection)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from connector.cli.output import write_export
from connector.services.csv_cells import spreadsheet_safe
from connector.services.winback import ListRow, csv_text


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\")@example.com", "+1+cmd|' /C calc'!A0", "-2+3@example.com",
                                  "@SUM(A1:A9)", "\tabc", "\rabc", "+33612345678"])
def test_a_text_cell_a_spreadsheet_would_run_gets_a_leading_quote(cell):
    assert spreadsheet_safe(cell) == "'" + cell


@pytest.mark.parametrize("cell", [12, 1.5, Decimal("-3.20"), "12.50", "-4", "jane@example.com", "", "recent"])
def test_numbers_and_plain_text_stay_as_they_are(cell):
    assert spreadsheet_safe(cell) == cell


def test_export_csv_neutralises_a_formula_in_an_email_and_keeps_amounts_numeric():
    out = io.StringIO()
    write_export([{"email": "=1+2@example.com", "total_spent": "12.50", "orders_total": 2, "p_alive": None}],
                 ["email", "total_spent", "orders_total", "p_alive"], "csv", out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[1] == ["'=1+2@example.com", "12.50", "2", ""]


def test_the_win_back_download_neutralises_formulas_too():
    row = ListRow("@evil@example.com", "at_risk", "disengagement", "2026-01-01", 3, Decimal("120"), 0.8, "high",
                  55.5, None)
    phone_row = ListRow("+33612345678", "at_risk", "disengagement", None, 1, Decimal("10"), None, None, None, None)
    lines = list(csv.reader(io.StringIO(csv_text([row, phone_row]))))
    assert lines[1][0] == "'@evil@example.com" and lines[1][6] == "120.00"
    assert lines[2][1] == "'+33612345678"
