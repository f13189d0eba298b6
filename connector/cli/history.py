"""Orders in and stages recomputed: `import`, `recompute`, `backfill`, `poll`."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from connector.cli.common import Invocation, command, open_store, parse_since, pass_invocation, shop_option
from connector.cli.output import backfill_summary, dry_run_summary, import_summary, recompute_summary, replay_summary
from connector.errors import UserError


@command("import", "load historical orders from a CSV file, then recompute")
@shop_option(required=True)
@click.argument("file", metavar="FILE.csv")
@click.option("--skip-invalid", is_flag=True, help="import the valid rows, list every rejected line")
@pass_invocation
def import_command(invocation: Invocation, shop: str, file: str, skip_invalid: bool) -> int:
    from connector.cli.runs import recompute_with_progress
    from connector.services.csv_import import import_csv
    from connector.services.progress import Progress
    from connector.services.replay import replay_if_new

    settings, shop_settings = invocation.shop(shop)
    store = open_store(settings)
    progress = Progress(f"importing {file}")
    result = import_csv(store, shop_settings, file, skip_invalid=skip_invalid, progress=progress)
    progress.close()
    for rejected in result.rejected:
        click.echo(f"{file}: line {rejected.line}: rejected: {rejected.reason}", err=True)
    click.echo(import_summary(result))
    now = datetime.now(timezone.utc)
    replayed = replay_if_new(store, shop_settings, now)  # a first import: the history of its days
    if replayed is not None:
        click.echo(replay_summary(shop_settings.id, replayed))
    recomputed = recompute_with_progress(store, shop_settings, now)
    click.echo(recompute_summary(shop_settings.id, recomputed))
    return 0


@command("recompute", "re-evaluate stages now, store and queue what changed (--dry-run: only count it)")
@shop_option(help="one shop (default: every shop)")
@click.option("--dry-run", is_flag=True, help="count what would change, per model and stage transition; "
                                              "write and queue nothing")
@click.option("--at", hidden=True, help="refused: recompute evaluates now (replay a date with `stages --at`)")
@pass_invocation
def recompute_command(invocation: Invocation, shop: str | None, dry_run: bool, at: str | None) -> int:
    from connector.cli.runs import recompute_with_progress

    if at is not None:  # it once stored a replayed date as the live stages and queued them
        raise UserError("recompute has no --at: it evaluates now and stores the result; to see a past date "
                        "without changing anything use `stages --at`, `explain --at` or `export --at`")
    settings = invocation.settings()
    now = datetime.now(timezone.utc)
    shops = [settings.shop(shop)] if shop else list(settings.shops.values())
    store = open_store(settings)
    for one in shops:
        result = recompute_with_progress(store, one, now, dry_run=dry_run)
        click.echo(dry_run_summary(one.id, result) if dry_run else recompute_summary(one.id, result))
    return 0


@command("backfill", "pull historical orders from the shop platform's API, then recompute (resumable)")
@shop_option(required=True)
@click.option("--since", metavar="DATE", help="only orders placed since this ISO 8601 date or date-time "
                                               "(default: all the API allows)")
@pass_invocation
def backfill_command(invocation: Invocation, shop: str, since: str | None) -> int:
    from connector.services.backfill import backfill
    from connector.services.progress import Progress

    settings, shop_settings = invocation.shop(shop)
    since_at = parse_since(since)
    store = open_store(settings)
    fetching = Progress(f"backfilling {shop_settings.id} from {shop_settings.platform}", unit="orders")
    recomputing = Progress(f"recomputing {shop_settings.id}", unit="customers")
    try:
        result = backfill(store, shop_settings, datetime.now(timezone.utc), since=since_at, progress=fetching,
                          recompute_progress=recomputing)
    finally:
        fetching.close()
        recomputing.close()
    click.echo(backfill_summary(shop_settings, result))
    if result.replayed is not None:
        click.echo(replay_summary(shop_settings.id, result.replayed))
    if result.recompute is not None:
        click.echo(recompute_summary(shop_settings.id, result.recompute))
    return 0


@command("poll", "fetch the orders changed since the last poll, for every shop with an `api` table")
@shop_option(help="one shop (default: every shop with an `api` table)")
@pass_invocation
def poll_command(invocation: Invocation, shop: str | None) -> int:
    from connector.cli.runs import poll_shops

    settings = invocation.settings()
    if shop:
        shops = [settings.shop(shop)]
        if not shops[0].api:
            raise UserError(f"shop {shops[0].id} has no `api` table in the configuration: nothing to poll")
    else:
        shops = [one for one in settings.shops.values() if one.api]
    if not shops:
        click.echo("no shop has an `api` table: nothing to poll")
        return 0
    ok = poll_shops(open_store(settings), shops, click.echo, lambda line: click.echo(line, err=True))
    return 0 if ok else 1
