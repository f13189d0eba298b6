"""The ports between the core and its adapters, all in this one module. The core depends on
these; adapters implement them, and `adapters/registry.py` names every implementation.

- `Platform`: a shop platform's webhooks (verify, then parse into canonical orders).
- `OrderSource`: a platform's API client, read by backfill and polling, page by page (`Page`).
- `SubscriptionApi`: a platform's webhook subscriptions (list, create, repair, delete), each one a
  `Subscription`, for `stagesync webhooks`.
- `Destination`: an email tool account, built from its typed settings (`settings_class`).

Below the ports, the adapters of each port by the name `stagesync.toml` uses: "module:Attribute"
strings that the core reads (the configuration's valid names) but never imports;
`adapters/registry.py` imports each on first use.

An adapter only translates: a platform payload in, `Order`s out; desired contact properties and
stage-change events in, vendor HTTP calls out. Batching, rate limiting, retries and dead letters
live in `connector.services.sync`, checkpoints and storage in `connector.services.backfill`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Mapping, Protocol, Sequence

if TYPE_CHECKING:  # type names only: importing the ports imports nothing else
    from connector.domain.inbound import Inbound
    from connector.domain.orders import Order

PropertyValue = str | int | None


# --- platforms: webhooks in -------------------------------------------------------------------

class Platform(Protocol):
    """A platform's webhook adapter (a module of functions). The HTTP layer uses it so:

        platform = PLATFORMS.load(shop.platform)
        if platform.is_ping(headers, body):          # WooCommerce's unsigned creation ping, nothing else
            inbound = platform.parse(headers, body, shop)                 # ignored: nothing to store
        else:
            platform.verify(headers, body, shop.webhook_secret, now)      # SignatureError -> 401
            inbound = platform.parse(headers, body, shop)                 # PayloadError -> 400

    `verify` works on the raw bytes and must pass before `parse` looks at them; `sign` builds the
    headers the platform would send, for tests and the demo.
    """

    NAME: str
    TOPICS: tuple[str, ...]

    def is_ping(self, headers: Mapping[str, str], body: bytes) -> bool: ...

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str, now: datetime) -> None: ...

    # `shop` is a connector.config.ShopSettings (the domain does not import the configuration)
    def parse(self, headers: Mapping[str, str], body: bytes, shop: Any) -> Inbound: ...

    def sign(self, body: bytes, secret: str, **kw) -> dict[str, str]: ...

    # Optional, for platforms whose webhook carries only an id (`Inbound.fetch_order_id`):
    # def fetch(self, shop, inbound: Inbound) -> Inbound: ...
    # Optional, for platforms whose secrets have a format (for `stagesync check-config`): what keeps
    # `secret` from verifying deliveries, decided by the very code `verify` uses; [] when usable.
    # def secret_problems(self, secret: str) -> list[str]: ...


# --- platform APIs: history in ----------------------------------------------------------------

@dataclass(frozen=True)
class Page:
    """One page of a platform's orders, already translated.

    `state` says where to resume after this page (an opaque string the pipeline stores as the
    backfill checkpoint); `fetched` counts the records read, `skipped` those not stored (test
    orders, drafts, abandoned carts, unreadable records); `total` is the platform's count when known.
    """

    orders: tuple[Order, ...]
    state: str | None = None
    fetched: int = 0
    skipped: int = 0
    total: int | None = None


class OrderSource(Protocol):
    """What `connector.services.backfill` reads. `versioned` is False for platforms whose orders carry no
    modification time (WiziShop): the pipeline then detects changes by comparing with what is stored."""

    platform: str
    versioned: bool

    def backfill(self, since: datetime | None, resume: str | None) -> Iterator[Page]:
        """Every order placed since `since` (None: all the API allows), in a stable order, resuming
        after the page whose `state` is `resume`."""
        ...

    def changed(self, since: datetime) -> Iterator[Page]:
        """Every order created or modified since `since`."""
        ...


# --- platform APIs: webhook subscriptions ----------------------------------------------------

@dataclass(frozen=True)
class Subscription:
    """One webhook subscription on a shop's platform, in one neutral shape.

    `topic` is the platform's topic as its deliveries name it (`orders/create`, `order.created`,
    `store/order/created`); `state` is "active", "disabled" (delivery paused or deactivated by the
    platform or a person) or "wrong_secret" (it would send another secret than the shop's); `ours`
    is True when its delivery URL is stagesync's for this shop (it ends with /webhooks/<shop id>),
    whatever the host: `connector.domain.subscriptions.is_ours`.
    """

    topic: str
    url: str
    state: str
    id: str
    ours: bool = False


class SubscriptionApi(Protocol):
    """A platform's webhook subscriptions, built from the shop's settings. `topics` are those
    stagesync needs; `note` says what cannot be installed through the API (or "")."""

    platform: str
    topics: tuple[str, ...]
    note: str

    def list(self) -> list[Subscription]:
        """Every subscription the credentials can see (every page), stagesync's and others'."""
        ...

    def create(self, topic: str, url: str) -> Subscription: ...

    def repair(self, subscription: Subscription, url: str) -> Subscription:
        """Point `subscription` at `url` and make it active again (with the shop's secret where
        the platform keeps one per subscription)."""
        ...

    def delete(self, subscription: Subscription) -> None: ...


# --- destinations: stages out ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactUpdate:
    """The desired custom properties of one contact (names and values as written in the tool).

    A value of None removes the property (e.g. after a `customers/redact`).
    """

    email: str | None
    phone: str | None
    properties: Mapping[str, PropertyValue]


@dataclass(frozen=True, slots=True)
class StageChange:
    """One "lifecycle stage changed" event. `event_id` is stable: resending it is harmless."""

    event_id: str
    email: str | None
    phone: str | None
    model: str  # "rfm" or "phases"
    from_stage: str | None  # label as written (None: first stage)
    to_stage: str
    at: datetime
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ItemFailure:
    """One item of a batch that the vendor refused; the others succeeded."""

    index: int
    error: Exception


class Destination(abc.ABC):
    """An email tool account (or the log). One instance per configured destination, built from its
    typed settings: `cls(cls.settings_class.build(table), session, shop=...)`."""

    type_name: ClassVar[str]
    settings_class: ClassVar[type]  # its typed settings (adapters/destinations/settings.py)
    # The vendor's documented limits; each subclass names the doc next to its values.
    default_rate_per_minute: ClassVar[int]
    max_batch: ClassVar[int] = 1  # contacts one `upsert_contacts` call carries in one request
    max_event_batch: ClassVar[int] = 1  # events one `send_events` call carries in one request
    supports_events: ClassVar[bool] = False

    @abc.abstractmethod
    def upsert_contacts(self, updates: Sequence[ContactUpdate]) -> list[ItemFailure]:
        """Write these contacts' properties (one item: the single upsert; more: the batch endpoint).

        Raises RetriableDestinationError / FatalDestinationError when the whole call failed;
        returns the items the vendor refused one by one when the call as a whole succeeded.
        """

    def send_events(self, events: Sequence[StageChange]) -> list[ItemFailure]:
        """Send stage-change events (only called when `supports_events`)."""
        raise NotImplementedError(f"{self.type_name} takes no events")

    def cannot_hold(self, email: str | None, phone: str | None) -> str | None:
        """Why this tool can never hold a contact so identified (None: it can). The sync worker skips such
        a contact once, with the reason, instead of failing it at every recompute."""
        return None

    def requests_for(self, n_updates: int) -> int:
        """How many HTTP requests `upsert_contacts` makes for n items (for the rate limiter)."""
        return -(-n_updates // self.max_batch) if n_updates else 0

    def requests_for_events(self, n_events: int) -> int:
        """How many HTTP requests `send_events` makes for n events."""
        return -(-n_events // self.max_event_batch) if n_events else 0


# --- the adapters of each port, by name ----------------------------------------------------------
# "package.module:Attribute", or "package.module" when the module itself is the adapter (the
# platforms' webhook modules). Adding a platform or a destination: write its module (see
# docs/architecture.md), then add one line here.

WEBHOOK_ADAPTERS: Mapping[str, str] = MappingProxyType({  # Platform
    "shopify": "adapters.platforms.shopify",
    "woocommerce": "adapters.platforms.woocommerce",
    "wizishop": "adapters.platforms.wizishop",  # documents no signed webhooks: orders come by `stagesync poll`
    "bigcommerce": "adapters.platforms.bigcommerce",  # its webhook carries an order id: `fetch` reads the order
    "standard": "adapters.platforms.standard",
})

API_CLIENTS: Mapping[str, str] = MappingProxyType({  # OrderSource: backfill and polling
    "shopify": "adapters.platforms.shopify_api:ShopifyOrders",
    "woocommerce": "adapters.platforms.woocommerce_api:WooCommerceOrders",
    "wizishop": "adapters.platforms.wizishop:WiziShopOrders",
    "bigcommerce": "adapters.platforms.bigcommerce:BigCommerceOrders",
})

SUBSCRIPTION_APIS: Mapping[str, str] = MappingProxyType({  # SubscriptionApi: `stagesync webhooks`
    "shopify": "adapters.platforms.shopify_subscriptions:ShopifySubscriptions",
    "woocommerce": "adapters.platforms.woocommerce_subscriptions:WooCommerceSubscriptions",
    "bigcommerce": "adapters.platforms.bigcommerce_subscriptions:BigCommerceSubscriptions",
})

DESTINATION_ADAPTERS: Mapping[str, str] = MappingProxyType({  # Destination
    "omnisend": "adapters.destinations.omnisend:Omnisend",
    "klaviyo": "adapters.destinations.klaviyo:Klaviyo",
    "mailchimp": "adapters.destinations.mailchimp:Mailchimp",
    "brevo": "adapters.destinations.brevo:Brevo",
    "webhook": "adapters.destinations.webhook:Webhook",
    "log": "adapters.destinations.log:LogDestination",
})
