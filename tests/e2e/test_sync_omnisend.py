"""Signed Shopify webhooks into `stagesync serve`; its sync worker writes to a local fake Omnisend."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from sqlalchemy import select

from connector.storage.schema import stage_changes
from connector.storage.store import Store
from tests.conftest import SLOW_ON_POSTGRESQL
from tests.e2e.server import Server, run
from tests.fakes.vendor_server import omnisend_vendor
from tests.fakes.senders import SECRETS, ShopifySender

NOW = datetime.now(timezone.utc).replace(microsecond=0)

CONFIG = """
database_url = "{database_url}"
[[shops]]
id = "acme"
platform = "shopify"
webhook_secret = "{secret}"
currency = "EUR"
  [[shops.destinations]]
  type = "omnisend"
  api_key = "test-omnisend-key"
  base_url = "{base_url}"
  events = true
  rate_per_minute = 6000
  properties = {{ lifecycle_stage = "rfm", lifecycle_phase = "phases" }}
"""


def wait_until(condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise TimeoutError("condition not met in time")


@pytest.mark.slow
def test_stages_reach_omnisend_contacts_with_one_event_per_stage_change(tmp_path, database_url):
    sender = ShopifySender()
    # Each customer's orders arrive oldest first, so later orders move them between stages.
    history = {
        "ann.lee@example.com": [(200, "90.00"), (100, "60.00"), (20, "120.00"), (3, "80.00")],
        "bo.chen@example.com": [(300, "20.00")],
        "cy.diaz@example.com": [(50, "40.00"), (5, "45.00")],
        "di.evans@example.com": [(400, "70.00"), (2, "15.00")],
    }
    with omnisend_vendor() as vendor:
        config = tmp_path / "stagesync.toml"
        config.write_text(CONFIG.format(database_url=database_url, secret=SECRETS["shopify"], base_url=vendor.url))
        with Server(config, tmp_path / "server.log") as server:
            order_id = 7000
            for email, orders in history.items():
                for days_ago, total in orders:
                    order_id += 1
                    delivery = sender.order(order_id, email, total, NOW - timedelta(days=days_ago))
                    answer = requests.post(f"{server.url}/webhooks/acme", data=delivery.body,
                                           headers=delivery.headers, timeout=30)
                    assert answer.json() == {"status": "accepted"}
            store = Store.open(database_url, migrate=False)
            wait_until(lambda: _drained(store) and len(vendor.state.get("contacts", {})) == len(history))
            logs = server.logs()

    exported = {r["email"]: r for r in json.loads(run(config, "export", "--shop", "acme", "--format", "json").stdout)}
    contacts = vendor.state["contacts"]
    assert {email: (c["lifecycle_stage"], c["lifecycle_phase"]) for email, c in contacts.items()} == {
        email: (row["rfm"], row["phases"]) for email, row in exported.items()}

    with store.read() as conn:
        changes = conn.execute(select(stage_changes).where(stage_changes.c.from_stage.is_not(None))).all()
    store.close()
    events = sorted((e["contact"]["email"], e["properties"]["model"], e["properties"]["from"], e["properties"]["to"])
                    for e in vendor.state.get("events", {}).values())
    assert events == sorted((c.customer_key, c.model, c.from_stage, c.to_stage) for c in changes)
    assert len(events) >= 4
    posted = [r.json for r in vendor.requests if r.method == "POST" and r.answered in (200, 201, 202)]
    event_items = [p for p in posted if "eventName" in p] + [
        item for p in posted if p.get("endpoint") == "events" for item in p["items"]]
    assert len(event_items) == len(events)  # one event per stage change, none sent twice
    assert "test-omnisend-key" not in logs


def _drained(store: Store) -> bool:
    with store.read() as conn:
        return store.outbox_depth(conn) == 0


# the spelling on PostgreSQL: tests/integration/test_sync_spelling.py; here the processes and HTTP
@pytest.mark.parametrize("database_url", SLOW_ON_POSTGRESQL, indirect=True)
def test_omnisend_gets_the_address_as_the_shop_last_spelled_it(tmp_path, database_url):
    """Omnisend's email identifier is case-sensitive ("treats uppercase and lowercase letters as distinct",
    api-docs.omnisend.com/reference/contacts): the customer stays keyed by alice@example.com, but the
    contact written is the one the shop spelled, and a later order's spelling wins."""
    sender = ShopifySender()
    with omnisend_vendor() as vendor:
        config = tmp_path / "stagesync.toml"
        config.write_text(CONFIG.format(database_url=database_url, secret=SECRETS["shopify"], base_url=vendor.url))
        with Server(config, tmp_path / "server.log") as server:
            store = Store.open(database_url, migrate=False)

            def post(order_id, email, days_ago):
                delivery = sender.order(order_id, email, "50.00", NOW - timedelta(days=days_ago))
                answer = requests.post(f"{server.url}/webhooks/acme", data=delivery.body, headers=delivery.headers,
                                       timeout=30)
                assert answer.json() == {"status": "accepted"}

            post(9001, "Alice@Example.com", 30)
            wait_until(lambda: _drained(store) and "Alice@Example.com" in vendor.state.get("contacts", {}))
            post(9002, "ALICE@example.com", 2)
            wait_until(lambda: _drained(store) and "ALICE@example.com" in vendor.state.get("contacts", {}))
            store.close()
    contacts = vendor.state["contacts"]
    assert "alice@example.com" not in contacts
    assert set(contacts) == {"Alice@Example.com", "ALICE@example.com"}
    exported = json.loads(run(config, "export", "--shop", "acme", "--format", "json").stdout)
    assert [row["email"] for row in exported] == ["alice@example.com"]  # one customer, keyed by the normalised address
    assert contacts["ALICE@example.com"]["lifecycle_stage"] == exported[0]["rfm"]
