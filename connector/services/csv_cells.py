"""Cells of the CSV files stagesync writes (`export --format csv`, the win-back list download),
safe to open in a spreadsheet.

Excel, LibreOffice Calc and Google Sheets read a cell that begins with `=`, `+`, `-`, `@`, a tab
or a carriage return as a formula ("CSV injection", https://owasp.org/www-community/attacks/CSV_Injection):
an email address or an order field written by a shopper could run one on the store owner's machine.
As OWASP advises, such a text cell is written with a single quote in front, which the spreadsheet
shows as text. Numbers stay numbers: an int, a float, a Decimal, and text that is a plain decimal
number (amounts are written as "12.50") are written as they are.
"""

from __future__ import annotations

import re
from decimal import Decimal

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def spreadsheet_safe(value: object) -> object:
    """`value` as a CSV cell: None as an empty cell, a text that a spreadsheet would take for a
    formula with a leading single quote, anything else unchanged."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float, Decimal)) or not isinstance(value, str):
        return value
    if value.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_row(values) -> list:
    """Every cell of a row through `spreadsheet_safe`."""
    return [spreadsheet_safe(v) for v in values]
