"""Typed destination settings: each type's own keys are fields of its settings class, checked and
converted once, from the `[[shops.destinations]]` table; problems name the key, never a secret."""

from __future__ import annotations

import pytest

from adapters.destinations.log import LogSettings
from adapters.destinations.mailchimp import MailchimpSettings
from adapters.destinations.omnisend import OmnisendSettings
from adapters.destinations.webhook import WebhookSettings
from connector.config import DestinationSettings
from connector.errors import ConfigError

KEY = "0123456789abcdef0123456789abcdef-us21"
SECRET = "whsec_c3RhZ2VzeW5jLXNldHRpbmdz"


def table(kind: str, **options) -> DestinationSettings:
    return DestinationSettings(type=kind, name=f"my-{kind}", properties={"lifecycle_stage": "rfm"}, events=True,
                               base_url=None, rate_per_minute=90, options=options)


def test_a_table_becomes_its_types_settings_with_every_field_typed():
    built = MailchimpSettings.build(table("mailchimp", api_key=KEY, list_id="a1b2", timeout=12))
    assert (built.type, built.name, built.list_id, built.api_key) == ("mailchimp", "my-mailchimp", "a1b2", KEY)
    assert built.timeout == 12.0 and isinstance(built.timeout, float)
    assert built.events is True and built.rate_per_minute == 90 and dict(built.properties) == {"lifecycle_stage": "rfm"}
    assert MailchimpSettings.options() == ("timeout", "api_key", "list_id")


def test_secrets_never_show_in_the_settings_repr():
    built = WebhookSettings.build(table("webhook", url="https://example.net/hook", secret=SECRET))
    assert SECRET not in repr(built) and "https://example.net/hook" in repr(built)
    assert KEY not in repr(MailchimpSettings.build(table("mailchimp", api_key=KEY, list_id="a1")))


def test_every_problem_names_the_destination_and_the_key_and_no_secret():
    with pytest.raises(ConfigError) as caught:
        MailchimpSettings.build(table("mailchimp", api_key="no-data-center-" + "s3cr3t", timeout=-1, colour="red"))
    problems = caught.value.problems
    assert problems == [
        "destination 'my-mailchimp': colour: unknown option for mailchimp (options: api_key, list_id)",
        "destination 'my-mailchimp': timeout: must be a positive number of seconds",
        "destination 'my-mailchimp': api_key: a Mailchimp key ends with its data center, e.g. -us21",
        "destination 'my-mailchimp': list_id: is required (the audience id, in Audience > Settings > "
        "Audience name and defaults)",
    ]
    assert "s3cr3t" not in str(caught.value)


def test_a_type_with_no_key_of_its_own_takes_none_not_even_a_timeout():
    assert LogSettings.problems(table("log", timeout=5)) == ["timeout: unknown option for log (it takes none)"]
    assert LogSettings.build(table("log")).name == "my-log"


def test_a_types_own_checks_run_after_the_common_ones():
    problems = OmnisendSettings.problems(DestinationSettings(
        type="omnisend", name="o", properties={"lifecycle stage": "rfm"}, events=False, base_url=None,
        rate_per_minute=None, options={}))
    assert [p.split(":")[0] for p in problems] == ["api_key", "properties.lifecycle stage"]
