"""Every adapter stagesync can use, by name: one registry per kind, all of the same form.

Each registry maps a name, as written in `stagesync.toml`, to "package.module:Attribute" (or just
"package.module" when the module itself is the adapter, as for the platforms' webhook modules).
Nothing is imported until a name is first used: reading the registries costs nothing, so the
configuration takes its valid names from here (`connector.config`), and the Shopify SDK is only
imported by a shop that backfills from Shopify. An unknown name fails with the valid names listed.

Adding a platform or a destination: write its module (see docs/architecture.md), then add one line here.
"""

from __future__ import annotations

import importlib
from typing import Any, Iterator, Mapping

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


# Webhook adapters: a module of functions (`connector.ports.Platform`) per shop platform.
PLATFORMS = Registry("platform", {
    "shopify": "adapters.platforms.shopify",
    "woocommerce": "adapters.platforms.woocommerce",
    "wizishop": "adapters.platforms.wizishop",  # documents no signed webhooks: orders come by `stagesync poll`
    "bigcommerce": "adapters.platforms.bigcommerce",  # its webhook carries an order id: `fetch` reads the order
    "standard": "adapters.platforms.standard",
})

# Platform API clients (`connector.ports.OrderSource`): backfill and polling.
PLATFORM_APIS = Registry("platform API client", {
    "shopify": "adapters.platforms.shopify_api:ShopifyOrders",
    "woocommerce": "adapters.platforms.woocommerce_api:WooCommerceOrders",
    "wizishop": "adapters.platforms.wizishop:WiziShopOrders",
    "bigcommerce": "adapters.platforms.bigcommerce:BigCommerceOrders",
})

# Destinations (`connector.ports.Destination`): each class names its typed settings (`settings_class`).
DESTINATIONS = Registry("destination type", {
    "omnisend": "adapters.destinations.omnisend:Omnisend",
    "klaviyo": "adapters.destinations.klaviyo:Klaviyo",
    "mailchimp": "adapters.destinations.mailchimp:Mailchimp",
    "brevo": "adapters.destinations.brevo:Brevo",
    "webhook": "adapters.destinations.webhook:Webhook",
    "log": "adapters.destinations.log:LogDestination",
})
