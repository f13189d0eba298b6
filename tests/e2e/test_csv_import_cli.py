"""`stagesync import` then `stagesync export --at`, as a user runs them, on both engines.

The exported stages are checked against `tests.reference_stages`, an independent and deliberately
plain implementation of docs/rules.md, on 70,000 generated orders full of edge cases.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from connector.services.csv_import import parse_instant
from connector.services.generate import generate_orders, write_csv
from tests.conftest import SHOP_TOML, SLOW_ON_POSTGRESQL
from tests.reference_stages import reference_stages

AT = datetime(2026, 6, 1, 0, 0, tzinfo=timezone.utc)
STAGESYNC = [sys.executable, "-m", "connector.cli"]


def run(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*STAGESYNC, "--config", str(config), *args], capture_output=True, text=True,
                            timeout=600)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def reference_input(rows):
    """The CSV rows in the reference's plain form (its own, simple normalisation)."""
    for row in rows:
        email = row["email"].strip().lower()
        total = Decimal(row["total"])
        refunded = Decimal(row["refunded"]) if row["refunded"] else Decimal(0)
        if row["status"] == "refunded" and not row["refunded"]:
            refunded = total
        yield {
            "order_id": row["order_id"], "customer_key": email or row["phone"] or None,
            "placed_at": parse_instant(row["placed_at"]), "total": total, "refunded": refunded,
            "status": row["status"] or "placed", "test": False,
        }


@pytest.fixture
def config_file(tmp_path, database_url):
    path = tmp_path / "stagesync.toml"
    path.write_text(SHOP_TOML.format(database_url=database_url))
    return path


@pytest.mark.parametrize("database_url", SLOW_ON_POSTGRESQL, indirect=True)  # 145 s on PostgreSQL, loaded
def test_export_after_import_matches_the_reference_for_every_customer(tmp_path, config_file):
    rows = list(generate_orders(70_000, 15_000, AT, seed=11))
    csv_path = write_csv(tmp_path / "orders.csv", rows)
    run(config_file, "import", "--shop", "acme", str(csv_path))

    exported = run(config_file, "export", "--shop", "acme", "--at", AT.isoformat(), "--format", "json")
    by_customer = {(r["email"] or None): r for r in json.loads(exported.stdout)}
    expected = reference_stages(reference_input(rows), AT)
    emails = {k: v for k, v in expected.items() if k and "@" in k}
    assert len(by_customer.keys() - {None}) == len(emails)
    mismatches = [(k, v, by_customer.get(k)) for k, v in emails.items()
                  if {f: by_customer.get(k, {}).get(f) for f in v} != v]
    assert not mismatches[:5], f"{len(mismatches)} customers differ, e.g. {mismatches[:3]}"

    stages = json.loads(run(config_file, "stages", "--shop", "acme", "--at", AT.isoformat(), "--json").stdout)
    assert sum(stages["rfm"].values()) == len(expected) == sum(stages["phases"].values())
    csv_export = run(config_file, "export", "--shop", "acme", "--at", AT.isoformat()).stdout
    assert len(list(csv.DictReader(io.StringIO(csv_export)))) == len(expected)


@pytest.mark.slow
def test_importing_the_same_file_twice_leaves_the_database_unchanged(tmp_path, config_file):
    csv_path = write_csv(tmp_path / "orders.csv", generate_orders(3_000, 500, AT, seed=5))
    first = run(config_file, "import", "--shop", "acme", str(csv_path))
    before = run(config_file, "export", "--shop", "acme", "--at", AT.isoformat()).stdout
    second = run(config_file, "import", "--shop", "acme", str(csv_path))
    assert "imported 3,000 order(s)" in first.stdout
    # a first import replays the stage history on its days, and the recompute then changes nothing
    assert "replayed the stage history of" in first.stdout and ": 0 changed" in first.stdout
    assert "imported 0 order(s), 3,000 already stored" in second.stdout
    assert "replayed" not in second.stdout
    assert "0 changed" in second.stdout
    assert run(config_file, "export", "--shop", "acme", "--at", AT.isoformat()).stdout == before


BAD_CSV = (
    "order_id,email,placed_at,total,status\n"
    "1,ann@example.com,2026-01-05,10.00,placed\n"
    "2,bob@example.com,2026-01-06T10:00:00+02:00,20.00,\n"
    "3,cat@example.com,not-a-date,5.00,placed\n"
    "4,dan@example.com,2026-01-07,-1,placed\n"
    "5,eve@example.com,2026-01-08,7.50,refunded\n"
)


def test_a_bad_row_imports_nothing_and_names_its_line(tmp_path, config_file):
    path = tmp_path / "bad.csv"
    path.write_text(BAD_CSV)
    result = run(config_file, "import", "--shop", "acme", str(path), check=False)
    assert result.returncode == 1
    assert "line 4" in result.stderr and "nothing imported" in result.stderr
    assert "Traceback" not in result.stderr
    export = run(config_file, "export", "--shop", "acme").stdout
    assert export.strip().count("\n") == 0  # header only


def test_skip_invalid_imports_the_rest_and_lists_every_rejected_line(tmp_path, config_file):
    path = tmp_path / "bad.csv"
    path.write_text(BAD_CSV)
    result = run(config_file, "import", "--shop", "acme", str(path), "--skip-invalid")
    assert "line 4: rejected" in result.stderr and "line 5: rejected" in result.stderr
    assert "imported 3 order(s)" in result.stdout
    exported = {r["email"]: r for r in csv.DictReader(io.StringIO(run(config_file, "export", "--shop", "acme",
                                                                      "--at", "2026-02-01").stdout))}
    assert set(exported) == {"ann@example.com", "bob@example.com", "eve@example.com"}
    assert exported["eve@example.com"]["rfm"] == "prospect"  # fully refunded: no valid order


@pytest.mark.parametrize("database_url", SLOW_ON_POSTGRESQL, indirect=True)  # the CLI's messages: no engine-specific part
@pytest.mark.parametrize("args, message", [
    (["import", "--shop", "acme", "missing.csv"], "missing.csv: no such file"),
    (["import", "--shop", "nope", "x.csv"], "unknown shop 'nope' (configured: acme)"),
    (["stages", "--shop", "acme", "--at", "2026-13-45"], "--at '2026-13-45' is not an ISO 8601"),
    (["explain", "--shop", "acme", "Nobody@Example.com"], "no customer 'Nobody@Example.com' in shop acme"),
])
def test_user_errors_are_one_line_with_exit_1(config_file, args, message):
    result = run(config_file, *args, check=False)
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("database_url", SLOW_ON_POSTGRESQL, indirect=True)  # the CLI's messages: no engine-specific part
def test_usage_errors_exit_2(config_file):
    assert run(config_file, "stages", check=False).returncode == 2
    assert run(config_file, "frobnicate", check=False).returncode == 2


def test_explain_shows_the_numbers_behind_the_stages(tmp_path, config_file):
    path = tmp_path / "one.csv"
    path.write_text("order_id,email,placed_at,total\n1,Ann@Example.com ,2026-05-01,10\n2,ann@example.com,2026-05-20,30\n"
                    "3,bob@example.com,2026-05-02,60\n")  # Bob lifts the shop AOV to 33.33: Ann is not high value
    run(config_file, "import", "--shop", "acme", str(path))
    out = run(config_file, "explain", "--shop", "acme", "ANN@example.com", "--at", "2026-06-01").stdout
    assert "rfm             recent" in out and "phases          development" in out
    assert "orders_365d (F) 2" in out and "recency (R)     12 days" in out and "aov_365d        20.00" in out


def test_check_config_lists_every_problem_at_once(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[shops]]\nid = "Bad Id"\nplatform = "magento"\nwebhook_secret = "${NOPE_SECRET}"\n'
                    'rfm = { recent_days = 100, nurture_days = 90 }\n')
    result = subprocess.run([*STAGESYNC, "--config", str(path), "check-config"], capture_output=True, text=True)
    assert result.returncode == 1
    for expected in ("id: must match", "platform: must be one of", "NOPE_SECRET is not set",
                     "recent_days < nurture_days < risk_days"):
        assert expected in result.stderr


@pytest.mark.parametrize("database_url", SLOW_ON_POSTGRESQL, indirect=True)  # the CLI's messages: no engine-specific part
def test_an_instant_at_the_calendar_limit_is_a_one_line_error(config_file):
    result = run(config_file, "stages", "--shop", "acme", "--at", "0001-01-01T00:00:00+01:00", check=False)
    assert result.returncode == 1 and "not an ISO 8601" in result.stderr and "Traceback" not in result.stderr
