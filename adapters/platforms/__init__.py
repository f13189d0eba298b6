"""Platform adapters: one module per shop platform, each translating its webhooks and nothing else
(`<name>.py`, the `connector.domain.ports.Platform` port), and the API clients that read a shop's order
history (`<name>_api.py` or a class beside the webhook functions, the `connector.domain.ports.OrderSource`
port, built on `api.ApiClient`). Both are registered by name in `adapters/registry.py`.

    platform = platforms.get(shop.platform)      # ConfigError listing the valid names when unknown
"""

from __future__ import annotations

from adapters.registry import PLATFORMS
from connector.domain.ports import Platform

__all__ = ["PLATFORMS", "Platform", "get"]


def get(name: str) -> Platform:
    """The webhook adapter of platform `name` (imported on first use); ConfigError listing the valid names."""
    return PLATFORMS.load(name)
