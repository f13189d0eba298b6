"""`stagesync import` guesses nothing: a decimal comma, a grouped number, another separator, an
empty file and a byte that is not UTF-8 are each refused clearly, with the right line number."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from connector.errors import UserError
from connector.services.csv_import import import_csv
from connector.storage.schema import orders

HEADER = "order_id,email,placed_at,total\n"


def stored(store) -> int:
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(orders)).scalar_one()


def write(tmp_path, content: str | bytes):
    path = tmp_path / "orders.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


@pytest.mark.parametrize("row, reason", [
    ("2,bob@example.com,2026-01-02,12,50\n", "5 values for 4 columns"),  # unquoted: it splits in two
    ('2,bob@example.com,2026-01-02,"12,50"\n', "total '12,50' is not a plain decimal"),
    ("2,bob@example.com,2026-01-02,1 200\n", "total '1 200' is not a plain decimal"),
    ("2,bob@example.com,2026-01-02,1e3\n", "total '1e3' is not a plain decimal"),
    ("2,bob@example.com,2026-01-02,1_000\n", "total '1_000' is not a plain decimal"),
])
def test_a_total_that_is_not_a_plain_decimal_stops_the_import_at_its_line(store, shop, tmp_path, row, reason):
    path = write(tmp_path, HEADER + "1,ann@example.com,2026-01-01,10.00\n" + row)
    with pytest.raises(UserError) as raised:
        import_csv(store, shop, path)
    assert f"line 3: {reason}" in str(raised.value) and "nothing imported" in str(raised.value)
    assert stored(store) == 0


def test_skip_invalid_imports_the_rest_and_lists_every_rejected_line(store, shop, tmp_path):
    path = write(tmp_path, HEADER + "1,ann@example.com,2026-01-01,10.00\n2,bob@example.com,2026-01-02,12,50\n"
                               "3,cat@example.com,2026-01-03,7\n4,dan@example.com,2026-01-04,\"1 200\"\n")
    result = import_csv(store, shop, path, skip_invalid=True)
    assert [r.line for r in result.rejected] == [3, 5] and result.imported == 2 and stored(store) == 2


def test_a_byte_that_is_not_utf8_is_reported_on_its_own_line(store, shop, tmp_path):
    lines = [HEADER.encode(), b"1,ann@example.com,2026-01-01,10.00\n", b"2,bob@example.com,2026-01-02,10.00\n",
             "3,Zo\u00e9@example.com,2026-01-03,10.00\n".encode("latin-1")]
    path = write(tmp_path, b"".join(lines) + b"4,dan@example.com,2026-01-04,10.00\n" * 3000)
    with pytest.raises(UserError, match=r"orders.csv: line 4: not UTF-8 text \(byte 0xe9 at character 5\)"):
        import_csv(store, shop, path)
    assert stored(store) == 0


def test_a_semicolon_separated_file_is_named_as_such(store, shop, tmp_path):
    path = write(tmp_path, "order_id;email;placed_at;total\n1;ann@example.com;2026-01-01;10,00\n")
    with pytest.raises(UserError, match="looks like ';'-separated: use ',' as the separator"):
        import_csv(store, shop, path)


@pytest.mark.parametrize("content", ["", "\ufeff", "\n\n"])
def test_an_empty_file_is_called_an_empty_file(store, shop, tmp_path, content):
    with pytest.raises(UserError, match="orders.csv: empty file"):
        import_csv(store, shop, write(tmp_path, content))


def test_a_utf8_file_with_a_byte_order_mark_and_crlf_lines_imports(store, shop, tmp_path):
    path = write(tmp_path, "\ufefforder_id,email,placed_at,total\r\n1,zo\u00e9@example.com,2026-01-01,12.50\r\n")
    assert import_csv(store, shop, path).imported == 1 and stored(store) == 1
