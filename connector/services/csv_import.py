"""CSV import of historical orders (docs/cli.md, 'import').

Two passes over the file: the first validates every row (so that a bad row imports nothing,
or, with `skip_invalid`, so that every rejected line is listed), the second loads the valid
rows in chunks through the same upsert rules as webhooks. Importing a file twice changes nothing.

The file is UTF-8, comma-separated, with a header row. Nothing is guessed: an amount that is not a
plain decimal (`12,50`, `1 200`) or a row with more values than the header (an unquoted `12,50`
splits in two) is a bad row; a `;`- or tab-separated file, an empty file and a byte that is not
UTF-8 are each one clear error, the byte's with its true line number.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Callable, Iterator

from connector.config import ShopSettings
from connector.errors import UserError, mask
from connector.domain.orders import Order
from connector.storage.store import Store

REQUIRED = ("order_id", "email", "placed_at", "total")
STATUSES = ("placed", "cancelled", "refunded")
CHUNK = 10_000
PLAIN_DECIMAL = re.compile(r"\d+(?:\.\d+)?")  # `59.90`, `12`: no sign, exponent, grouping or decimal comma
OTHER_SEPARATORS = {";": "';'", "\t": "tab"}


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


@dataclass
class ImportResult:
    rows: int = 0
    imported: int = 0  # rows stored or updated
    unchanged: int = 0  # rows already stored as they are
    rejected: list[Rejected] = field(default_factory=list)


def parse_instant(raw: str) -> datetime:
    """ISO 8601 date or date-time; UTC when no offset is given."""
    value = raw.strip()
    if not value:
        raise ValueError("is empty")
    try:
        if len(value) == 10:
            return datetime.combine(datetime.strptime(value, "%Y-%m-%d").date(), time(), timezone.utc)
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved across an offset
        raise ValueError(f"{raw!r} is not an ISO 8601 date or date-time") from None


def instant_option(raw: str | None, label: str) -> datetime | None:
    """An option's instant (`parse_instant`), None when not given; a bad one is a UserError
    beginning with `label`."""
    if raw is None:
        return None
    try:
        return parse_instant(raw)
    except ValueError as exc:
        raise UserError(f"{label} {exc}") from None


def _decimal(raw: str, column: str) -> Decimal:
    """A plain non-negative decimal (`59.90`); anything else (`12,50`, `1 200`, `1e3`, `-1`) is a
    ValueError: a bad row, never a guess."""
    text = raw.strip()
    if text.startswith("-") and PLAIN_DECIMAL.fullmatch(text[1:]):
        raise ValueError(f"{column} {raw!r} must be a non-negative decimal")
    if not PLAIN_DECIMAL.fullmatch(text):
        raise ValueError(f"{column} {raw!r} is not a plain decimal number (write it like 1200.50)")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"{column} {raw!r} is not a decimal number") from None


def row_to_order(row: dict[str, str], shop: ShopSettings) -> Order:
    """One CSV row as an order; ValueError with a readable reason when the row is bad."""
    if row.get(None):  # csv.DictReader puts the values beyond the header's columns under None
        raise ValueError(f"{len(row) - 1 + len(row[None])} values for {len(row) - 1} columns: an unquoted comma in "
                         "a value? (a decimal comma such as 12,50 must be written 12.50)")
    order_id = (row.get("order_id") or "").strip()
    if not order_id:
        raise ValueError("order_id is empty")
    try:
        placed_at = parse_instant(row.get("placed_at") or "")
    except ValueError as exc:
        raise ValueError(f"placed_at {exc}") from None
    total = _decimal(row.get("total") or "", "total")
    refunded = _decimal(row["refunded"], "refunded") if (row.get("refunded") or "").strip() else Decimal(0)
    status = (row.get("status") or "").strip().lower() or "placed"
    if status not in STATUSES:
        raise ValueError(f"status {status!r} must be one of {', '.join(STATUSES)}")
    currency = (row.get("currency") or "").strip().upper() or None
    if currency and shop.currency and currency != shop.currency:
        raise ValueError(f"currency {currency} differs from the shop's {shop.currency}")
    email = (row.get("email") or "").strip()
    if email and "@" not in email:
        raise ValueError(f"email {mask(email)!r} is not an email address")
    return Order.build(
        shop_id=shop.id, order_id=order_id, placed_at=placed_at, total=total, refunded=refunded,
        status=status, email=email or None, phone=(row.get("phone") or "").strip() or None,
        customer_id=(row.get("customer_id") or "").strip() or None, currency=currency or shop.currency,
        default_region=shop.country,
    )


def _decoded_lines(handle, path: Path) -> Iterator[str]:
    """The file's lines as text, decoded one physical line at a time (a UTF-8 character never
    holds a newline byte), so that a byte that is not UTF-8 is reported on its own line."""
    for number, raw in enumerate(handle, 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"{path}: line {number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at character "
                            f"{len(raw[:exc.start].decode('utf-8', 'replace')) + 1}); save the file as UTF-8") from None
        yield text.removeprefix("\ufeff") if number == 1 else text


def _check_header(path: Path, header: list[str] | None) -> None:
    """An empty file, another separator, or missing required columns: one clear UserError."""
    if not header or not any(name.strip() for name in header):
        raise UserError(f"{path}: empty file (expected a header row: {', '.join(REQUIRED)}, ...)")
    if len(header) == 1:
        for separator, name in OTHER_SEPARATORS.items():
            if separator in header[0]:
                raise UserError(f"{path}: looks like {name}-separated: use ',' as the separator "
                                f"(header row: {', '.join(REQUIRED)}, ...)")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)} in the header row "
                        f"(required: {', '.join(REQUIRED)})")


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror})") from None
    with handle:
        reader = csv.DictReader(_decoded_lines(handle, path))
        try:
            _check_header(path, reader.fieldnames)
            start = reader.line_num
            for row in reader:
                yield start + 1, row
                start = reader.line_num
        except csv.Error as exc:
            raise UserError(f"{path}: line {reader.line_num}: {exc}") from None


def _orders(path: Path, shop: ShopSettings, result: ImportResult) -> Iterator[Order]:
    seen: dict[str, int] = {}
    for line, row in _rows(path):
        result.rows += 1
        try:
            order = row_to_order(row, shop)
            if order.order_id in seen:
                raise ValueError(f"order_id {order.order_id!r} already on line {seen[order.order_id]}")
            seen[order.order_id] = line
        except ValueError as exc:
            result.rejected.append(Rejected(line, str(exc)))
            continue
        yield order


def import_csv(store: Store, shop: ShopSettings, path: str | Path, *, skip_invalid: bool = False,
               progress: Callable[[int, int], None] | None = None) -> ImportResult:
    """Validate, then load. Raises UserError naming the first bad line unless `skip_invalid`."""
    path = Path(path)
    check = ImportResult()
    for _ in _orders(path, shop, check):
        pass
    if check.rejected and not skip_invalid:
        first = check.rejected[0]
        more = f" ({len(check.rejected) - 1} more bad line(s); --skip-invalid imports the rest)" \
            if len(check.rejected) > 1 else ""
        raise UserError(f"{path}: line {first.line}: {first.reason}; nothing imported{more}")
    result = ImportResult()
    batch: list[Order] = []
    done = 0

    def flush() -> None:
        nonlocal done
        with store.transaction() as conn:
            changed = store.upsert_orders(conn, batch)
        result.imported += changed
        result.unchanged += len(batch) - changed
        done += len(batch)
        batch.clear()
        if progress:
            progress(done, check.rows - len(check.rejected))

    for order in _orders(path, shop, result):
        batch.append(order)
        if len(batch) >= CHUNK:
            flush()
    if batch:
        flush()
    store.analyze("orders")
    return result
