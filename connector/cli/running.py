"""Long-running processes: `serve` (the production WSGI server) and `demo`."""

from __future__ import annotations

import click

from connector.cli.common import Invocation, command, pass_invocation
from connector.services.demo import DEFAULT_ORDERS as DEMO_ORDERS


@command("serve", "production WSGI server (gunicorn), with the sync worker unless --no-worker")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--workers", type=int, help="web worker processes (default: one per core)")
@click.option("--no-worker", is_flag=True, help="do not run the sync worker in-process")
@click.option("--request-timeout", type=click.FloatRange(min=0.1), default=30, show_default=True, metavar="SECONDS",
              help="a request's body and answer must be done within this long, else the connection is closed")
@pass_invocation
def serve_command(invocation: Invocation, host: str, port: int, workers: int | None, no_worker: bool,
                  request_timeout: float) -> int:
    from connector.web.server import serve

    serve(invocation.settings(), invocation.config, host, port, workers, with_worker=not no_worker,
          request_timeout=request_timeout)
    return 0


@command("demo", "serve a demo shop fed with two years of generated, signed Shopify webhooks "
                 "(starts over on every run)")
@click.option("--shop", metavar="ID", default="demo",
              help="the shop to erase and feed: Shopify, log destination only (default: demo)")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--orders", type=int, default=DEMO_ORDERS, metavar="N", help=f"orders to generate (default {DEMO_ORDERS})")
@click.option("--seed", type=int, default=7, help="seed of the order generator (default 7)")
@pass_invocation
def demo_command(invocation: Invocation, shop: str, host: str, port: int, orders: int, seed: int) -> int:
    from connector.services import demo

    return demo.run(invocation.settings(), shop, host, port, orders, seed)
