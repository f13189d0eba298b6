"""`webhooks install | uninstall | status` and the poll's watch, on a recording fake of the
`SubscriptionApi` port: what is ours, what install creates, repairs or leaves alone, each topic's
state, the ERROR lines and auto_repair; and the `public_url` / `auto_repair` settings."""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timezone

import pytest

from connector import config
from connector.domain.ports import Subscription, SubscriptionApi
from connector.domain.subscriptions import is_ours
from connector.errors import ConfigError, PlatformApiError
from connector.services.webhook_install import install, uninstall
from connector.services.webhook_status import shop_status, subscription_states, watch

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=timezone.utc)
HERE = "https://hooks.example.com/webhooks/acme"
OLD = "https://old.example.net/prod/webhooks/acme"
SHOP = """
[[shops]]
id = "acme"
platform = "woocommerce"
webhook_secret = "wc-secret-0123456789"
public_url = "https://hooks.example.com/"
auto_repair = {auto_repair}
api = {{ base_url = "https://savonnerie.example", consumer_key = "ck_0123456789", consumer_secret = "cs_0123456789" }}
"""


def shop(auto_repair: bool = False, **changes):
    settings = config.parse(SHOP.format(auto_repair=str(auto_repair).lower()), env={}).shops["acme"]
    return dataclasses.replace(settings, **changes)


class RecordingApi(SubscriptionApi):
    """The port, in memory: holds subscriptions and records every change it was asked for."""

    platform = "woocommerce"
    topics = ("order.created", "order.updated", "order.deleted", "order.restored", "customer.created")
    note = ""

    def __init__(self, *subscriptions: Subscription, failing: bool = False):
        self.held = list(subscriptions)
        self.asked: list[tuple] = []
        self.failing = failing

    def list(self):
        if self.failing:
            raise PlatformApiError("shop acme (woocommerce): GET /wp-json/wc/v3/webhooks -> 503 Service Unavailable")
        return list(self.held)

    def create(self, topic, url):
        self.asked.append(("create", topic, url))
        made = Subscription(topic, url, "active", f"n{len(self.asked)}")
        self.held.append(made)
        return made

    def repair(self, subscription, url):
        self.asked.append(("repair", subscription.id, url))
        fixed = dataclasses.replace(subscription, url=url, state="active")
        self.held = [fixed if s.id == subscription.id else s for s in self.held]
        return fixed

    def delete(self, subscription):
        self.asked.append(("delete", subscription.id))
        self.held = [s for s in self.held if s.id != subscription.id]


def no_health(store, shop_id, now):
    return None


def test_ours_is_a_delivery_url_ending_in_this_shops_webhook_path_on_any_host():
    assert is_ours(HERE, "acme") and is_ours(OLD + "/", "acme")
    assert not is_ours("https://hooks.example.com/webhooks/acme2", "acme")
    assert not is_ours("https://crm.example.org/acme", "acme") and not is_ours("", "acme")


def test_install_creates_repairs_and_leaves_what_is_not_ours():
    foreign = Subscription("order.created", "https://crm.example.org/hooks", "active", "f1")
    api = RecordingApi(
        Subscription("order.created", HERE, "active", "1"),  # ok
        Subscription("order.updated", OLD, "active", "2"),  # ours at an old URL: repointed
        Subscription("order.deleted", HERE, "disabled", "3"),  # ours, disabled: active again
        Subscription("order.restored", HERE, "active", "4"), Subscription("order.restored", OLD, "active", "5"),
        foreign,
    )
    result = install(shop(), api=api)
    assert [(o.topic, o.outcome) for o in result.outcomes] == [
        ("order.created", "ok"), ("order.updated", "repaired"), ("order.deleted", "repaired"),
        ("order.restored", "repaired"), ("customer.created", "created")]
    assert api.asked == [("repair", "2", HERE), ("repair", "3", HERE), ("delete", "5"),
                         ("create", "customer.created", HERE)]
    assert foreign in api.held

    api.asked.clear()
    again = install(shop(), api=api)
    assert {o.outcome for o in again.outcomes} == {"ok"} and api.asked == []


def test_install_needs_a_public_url_and_refuses_plain_http():
    from connector.errors import UserError

    with pytest.raises(UserError, match="give the public base URL with --url, or set `public_url`"):
        install(shop(public_url=None), api=RecordingApi())
    with pytest.raises(UserError, match=r"must be https://"):
        install(shop(), "http://hooks.example.com", api=RecordingApi())
    assert install(shop(), "http://127.0.0.1:8080", api=RecordingApi()).url == "http://127.0.0.1:8080/webhooks/acme"


def test_uninstall_removes_only_ours():
    foreign = Subscription("order.created", "https://crm.example.org/hooks", "active", "f1")
    api = RecordingApi(Subscription("order.created", HERE, "active", "1"), Subscription("order.updated", OLD, "disabled", "2"),
                       foreign)
    result = uninstall(shop(), api=api)
    assert [(o.topic, o.outcome) for o in result.outcomes] == [("order.created", "removed"), ("order.updated", "removed")]
    assert api.held == [foreign]


def test_each_topic_has_the_state_of_its_best_subscription_of_ours():
    states = subscription_states(shop(), RecordingApi.topics, [
        Subscription("order.created", HERE, "disabled", "1"), Subscription("order.created", HERE, "active", "2"),
        Subscription("order.updated", OLD, "active", "3"),
        Subscription("order.deleted", HERE, "wrong_secret", "4"),
        Subscription("order.restored", OLD, "disabled", "5"),
        Subscription("customer.created", "https://crm.example.org/hooks", "active", "6"),
    ], HERE)
    assert [(s.topic, s.state, s.id) for s in states] == [
        ("order.created", "active", "2"), ("order.updated", "wrong_url", "3"), ("order.deleted", "wrong_secret", "4"),
        ("order.restored", "disabled", "5"), ("customer.created", "missing", None)]


def test_status_lists_one_problem_per_broken_topic():
    api = RecordingApi(*(Subscription(t, HERE, "active", str(n)) for n, t in enumerate(RecordingApi.topics[1:])))
    api.held[0] = dataclasses.replace(api.held[0], url=OLD)
    report = shop_status(None, shop(), NOW, api=api, health=no_health)
    assert report.problems() == [
        "acme: order.created: subscription missing on woocommerce; fix: stagesync webhooks install --shop acme",
        f"acme: order.updated: subscription points elsewhere ({OLD}, not {HERE}); "
        "fix: stagesync webhooks install --shop acme"]


def test_a_shop_without_public_url_is_not_checked_and_has_no_problem():
    api = RecordingApi()
    report = shop_status(None, shop(public_url=None), NOW, api=api, health=no_health)
    assert report.topics == [] and report.problems() == [] and "set the shop's `public_url`" in report.note


def test_a_platform_that_cannot_be_read_is_one_problem():
    report = shop_status(None, shop(), NOW, api=RecordingApi(failing=True), health=no_health)
    assert report.problems() == ["acme: cannot read the webhook subscriptions: shop acme (woocommerce): "
                                 "GET /wp-json/wc/v3/webhooks -> 503 Service Unavailable"]


def test_the_poll_watch_logs_an_error_per_problem_and_repairs_only_with_auto_repair(caplog):
    held = [Subscription(t, HERE, "active", str(n)) for n, t in enumerate(RecordingApi.topics[:-1])]
    api = RecordingApi(*held, dataclasses.replace(held[0], topic="customer.created", state="disabled", id="9"))
    with caplog.at_level(logging.WARNING, logger="stagesync.webhooks"):
        problems = watch(None, shop(), NOW, api=api, health=no_health)
    assert problems == ["acme: customer.created: subscription disabled on woocommerce (nothing is delivered); "
                        "fix: stagesync webhooks install --shop acme"]
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("ERROR", problems[0])]
    assert api.asked == []

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="stagesync.webhooks"):
        watch(None, shop(auto_repair=True), NOW, api=api, health=no_health)
    assert api.asked == [("repair", "9", HERE)]
    assert [r.levelname for r in caplog.records] == ["ERROR", "WARNING"]
    assert caplog.records[1].getMessage() == "acme: customer.created: repaired by auto_repair"


@pytest.mark.parametrize("line, problem", [
    ('public_url = "http://hooks.example.com"', "shops[acme].public_url: must be https:// (http:// only on a loopback address)"),
    ('public_url = "https://hooks.example.com/webhooks/acme"',
     "shops[acme].public_url: must be the public base only: stagesync appends /webhooks/<shop id>"),
    ('public_url = "hooks.example.com"',
     "shops[acme].public_url: must be an https:// URL such as https://abc.execute-api.eu-west-3.amazonaws.com"),
    ('auto_repair = "yes"', "shops[acme].auto_repair: must be true or false"),
    ("auto_repair = true", "shops[acme].auto_repair: needs the shop's public_url (where the subscriptions must point)"),
])
def test_the_configuration_checks_public_url_and_auto_repair(line, problem):
    text = f'[[shops]]\nid = "acme"\nplatform = "bigcommerce"\nwebhook_secret = "s3cret-value"\n{line}\n'
    with pytest.raises(ConfigError) as caught:
        config.parse(text, env={})
    assert caught.value.problems == [problem]


def test_public_url_is_kept_without_its_trailing_slash():
    assert shop().public_url == "https://hooks.example.com" and shop().auto_repair is False


def test_status_lists_what_arrived_per_topic_when_subscriptions_are_not_checked():
    from connector.cli.webhooks import status_lines
    from connector.services.intake_health import IntakeHealth
    from connector.services.webhook_status import ShopWebhooks

    now = datetime(2026, 12, 5, 8, 0, tzinfo=timezone.utc)
    delivery = IntakeHealth("demo", now, last_accepted={"orders/create": datetime(2026, 12, 5, 7, 58, tzinfo=timezone.utc),
                                                        "refunds/create": datetime(2026, 12, 4, 21, 3, tzinfo=timezone.utc)})
    report = ShopWebhooks("demo", "shopify", None, note="subscriptions not checked", delivery=delivery)
    assert status_lines(report) == [
        "demo (shopify) -> public_url not set",
        "  orders/create               not checked   last accepted 2026-12-05 07:58 UTC",
        "  refunds/create              not checked   last accepted 2026-12-04 21:03 UTC",
        "  subscriptions not checked",
        "  refused in the last 24 h: none; missed orders: 0",
    ]
