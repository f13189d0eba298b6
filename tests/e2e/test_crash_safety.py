"""Crash safety: `stagesync serve` is SIGKILLed (gunicorn master and workers) twice in the middle of
a burst of signed webhooks, and restarted on the same port. Senders behave like a platform: a
delivery without a 200 is sent again until it gets one.

Afterwards: every delivery that got a 200 is a stored order; no order is half written (each has
its delivery record, its customer's state and that customer's pending sync, all of one
transaction); each stored state equals a from-scratch evaluation; and once `stagesync sync` has
drained the outbox into a local fake Omnisend, the properties there equal `stagesync export`.

Runs on SQLite (WAL, synchronous=FULL) and on a PostgreSQL of its own started with fsync on.
Every order has the same amount and adaptive bands are off, so a customer's stages depend on
their own orders only, and a webhook's incremental evaluation must equal the from-scratch one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

from connector.services import child_server
from connector.storage.schema import customers, deliveries, orders, outbox
from connector.storage.store import Store
from tests.e2e.server import STAGESYNC, free_port, run
from tests.fakes.vendor_server import omnisend_vendor
from tests.fakes.senders import SECRETS, ShopifySender

DELIVERIES = 2_000
CUSTOMERS = 200
SENDERS = 12
KILL_AT = (0.3, 0.65)  # shares of the deliveries answered when the server is killed
DEADLINE_SECONDS = 240  # for the whole burst, restarts included (about 50 s on an idle 2-core machine)
AMOUNT = "50.00"
PROPERTIES = {"lifecycle_stage": "rfm", "lifecycle_phase": "phases", "orders_365d": "orders_365d",
              "orders_total": "orders_total", "aov_365d": "aov_365d", "total_spent": "total_spent",
              "first_order_date": "first_order_date", "last_order_date": "last_order_date"}

CONFIG = """
database_url = "{database_url}"
[[shops]]
id = "acme"
platform = "shopify"
webhook_secret = "{secret}"
currency = "EUR"
rfm = {{ adaptive = false }}
  [[shops.destinations]]
  type = "omnisend"
  api_key = "test-omnisend-key"
  base_url = "{base_url}"
  rate_per_minute = 60000
  properties = {{ {properties} }}
"""


@pytest.fixture(scope="module")
def durable_postgres():
    """A PostgreSQL of this module's own with fsync, synchronous_commit and full_page_writes on."""
    from tests.pg_server import PostgresServer

    server = PostgresServer(durable=True)
    yield server.start()
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def durable_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crash.db'}"
    admin_url = request.getfixturevalue("durable_postgres")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"crash_{os.getpid()}_{time.monotonic_ns()}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


class KillableServer:
    """`stagesync serve --no-worker` in a session of its own, so that SIGKILL reaches the gunicorn
    master and all its workers at once (os.killpg), then started again on the same port."""

    def __init__(self, config: Path, log_path: Path):
        self.config, self.log_path = config, log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.kills = 0

    def start(self, timeout: float = 60) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*STAGESYNC, "--config", str(self.config), "serve", "--port", str(self.port), "--no-worker"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            child_server.wait_healthy(self.process, self.url, timeout)
        except child_server.NotReady as exc:
            self.stop()
            raise RuntimeError(f"{exc}: {self.log_path.read_text(errors='replace')[-2000:]}") from None

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None:
            child_server.stop(self.process, group=True)


def build_deliveries(now: datetime) -> list[tuple[str, object]]:
    """(order id, signed delivery): distinct orders of CUSTOMERS customers, placed half a day off
    whole days ago, so that no day boundary is crossed while the test runs."""
    sender = ShopifySender()
    built = []
    for n in range(DELIVERIES):
        order_id = str(900_000 + n)
        placed = now - timedelta(days=(n * 7) % 300, hours=12)
        built.append((order_id, sender.order(order_id, f"buyer{n % CUSTOMERS}@example.com", AMOUNT, placed)))
    return built


class Burst:
    """Sends every delivery until it is answered 200, from SENDERS threads, counting what happens."""

    def __init__(self, server: KillableServer, items):
        self.server, self.items = server, items
        self.answers: dict[str, str] = {}  # order id -> "accepted" | "duplicate"
        self.failed_attempts = 0
        self.lock = threading.Lock()
        self.deadline = time.monotonic() + DEADLINE_SECONDS

    def send(self, item) -> None:
        order_id, delivery = item
        session = requests.Session()
        while time.monotonic() < self.deadline:
            try:
                answer = session.post(f"{self.server.url}/webhooks/acme", data=delivery.body,
                                      headers=delivery.headers, timeout=10)
                if answer.status_code == 200:
                    with self.lock:
                        self.answers[order_id] = answer.json()["status"]
                    return
                assert answer.status_code == 503, (answer.status_code, answer.text[:200])  # never 4xx/5xx else
            except requests.RequestException:
                session = requests.Session()  # the connection died with the server
            with self.lock:
                self.failed_attempts += 1
            time.sleep(0.05)  # a platform's retry, much shortened

    def answered(self) -> int:
        with self.lock:
            return len(self.answers)


def test_sigkill_mid_burst_loses_no_acknowledged_webhook_and_half_writes_nothing(tmp_path, durable_url):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    items = build_deliveries(now)
    config = tmp_path / "stagesync.toml"
    properties = ", ".join(f'{name} = "{source}"' for name, source in PROPERTIES.items())
    with omnisend_vendor() as vendor:
        config.write_text(CONFIG.format(database_url=durable_url, secret=SECRETS["shopify"], base_url=vendor.url,
                                        properties=properties))
        server = KillableServer(config, tmp_path / "server.log")
        server.start()
        burst = Burst(server, items)
        try:
            with ThreadPoolExecutor(SENDERS) as pool:
                sent = pool.map(burst.send, items)
                for share in KILL_AT:
                    while burst.answered() < share * len(items) and time.monotonic() < burst.deadline:
                        time.sleep(0.02)
                    server.kill()  # mid-burst: requests are in flight in every worker
                    server.start()
                list(sent)
        finally:
            server.stop()
        assert server.kills == len(KILL_AT) and burst.failed_attempts > 0, "no request was cut by the kills"
        assert len(burst.answers) == len(items), f"only {len(burst.answers)} of {len(items)} answered in time"

        store = Store.open(durable_url, migrate=False)
        try:
            every_acknowledged_webhook_is_stored(store, burst.answers)
            no_order_is_half_written(store)
            stored_states_equal_a_from_scratch_evaluation(store, config)
        finally:
            store.close()

        synced = run(config, "sync")
        assert "0 dead letter(s)" in synced.stdout, synced.stdout
        exported = json.loads(run(config, "export", "--shop", "acme", "--format", "json").stdout)
        contacts = vendor.state.get("contacts", {})
    assert len(exported) == CUSTOMERS and set(contacts) == {row["email"] for row in exported}
    for row in exported:
        expected = {name: normal(row[source]) for name, source in PROPERTIES.items()}
        assert {name: normal(value) for name, value in contacts[row["email"]].items()} == expected, row["email"]


def every_acknowledged_webhook_is_stored(store: Store, answers: dict[str, str]) -> None:
    with store.read() as conn:
        stored = set(conn.execute(select(orders.c.order_id).where(orders.c.shop_id == "acme")).scalars())
    assert set(answers) <= stored, f"{len(set(answers) - stored)} acknowledged webhook(s) lost"
    assert stored == set(answers)  # and nothing stored that was never sent


def no_order_is_half_written(store: Store) -> None:
    with store.read() as conn:
        order_count = conn.execute(select(func.count()).select_from(orders)).scalar_one()
        delivery_count = conn.execute(select(func.count()).select_from(deliveries)).scalar_one()
        keys = set(conn.execute(select(orders.c.customer_key).distinct()).scalars())
        states = set(conn.execute(select(customers.c.customer_key)).scalars())
        queued = set(conn.execute(select(outbox.c.customer_key).where(outbox.c.state == "pending")).scalars())
    assert delivery_count == order_count, "an order without its delivery record, or the reverse"
    assert keys == states, f"orders without a customer state: {sorted(keys - states)[:3]}"
    assert states <= queued, f"customer states never queued for sync: {sorted(states - queued)[:3]}"


def stored_states_equal_a_from_scratch_evaluation(store: Store, config: Path) -> None:
    exported = {row["email"]: row for row in json.loads(run(config, "export", "--shop", "acme", "--format",
                                                            "json").stdout)}
    with store.read() as conn:
        rows = conn.execute(select(customers.c.customer_key, customers.c.rfm, customers.c.phases,
                                   customers.c.orders_365d, customers.c.orders_total)).all()
    assert {r.customer_key: (r.rfm, r.phases, r.orders_365d, r.orders_total) for r in rows} == {
        email: (row["rfm"], row["phases"], row["orders_365d"], row["orders_total"])
        for email, row in exported.items()}


def normal(value):
    """Amounts and counts compare as numbers ("50.00" written as 50.0 is the same), the rest as text."""
    if value is None or isinstance(value, bool):
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return str(value)
