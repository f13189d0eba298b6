"""`recompute` evaluates now and stores it; `--dry-run` only counts; `--at` is refused (it once
stored a replayed date as the live stages and queued them)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import delete, select

from connector.cli import main
from connector.domain.orders import Order
from connector.services import evaluation
from connector.storage import schema
from tests.conftest import NOW, SHOP_TOML

WRITTEN_BY_RECOMPUTE = (schema.customers, schema.stage_changes, schema.shop_figures, schema.outbox, schema.synced,
                        schema.shop_predictions, schema.customer_predictions, schema.deliveries, schema.orders)


def order(order_id: str, email: str, placed: datetime, total: str = "40.00") -> Order:
    return Order.build(shop_id="acme", order_id=order_id, placed_at=placed, total=Decimal(total), email=email)


def dump(store) -> dict[str, list[tuple]]:
    """Every row of the tables a recompute writes, in a fixed order."""
    with store.read() as conn:
        return {table.name: sorted(tuple(map(repr, row)) for row in conn.execute(select(table)))
                for table in WRITTEN_BY_RECOMPUTE}


def test_a_dry_run_counts_the_changes_and_leaves_every_table_as_it_was(store, shop):
    with store.transaction() as conn:
        store.upsert_orders(conn, [order("1", "jane@example.com", NOW - timedelta(days=3)),
                                   order("2", "bob@example.com", NOW - timedelta(days=100)),
                                   order("3", "bob@example.com", NOW - timedelta(days=60))])
        store.record_delivery(conn, "acme", "a-delivery", "orders/create", NOW - timedelta(days=2))
    evaluation.recompute(store, shop, NOW - timedelta(days=1))
    with store.transaction() as conn:
        conn.execute(delete(schema.outbox))  # as after a sync
    before = dump(store)

    later = NOW + timedelta(days=60)  # jane falls out of `recent`; bob's R grows
    result = evaluation.recompute(store, shop, later, dry_run=True)

    assert dump(store) == before and before["outbox"] == [] and len(before["deliveries"]) == 1
    assert result.dry_run and result.written == 2 and result.queued >= 2
    assert sum(result.transitions.values()) == result.stage_changes
    assert result.transitions == {"rfm: high_potential -> cant_lose": 1, "rfm: recent -> high_potential": 1}
    real = evaluation.recompute(store, shop, later)
    assert (real.written, real.stage_changes, real.transitions) == (result.written, result.stage_changes,
                                                                     result.transitions)
    assert real.deliveries_pruned == 1  # what the dry run left alone


def test_recompute_prunes_delivery_ids_past_the_retry_window(store, shop):
    with store.transaction() as conn:
        store.record_delivery(conn, "acme", "eight-days-old", "orders/create", NOW - timedelta(days=8))
        store.record_delivery(conn, "acme", "six-days-old", "orders/create", NOW - timedelta(days=6))
        store.record_delivery(conn, "other", "eight-days-old", "orders/create", NOW - timedelta(days=8))
    assert evaluation.recompute(store, shop, NOW).deliveries_pruned == 1
    with store.read() as conn:
        kept = sorted(conn.execute(select(schema.deliveries.c.shop_id, schema.deliveries.c.delivery_id)))
    assert kept == [("acme", "six-days-old"), ("other", "eight-days-old")]
    with store.transaction() as conn:  # a retry of a kept delivery is still a duplicate
        assert not store.record_delivery(conn, "acme", "six-days-old", "orders/create", NOW)


def write_config(tmp_path, database_url) -> str:
    path = tmp_path / "stagesync.toml"
    path.write_text(SHOP_TOML.format(database_url=database_url), encoding="utf-8")
    return str(path)


def test_recompute_dry_run_prints_the_transitions_and_queues_nothing(database_url, store, tmp_path, capsys):
    now = datetime.now(timezone.utc)
    with store.transaction() as conn:
        store.upsert_orders(conn, [order("1", "jane@example.com", now - timedelta(days=3))])
    before = dump(store)
    assert main(["--config", write_config(tmp_path, database_url), "recompute", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dry run: recomputing 1 customer(s) of acme would change 1, with 2 stage change(s), "
                          "and queue 1 sync(s); nothing written\n")
    assert "  rfm: new -> recent: 1\n" in out and "  phases: new -> conversion: 1\n" in out
    assert dump(store) == before


def test_recompute_refuses_at_and_points_at_the_read_only_commands(database_url, store, tmp_path, capsys):
    with store.transaction() as conn:
        store.upsert_orders(conn, [order("1", "jane@example.com", NOW - timedelta(days=3))])
    before = dump(store)
    assert main(["--config", write_config(tmp_path, database_url), "recompute", "--at", "2020-01-01"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("stagesync: recompute has no --at") and "stages --at" in err and "Traceback" not in err
    assert dump(store) == before


def test_at_only_reads_in_every_command_and_on_the_dashboard(database_url, store, shop, tmp_path, capsys):
    from connector import config
    from connector.web.app import create_app

    with store.transaction() as conn:
        store.upsert_orders(conn, [order("1", "jane@example.com", NOW - timedelta(days=3)),
                                   order("2", "bob@example.com", NOW - timedelta(days=200))])
    evaluation.recompute(store, shop, NOW)
    before = dump(store)
    path = write_config(tmp_path, database_url)
    for command in (["stages", "--json"], ["explain", "jane@example.com"], ["export"], ["predict", "--json"]):
        assert main(["--config", path, command[0], "--shop", "acme", *command[1:], "--at", "2027-03-01"]) == 0
    settings = config.parse(SHOP_TOML.format(database_url=database_url), env={})
    client = create_app(settings, store=store, clock=lambda: NOW).test_client()
    bearer = {"Authorization": "Bearer test-admin-token"}
    assert client.get("/dashboard/acme?at=2027-03-01", headers=bearer).status_code == 200
    capsys.readouterr()
    assert dump(store) == before
