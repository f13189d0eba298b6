"""`stagesync webhooks status` and the scheduled poll's watch: is every shop still receiving?

Two halves per shop, at an instant `now`:
- the platform's side (`subscription_states`): each topic stagesync needs is `active` (one of ours,
  at the shop's `public_url` when set), `disabled`, `wrong_url` (ours, but at another public URL),
  `wrong_secret` (it would send another secret than the shop's) or `missing`; a shop whose
  platform has no subscriptions (WiziShop, standard) or no `api` table has no topics here;
- the deliveries' side (`connector.services.intake_health`): the last accepted delivery per topic,
  deliveries refused in the last 24 h by reason, and orders that poll or backfill found first.

`problems()` lists one line per thing that needs a person; `webhooks status` exits 1 when there is
one. `watch` is what the scheduled poll runs: an ERROR log line per problem and, with the shop's
`auto_repair`, `webhooks install` again when a subscription is missing, disabled or wrong.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from connector.config import ShopSettings
from connector.domain.ports import Subscription, SubscriptionApi
from connector.domain.subscriptions import delivery_url
from connector.errors import StagesyncError, StorageUnavailableError
from connector.services.intake_health import IntakeHealth, intake_health
from connector.services.webhook_install import NOTHING_TO_INSTALL, install, marked, same_url, subscription_api

log = logging.getLogger("stagesync.webhooks")

WATCH_ATTEMPTS = 1  # the scheduled poll asks once: a failure is an ERROR line, the next poll asks again
UNCHECKED = ("subscriptions not checked: set the shop's `public_url` and `api` table to have "
             "`stagesync webhooks install` manage them")
REPAIRABLE = ("missing", "disabled", "wrong_url", "wrong_secret")
SAYS = {
    "missing": "subscription missing on {platform}",
    "disabled": "subscription disabled on {platform} (nothing is delivered)",
    "wrong_url": "subscription points elsewhere ({url}, not {expected})",
    "wrong_secret": "subscription sends another secret than the shop's webhook_secret (every delivery is refused)",
}


@dataclass(frozen=True)
class TopicState:
    topic: str
    state: str  # active, disabled, wrong_url, wrong_secret, missing
    url: str | None = None
    id: str | None = None


@dataclass
class ShopWebhooks:
    """One shop's webhook health: its platform's subscriptions and its deliveries."""

    shop_id: str
    platform: str
    url: str | None  # the delivery URL expected (from `public_url`), when known
    topics: list[TopicState] = field(default_factory=list)
    note: str = ""  # why there are no topics (nothing to subscribe, no api table), or what the API cannot do
    error: str | None = None  # the subscriptions could not be read
    delivery: IntakeHealth | None = None  # None: not read (tests of the subscriptions' side alone)

    def problems(self) -> list[str]:
        lines = [f"{self.shop_id}: cannot read the webhook subscriptions: {self.error}"] if self.error else []
        for topic in self.topics:
            if topic.state in SAYS:
                said = SAYS[topic.state].format(platform=self.platform, url=topic.url, expected=self.url)
                lines.append(f"{self.shop_id}: {topic.topic}: {said}; fix: stagesync webhooks install --shop {self.shop_id}")
        if self.delivery is not None:
            lines += self.delivery.problems()
        return lines

    def as_json(self) -> dict:
        return {"shop": self.shop_id, "platform": self.platform, "url": self.url, "note": self.note or None,
                "error": self.error,
                "subscriptions": [{"topic": t.topic, "state": t.state, "url": t.url, "id": t.id} for t in self.topics],
                "delivery": self.delivery.as_json() if self.delivery is not None else None,
                "problems": self.problems()}


def subscription_states(shop: ShopSettings, topics: tuple[str, ...], subscriptions: list[Subscription],
                        expected: str | None) -> list[TopicState]:
    """The state of each topic, from the platform's subscriptions (the best of ours per topic)."""
    states = []
    for topic in topics:
        mine = [s for s in marked(subscriptions, shop.id) if s.ours and s.topic == topic]
        if not mine:
            states.append(TopicState(topic, "missing"))
            continue
        at_url = [s for s in mine if expected is None or same_url(s.url, expected)]
        for wanted, pool in (("active", at_url), ("wrong_secret", at_url), ("active", mine), ("wrong_secret", mine)):
            chosen = next((s for s in pool if s.state == wanted), None)
            if chosen is not None:
                state = chosen.state if pool is at_url else "wrong_url"
                break
        else:
            chosen, state = mine[0], "disabled"
        states.append(TopicState(topic, state, chosen.url, chosen.id))
    return states


def delivery_health(store, shop_id: str, now: datetime) -> IntakeHealth:
    """The deliveries' side of one shop (connector.services.intake_health)."""
    return intake_health(store, shop_id, now)


def shop_status(store, shop: ShopSettings, now: datetime, *, api: SubscriptionApi | None = None,
                health: Callable[[Any, str, datetime], Any] = delivery_health, **kw) -> ShopWebhooks:
    """`shop`'s webhook health at `now`. A platform API that fails is reported, not raised. The
    subscriptions are checked for a shop with an `api` table and a `public_url` (the shops whose
    subscriptions `webhooks install` manages); `kw` goes to the subscription API (`attempts`)."""
    expected = delivery_url(shop.public_url, shop.id) if shop.public_url else None
    report = ShopWebhooks(shop.id, shop.platform, expected)
    try:
        if shop.platform in NOTHING_TO_INSTALL:
            report.note = NOTHING_TO_INSTALL[shop.platform].format(url=expected or f"<public url>/webhooks/{shop.id}")
        elif expected is None or not shop.api:
            report.note = UNCHECKED
        else:
            api = api if api is not None else subscription_api(shop, **kw)
            report.note = api.note.format(url=expected) if api.note else ""
            report.topics = subscription_states(shop, api.topics, api.list(), expected)
    except StorageUnavailableError:
        raise
    except StagesyncError as exc:
        report.error = str(exc)
    report.delivery = health(store, shop.id, now) if store is not None else None
    return report


def watch(store, shop: ShopSettings, now: datetime, *, api: SubscriptionApi | None = None,
          health: Callable[[Any, str, datetime], Any] = delivery_health) -> list[str]:
    """The scheduled poll's check of one shop: an ERROR line per problem; with `auto_repair`,
    install again when a subscription is missing, disabled or wrong. Returns the problems."""
    report = shop_status(store, shop, now, api=api, health=health, attempts=WATCH_ATTEMPTS)
    problems = report.problems()
    for line in problems:
        log.error("%s", line, extra={"shop": shop.id})
    if shop.auto_repair and any(t.state in REPAIRABLE for t in report.topics):  # topics: checked at public_url
        try:
            result = install(shop, api=api)
        except StorageUnavailableError:
            raise
        except StagesyncError as exc:
            log.error("%s: auto_repair failed: %s", shop.id, exc, extra={"shop": shop.id})
            return problems
        for outcome in result.outcomes:
            if outcome.outcome != "ok":
                log.warning("%s: %s: %s by auto_repair", shop.id, outcome.topic, outcome.outcome,
                            extra={"shop": shop.id, "topic": outcome.topic})
    return problems
