"""Platform adapters: one module per shop platform, each translating its webhooks and nothing else.

Every platform offers the same four functions (`Platform` below). The HTTP layer uses them so:

    platform = platforms.get(shop.platform)
    if platform.is_ping(headers, body):          # WooCommerce's unsigned creation ping, nothing else
        inbound = platform.parse(headers, body, shop)                 # ignored: nothing to store
    else:
        platform.verify(headers, body, shop.webhook_secret, now)      # SignatureError -> 401
        inbound = platform.parse(headers, body, shop)                 # PayloadError -> 400

`verify` works on the raw bytes and must pass before `parse` looks at them; `sign` builds the
headers the platform would send, for tests and the demo.
"""

from __future__ import annotations

from datetime import datetime
from typing import Mapping, Protocol

from connector.config import ShopSettings
from connector.errors import ConfigError
from connector.domain.inbound import Inbound

from adapters.platforms import bigcommerce, shopify, standard, wizishop, woocommerce


class Platform(Protocol):
    NAME: str
    TOPICS: tuple[str, ...]

    def is_ping(self, headers: Mapping[str, str], body: bytes) -> bool: ...

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str, now: datetime) -> None: ...

    def parse(self, headers: Mapping[str, str], body: bytes, shop: ShopSettings) -> Inbound: ...

    def sign(self, body: bytes, secret: str, **kw) -> dict[str, str]: ...

    # Optional, for platforms whose webhook carries only an id (`Inbound.fetch_order_id`):
    # def fetch(self, shop: ShopSettings, inbound: Inbound) -> Inbound: ...


PLATFORMS: dict[str, Platform] = {
    "shopify": shopify,
    "woocommerce": woocommerce,
    "standard": standard,
    "bigcommerce": bigcommerce,  # its webhook carries an order id: `fetch(shop, inbound)` reads the order
    "wizishop": wizishop,  # documents no signed webhooks: orders come by `stagesync poll`; deliveries get 401
}


def get(name: str) -> Platform:
    """The adapter of platform `name`; ConfigError listing the valid names otherwise."""
    try:
        return PLATFORMS[name]
    except KeyError:
        raise ConfigError([f"platform {name!r} has no webhook adapter "
                           f"(available: {', '.join(sorted(PLATFORMS))})"]) from None
