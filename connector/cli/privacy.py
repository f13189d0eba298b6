"""`stagesync requests`: the privacy data requests a shop received, and the data that answers one."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click

from connector.cli.common import Invocation, command, open_store, pass_invocation, shop_option
from connector.errors import mask


@command("requests", "privacy data requests received from the platform; --export ID: the customer's data as JSON")
@shop_option(required=True)
@click.option("--json", "as_json", is_flag=True, help="the requests as a JSON array (identities whole)")
@click.option("--export", "export_id", type=int, metavar="ID",
              help="print the stored data of the customer(s) request ID names, as JSON")
@pass_invocation
def requests_command(invocation: Invocation, shop: str, as_json: bool, export_id: int | None) -> int:
    from connector.services.data_requests import export_request, list_requests

    settings, shop_settings = invocation.shop(shop)
    store = open_store(settings)
    if export_id is not None:
        click.echo(json.dumps(export_request(store, shop_settings, export_id, datetime.now(timezone.utc)), indent=1))
        return 0
    requests, _ = list_requests(store, shop_settings)
    if as_json:
        click.echo(json.dumps(requests, indent=1))
    elif not requests:
        click.echo(f"no data requests for {shop_settings.id}")
    else:
        click.echo("\n".join(request_lines(requests)))
    return 0


def request_lines(requests: list[dict]) -> list[str]:
    """The table of `stagesync requests`: one line a request, emails and phones masked."""
    lines = [f"{'id':>6}  {'received':<21}{'request':<12}{'email':<24}{'phone':<12}{'customer id':<16}orders"]
    for r in requests:
        lines.append(f"{r['id']:>6}  {r['received_at'][:19].replace('T', ' '):<21}{r['request_id'] or '-':<12}"
                     f"{mask(r['email']) or '-':<24}{mask(r['phone']) or '-':<12}{r['customer_id'] or '-':<16}"
                     f"{len(r['orders_requested'])}")
    return lines
