"""The little logic the old argparse CLI held beside its commands, kept here until it finds a home
among the services: the configuration check across destinations and platform APIs, the recompute
with progress, the poll of several shops where one shop's failure does not stop the others (each
polled shop's webhooks watched after it: `connector.services.webhook_status.watch`)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from connector.errors import StagesyncError, StorageUnavailableError


def config_problems(settings) -> list[str]:
    """Every problem of the destinations, webhook secrets and platform API tables of every shop, each naming where."""
    problems: list[str] = []
    try:
        from adapters.destinations import validate
    except ImportError:  # destinations not installed in this build
        validate = None
    if validate is not None:
        for shop in settings.shops.values():
            for destination in shop.destinations:
                problems += [f"shops[{shop.id}].destinations[{destination.name}]: {p}" for p in validate(destination)]
    from adapters.platforms import validate as webhook_problems
    from adapters.platforms.api import api_problems

    for shop in settings.shops.values():
        problems += webhook_problems(shop)  # e.g. a Standard Webhooks secret verification would refuse
        problems += api_problems(shop)
    return problems


def recompute_with_progress(store, shop, now: datetime):
    from connector.services.evaluation import recompute
    from connector.services.progress import Progress

    progress = Progress(f"recomputing {shop.id}", unit="customers")
    try:
        return recompute(store, shop, now, progress=progress)
    finally:
        progress.close()


def poll_shops(store, shops, echo: Callable[[str], None], warn: Callable[[str], None]) -> bool:
    """Poll each shop in turn; a shop's StagesyncError is reported with `warn` and the next shop is
    polled all the same. True when every shop was polled."""
    from connector.services.backfill import poll
    from connector.services.webhook_status import watch

    from connector.cli.output import poll_summary

    ok = True
    for shop in shops:
        try:
            result = poll(store, shop, datetime.now(timezone.utc))
        except (StorageUnavailableError, KeyboardInterrupt):
            raise
        except StagesyncError as exc:
            warn(f"stagesync: {exc}")
            ok = False
            continue
        echo(poll_summary(shop, result))
        watch(store, shop, datetime.now(timezone.utc))  # an ERROR log line per webhook problem (auto_repair)
    return ok
