"""What the commands share: the invocation (the `--config` given before the command), the options
that several commands take, and `--at` / `--since` parsing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import click

from connector import config as config_module


@dataclass
class Invocation:
    """`ctx.obj` of every command: the raw `--config` (None: $STAGESYNC_CONFIG, else ./stagesync.toml)."""

    config: str | None
    _settings: config_module.Settings | None = field(default=None, repr=False)

    def settings(self) -> config_module.Settings:
        if self._settings is None:
            self._settings = config_module.load(self.config)
        return self._settings

    def shop(self, shop_id: str):
        """The settings and the shop `--shop ID` names (UnknownShopError lists the configured ones)."""
        settings = self.settings()
        return settings, settings.shop(shop_id)


pass_invocation = click.make_pass_decorator(Invocation)


def open_store(settings: config_module.Settings):
    from connector.storage.store import Store

    return Store.open(settings.database_url)


def shop_option(required: bool = False, help: str | None = None, **extra):
    return click.option("--shop", metavar="ID", required=required, help=help, **extra)


at_option = click.option("--at", metavar="ISO", help="evaluate at this instant (ISO 8601 date or date-time, "
                                                      "UTC when no offset; default now)")


def parse_at(raw: str | None) -> datetime:
    """--at: an ISO 8601 date (midnight UTC) or date-time (UTC when no offset); default now."""
    from connector.services.csv_import import instant_option

    return instant_option(raw, "--at") or datetime.now(timezone.utc)


def parse_since(raw: str | None) -> datetime | None:
    """--since: an ISO 8601 date (midnight UTC) or date-time (UTC when no offset); default none."""
    from connector.services.csv_import import instant_option

    return instant_option(raw, "--since")


def command(name: str, text: str, group: click.Group | None = None, **extra):
    """A click command whose one-line text is both its help and, unshortened, its line in `--help`;
    a subcommand of `group` when one is given."""
    return (group or click).command(name, help=text, short_help=text, **extra)
