"""Typed settings of the destinations: one frozen dataclass per destination type, built and checked
from its `[[shops.destinations]]` table (`connector.config.DestinationSettings`).

The keys every table has (type, name, properties, events, base_url, rate_per_minute) are read by
`connector.config`; a destination's own keys (api_key, list_id, url, secret, timeout ...) are the
fields its settings class adds, so that the class is the one list of what a type accepts:

    MailchimpSettings.problems(table)   # every problem, each naming its key, never a secret's value
    MailchimpSettings.build(table)      # the typed settings; ConfigError naming the destination and keys

A subclass adds its fields and, for checks beyond "required" and "unknown", a `check` classmethod
that extends its parent's. Secrets are fields with `repr=False`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from connector.config import DestinationSettings
from connector.errors import ConfigError

COMMON = ("type", "name", "properties", "events", "base_url", "rate_per_minute")


@dataclass(frozen=True, kw_only=True)
class BaseSettings:
    """What every destination has; a type with no key of its own (the log) uses it as it is."""

    type: str
    name: str
    properties: Mapping[str, str]  # property name in the tool -> field (docs/configuration.md)
    events: bool = False
    base_url: str | None = None
    rate_per_minute: int | None = None

    @classmethod
    def options(cls) -> tuple[str, ...]:
        """The keys of this type's own, beyond the common ones, in declaration order."""
        return tuple(f.name for f in fields(cls) if f.name not in COMMON)

    @classmethod
    def problems(cls, table: DestinationSettings) -> list[str]:
        """What keeps this table from working (for `stagesync check-config`); never a secret's value."""
        own = cls.options()
        listed = sorted(key for key in own if key != "timeout")
        accepted = f"options: {', '.join(listed) or 'none'}" if own else "it takes none"
        found = [f"{key}: unknown option for {table.type} ({accepted})"
                 for key in sorted(set(table.options) - set(own))]
        return found + cls.check(table)

    @classmethod
    def check(cls, table: DestinationSettings) -> list[str]:
        """This type's own checks (a subclass extends its parent's)."""
        return []

    @classmethod
    def build(cls, table: DestinationSettings):
        """The typed settings of `table`; ConfigError listing every problem, naming the destination."""
        problems = cls.problems(table)
        if problems:
            raise ConfigError([f"destination {table.name!r}: {p}" for p in problems])
        values: dict[str, Any] = {key: getattr(table, key) for key in COMMON}
        values.update({key: cls.convert(key, table.options[key]) for key in cls.options() if key in table.options})
        return cls(**values)

    @classmethod
    def convert(cls, key: str, value: Any) -> Any:
        """A checked option's value as the field holds it (a subclass converts its own keys)."""
        return value


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


@dataclass(frozen=True, kw_only=True)
class HttpSettings(BaseSettings):
    """A destination reached over HTTP: an optional read timeout."""

    timeout: float | None = None  # seconds to wait for an answer (default adapters.http.TIMEOUT)

    @classmethod
    def check(cls, table: DestinationSettings) -> list[str]:
        found = super().check(table)
        timeout = table.options.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
            found.append("timeout: must be a positive number of seconds")
        return found

    @classmethod
    def convert(cls, key: str, value: Any) -> Any:
        return float(value) if key == "timeout" else super().convert(key, value)


@dataclass(frozen=True, kw_only=True)
class ApiKeySettings(HttpSettings):
    """A vendor account reached with an API key."""

    api_key: str = field(repr=False)

    @classmethod
    def check(cls, table: DestinationSettings) -> list[str]:
        found = super().check(table)
        if not _text(table.options.get("api_key")):
            kind = table.type.upper()
            found.append("api_key: is required (the account's API key, e.g. \"${SHOP_" + kind + "_KEY}\")")
        return found
