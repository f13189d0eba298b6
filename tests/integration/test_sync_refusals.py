"""A destination that refuses everything (a wrong key), through the command line, on both engines:
`sync` says why once per destination and exits 1, `deadletters` shows each destination's last error
on one line, and one WARNING line is logged, not one per contact. Omnisend answered by `responses`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import responses

from connector import config
from connector.cli import main
from connector.domain.orders import Order
from connector.services.evaluation import recompute
from connector.storage import outbox
from connector.storage.store import Store

KEY = "omni-wrong-key-0123456789"
BASE = "https://api.omnisend.com/api"  # api-docs.omnisend.com/reference/authentication
# An RFC 9457 problem document, the form of Omnisend's other error answers (see test_destination_omnisend)
UNAUTHORIZED = {"type": "https://problems.omnisend.com/unauthorized", "title": "Unauthorized",
                "detail": "invalid API key"}
CONTACTS = 250


@pytest.fixture
def config_file(tmp_path, database_url):
    path = tmp_path / "stagesync.toml"
    path.write_text(f"""
database_url = "{database_url}"
[[shops]]
id = "acme"
platform = "shopify"
webhook_secret = "s"
currency = "EUR"
  [[shops.destinations]]
  type = "omnisend"
  api_key = "{KEY}"
  rate_per_minute = 600000
""")
    return path


@pytest.fixture
def queued(config_file):
    """CONTACTS customers, each with one order, queued for Omnisend."""
    settings = config.load(str(config_file))
    now = datetime.now(timezone.utc)
    store = Store.open(settings.database_url)
    with store.transaction() as conn:
        store.upsert_orders(conn, [Order.build(shop_id="acme", order_id=str(i), placed_at=now - timedelta(days=3),
                                               total=Decimal("20.00"), email=f"buyer{i}@example.com")
                                   for i in range(CONTACTS)])
    assert recompute(store, settings.shops["acme"], now).queued == CONTACTS
    yield store
    store.close()


def test_a_wrong_key_gives_one_line_per_destination_and_sync_exits_1(config_file, queued, capsys):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(f"{BASE}/contacts", status=401, json=UNAUTHORIZED)
        rsps.post(f"{BASE}/batches", status=401, json=UNAUTHORIZED)
        assert main(["--config", str(config_file), "sync"]) == 1
        assert len(rsps.calls) == 3  # 100 + 100 + 50 contacts: every batch refused
    out, err = capsys.readouterr()
    said = [line for line in err.splitlines() if line.startswith("stagesync: ")]
    assert said == [f"stagesync: acme/omnisend refused all {CONTACTS} contact(s) it was sent: "
                    "omnisend: POST /api/batches -> 401 Unauthorized: Unauthorized; invalid API key"]
    assert len([line for line in err.splitlines() if "dead letter(s)" in line]) == 1  # one WARNING, not 250
    assert f"{CONTACTS} dead letter(s)" in out and KEY not in out + err
    with queued.read() as conn:
        level = outbox.queue_levels(conn, "acme")[("acme", "omnisend")]
    assert level.dead == CONTACTS and level.failing and "401" in level.last_error

    assert main(["--config", str(config_file), "deadletters"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"acme/omnisend: {CONTACTS} dead letter(s); last error ")
    assert lines[0].endswith("401 Unauthorized: Unauthorized; invalid API key (nothing accepted since)")
    table = [line for line in lines[2:] if line.strip()]
    assert len(table) == 2 and f"{CONTACTS} contacts (ids" in table[1]  # the header and one grouped line
    assert "buyer" not in "\n".join(lines)


def test_sync_exits_0_when_the_destination_accepts(config_file, queued, capsys):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        # api-docs.omnisend.com/reference/post_batches, .../get_batches-batchid, .../get_batches-batchid-items
        rsps.post(f"{BASE}/batches", status=201, json={"batchID": "b1", "totalCount": 100})
        rsps.get(f"{BASE}/batches/b1", json={"batchID": "b1", "endpoint": "contacts", "method": "POST",
                                             "status": "finished", "totalCount": 100, "finishedCount": 100,
                                             "errorsCount": 0})
        rsps.get(f"{BASE}/batches/b1/items", json={"batchID": "b1", "status": "finished", "errors": [],
                                                   "responses": []})
        assert main(["--config", str(config_file), "sync"]) == 0
    assert "stagesync: " not in capsys.readouterr().err
