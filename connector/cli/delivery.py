"""The outbox to the destinations: `worker`, `sync`, `deadletters`."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from connector.cli.common import Invocation, command, open_store, pass_invocation, shop_option
from connector.cli.output import dead_letter_lines, destination_error_lines, refusal_lines, sync_summary


def _sync_worker(settings, shop: str | None):
    from connector.services.sync import SyncWorker

    shops = {settings.shop(shop).id} if shop else None
    return SyncWorker(open_store(settings), settings, shops=shops)


@command("worker", "sync the outbox to the destinations until stopped")
@shop_option(help="only this shop")
@pass_invocation
def worker_command(invocation: Invocation, shop: str | None) -> int:
    import signal
    import threading

    settings = invocation.settings()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    _sync_worker(settings, shop).run_forever(stop)
    return 0


@command("sync", "sync once; exit when nothing is due (exit 1 when a destination refused everything it tried)")
@shop_option(help="only this shop")
@pass_invocation
def sync_command(invocation: Invocation, shop: str | None) -> int:
    stats = _sync_worker(invocation.settings(), shop).drain()
    click.echo(sync_summary(stats))
    refused = refusal_lines(stats)
    for line in refused:  # a wrong key: said once per destination, not once per contact
        click.echo(f"stagesync: {line}", err=True)
    return 1 if refused else 0


@command("deadletters", "list, or re-queue, what a destination refused")
@shop_option()
@click.option("--replay", is_flag=True, help="re-queue them for an immediate new attempt")
@pass_invocation
def deadletters_command(invocation: Invocation, shop: str | None, replay: bool) -> int:
    from connector.storage import outbox

    settings = invocation.settings()
    shop_id = settings.shop(shop).id if shop else None
    store = open_store(settings)
    if replay:
        with store.transaction() as conn:
            count = outbox.replay(conn, datetime.now(timezone.utc), shop_id)
        click.echo(f"re-queued {count:,} dead letter(s)")
        return 0
    with store.read() as conn:
        letters = outbox.dead_letters(conn, shop_id)
        levels = outbox.queue_levels(conn, shop_id)
    for line in destination_error_lines(levels):
        click.echo(line)
    if not letters:
        click.echo("no dead letters")
        return 0
    click.echo("")
    for line in dead_letter_lines(letters):
        click.echo(line)
    return 0
