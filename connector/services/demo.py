"""`stagesync demo`: a self-contained run on generated orders, through the real server.

1. Erases the demo shop's data from the configured database (that shop only): every run starts
   over, so `make run` can be repeated.
2. Starts `stagesync serve` (gunicorn and the sync worker, the `log` destination) as a child
   process, its log in `stagesync-demo.log`, with prometheus_client's multiprocess mode in a
   fresh temporary directory so that `/metrics` adds up every process.
3. Generates two years of orders (`connector.services.generate`) and sends them, oldest first, as signed
   Shopify webhooks over HTTP to `POST /webhooks/<shop>`: `orders/create`, then `orders/cancelled`
   or `refunds/create` for the orders cancelled or refunded later, and a few repeated deliveries,
   as Shopify's retries would. A 503 (SQLite busy) is retried, as Shopify would.
4. Replays the stage history on the days it happened (the feed recorded every change at the
   instant its webhook arrived: `settle`), recomputes the shop, prints the stage table, the
   dashboard's address and the admin token, and keeps serving until Ctrl-C.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from connector.services import child_server
from connector.config import Settings, ShopSettings
from connector.errors import UserError

# About 5,400 webhooks (with cancellations, refunds and duplicates): 24 to 49 s on 2 cores with
# SQLite (measured in session 2; the slower on a busy machine).
DEFAULT_ORDERS = 5_000
DEMO_SHOP = "demo"
ORDERS_PER_CUSTOMER = 3  # on average; a few buy often, most once (connector.services.generate)
YEARS = 2.0
SENDERS = {"sqlite": 2, "postgresql": 4}  # concurrent deliveries; SQLite has one writer at a time
DUPLICATE_SHARE = 0.01  # deliveries sent twice
RETRIES = 6
LOG_FILE = "stagesync-demo.log"
READY_TIMEOUT_SECONDS = 60
SHOPIFY_ID_BASE = 5_100_000_000_000  # order ids shaped like Shopify's
CUSTOMER_ID_BASE = 7_200_000_000_000
PRODUCTS = (("Linen apron", "19.90"), ("Ceramic mug", "14.50"), ("Olive wood board", "34.00"),
            ("Cotton tote", "12.00"), ("Beeswax candle", "22.00"), ("Chef's knife", "89.00"))


@dataclass(frozen=True)
class Delivery:
    at: datetime  # when the platform would send it: the feed goes oldest first
    topic: str
    body: bytes
    headers: dict[str, str]


@dataclass
class FeedResult:
    deliveries: int
    seconds: float
    answers: Counter  # "200 accepted", "200 duplicate", "401", ...


# --- Shopify-shaped payloads ----------------------------------------------------------------------

def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _money(amount: Decimal | str, currency: str) -> dict:
    money = {"amount": str(amount), "currency_code": currency}
    return {"shop_money": money, "presentment_money": dict(money)}


def order_payload(number: int, row: dict, placed: datetime, shop_domain: str, currency: str,
                  rng: random.Random) -> dict:
    """A REST `orders/create` body (the fields Shopify sends that stagesync reads, and a few more)."""
    order_id = SHOPIFY_ID_BASE + number
    total = Decimal(row["total"])
    title, price = rng.choice(PRODUCTS)
    customer = None
    if row["email"] or row["phone"]:
        customer = {"id": CUSTOMER_ID_BASE + int(row["customer_id"]), "email": row["email"] or None,
                    "phone": row["phone"] or None, "first_name": "Demo", "last_name": f"Customer {row['customer_id']}",
                    "currency": currency, "state": "enabled", "verified_email": True}
    return {
        "id": order_id, "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": f"#{1000 + number}", "number": number, "order_number": 1000 + number,
        "email": row["email"] or None, "contact_email": row["email"] or None, "phone": row["phone"] or None,
        "created_at": _iso(placed), "processed_at": _iso(placed), "updated_at": _iso(placed),
        "currency": currency, "presentment_currency": currency,
        "total_price": str(total), "subtotal_price": str(total), "total_tax": "0.00",
        "total_price_set": _money(total, currency), "subtotal_price_set": _money(total, currency),
        "financial_status": "paid", "fulfillment_status": None, "cancelled_at": None, "cancel_reason": None,
        "test": False, "source_name": "web", "tags": "", "customer": customer,
        "line_items": [{"id": order_id * 10 + 1, "title": title, "name": title, "quantity": 1, "price": price,
                        "price_set": _money(price, currency), "sku": title.upper().replace(" ", "-")[:12]}],
        "refunds": [],
        "order_status_url": f"https://{shop_domain}/orders/{order_id}",
    }


def refund_payload(order: dict, refund_number: int, amount: Decimal, at: datetime, currency: str) -> dict:
    """A `refunds/create` body with one successful refund transaction."""
    refund_id = order["id"] * 10 + refund_number
    return {
        "id": refund_id, "order_id": order["id"], "created_at": _iso(at), "processed_at": _iso(at),
        "note": "demo refund", "restock": False, "refund_line_items": [], "order_adjustments": [],
        "transactions": [{"id": refund_id * 10, "order_id": order["id"], "kind": "refund", "status": "success",
                          "amount": str(amount), "currency": currency, "gateway": "shopify_payments",
                          "created_at": _iso(at)}],
    }


def deliveries(shop: ShopSettings, n_orders: int, now: datetime, seed: int) -> list[Delivery]:
    """Two years of a shop's webhooks, signed with its secret, oldest first."""
    from adapters.platforms import shopify
    from connector.services.csv_import import parse_instant
    from connector.services.generate import generate_orders

    rng = random.Random(seed)
    currency = shop.currency or "EUR"
    domain = f"{shop.id}.myshopify.com"
    events: list[tuple[datetime, str, dict]] = []
    rows = generate_orders(n_orders, max(1, n_orders // ORDERS_PER_CUSTOMER), now, seed=seed, years=YEARS,
                           currency=currency)
    for number, row in enumerate(rows, start=1):
        placed = parse_instant(row["placed_at"])
        if placed > now:  # the generator also makes orders after `now`, for tests: not yet placed
            continue
        order = order_payload(number, row, placed, domain, currency, rng)
        events.append((placed, "orders/create", order))
        later = min(now, placed + timedelta(hours=rng.uniform(1, 24 * 20)))
        total = Decimal(row["total"])
        if row["status"] == "cancelled":
            cancelled = dict(order, cancelled_at=_iso(later), cancel_reason="customer", financial_status="voided",
                             updated_at=_iso(later))
            events.append((later, "orders/cancelled", cancelled))
        elif total > 0 and (row["status"] == "refunded" or row["refunded"]):
            amount = total if row["status"] == "refunded" else Decimal(row["refunded"])
            events.append((later, "refunds/create", refund_payload(order, 1, amount, later, currency)))
    events.sort(key=lambda event: event[0])
    signed: list[Delivery] = []
    for at, topic, payload in events:
        body = json.dumps(payload).encode()
        delivery = Delivery(at, topic, body, shopify.sign(body, shop.webhook_secret, topic=topic, shop_domain=domain,
                                                          triggered_at=_iso(at)))
        signed.append(delivery)
        if rng.random() < DUPLICATE_SHARE:
            signed.append(delivery)  # a platform retry: answered "duplicate"
    return signed


# --- the feed ---------------------------------------------------------------------------------------

def feed(url: str, todo: list[Delivery], progress=None, senders: int = 2) -> FeedResult:
    """POST every delivery to `url`, `senders` at a time; returns the answers counted."""
    import requests

    local = threading.local()
    answers: Counter = Counter()
    lock = threading.Lock()
    done = 0

    def send(delivery: Delivery) -> None:
        nonlocal done
        if not hasattr(local, "session"):
            local.session = requests.Session()
        answer = "no answer"
        for attempt in range(RETRIES):
            try:
                response = local.session.post(url, data=delivery.body, headers=delivery.headers, timeout=10)
            except requests.ConnectionError:
                answer = "no answer"
            else:
                status = response.json().get("status", "") if response.status_code == 200 else ""
                answer = f"{response.status_code} {status}".strip()
                if response.status_code != 503:
                    break
            time.sleep(0.05 * 2 ** attempt)  # as a platform retries: later, with backoff
        with lock:
            answers[answer] += 1
            done += 1
            if progress:
                progress(done, len(todo))

    started = time.monotonic()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(send, todo))
    return FeedResult(len(todo), time.monotonic() - started, answers)


# --- the server -------------------------------------------------------------------------------------

def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _destinations_available() -> bool:
    try:
        from adapters.destinations import create  # noqa: F401
    except ImportError:
        return False
    return True


class DemoServer:
    """`stagesync serve` in a child process, its output in a log file."""

    def __init__(self, config_path: str, host: str, port: int, log_path: Path, with_worker: bool):
        self.url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
        self.log_path = log_path
        self.metrics_dir = tempfile.mkdtemp(prefix="stagesync-metrics-")
        command = [sys.executable, "-m", "connector.cli", "--config", config_path, "serve", "--host", host,
                   "--port", str(port)]
        if not with_worker:
            command.append("--no-worker")
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir})

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        try:
            child_server.wait_healthy(self.process, self.url, timeout)
        except child_server.NotReady as exc:
            raise UserError(f"{exc}; see {self.log_path}") from None

    def stop(self) -> None:
        child_server.stop(self.process)
        self._log.close()
        shutil.rmtree(self.metrics_dir, ignore_errors=True)


# --- the command ------------------------------------------------------------------------------------

def demo_shop(settings: Settings, shop_id: str | None) -> ShopSettings:
    """The shop to erase and refill: a Shopify shop that writes nowhere but the log (a shop that
    syncs to a real email tool is never touched)."""
    shop = settings.shop(shop_id or DEMO_SHOP)
    if shop.platform != "shopify":
        raise UserError(f"the demo sends Shopify webhooks: shop {shop.id!r} is on {shop.platform}")
    real = sorted({d.type for d in shop.destinations} - {"log"})
    if real:
        raise UserError(f"the demo erases and refills its shop, and shop {shop.id!r} syncs to {', '.join(real)}: "
                        f"use a shop whose only destination is the log (connector/examples/demo.toml)")
    return shop


def run(settings: Settings, shop_id: str | None, host: str, port: int, n_orders: int, seed: int,
        out=print) -> int:
    from connector.services.evaluation import snapshot
    from connector.services.progress import Progress
    from connector.services.reports import stage_counts, stage_table
    from connector.storage.store import Store

    logging.getLogger("alembic").setLevel(logging.WARNING)  # a new database's migration is no news here
    shop = demo_shop(settings, shop_id)
    if not _port_free(host, port):
        raise UserError(f"port {port} on {host} is in use: stop what uses it, or pass --port")
    store = Store.open(settings.database_url)
    with store.transaction() as conn:
        store.redact_shop(conn, shop.id)  # start over: this shop only
    out(f"demo shop {shop.id!r} reset in {_where(settings.database_url)}")

    with_worker = _destinations_available()
    log_path = Path(LOG_FILE).resolve()
    server = DemoServer(str(settings.source), host, port, log_path, with_worker)
    try:
        server.wait_ready()
        out(f"server up at {server.url} (log: {log_path.name}"
            f"{'' if with_worker else '; no sync worker: no destination adapters installed'})")
        now = datetime.now(timezone.utc)
        todo = deliveries(shop, n_orders, now, seed)
        placed = len({id(d) for d in todo if d.topic == "orders/create"})  # repeats are the same object
        progress = Progress("sending webhooks", unit="webhooks")
        result = feed(f"{server.url}/webhooks/{shop.id}", todo, progress, SENDERS.get(store.dialect, 2))
        progress.close()
        out(f"sent {result.deliveries:,} signed Shopify webhooks ({placed:,} orders over two years) in "
            f"{result.seconds:.1f} s ({result.deliveries / max(result.seconds, 1e-9):,.0f}/s): "
            + ", ".join(f"{n:,} {answer}" for answer, n in result.answers.most_common()))
        now = datetime.now(timezone.utc)
        replayed, recomputed = settle(store, shop, now)
        out(f"replayed the stage history of {replayed.customers:,} customers on the days it happened: "
            f"{replayed.changes:,} stage changes")
        out(f"recomputed {recomputed.customers:,} customers: {recomputed.written:,} changed, "
            f"{recomputed.queued:,} sync(s) queued")
        out("")
        out(stage_table(stage_counts(snapshot(store, shop, now))))
        out("")
        config = settings.source or "stagesync.toml"
        for line in (
                f"dashboard   {server.url}/dashboard/{shop.id}",
                f"admin token {settings.admin_token}",
                f"metrics     {server.url}/metrics",
                f"stages      stagesync --config {config} stages --shop {shop.id} --json",
                "Serving until Ctrl-C."):
            out(line)
        sys.stdout.flush()
        code = _serve_until_stopped(server)
        if code is not None:
            raise UserError(f"the server stopped (code {code}); see {log_path}")
    finally:
        server.stop()
        store.close()
    return 0


def settle(store, shop: ShopSettings, now: datetime):
    """After the feed: (replay, recompute) results. The feed sends two years of webhooks in
    seconds, so each stage change was recorded at the instant its webhook arrived; the history is
    replayed on the days the changes happened (`connector.services.replay`), then the shop is
    recomputed as a daily run would (its figures and predictions)."""
    from connector.services.evaluation import recompute
    from connector.services.replay import replay_history

    return replay_history(store, shop, now), recompute(store, shop, now)


def _serve_until_stopped(server: DemoServer) -> int | None:
    """Wait for Ctrl-C or SIGTERM (None), or the server's own exit (its code)."""
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.is_set():
            if server.process.poll() is not None:
                return server.process.returncode
            stop.wait(0.5)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return None


def _where(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.database if parsed.drivername.startswith("sqlite") else parsed.render_as_string(hide_password=True)
