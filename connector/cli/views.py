"""Read-only views of a shop's stages, live or replayed with `--at`: `stages`, `explain`, `export`."""

from __future__ import annotations

import json
import sys

import click

from connector.cli.common import Invocation, at_option, command, open_store, parse_at, pass_invocation, shop_option
from connector.errors import UserError, mask, quoted


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
    from connector.services.predicting import customer_details, predictions_at

    store, now = open_store(settings), parse_at(at)
    snap = snapshot(store, shop_settings, now)
    if key is None or key not in snap.evaluations:
        # The address the user just typed, as typed (on one line): masking is for logs and for what
        # the user did not type; hiding their own input from them only makes a typo harder to see.
        raise UserError(f"no customer {quoted(email)!r} in shop {shop_settings.id}")
    view = predictions_at(store, shop_settings, now, replay=at is not None)
    click.echo(explain(snap, key, unconverted_of_customer(store, shop_settings.id, key),
                       customer_details(view, key)))
    return 0


@command("export", "one row per customer with stages and figures")
@shop_option(required=True)
@at_option
@click.option("--format", "fmt", type=click.Choice(("csv", "json")), default="csv", show_default=True)
@pass_invocation
def export_command(invocation: Invocation, shop: str, at: str | None, fmt: str) -> int:
    from connector.cli.output import write_export
    from connector.services.evaluation import snapshot
    from connector.services.predicting import prediction_fields, predictions_at
    from connector.services.reports import EXPORT_COLUMNS, PREDICTED_COLUMNS, export_rows

    settings, shop_settings = invocation.shop(shop)
    store, now = open_store(settings), parse_at(at)
    snap = snapshot(store, shop_settings, now)
    view = predictions_at(store, shop_settings, now, replay=at is not None)
    rows = export_rows(snap, lambda key: prediction_fields(view.customer(key)))
    write_export(rows, EXPORT_COLUMNS + PREDICTED_COLUMNS, fmt, sys.stdout)
    return 0


@command("predict", "fit the shop's purchase and spend models and summarise them (without --at: store the fit)")
@shop_option(required=True)
@at_option
@click.option("--json", "as_json", is_flag=True,
              help='{"shop", "at", "status", "reason", "customers", "bgnbd", "gamma_gamma", "churn_bands"}')
@pass_invocation
def predict_command(invocation: Invocation, shop: str, at: str | None, as_json: bool) -> int:
    from connector.services.predicting import run_predict, summary, summary_lines
    from connector.services.reports import iso

    settings, shop_settings = invocation.shop(shop)
    now = parse_at(at)
    data = summary(run_predict(open_store(settings), shop_settings, now, replay=at is not None), shop_settings.id,
                   iso(now))
    click.echo(json.dumps(data) if as_json else "\n".join(summary_lines(data)))
    return 0
