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


# A webhook secret or the admin token shorter than this, or made of fewer different characters, can
# be guessed or brute-forced: `check-config` warns (it still passes). 16 characters of a random
# alphanumeric draw hold about 95 bits; the platforms' own secrets are longer (Shopify: 32 hex).
MIN_SECRET_LENGTH = 16
MIN_SECRET_VARIETY = 8


def weak_secret(value: str | None) -> str | None:
    """Why a secret is weak (too short, too little variety), or None when it is not (or is unset)."""
    if not value:
        return None
    if len(value) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    variety = len(set(value))
    if variety < MIN_SECRET_VARIETY:
        return f"has little variety ({variety} different characters; use a random value)"
    return None


def secret_warnings(settings) -> list[str]:
    """`check-config`'s warnings: each weak webhook secret and a weak admin token, by key, never the value."""
    found = [("admin_token", weak_secret(settings.admin_token))]
    found += [(f"shops[{shop.id}].webhook_secret", weak_secret(shop.webhook_secret)) for shop in settings.shops.values()]
    return [f"{key} {reason}" for key, reason in found if reason]


def recompute_with_progress(store, shop, now: datetime, dry_run: bool = False):
    from connector.services.evaluation import recompute
    from connector.services.progress import Progress

    progress = Progress(f"recomputing {shop.id}", unit="customers")
    try:
        return recompute(store, shop, now, progress=progress, dry_run=dry_run)
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
