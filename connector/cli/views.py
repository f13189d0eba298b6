"""Read-only views of a shop's stages, live or replayed with `--at`: `stages`, `explain`, `export`."""

from __future__ import annotations

import json
import sys

import click

from connector.cli.common import Invocation, at_option, command, open_store, parse_at, pass_invocation, shop_option
from connector.errors import UserError, mask


@command("stages", "stage distribution of a shop")
@shop_option(required=True)
@at_option
@click.option("--json", "as_json", is_flag=True, help='{"shop", "at", "rfm": {...}, "phases": {...}}')
@pass_invocation
def stages_command(invocation: Invocation, shop: str, at: str | None, as_json: bool) -> int:
    from connector.services.evaluation import snapshot
    from connector.services.reports import stage_counts, stage_table

    settings, shop_settings = invocation.shop(shop)
    counts = stage_counts(snapshot(open_store(settings), shop_settings, parse_at(at)))
    click.echo(json.dumps(counts) if as_json else stage_table(counts))
    return 0


@command("explain", "a customer's stages and the numbers behind them")
@shop_option(required=True)
@click.argument("email", metavar="EMAIL")
@at_option
@pass_invocation
def explain_command(invocation: Invocation, shop: str, email: str, at: str | None) -> int:
    from connector.services.evaluation import snapshot
    from connector.domain.orders import normalise_email, normalise_phone
    from connector.services.reports import explain, unconverted_of_customer

    settings, shop_settings = invocation.shop(shop)
    key = normalise_email(email) or normalise_phone(email, shop_settings.country)
    store = open_store(settings)
    snap = snapshot(store, shop_settings, parse_at(at))
    if key is None or key not in snap.evaluations:
        raise UserError(f"no customer {mask(email)!r} in shop {shop_settings.id}")
    click.echo(explain(snap, key, unconverted_of_customer(store, shop_settings.id, key)))
    return 0


@command("export", "one row per customer with stages and figures")
@shop_option(required=True)
@at_option
@click.option("--format", "fmt", type=click.Choice(("csv", "json")), default="csv", show_default=True)
@pass_invocation
def export_command(invocation: Invocation, shop: str, at: str | None, fmt: str) -> int:
    from connector.cli.output import write_export
    from connector.services.evaluation import snapshot
    from connector.services.reports import EXPORT_COLUMNS, export_rows

    settings, shop_settings = invocation.shop(shop)
    snap = snapshot(open_store(settings), shop_settings, parse_at(at))
    write_export(export_rows(snap), EXPORT_COLUMNS, fmt, sys.stdout)
    return 0
