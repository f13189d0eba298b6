"""Ingest benchmark: signed Shopify order webhooks into `stagesync serve`, on SQLite and PostgreSQL,
against the ceiling of the stack (bare Flask under the same gunicorn that only verifies the HMAC).

For each target (bare; the durable and grouped references, which store the raw body; sqlite,
postgresql) the script starts a server on loopback, warms it up, then measures:
- closed loop (maximum throughput): `wrk` with bench/wrk/cycle.lua, cycling through pre-rendered,
  really signed requests with distinct order ids (never the duplicate fast path), bounded by
  --duration and by the number of requests rendered;
- fixed rate (latency): an open-loop paced generator (threads, keep-alive connections) sending
  --rate requests per second for --rate-seconds; latency is measured from each request's
  scheduled start, so a stalled server cannot hide its queueing (no coordinated omission).
After each stagesync target it checks that every accepted webhook is a stored order.

PostgreSQL is a throwaway server started here (tests/pg_server.py) with DURABLE settings: fsync
on, synchronous_commit on, full_page_writes on. SQLite runs WAL with synchronous=FULL, as
stagesync always does. The sync worker is not run (`serve --no-worker`): this measures ingest.

    .venv/bin/python bench/ingest.py                      # all five targets, ~5 minutes
    .venv/bin/python bench/ingest.py --targets bare,postgresql --duration 20 --json out.json

Needs `wrk` (Debian: apt-get install -y wrk) and PostgreSQL's server binaries; installs nothing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector.services import child_server  # noqa: E402 - after the sys.path line
from connector.web.gevent_worker import DeadlineGeventWorker  # noqa: E402
from connector.web.server import KEEPALIVE_S, REQUEST_TIMEOUT_S, WORKER_CONNECTIONS  # noqa: E402

CYCLE_LUA = ROOT / "bench" / "wrk" / "cycle.lua"
SECRET = "shpss_bench_secret_0123456789abcdef"
SHOP = "acme"
TARGETS = ("bare", "durable", "grouped", "sqlite", "postgresql")
REFERENCES = ("durable", "grouped")  # bare_flask_app with storage: the least a storing receiver does
# Issue 7's targets.
MIN_CEILING_SHARE = 0.6  # ingest throughput on PostgreSQL / bare Flask
MAX_P99_MS = 50.0  # at the fixed rate

CONFIG = """
database_url = "{database_url}"

[[shops]]
id = "{shop}"
platform = "shopify"
webhook_secret = "{secret}"
currency = "EUR"

  [[shops.destinations]]
  type = "log"
"""


# --- requests ------------------------------------------------------------------------------------

@dataclass
class Rendered:
    """Signed deliveries, as raw HTTP/1.1 requests (for wrk) and as (path, headers, body)."""

    raw: list[bytes] = field(default_factory=list)
    parts: list[tuple[str, dict, bytes]] = field(default_factory=list)

    def write(self, path: Path) -> Path:
        with path.open("wb") as out:
            for raw in self.raw:
                out.write(b"%d\n" % len(raw))
                out.write(raw)
        return path


class OrderFactory:
    """Distinct Shopify orders (ids never repeat across calls), from a pool of customers.

    Each is the documented orders/create fixture signed with the shop's secret
    (tests/fakes/senders.py), placed within the last 360 days, so every one counts in the window. The
    customers are those of the seeded history (`customer<n>@example.com`, connector.services.generate).
    """

    def __init__(self, customers: int, seed: int = 7):
        from tests.fakes.senders import ShopifySender

        self.sender = ShopifySender(secret=SECRET)
        self.customers = customers
        self.rng = random.Random(seed)
        self.next_id = 5_000_000_000_000
        self.now = datetime.now(timezone.utc).replace(microsecond=0)

    def render(self, count: int) -> Rendered:
        rendered = Rendered()
        path = f"/webhooks/{SHOP}"
        for _ in range(count):
            self.next_id += 1
            customer = self.rng.randrange(self.customers)
            placed = self.now - timedelta(days=self.rng.randrange(0, 360), minutes=self.rng.randrange(1440))
            total = f"{self.rng.randrange(500, 30000) / 100:.2f}"
            delivery = self.sender.order(self.next_id, f"customer{customer}@example.com", total, placed)
            head = "".join(f"{k}: {v}\r\n" for k, v in delivery.headers.items())
            rendered.raw.append(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
                                f"Content-Length: {len(delivery.body)}\r\n\r\n".encode() + delivery.body)
            rendered.parts.append((path, delivery.headers, delivery.body))
        return rendered


# --- servers -------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A server process in its own session, so that stopping it stops its gunicorn workers too."""

    def __init__(self, command: list[str], log: Path, env: dict | None = None, cwd: Path = ROOT):
        self.port = free_port()
        self.log = log
        command = [part.replace("{port}", str(self.port)) for part in command]
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                            env={**os.environ, **(env or {})}, start_new_session=True)

    def wait_ready(self, timeout: float = 60) -> "Process":
        try:
            child_server.wait_healthy(self.process, f"http://127.0.0.1:{self.port}", timeout)
        except child_server.NotReady as exc:
            raise RuntimeError(f"{exc}; see {self.log}") from None
        return self

    def stop(self) -> None:
        child_server.stop(self.process, group=True)


def gunicorn_workers() -> int:
    return os.cpu_count() or 1  # what `stagesync serve` uses


# `stagesync serve`'s gunicorn worker, by its dotted name for gunicorn's command line (serve passes a
# subclass carrying its --request-timeout; this class's own deadline must be serve's default).
GEVENT_WORKER = f"{DeadlineGeventWorker.__module__}.{DeadlineGeventWorker.__name__}"


def start_bare(work: Path, target: str, database_url: str | None = None) -> Process:
    """The ceiling (HMAC only), or with `database_url` a reference (HMAC, parse, commit; `grouped`:
    with group commit). Served as `stagesync serve` serves: gunicorn's gevent worker, the same
    worker count, connections per worker, keep-alive and request deadline."""
    assert DeadlineGeventWorker.request_timeout_s == REQUEST_TIMEOUT_S, "the bare server's deadline is serve's"
    env = {"BENCH_WEBHOOK_SECRET": SECRET, **({"BENCH_DATABASE_URL": database_url} if database_url else {}),
           **({"BENCH_GROUP_COMMIT": "1"} if target == "grouped" else {})}
    command = [sys.executable, "-m", "gunicorn", "--worker-class", GEVENT_WORKER, "--workers", str(gunicorn_workers()),
               "--worker-connections", str(WORKER_CONNECTIONS), "--keep-alive", str(KEEPALIVE_S), "--timeout", "30",
               "--bind", "127.0.0.1:{port}", "--chdir", str(ROOT / "bench"), "bare_flask_app:create_app()"]
    return Process(command, work / f"{target}.log", env={**env, "PYTHONPATH": str(ROOT)}).wait_ready()


def start_stagesync(work: Path, engine: str, database_url: str, seed_csv: Path | None) -> tuple[Process, float]:
    """The server on a database holding the seeded history (imported with `stagesync import`, which
    also evaluates every customer and stores the shop's figures); returns it and the import's seconds."""
    config = work / f"{engine}.toml"
    config.write_text(CONFIG.format(database_url=database_url, shop=SHOP, secret=SECRET))
    imported = 0.0
    if seed_csv is not None:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "connector.cli", "--config", str(config), "import", "--shop", SHOP,
                        str(seed_csv)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        imported = time.perf_counter() - started
    command = [sys.executable, "-m", "connector.cli", "--config", str(config), "serve", "--port", "{port}",
               "--no-worker"]
    return Process(command, work / f"{engine}.log").wait_ready(), imported


def write_seed(work: Path, orders: int, customers: int) -> Path | None:
    if orders <= 0:
        return None
    from connector.services.generate import generate_orders, write_csv

    return write_csv(work / "seed.csv", generate_orders(orders, customers, datetime.now(timezone.utc)))


def tree_cpu_seconds(root: int | None) -> float:
    """CPU seconds (user + system) of a process and all its descendants, the exited ones included
    (their time is in their parents' cutime/cstime). Read from /proc: stable on a shared machine."""
    if root is None:
        return 0.0
    stats: dict[int, tuple[int, float]] = {}  # pid -> (ppid, cpu ticks)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _) in stats.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(stats[pid][1] for pid in tree if pid in stats) / os.sysconf("SC_CLK_TCK")


# --- load ----------------------------------------------------------------------------------------

@dataclass
class ClosedLoop:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    ok: int
    duplicate: int
    other: int
    socket_errors: int
    exhausted: bool
    app_cpu_ms: float = 0.0  # server CPU per request (gunicorn master and workers)
    db_cpu_ms: float = 0.0  # PostgreSQL server CPU per request (0 for SQLite: it runs in the app)


def run_wrk(wrk: str, port: int, requests_file: Path, work: Path, *, seconds: float, connections: int,
            threads: int, wrap: bool) -> ClosedLoop:
    report = work / "wrk-report.json"
    report.unlink(missing_ok=True)
    env = {**os.environ, "BENCH_REQUESTS": str(requests_file), "BENCH_REPORT": str(report),
           "BENCH_THREADS": str(threads), "BENCH_WRAP": "1" if wrap else "0"}
    command = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", "5s",
               "-s", str(CYCLE_LUA), f"http://127.0.0.1:{port}/"]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, timeout=seconds + 120)
    r = json.loads(report.read_text())
    secs = r["duration_us"] / 1e6
    errors = sum(r["errors"][k] for k in ("connect", "read", "write", "timeout"))
    return ClosedLoop(requests=r["requests"], seconds=round(secs, 2), rps=round(r["requests"] / secs, 1),
                      p50_ms=r["latency_us"]["p50"] / 1000, p90_ms=r["latency_us"]["p90"] / 1000,
                      p99_ms=r["latency_us"]["p99"] / 1000, max_ms=r["latency_us"]["max"] / 1000,
                      ok=r["ok"], duplicate=r["duplicate"], other=r["other"], socket_errors=errors,
                      exhausted=r["exhausted"] > 0)


@dataclass
class FixedRate:
    rate: float
    sent: int
    seconds: float
    achieved_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    ok: int
    duplicate: int
    other: int
    errors: int  # no answer within the timeout, or never sent because the server fell too far behind


def percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return math.nan
    return sorted_values[min(len(sorted_values) - 1, math.ceil(share * len(sorted_values)) - 1)]


def run_fixed_rate(port: int, rendered: Rendered, rate: float, workers: int = 32, timeout: float = 5) -> FixedRate:
    """Open loop: request i is due at start + i / rate, whatever happened to the ones before it.

    Bounded in time: a request not yet started `timeout` seconds after the last one was due is not
    sent (the server is that far behind); it counts as an error, and as an infinite latency in the
    percentiles, like a request without an answer."""
    count = len(rendered.parts)
    latencies: list[float | None] = [None] * count
    statuses: list[int] = [0] * count
    duplicates = [False] * count
    start = time.perf_counter() + 0.2
    give_up = start + count / rate + timeout

    def worker(k: int) -> None:
        conn = None
        for i in range(k, count, workers):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            elif time.perf_counter() > give_up:
                break
            path, headers, body = rendered.parts[i]
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
                conn.request("POST", path, body=body, headers=headers)
                answer = conn.getresponse()
                text = answer.read()
                statuses[i] = answer.status
                duplicates[i] = b"duplicate" in text
                latencies[i] = time.perf_counter() - due
            except (OSError, http.client.HTTPException):
                statuses[i] = -1
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    pool = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(workers)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=max(0.0, give_up - time.perf_counter()) + 2 * timeout)
    elapsed = time.perf_counter() - start
    answered = [lat * 1000 for lat in latencies if lat is not None]
    everything = sorted(answered + [math.inf] * (count - len(answered)))
    ok = sum(1 for s in statuses if s == 200)
    return FixedRate(rate=rate, sent=count, seconds=round(elapsed, 2), achieved_rps=round(len(answered) / elapsed, 1),
                     p50_ms=round(percentile(everything, 0.50), 2), p90_ms=round(percentile(everything, 0.90), 2),
                     p99_ms=round(percentile(everything, 0.99), 2), max_ms=round(everything[-1], 2),
                     ok=ok, duplicate=sum(duplicates), other=sum(1 for s in statuses if s > 0 and s != 200),
                     errors=count - len(answered))


# --- a run ---------------------------------------------------------------------------------------

@dataclass
class TargetResult:
    target: str
    closed: ClosedLoop
    fixed: FixedRate
    stored_orders: int | None = None  # webhook orders stored (the seeded history left out)
    accepted: int | None = None  # answered 200 "accepted"
    seed_import_seconds: float | None = None


def count_orders(database_url: str, inbox: bool = False) -> int:
    """Orders stored by the benchmark's webhooks (not the seeded ones); with `inbox`, a reference's inbox rows."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    query = ("SELECT count(*) FROM webhook_inbox" if inbox
             else "SELECT count(*) FROM orders WHERE order_id NOT LIKE 'o%'")
    try:
        with engine.connect() as conn:
            return conn.execute(text(query)).scalar_one()
    finally:
        engine.dispose()


def py_spy() -> str | None:
    return shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def start_py_spy(prefix: str, target: str, pid: int, seconds: float) -> subprocess.Popen:
    """py-spy sampling the server (master and workers) during the closed loop, only the threads
    holding the GIL (where the CPU goes, not where threads wait): collapsed stacks, one line per
    distinct stack with its sample count, in <prefix>-<target>.txt."""
    out = f"{prefix}-{target}.txt"
    return subprocess.Popen([py_spy(), "record", "--gil", "--subprocesses", "--pid", str(pid), "--rate", "250",
                             "--duration", str(max(1, int(seconds))), "--nonblocking", "--format", "raw", "-o", out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


_PG_SERVERS: dict[str, object] = {}  # admin URL -> the PostgresServer started by main()


def pg_postmaster(admin_url: str | None) -> int | None:
    server = _PG_SERVERS.get(admin_url or "")
    try:
        return int((server.dir / "data" / "postmaster.pid").read_text().split()[0])
    except (AttributeError, OSError, ValueError, IndexError):
        return None


def bench_target(target: str, args, wrk: str, factory: OrderFactory, work: Path, pg_admin_url: str | None,
                 seed_csv: Path | None, say) -> TargetResult:
    database_url = None
    imported = None
    if target == "bare":
        server = start_bare(work, target)
    elif target == "sqlite":
        database_url = f"sqlite:///{work / 'bench.db'}"
        server, imported = start_stagesync(work, target, database_url, seed_csv)
    else:
        from sqlalchemy import create_engine

        admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS bench_{target}")
            conn.exec_driver_sql(f"CREATE DATABASE bench_{target}")
        admin.dispose()
        database_url = pg_admin_url.rsplit("/", 1)[0] + f"/bench_{target}"
        if target in REFERENCES:
            from bench.bare_flask_app import INBOX

            inbox = create_engine(database_url)
            with inbox.begin() as conn:
                conn.exec_driver_sql(INBOX)
            inbox.dispose()
            server = start_bare(work, target, database_url.replace("postgresql+psycopg://", "postgresql://", 1))
        else:
            server, imported = start_stagesync(work, target, database_url, seed_csv)
    try:
        say(f"[{target}] warming up ({args.warmup:g} s)")
        warm = factory.render(args.warmup_requests).write(work / "warm.req")
        warmed = run_wrk(wrk, server.port, warm, work, seconds=args.warmup, connections=args.connections,
                         threads=args.threads, wrap=target == "bare")
        size = args.requests
        say(f"[{target}] closed loop: wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s "
            f"over {size:,} signed requests")
        # The ceiling stores nothing: it may cycle through fewer requests.
        closed_file = factory.render(size if target != "bare" else min(size, 5_000)).write(work / "closed.req")
        postmaster = pg_postmaster(pg_admin_url) if target in ("postgresql", *REFERENCES) else None
        spy = start_py_spy(args.py_spy, target, server.process.pid, args.duration) if args.py_spy else None
        cpu_before = tree_cpu_seconds(server.process.pid), tree_cpu_seconds(postmaster)
        closed = run_wrk(wrk, server.port, closed_file, work, seconds=args.duration, connections=args.connections,
                         threads=args.threads, wrap=target == "bare")
        cpu_after = tree_cpu_seconds(server.process.pid), tree_cpu_seconds(postmaster)
        if spy is not None:
            spy.wait(timeout=args.duration + 60)
        closed.app_cpu_ms = round(1000 * (cpu_after[0] - cpu_before[0]) / max(closed.requests, 1), 2)
        closed.db_cpu_ms = round(1000 * (cpu_after[1] - cpu_before[1]) / max(closed.requests, 1), 2)
        say(f"[{target}] fixed rate: {args.rate:g} req/s for {args.rate_seconds:g} s")
        fixed = run_fixed_rate(server.port, factory.render(int(args.rate * args.rate_seconds)), args.rate)
    finally:
        server.stop()
    result = TargetResult(target, closed, fixed, seed_import_seconds=imported)
    if database_url:
        result.stored_orders = count_orders(database_url, inbox=target in REFERENCES)
        result.accepted = (warmed.ok - warmed.duplicate) + (closed.ok - closed.duplicate) + (fixed.ok - fixed.duplicate)
    return result


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
    from importlib.metadata import version

    try:
        from tests.pg_server import _bin_dir

        pg = subprocess.run([str(_bin_dir() / "postgres"), "--version"], capture_output=True, text=True).stdout.strip()
    except (RuntimeError, OSError):
        pg = "not found"
    wrk = shutil.which("wrk")
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split()[1] if wrk else "-"
    return {"cpu": cpu, "cores": os.cpu_count(), "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "memory_gib": round(mem_kib / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "postgresql": pg, "wrk": f"wrk {wrk_version}",
            **{name: version(name) for name in ("gunicorn", "gevent", "flask", "sqlalchemy", "psycopg")}}


def report(results: list[TargetResult], args, info: dict) -> str:
    shop = (f"a shop with {args.seed_orders:,} orders of {args.customers:,} customers imported first"
            if args.seed_orders else f"a new, empty shop; orders of {args.customers:,} customers")
    lines = [f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, Linux {info['kernel']}, "
             f"Python {info['python']}, SQLite {info['sqlite']}, {info['postgresql']} (fsync on), {info['wrk']}; "
             f"load average before the run {info['load']}",
             f"gunicorn {info['gunicorn']} gevent {info['gevent']}, {gunicorn_workers()} workers x {WORKER_CONNECTIONS} "
             f"connections, keep-alive {KEEPALIVE_S} s, request deadline {REQUEST_TIMEOUT_S} s, for every target "
             f"(`stagesync serve --no-worker`); {shop}; wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s; fixed rate "
             f"{args.rate:g} req/s for {args.rate_seconds:g} s (open loop, latency from the scheduled start)", "",
             "| target | closed-loop req/s | share of ceiling | CPU ms / request (app + db) | closed p50 / p99 ms | "
             f"p50 / p90 / p99 / max ms at {args.rate:g} req/s | non-200 | stored >= accepted |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    ceiling = next((r.closed.rps for r in results if r.target == "bare"), None)
    for r in results:
        c, f = r.closed, r.fixed
        share = f"{c.rps / ceiling:.2f}" if ceiling and r.target != "bare" else ("1.00" if r.target == "bare" else "-")
        stored = "-" if r.stored_orders is None else (
            f"{'yes' if r.stored_orders >= r.accepted else 'NO'} ({r.stored_orders:,} / {r.accepted:,})")
        non200 = c.other + c.socket_errors + f.other + f.errors
        cpu = f"{c.app_cpu_ms + c.db_cpu_ms:.2f} ({c.app_cpu_ms:.2f} + {c.db_cpu_ms:.2f})"
        lines.append(f"| {r.target} | {c.rps:,.0f} | {share} | {cpu} | {c.p50_ms:.1f} / {c.p99_ms:.1f} | "
                     f"{f.p50_ms:.1f} / {f.p90_ms:.1f} / {f.p99_ms:.1f} / {f.max_ms:.1f} | {non200} | {stored} |")
    pg = next((r for r in results if r.target == "postgresql"), None)
    if pg and ceiling:
        share = pg.closed.rps / ceiling
        lines += ["", f"- throughput >= {MIN_CEILING_SHARE} of the ceiling on PostgreSQL: "
                      f"{'MET' if share >= MIN_CEILING_SHARE else 'NOT MET'} ({share:.2f})",
                  f"- p99 < {MAX_P99_MS:g} ms at {args.rate:g} req/s on PostgreSQL: "
                  f"{'MET' if pg.fixed.p99_ms < MAX_P99_MS else 'NOT MET'} ({pg.fixed.p99_ms:.1f} ms)"]
    for reference in (r for r in results if pg and r.target in REFERENCES):
        its_share = f" (the reference itself: {reference.closed.rps / ceiling:.2f} of the ceiling)" if ceiling else ""
        lines.append(f"- postgresql: {pg.closed.rps / reference.closed.rps:.2f} of the {reference.target} "
                     f"reference's throughput{its_share}")
    bare = next((r for r in results if r.target == "bare"), None)
    for r in results:
        if bare and r.target != "bare" and r.closed.app_cpu_ms:
            cost = r.closed.app_cpu_ms + r.closed.db_cpu_ms
            lines.append(f"- {r.target}: {cost / bare.closed.app_cpu_ms:.1f}x the ceiling's CPU per request, so at "
                         f"most {bare.closed.app_cpu_ms / cost:.2f} of its throughput on an otherwise idle machine")
    for r in results:
        if r.closed.exhausted:
            lines.append(f"- {r.target}: wrk sent all {args.requests:,} rendered requests before -d ran out "
                         f"(raise --requests for a longer measure)")
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--targets", default=",".join(TARGETS), help="comma-separated: bare,durable,grouped,sqlite,postgresql")
    p.add_argument("--duration", type=float, default=10, help="closed-loop seconds per target (default 10)")
    p.add_argument("--requests", type=int, default=40_000,
                   help="signed requests rendered for each closed loop; wrk stops when they are sent\n"
                        "(default 40000: the grouped reference takes over 25,000 in 10 s)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: leave the cores to the server)")
    p.add_argument("--warmup", type=float, default=2, help="warm-up seconds (default 2)")
    p.add_argument("--warmup-requests", type=int, default=2_000)
    p.add_argument("--rate", type=float, default=200, help="fixed-rate requests per second (default 200)")
    p.add_argument("--rate-seconds", type=float, default=15, help="fixed-rate duration (default 15)")
    p.add_argument("--customers", type=int, default=5_000, help="customers of the shop (default 5000)")
    p.add_argument("--seed-orders", type=int, default=20_000,
                   help="orders of the shop's history, imported before the run (default 20000; 0: a new shop)")
    p.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    p.add_argument("--py-spy", metavar="PREFIX", help="profile each server during its closed loop with py-spy "
                                                      "(collapsed stacks in PREFIX-<target>.txt)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        print(f"bench/ingest.py: unknown target(s) {', '.join(unknown)} (targets: {', '.join(TARGETS)})",
              file=sys.stderr)
        return 2
    wrk = shutil.which("wrk")
    if wrk is None:
        print("bench/ingest.py: `wrk` is not installed; it is the load generator of this benchmark.\n"
              "  Debian/Ubuntu: apt-get install -y wrk    (this script installs nothing itself)", file=sys.stderr)
        return 2
    if args.py_spy and py_spy() is None:
        print("bench/ingest.py: --py-spy needs py-spy: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    info = machine()
    work = Path(tempfile.mkdtemp(prefix="stagesync-bench-"))
    pg_server = None
    results: list[TargetResult] = []
    try:
        pg_admin_url = None
        if {"postgresql", *REFERENCES} & set(targets):
            from tests.pg_server import PostgresServer

            try:
                server = PostgresServer(durable=True)
                pg_admin_url = server.start()
            except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
                detail = getattr(exc, "stderr", None) or b""
                print(f"bench/ingest.py: PostgreSQL could not be started ({exc}) "
                      f"{detail.decode(errors='replace').strip()[-300:]}\n  run with --targets bare,sqlite "
                      "to leave it out", file=sys.stderr)
                return 2
            pg_server = server
            _PG_SERVERS[pg_admin_url] = pg_server
            say(f"PostgreSQL started on port {pg_server.port}, durable: fsync=on, synchronous_commit=on")
        factory = OrderFactory(args.customers)
        seed_csv = write_seed(work, args.seed_orders, args.customers) if set(targets) - {"bare", *REFERENCES} else None
        for target in targets:
            results.append(bench_target(target, args, wrk, factory, work, pg_admin_url, seed_csv, say))
    finally:
        if pg_server is not None:
            pg_server.stop()
        if args.keep:
            say(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(report(results, args, info))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "args": vars(args),
                                               "results": [asdict(r) for r in results]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
