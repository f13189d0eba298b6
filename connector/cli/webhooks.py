"""`stagesync webhooks install | status | uninstall`: a shop's subscriptions on its platform, and
whether its webhooks still arrive (connector.services.webhook_install, webhook_status)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click

from connector.cli.common import Invocation, command, open_store, pass_invocation, shop_option


@click.group("webhooks", help="install, check or remove the shops' webhook subscriptions",
             short_help="install, check or remove the shops' webhook subscriptions")
def webhooks_group() -> None:
    pass


@command("install", "create or repair the shop's subscriptions on its platform (idempotent)", webhooks_group)
@shop_option(required=True)
@click.option("--url", metavar="URL", help="the public base URL the platform reaches (default: the shop's "
                                           "public_url); deliveries go to URL/webhooks/<shop id>")
@pass_invocation
def install_command(invocation: Invocation, shop: str, url: str | None) -> int:
    from connector.services.webhook_install import install

    _, shop_settings = invocation.shop(shop)
    result = install(shop_settings, url)
    for outcome in result.outcomes:
        click.echo(f"{result.shop_id} {outcome.topic}: {outcome.outcome}")
    if result.outcomes:
        click.echo(f"{result.shop_id} ({result.platform}) -> {result.url}: {result.count('created')} created, "
                   f"{result.count('repaired')} repaired, {result.count('ok')} ok")
    if result.note:
        click.echo(f"{result.shop_id}: {result.note}")
    return 0


@command("uninstall", "remove the subscriptions stagesync created (nothing else)", webhooks_group)
@shop_option(required=True)
@pass_invocation
def uninstall_command(invocation: Invocation, shop: str) -> int:
    from connector.services.webhook_install import uninstall

    _, shop_settings = invocation.shop(shop)
    result = uninstall(shop_settings)
    for outcome in result.outcomes:
        click.echo(f"{result.shop_id} {outcome.topic}: removed ({outcome.subscription.url})")
    if result.note:
        click.echo(f"{result.shop_id}: {result.note}")
    else:
        click.echo(f"{result.shop_id} ({result.platform}): {len(result.outcomes)} subscription(s) removed")
    return 0


@command("status", "subscriptions and delivery health; exit 1 when something needs a person", webhooks_group)
@shop_option(help="one shop (default: every shop)")
@click.option("--json", "as_json", is_flag=True, help="one JSON object instead of text")
@pass_invocation
def status_command(invocation: Invocation, shop: str | None, as_json: bool) -> int:
    from connector.services.intake_health import UNKNOWN_SHOP, shops_health
    from connector.services.webhook_status import shop_status

    settings = invocation.settings()
    shops = [settings.shop(shop)] if shop else list(settings.shops.values())
    now = datetime.now(timezone.utc)
    store = open_store(settings)
    # Without --shop, also the deliveries refused because they named no configured shop (reported apart).
    healths = shops_health(store, [one.id for one in shops] + ([] if shop else [UNKNOWN_SHOP]), now)
    reports = [shop_status(store, one, now, health=lambda _store, shop_id, _now: healths[shop_id]) for one in shops]
    unknown = healths.get(UNKNOWN_SHOP)
    problems = [line for report in reports for line in report.problems()] + (unknown.problems() if unknown else [])
    if as_json:
        click.echo(json.dumps({"at": now.isoformat().replace("+00:00", "Z"), "ok": not problems,
                               "problems": problems, "shops": [r.as_json() for r in reports],
                               "unknown_shop": unknown.as_json() if unknown else None}, indent=1))
        return 1 if problems else 0
    for report in reports:
        for line in status_lines(report):
            click.echo(line)
    for line in problems:
        click.echo(f"PROBLEM {line}")
    if not problems:
        checked = any(r.delivery is not None for r in reports)
        click.echo(f"ok: {len(reports)} shop(s), every subscription checked is active"
                   + (", no refused delivery, no missed order" if checked else ""))
    return 1 if problems else 0


def status_lines(report) -> list[str]:
    """One shop's block of `webhooks status`: a header, a line per topic, its deliveries."""
    lines = [f"{report.shop_id} ({report.platform}) -> {report.url or 'public_url not set'}"]
    last = getattr(report.delivery, "last_accepted", None) or {}
    for topic in report.topics:
        seen = last.get(topic.topic)
        accepted = "" if report.delivery is None else \
            f"last accepted {seen.strftime('%Y-%m-%d %H:%M UTC') if seen else '-'}"
        lines.append(f"  {topic.topic:<28}{topic.state:<14}{accepted}".rstrip())
    if not report.topics:  # subscriptions not read: still, what arrived, topic by topic
        for topic, seen in sorted(last.items()):
            lines.append(f"  {topic:<28}{'not checked':<14}last accepted {seen.strftime('%Y-%m-%d %H:%M UTC')}")
    if report.note:
        lines.append(f"  {report.note}")
    if report.delivery is not None:
        rejected = ", ".join(f"{n:,} {reason}" for reason, n in sorted(report.delivery.rejected.items())) or "none"
        lines.append(f"  refused in the last 24 h: {rejected}; missed orders: {len(report.delivery.missed):,}")
    return lines
