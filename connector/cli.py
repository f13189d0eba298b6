"""The `stagesync` command (SPEC section 5).

Parsing and dispatch only: each command is a small function over the store and the pipeline.
Errors are mapped to exit codes here and nowhere else: 0 success, 1 user error (one line on
stderr, no traceback), 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import datetime, timezone
from typing import Callable, Sequence

from connector import config as config_module
from connector.demo import DEFAULT_ORDERS as DEMO_ORDERS
from connector.errors import ConfigError, StagesyncError, StorageUnavailableError, UserError, mask
from connector.orders import normalise_email, normalise_phone

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}
LONG_RUNNING = {"serve", "worker", "sync"}  # these log at INFO by default; the rest at WARNING


def command(name: str):
    def register(fn: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = fn
        return fn
    return register


def parse_at(raw: str | None) -> datetime:
    """--at: an ISO 8601 date (midnight UTC) or date-time (UTC when no offset); default now."""
    from connector.csv_import import instant_option

    return instant_option(raw, "--at") or datetime.now(timezone.utc)


def load_settings(args: argparse.Namespace) -> config_module.Settings:
    return config_module.load(args.config)


def open_store(settings: config_module.Settings):
    from connector.store import Store

    return Store.open(settings.database_url)


def _shop(args):
    settings = load_settings(args)
    return settings, settings.shop(args.shop)


# --- commands ----------------------------------------------------------------------------------

@command("check-config")
def check_config(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    problems: list[str] = []
    try:
        from adapters.destinations import validate
    except ImportError:  # destinations not installed in this build
        validate = None
    if validate is not None:
        for shop in settings.shops.values():
            for destination in shop.destinations:
                problems += [f"shops[{shop.id}].destinations[{destination.name}]: {p}" for p in validate(destination)]
    from adapters.platforms.api import api_problems

    for shop in settings.shops.values():
        problems += api_problems(shop)
    if problems:
        raise ConfigError(problems)
    print(f"{settings.source}: OK, {len(settings.shops)} shop(s): {', '.join(sorted(settings.shops)) or '-'}")
    return 0


@command("import")
def import_command(args: argparse.Namespace) -> int:
    from connector.csv_import import import_csv
    from connector.progress import Progress

    settings, shop = _shop(args)
    store = open_store(settings)
    progress = Progress(f"importing {args.file}")
    result = import_csv(store, shop, args.file, skip_invalid=args.skip_invalid, progress=progress)
    progress.close()
    for rejected in result.rejected:
        print(f"{args.file}: line {rejected.line}: rejected: {rejected.reason}", file=sys.stderr)
    print(f"imported {result.imported:,} order(s), {result.unchanged:,} already stored, "
          f"{len(result.rejected):,} rejected")
    _recompute_and_report(store, shop, datetime.now(timezone.utc))
    return 0


def _recompute_and_report(store, shop, now: datetime) -> None:
    from connector.evaluation import recompute
    from connector.progress import Progress

    progress = Progress(f"recomputing {shop.id}", unit="customers")
    result = recompute(store, shop, now, progress=progress)
    progress.close()
    print(f"recomputed {result.customers:,} customer(s) of {shop.id}: {result.written:,} changed, "
          f"{result.stage_changes:,} stage change(s), {result.queued:,} sync(s) queued")


@command("recompute")
def recompute_command(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    now = parse_at(args.at)
    shops = [settings.shop(args.shop)] if args.shop else list(settings.shops.values())
    store = open_store(settings)
    for shop in shops:
        _recompute_and_report(store, shop, now)
    return 0


def parse_since(raw: str | None) -> datetime | None:
    """--since: an ISO 8601 date (midnight UTC) or date-time (UTC when no offset); default none."""
    from connector.csv_import import instant_option

    return instant_option(raw, "--since")


@command("backfill")
def backfill_command(args: argparse.Namespace) -> int:
    from connector.backfill import backfill
    from connector.progress import Progress

    settings, shop = _shop(args)
    since = parse_since(args.since)
    store = open_store(settings)
    fetching = Progress(f"backfilling {shop.id} from {shop.platform}", unit="orders")
    recomputing = Progress(f"recomputing {shop.id}", unit="customers")
    try:
        result = backfill(store, shop, datetime.now(timezone.utc), since=since, progress=fetching,
                          recompute_progress=recomputing)
    finally:
        fetching.close()
        recomputing.close()
    print(f"{'resumed: ' if result.resumed else ''}read {result.fetched:,} order(s) of {shop.id} from "
          f"{shop.platform}: {result.stored:,} stored or updated, {result.unchanged:,} already up to date, "
          f"{result.skipped:,} skipped (test orders, drafts, unreadable)")
    r = result.recompute
    if r is not None:
        print(f"recomputed {r.customers:,} customer(s) of {shop.id}: {r.written:,} changed, "
              f"{r.stage_changes:,} stage change(s), {r.queued:,} sync(s) queued")
    return 0


@command("poll")
def poll_command(args: argparse.Namespace) -> int:
    from connector.backfill import poll

    settings = load_settings(args)
    if args.shop:
        shops = [settings.shop(args.shop)]
        if not shops[0].api:
            raise UserError(f"shop {shops[0].id} has no `api` table in the configuration: nothing to poll")
    else:
        shops = [shop for shop in settings.shops.values() if shop.api]
    if not shops:
        print("no shop has an `api` table: nothing to poll")
        return 0
    store = open_store(settings)
    failed = False
    for shop in shops:
        try:
            result = poll(store, shop, datetime.now(timezone.utc))
        except (StorageUnavailableError, KeyboardInterrupt):
            raise
        except StagesyncError as exc:  # one shop's failure does not keep the others from being polled
            print(f"stagesync: {exc}", file=sys.stderr)
            failed = True
            continue
        print(f"polled {shop.id} ({shop.platform}) since {result.since.isoformat() if result.since else '-'}: "
              f"{result.fetched:,} order(s) read, {result.stored:,} stored or updated, "
              f"{result.customers:,} customer(s) re-evaluated")
    return 1 if failed else 0


@command("stages")
def stages_command(args: argparse.Namespace) -> int:
    from connector.evaluation import snapshot
    from connector.reports import stage_counts, stage_table

    settings, shop = _shop(args)
    counts = stage_counts(snapshot(open_store(settings), shop, parse_at(args.at)))
    print(json.dumps(counts) if args.json else stage_table(counts))
    return 0


@command("explain")
def explain_command(args: argparse.Namespace) -> int:
    from connector.evaluation import snapshot
    from connector.reports import explain

    settings, shop = _shop(args)
    key = normalise_email(args.email) or normalise_phone(args.email, shop.country)
    snap = snapshot(open_store(settings), shop, parse_at(args.at))
    if key is None or key not in snap.evaluations:
        raise UserError(f"no customer {mask(args.email)!r} in shop {shop.id}")
    from connector.currency_queries import unconverted_orders
    with open_store(settings).read() as conn:
        unconverted = unconverted_orders(conn, shop.id, key).get(shop.id, 0)
    print(explain(snap, key, unconverted))
    return 0


@command("export")
def export_command(args: argparse.Namespace) -> int:
    from connector.evaluation import snapshot
    from connector.reports import EXPORT_COLUMNS, export_rows

    settings, shop = _shop(args)
    snap = snapshot(open_store(settings), shop, parse_at(args.at))
    rows = export_rows(snap)
    if args.format == "json":
        json.dump(list(rows), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return 0


@command("serve")
def serve_command(args: argparse.Namespace) -> int:
    from connector.server import serve

    settings = load_settings(args)
    serve(settings, args.config, args.host, args.port, args.workers, with_worker=not args.no_worker)
    return 0


def _sync_worker(settings, args):
    from connector.sync import SyncWorker

    shops = {settings.shop(args.shop).id} if getattr(args, "shop", None) else None
    return SyncWorker(open_store(settings), settings, shops=shops)


@command("worker")
def worker_command(args: argparse.Namespace) -> int:
    import signal
    import threading

    settings = load_settings(args)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    _sync_worker(settings, args).run_forever(stop)
    return 0


@command("sync")
def sync_command(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    stats = _sync_worker(settings, args).drain()
    print(f"synced {stats.sent:,} contact(s) in {stats.requests:,} request(s), {stats.events:,} event(s); "
          f"{stats.skipped:,} already up to date, {stats.retried:,} to retry, {stats.dead:,} dead letter(s)")
    return 0


@command("deadletters")
def deadletters_command(args: argparse.Namespace) -> int:
    from connector import outbox

    settings = load_settings(args)
    shop_id = settings.shop(args.shop).id if args.shop else None
    store = open_store(settings)
    if args.replay:
        with store.transaction() as conn:
            count = outbox.replay(conn, datetime.now(timezone.utc), shop_id)
        print(f"re-queued {count:,} dead letter(s)")
        return 0
    with store.read() as conn:
        letters = outbox.dead_letters(conn, shop_id)
    if not letters:
        print("no dead letters")
        return 0
    print(f"{'id':>8}  {'shop':<16}{'destination':<14}{'customer':<28}{'tries':>5}  {'status':>6}  error")
    for d in letters:
        print(f"{d.id:>8}  {d.shop_id:<16}{d.destination:<14}{mask(d.customer_key):<28}{d.attempts:>5}  "
              f"{d.status or '-':>6}  {d.error or ''}")
    return 0


@command("demo")
def demo_command(args: argparse.Namespace) -> int:
    from connector import demo

    settings = load_settings(args)
    return demo.run(settings, args.shop, args.host, args.port, args.orders, args.seed)


# --- parsing -----------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stagesync", description="Customer lifecycle stages from shop orders.")
    parser.add_argument("--config", metavar="PATH", help="configuration file (default $STAGESYNC_CONFIG, "
                                                         "else ./stagesync.toml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text)

    def at(p: argparse.ArgumentParser) -> None:
        p.add_argument("--at", metavar="ISO", help="evaluate at this instant (ISO 8601 date or date-time, UTC "
                                                   "when no offset; default now)")

    add("check-config", "validate the configuration; exit 1 with every problem listed")
    p = add("import", "load historical orders from a CSV file, then recompute")
    p.add_argument("--shop", required=True, metavar="ID")
    p.add_argument("file", metavar="FILE.csv")
    p.add_argument("--skip-invalid", action="store_true", help="import the valid rows, list every rejected line")
    p = add("recompute", "re-evaluate stages, store and queue what changed")
    p.add_argument("--shop", metavar="ID", help="one shop (default: every shop)")
    at(p)
    p = add("backfill", "pull historical orders from the shop platform's API, then recompute (resumable)")
    p.add_argument("--shop", required=True, metavar="ID")
    p.add_argument("--since", metavar="DATE", help="only orders placed since this ISO 8601 date or date-time "
                                                    "(default: all the API allows)")
    p = add("poll", "fetch the orders changed since the last poll, for every shop with an `api` table")
    p.add_argument("--shop", metavar="ID", help="one shop (default: every shop with an `api` table)")
    p = add("stages", "stage distribution of a shop")
    p.add_argument("--shop", required=True, metavar="ID")
    at(p)
    p.add_argument("--json", action="store_true", help='{"shop", "at", "rfm": {...}, "phases": {...}}')
    p = add("explain", "a customer's stages and the numbers behind them")
    p.add_argument("--shop", required=True, metavar="ID")
    p.add_argument("email", metavar="EMAIL")
    at(p)
    p = add("export", "one row per customer with stages and figures")
    p.add_argument("--shop", required=True, metavar="ID")
    at(p)
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p = add("serve", "production WSGI server (gunicorn), with the sync worker unless --no-worker")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, help="web worker processes (default: one per core)")
    p.add_argument("--no-worker", action="store_true", help="do not run the sync worker in-process")
    p = add("worker", "sync the outbox to the destinations until stopped")
    p.add_argument("--shop", metavar="ID", help="only this shop")
    p = add("sync", "sync once; exit when nothing is due")
    p.add_argument("--shop", metavar="ID", help="only this shop")
    p = add("deadletters", "list, or re-queue, what a destination refused")
    p.add_argument("--shop", metavar="ID")
    p.add_argument("--replay", action="store_true", help="re-queue them for an immediate new attempt")
    p = add("demo", "serve a demo shop fed with two years of generated, signed Shopify webhooks "
                    "(starts over on every run)")
    p.add_argument("--shop", metavar="ID", default="demo",
                   help="the shop to erase and feed: Shopify, log destination only (default: demo)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--orders", type=int, default=DEMO_ORDERS, metavar="N",
                   help=f"orders to generate (default {DEMO_ORDERS})")
    p.add_argument("--seed", type=int, default=7, help="seed of the order generator (default 7)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from connector.logs import configure

    configure("INFO" if args.command in LONG_RUNNING else "WARNING")
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"stagesync: {exc}", file=sys.stderr)
        return 1
    except StagesyncError as exc:
        print(f"stagesync: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stagesync: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
