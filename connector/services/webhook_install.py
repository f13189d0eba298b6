"""`stagesync webhooks install` and `uninstall`: the shop's subscriptions on its platform.

Install makes the platform deliver every topic stagesync needs to `<public url>/webhooks/<shop id>`
and is idempotent: a topic already subscribed there and active is `ok` (nothing sent); one of ours
(a URL ending in /webhooks/<shop id>) that points at another host, is disabled or carries a wrong
secret is `repaired` in place; a topic with none of ours is `created`. Further subscriptions of
ours to the same topic are removed (they would deliver twice, or to an old host). Subscriptions
that are not ours are never touched. Uninstall removes exactly ours.

The platform side is a `SubscriptionApi` adapter (`adapters/registry.py`, `SUBSCRIPTION_APIS`);
WiziShop and `standard` shops have nothing to install, and say how their orders arrive instead.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from adapters.registry import SUBSCRIPTION_APIS
from connector.config import ShopSettings
from connector.domain.ports import Subscription, SubscriptionApi
from connector.domain.subscriptions import delivery_url, is_ours, public_url_problem
from connector.errors import UserError

# How orders of a platform without subscriptions arrive ({url}: the shop's delivery URL, if known).
NOTHING_TO_INSTALL = {
    "wizishop": "nothing to install: WiziShop sends no webhooks; its orders arrive through `stagesync poll` "
                "(every 15 minutes on AWS Lambda)",
    "standard": "nothing to install: the shop's own system signs its orders with Standard Webhooks and "
                "posts them to {url}",
}


@dataclass(frozen=True)
class TopicOutcome:
    topic: str
    outcome: str  # created, ok, repaired (install); removed (uninstall)
    subscription: Subscription


@dataclass
class InstallResult:
    shop_id: str
    platform: str
    url: str | None
    outcomes: list[TopicOutcome] = field(default_factory=list)
    note: str = ""  # what the API cannot do, or how orders arrive when there is nothing to install

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)


def subscription_api(shop: ShopSettings, **kw) -> SubscriptionApi | None:
    """The shop's platform subscriptions, built from its `api` table; None when the platform has
    none to manage (WiziShop, standard). UserError when the shop has no `api` table."""
    if shop.platform not in SUBSCRIPTION_APIS:
        return None
    if not shop.api:
        raise UserError(f"shop {shop.id} ({shop.platform}) has no `api` table in the configuration: "
                        "the platform's webhook subscriptions are managed through its API (docs/platform-apis.md)")
    return SUBSCRIPTION_APIS[shop.platform](shop, **kw)


def target_url(shop: ShopSettings, url: str | None = None) -> str:
    """The delivery URL of `shop`: `url` (the public base, e.g. --url), else its `public_url`."""
    base = url if url is not None else shop.public_url
    if base is None:
        raise UserError(f"shop {shop.id}: give the public base URL with --url, or set `public_url` on the shop")
    problem = public_url_problem(base)
    if problem:
        raise UserError(f"shop {shop.id}: the public URL {problem}")
    return delivery_url(base.strip(), shop.id)


def nothing_to_do(shop: ShopSettings, url: str | None) -> InstallResult:
    """The result for a platform without subscriptions: how its orders arrive instead."""
    target = target_url(shop, url) if url is not None or shop.public_url else f"<public url>/webhooks/{shop.id}"
    return InstallResult(shop.id, shop.platform, None, note=NOTHING_TO_INSTALL[shop.platform].format(url=target))


def marked(subscriptions: list[Subscription], shop_id: str) -> list[Subscription]:
    """The platform's subscriptions with `ours` set (a delivery URL ending in /webhooks/<shop id>)."""
    return [dataclasses.replace(s, ours=is_ours(s.url, shop_id)) for s in subscriptions]


def same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def install(shop: ShopSettings, url: str | None = None, *, api: SubscriptionApi | None = None) -> InstallResult:
    """Create or repair every subscription `shop` needs; see the module's docstring."""
    api = api if api is not None else subscription_api(shop)
    if api is None:
        return nothing_to_do(shop, url)
    target = target_url(shop, url)
    result = InstallResult(shop.id, shop.platform, target, note=api.note.format(url=target) if api.note else "")
    existing = marked(api.list(), shop.id)
    for topic in api.topics:
        mine = [s for s in existing if s.ours and s.topic == topic]
        good = [s for s in mine if same_url(s.url, target) and s.state == "active"]
        if good:
            kept, outcome = good[0], "ok"
        elif mine:
            kept, outcome = api.repair(mine[0], target), "repaired"
        else:
            kept, outcome = api.create(topic, target), "created"
        for extra in mine:
            if extra.id != kept.id:
                api.delete(extra)
                outcome = "repaired" if outcome == "ok" else outcome
        result.outcomes.append(TopicOutcome(topic, outcome, kept))
    return result


def uninstall(shop: ShopSettings, *, api: SubscriptionApi | None = None) -> InstallResult:
    """Remove the subscriptions of ours (and nothing else) from the shop's platform."""
    api = api if api is not None else subscription_api(shop)
    if api is None:
        return nothing_to_do(shop, None)
    result = InstallResult(shop.id, shop.platform, None)
    for subscription in marked(api.list(), shop.id):
        if subscription.ours:
            api.delete(subscription)
            result.outcomes.append(TopicOutcome(subscription.topic, "removed", subscription))
    return result
