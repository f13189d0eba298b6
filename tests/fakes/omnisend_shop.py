"""One shop syncing to the local fake Omnisend (`vendor_server.omnisend_vendor`) over real HTTP: the
setup the end-to-end sync tests share.

    with omnisend_shop(database_url, faults, events=True, rate_per_minute=1200) as shop:
        seed(shop.store, [Order.build(...), ...])
        evaluation.recompute(shop.store, shop.settings.shops["acme"], now)
        SyncWorker(shop.store, shop.settings, destination_factory=no_batch_waits).drain()
        shop.vendor.state["contacts"] ...

The shop is `acme` unless told (Shopify), with one `omnisend` destination whose `base_url` is the fake vendor;
keyword arguments add destination options. The store is opened on the test's database and closed
on leaving, before the fake vendor stops.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Iterable, Iterator

from adapters.destinations.omnisend import Omnisend, OmnisendSettings
from connector import config
from connector.config import DestinationSettings, Settings
from connector.domain.orders import Order
from connector.domain.ports import Destination
from connector.storage.store import Store
from tests.fakes.vendor_server import FakeVendor, Faults, omnisend_vendor

TOML = """
[[shops]]
id = "{shop_id}"
platform = "shopify"
webhook_secret = "s"
  [[shops.destinations]]
  type = "omnisend"
  api_key = "omnisend-test-key"
  base_url = "{url}"
{options}"""


@dataclass
class OmnisendShop:
    vendor: FakeVendor
    settings: Settings
    store: Store


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)  # numbers as they are, strings quoted


@contextmanager
def omnisend_shop(database_url: str, faults: Faults | None = None, *, shop_id: str = "acme",
                  **options: Any) -> Iterator[OmnisendShop]:
    """The fake Omnisend running, the settings of a shop that syncs to it, and a store on `database_url`."""
    with omnisend_vendor(faults) as vendor:
        lines = "".join(f"  {key} = {_toml_value(value)}\n" for key, value in options.items())
        settings = replace(config.parse(TOML.format(shop_id=shop_id, url=vendor.url, options=lines), env={}), database_url=database_url)
        store = Store.open(database_url)
        try:
            yield OmnisendShop(vendor, settings, store)
        finally:
            store.close()


def seed(store: Store, orders: Iterable[Order]) -> None:
    """Store `orders` in one transaction (not yet evaluated: the test recomputes at its `now`)."""
    with store.transaction() as conn:
        store.upsert_orders(conn, list(orders))


def no_batch_waits(table: DestinationSettings, shop_id: str) -> Destination:
    """A SyncWorker destination factory: Omnisend as configured, reading a running batch back and
    sending an unfinished one again without waiting (the production waits are real seconds)."""
    return Omnisend(OmnisendSettings.build(table), shop=shop_id, poll_seconds=0.0, resend_after_seconds=0.0)
