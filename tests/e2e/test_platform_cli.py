"""`stagesync backfill` and `stagesync poll` as a user runs them, platform APIs answered by `responses`."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest
import responses

from connector import config
from connector.cli import main
from connector.services.ingest import receive
from connector.storage.store import Store
from tests.fakes.platforms import SHOPIFY_TOKEN, FakeShopify, fixture, generated_orders
from tests.fakes.senders import SECRETS, ShopifySender

AT = datetime(2026, 6, 1, tzinfo=timezone.utc)
CONFIG = """
database_url = "{database_url}"

[[shops]]
id = "hooks"
platform = "shopify"
webhook_secret = "{shopify_secret}"
currency = "EUR"
  [[shops.destinations]]
  type = "log"

[[shops]]
id = "pulled"
platform = "shopify"
webhook_secret = "{shopify_secret}"
currency = "EUR"
api = {{ shop_domain = "acme.myshopify.com", access_token = "{token}" }}
  [[shops.destinations]]
  type = "log"

[[shops]]
id = "savonnerie"
platform = "woocommerce"
webhook_secret = "wc-secret"
currency = "EUR"
api = {{ base_url = "https://savonnerie.example", consumer_key = "ck_0123456789", consumer_secret = "cs_0123456789" }}

[[shops]]
id = "savons"
platform = "wizishop"
webhook_secret = "unused"
currency = "EUR"
api = {{ username = "api@savons.example", password = "wz-password-0123", shop_id = 1234 }}

[[shops]]
id = "outdoor"
platform = "bigcommerce"
webhook_secret = "bc-secret"
currency = "USD"
api = {{ store_hash = "abc123de", access_token = "bc_token_0123456789" }}
"""


@pytest.fixture
def config_file(tmp_path, database_url):
    path = tmp_path / "stagesync.toml"
    path.write_text(CONFIG.format(database_url=database_url, shopify_secret=SECRETS["shopify"], token=SHOPIFY_TOKEN))
    Store.open(database_url).close()  # migrated now: the commands below log nothing about it
    return path


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture(autouse=True)
def _never_sleep(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda seconds: None)


def run(capsys, config_file, *args) -> tuple[int, str, str]:
    code = main(["--config", str(config_file), *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow  # 2,000 webhooks, each its own committed transaction
def test_a_shopify_backfill_exports_the_same_stages_as_the_same_orders_received_by_webhook(
        config_file, database_url, rsps, capsys):
    specs = generated_orders(2000, AT, customers_per=8)
    settings = config.load(config_file)
    store = Store.open(database_url)
    sender = ShopifySender(clock=AT)
    for spec in specs:
        delivery = spec.webhook(sender)
        receive(store, settings.shops["hooks"], delivery.headers, delivery.body, AT)
    store.close()
    fake = FakeShopify(rsps, [spec.node() for spec in specs])

    code, out, err = run(capsys, config_file, "backfill", "--shop", "pulled")
    assert code == 0, err
    assert len(fake.operations("StagesyncOrders")) == 19  # 2,000 orders, 110 a page (the 1,000-point query cost)
    assert "read 2,000 order(s) of pulled from shopify" in out and f"{sum(s.test for s in specs)} skipped" in out

    exports = {}
    for shop in ("hooks", "pulled"):
        code, out, err = run(capsys, config_file, "export", "--shop", shop, "--at", AT.isoformat(), "--format", "json")
        assert code == 0, err
        exports[shop] = json.loads(out)
    assert len(exports["hooks"]) == len({s.email for s in specs})
    assert exports["pulled"] == exports["hooks"]


BAD_CREDENTIALS = {
    "pulled": ("shopify", responses.POST, "https://acme.myshopify.com/admin/api/2026-10/graphql.json", 401,
               fixture("shopify", "graphql/unauthorized.json")),
    "savonnerie": ("woocommerce", responses.GET, "https://savonnerie.example/wp-json/wc/v3/orders", 401,
                   fixture("woocommerce", "api/unauthorized.json")),
    "savons": ("wizishop", responses.POST, "https://api.wizishop.com/v3/auth/login", 401,
               fixture("wizishop", "api/bad_credentials.json")),
    "outdoor": ("bigcommerce", responses.GET, "https://api.bigcommerce.com/stores/abc123de/v2/orders", 401,
                fixture("bigcommerce", "api/unauthorized.json")),
}


@pytest.mark.parametrize("shop_id", sorted(BAD_CREDENTIALS))
@pytest.mark.parametrize("command", ["backfill", "poll"])
def test_bad_credentials_are_one_clear_error_line_and_exit_1(config_file, rsps, capsys, shop_id, command):
    platform, method, url, status, body = BAD_CREDENTIALS[shop_id]
    rsps.add(method, url, status=status, json=body)
    code, out, err = run(capsys, config_file, command, "--shop", shop_id)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("stagesync: ")
    assert f"shop {shop_id} ({platform})" in err and "refused the credentials" in err
    assert "Traceback" not in err


def test_poll_without_a_shop_polls_every_shop_with_an_api_table(config_file, rsps, capsys):
    FakeShopify(rsps, [])
    rsps.add(responses.GET, "https://savonnerie.example/wp-json/wc/v3/orders", json=[],
             headers={"X-WP-Total": "0", "X-WP-TotalPages": "0"})
    rsps.add(responses.POST, "https://api.wizishop.com/v3/auth/login", json=fixture("wizishop", "api/login.json"))
    rsps.add(responses.GET, "https://api.wizishop.com/v3/shops/1234/orders", status=404,
             json=fixture("wizishop", "api/not_found.json"))
    rsps.add(responses.GET, "https://api.bigcommerce.com/stores/abc123de/v2/orders", status=204, body="")
    code, out, err = run(capsys, config_file, "poll")
    assert code == 0, err
    assert [line.split()[1] for line in out.splitlines()] == ["pulled", "savonnerie", "savons", "outdoor"]


def test_a_shop_without_an_api_table_cannot_be_backfilled(config_file, capsys):
    code, out, err = run(capsys, config_file, "backfill", "--shop", "hooks")
    assert code == 1 and "no `api` table" in err and err.count("\n") == 1


def test_a_bad_since_is_a_user_error(config_file, capsys):
    code, out, err = run(capsys, config_file, "backfill", "--shop", "pulled", "--since", "last week")
    assert code == 1 and "--since" in err
