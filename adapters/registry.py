"""Every adapter stagesync can use, by name: one registry per port, all of the same form.

A registry reads its names and targets ("package.module:Attribute") from `connector.domain.ports`
(`WEBHOOK_ADAPTERS`, `API_CLIENTS`, `SUBSCRIPTION_APIS`, `DESTINATION_ADAPTERS`), where the
configuration reads its valid names without importing any adapter, and imports each adapter the
first time its name is used: the Shopify SDK is only imported by a shop that backfills from
Shopify. An unknown name fails with the valid names listed.
"""

from __future__ import annotations

import importlib
from typing import Any, Iterator, Mapping

from connector.domain import ports
from connector.errors import ConfigError


class Registry(Mapping[str, Any]):
    """name -> adapter, imported on first use. `registry[name]` (KeyError when unknown, like a
    dict) or `registry.load(name)` (ConfigError listing the valid names)."""

    def __init__(self, kind: str, targets: Mapping[str, str]):
        self.kind = kind
        self.targets = dict(targets)
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            target = self.targets[name]  # KeyError for an unknown name, as a dict raises it
            module, _, attribute = target.partition(":")
            loaded = importlib.import_module(module)
            self._loaded[name] = getattr(loaded, attribute) if attribute else loaded
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.targets)

    def __len__(self) -> int:
        return len(self.targets)

    def __contains__(self, name: object) -> bool:
        return name in self.targets

    def names(self) -> tuple[str, ...]:
        """The valid names, in registry order (the order messages list them in)."""
        return tuple(self.targets)

    def unknown(self, name: object) -> str:
        return f"unknown {self.kind} {name!r} (available: {', '.join(sorted(self.targets))})"

    def load(self, name: str) -> Any:
        """The adapter registered as `name`; ConfigError naming the valid names otherwise."""
        if not isinstance(name, str) or name not in self.targets:
            raise ConfigError([self.unknown(name)])
        return self[name]


PLATFORMS = Registry("platform", ports.WEBHOOK_ADAPTERS)  # Platform: a module of functions each
PLATFORM_APIS = Registry("platform API client", ports.API_CLIENTS)  # OrderSource: backfill and polling
SUBSCRIPTION_APIS = Registry("webhook subscription API", ports.SUBSCRIPTION_APIS)  # SubscriptionApi: `webhooks`
DESTINATIONS = Registry("destination type", ports.DESTINATION_ADAPTERS)  # Destination, with its `settings_class`
