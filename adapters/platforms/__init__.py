"""Platform adapters: one module per shop platform, each translating its webhooks and nothing else
(`<name>.py`, the `connector.domain.ports.Platform` port), and the API clients that read a shop's order
history (`<name>_api.py` or a class beside the webhook functions, the `connector.domain.ports.OrderSource`
port, built on `api.ApiClient`). Both are registered by name in `adapters/registry.py`.

    platform = platforms.get(shop.platform)      # ConfigError listing the valid names when unknown
    platforms.validate(shop)                     # what keeps the shop's webhook settings from working
"""

from __future__ import annotations

from adapters.registry import PLATFORMS
from connector.domain.ports import Platform

__all__ = ["PLATFORMS", "Platform", "get", "validate"]


def get(name: str) -> Platform:
    """The webhook adapter of platform `name` (imported on first use); ConfigError listing the valid names."""
    return PLATFORMS.load(name)


def validate(shop) -> list[str]:
    """What keeps `shop`'s webhooks from verifying (for `stagesync check-config`), each problem naming
    its key; never a secret. A platform whose secrets have a format checks them with `secret_problems`,
    the decoding its `verify` uses. `shop` is a connector.config.ShopSettings."""
    if shop.platform not in PLATFORMS or not shop.webhook_secret:
        return []  # an unknown platform or a missing secret is reported by the configuration itself
    check = getattr(PLATFORMS[shop.platform], "secret_problems", None)
    if check is None:
        return []
    return [f"shops[{shop.id}].webhook_secret: {p}" for p in check(shop.webhook_secret)]
