"""`stagesync webhooks install | status | uninstall` as a user runs them, against loopback fakes of the
three platforms' subscription APIs (tests/fakes/platform_subscriptions.py): real HTTP, real config."""

from __future__ import annotations

import json

import pytest

from connector.cli import main
from connector.storage.store import Store
from tests.fakes import platform_subscriptions as fakes

PUBLIC = "https://hooks.example.com"
CONFIG = """
database_url = "{database_url}"

[[shops]]
id = "acme"
platform = "shopify"
currency = "EUR"
public_url = "{public}"
api = {{ shop_domain = "acme.myshopify.com", client_id = "{client_id}", client_secret = "{client_secret}", base_url = "{shopify}" }}

[[shops]]
id = "savonnerie"
platform = "woocommerce"
webhook_secret = "wc-secret-0123456789"
currency = "EUR"
public_url = "{public}"
api = {{ base_url = "{woocommerce}", consumer_key = "{woo_key}", consumer_secret = "{woo_secret}" }}

[[shops]]
id = "outdoor"
platform = "bigcommerce"
webhook_secret = "bc-secret-0123456789"
currency = "USD"
public_url = "{public}"
api = {{ store_hash = "{bc_store}", access_token = "{bc_token}", base_url = "{bigcommerce}" }}

[[shops]]
id = "savons"
platform = "wizishop"
webhook_secret = "unused"
currency = "EUR"
"""
# Shopify's GraphQL enums (as the fake stores them) and the other platforms' topic names.
SHOPIFY_ENUMS = ("ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_PAID", "ORDERS_CANCELLED", "ORDERS_EDITED", "ORDERS_DELETE",
                 "REFUNDS_CREATE", "CUSTOMERS_CREATE", "CUSTOMERS_UPDATE", "APP_UNINSTALLED")
SHOPS = {"shopify": ("acme", "orders/paid", "ORDERS_PAID", len(SHOPIFY_ENUMS)),
         "woocommerce": ("savonnerie", "order.updated", "order.updated", 6),
         "bigcommerce": ("outdoor", "store/order/statusUpdated", "store/order/statusUpdated", 5)}


@pytest.fixture
def vendors():
    started = {"shopify": fakes.shopify_webhooks_vendor(), "woocommerce": fakes.woocommerce_webhooks_vendor(),
               "bigcommerce": fakes.bigcommerce_webhooks_vendor()}
    for vendor in started.values():
        vendor.start()
    yield started
    for vendor in started.values():
        vendor.stop()


@pytest.fixture
def config_file(tmp_path, database_url, vendors):
    path = tmp_path / "stagesync.toml"
    path.write_text(CONFIG.format(
        database_url=database_url, public=PUBLIC, client_id=fakes.SHOPIFY_CLIENT_ID,
        client_secret=fakes.SHOPIFY_CLIENT_SECRET, woo_key=fakes.WOO_KEY, woo_secret=fakes.WOO_SECRET,
        bc_store=fakes.BC_STORE, bc_token=fakes.BC_TOKEN,
        **{name: vendor.url for name, vendor in vendors.items()}))
    Store.open(database_url).close()
    return str(path)


def run(config_file, capsys, *args) -> tuple[int, str, str]:
    code = main(["--config", config_file, "webhooks", *args])
    out, err = capsys.readouterr()
    return code, out, err


def creations(vendor, platform: str) -> int:
    if platform == "shopify":
        return vendor.state.get("operations", []).count("webhookSubscriptionCreate")
    return sum(1 for r in vendor.requests if r.method == "POST")


@pytest.mark.parametrize("platform", list(SHOPS))
def test_install_creates_every_topic_then_nothing_the_second_time(platform, vendors, config_file, capsys):
    shop_id, _, _, count = SHOPS[platform]
    code, out, _ = run(config_file, capsys, "install", "--shop", shop_id)
    assert code == 0
    assert out.count(": created") == count
    stored = fakes.records(vendors[platform])
    assert len(stored) == count
    assert {r[fakes.URL_FIELD[platform]] for r in stored} == {f"{PUBLIC}/webhooks/{shop_id}"}
    created = creations(vendors[platform], platform)

    code, out, _ = run(config_file, capsys, "install", "--shop", shop_id)
    assert code == 0
    assert out.count(": ok") == count and ": created" not in out and ": 0 created, 0 repaired" in out
    assert creations(vendors[platform], platform) == created  # nothing created the second time
    assert len(fakes.records(vendors[platform])) == count


def test_shopify_install_names_the_privacy_topics_it_cannot_create(vendors, config_file, capsys):
    code, out, _ = run(config_file, capsys, "install", "--shop", "acme")
    assert code == 0
    assert "(customers/redact, shop/redact, customers/data_request) cannot be created through the Admin API" in out
    assert f"{PUBLIC}/webhooks/acme" in out
    assert {r["topic"] for r in fakes.records(vendors["shopify"])} == set(SHOPIFY_ENUMS)


@pytest.mark.parametrize("platform", list(SHOPS))
def test_a_broken_subscription_fails_status_then_install_repairs_it(platform, vendors, config_file, capsys):
    shop_id, topic, stored_topic, count = SHOPS[platform]
    vendor = vendors[platform]
    run(config_file, capsys, "install", "--shop", shop_id)
    code, out, _ = run(config_file, capsys, "status", "--shop", shop_id)
    assert code == 0, out

    record = fakes.find(vendor, platform, stored_topic)
    if platform == "shopify":  # Shopify deletes a subscription that keeps failing
        del vendor.state["items"][record["id"]]
        expected = "subscription missing on shopify"
    elif platform == "woocommerce":  # WooCommerce disables a webhook after failed deliveries
        record["status"] = "disabled"
        expected = "subscription disabled on woocommerce (nothing is delivered)"
    else:  # BigCommerce deactivates a failing hook
        record["is_active"] = False
        expected = "subscription disabled on bigcommerce (nothing is delivered)"
    code, out, _ = run(config_file, capsys, "status", "--shop", shop_id)
    assert code == 1
    problems = [line for line in out.splitlines() if line.startswith("PROBLEM")]
    assert problems == [f"PROBLEM {shop_id}: {topic}: {expected}; fix: stagesync webhooks install --shop {shop_id}"]

    code, out, _ = run(config_file, capsys, "install", "--shop", shop_id)
    assert code == 0
    assert f"{shop_id} {topic}: {'created' if platform == 'shopify' else 'repaired'}" in out
    assert out.count(": ok") == count - 1
    code, out, _ = run(config_file, capsys, "status", "--shop", shop_id)
    assert code == 0, out


@pytest.mark.parametrize("platform", list(SHOPS))
def test_a_subscription_to_an_old_url_of_ours_is_repaired_in_place(platform, vendors, config_file, capsys):
    shop_id, topic, stored_topic, _ = SHOPS[platform]
    run(config_file, capsys, "install", "--shop", shop_id)
    record = fakes.find(vendors[platform], platform, stored_topic)
    record[fakes.URL_FIELD[platform]] = f"https://old-api.example.net/prod/webhooks/{shop_id}"

    code, out, _ = run(config_file, capsys, "status", "--shop", shop_id)
    assert code == 1
    assert f"{topic}: subscription points elsewhere (https://old-api.example.net/prod/webhooks/{shop_id}" in out

    code, out, _ = run(config_file, capsys, "install", "--shop", shop_id)
    assert f"{shop_id} {topic}: repaired" in out
    assert record[fakes.URL_FIELD[platform]] == f"{PUBLIC}/webhooks/{shop_id}"  # the same subscription, repointed


@pytest.mark.parametrize("platform", list(SHOPS))
def test_uninstall_removes_ours_and_leaves_a_foreign_subscription(platform, vendors, config_file, capsys):
    shop_id, _, stored_topic, count = SHOPS[platform]
    vendor = vendors[platform]
    foreign = fakes.add_foreign(vendor, platform, stored_topic, "https://crm.example.org/hooks/orders")
    code, out, _ = run(config_file, capsys, "install", "--shop", shop_id)
    assert out.count(": created") == count  # the foreign one is not ours: ours is created beside it
    assert len(fakes.records(vendor)) == count + 1

    code, out, _ = run(config_file, capsys, "uninstall", "--shop", shop_id)
    assert code == 0
    assert f"{count} subscription(s) removed" in out
    assert fakes.records(vendor) == [foreign]


def test_status_json_names_each_shop_and_topic(vendors, config_file, capsys):
    run(config_file, capsys, "install", "--shop", "outdoor")
    fakes.find(vendors["bigcommerce"], "bigcommerce", "store/order/created")["headers"] = {
        "X-Stagesync-Webhook-Secret": "an-old-secret"}
    code, out, _ = run(config_file, capsys, "status", "--json")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    by_shop = {s["shop"]: s for s in report["shops"]}
    assert set(by_shop) == {"acme", "savonnerie", "outdoor", "savons"}
    assert {t["state"] for t in by_shop["acme"]["subscriptions"]} == {"missing"}
    states = {t["topic"]: t["state"] for t in by_shop["outdoor"]["subscriptions"]}
    assert states.pop("store/order/created") == "wrong_secret" and set(states.values()) == {"active"}
    assert by_shop["savons"]["subscriptions"] == [] and "poll" in by_shop["savons"]["note"]
    assert by_shop["outdoor"]["delivery"]["rejected"] == {} and report["unknown_shop"]["shop"] == "(unknown)"
    assert any("outdoor: store/order/created: subscription sends another secret" in p for p in report["problems"])
    assert "bc-secret-0123456789" not in out and "an-old-secret" not in out


def test_wizishop_has_nothing_to_install_and_says_how_orders_arrive(config_file, capsys):
    code, out, _ = run(config_file, capsys, "install", "--shop", "savons")
    assert code == 0
    assert "nothing to install: WiziShop sends no webhooks; its orders arrive through `stagesync poll`" in out


def test_install_refuses_a_plain_http_public_url(config_file, capsys):
    code, _, err = run(config_file, capsys, "install", "--shop", "outdoor", "--url", "http://hooks.example.com")
    assert code == 1
    assert err.strip() == "stagesync: shop outdoor: the public URL must be https:// (http:// only on a loopback address)"


def _empty_orders(vendor, request, match):
    from werkzeug.wrappers import Response

    return Response(status=204)  # the V2 orders list answers 204 when no order matches


@pytest.mark.parametrize("auto_repair", [False, True])
def test_the_scheduled_poll_logs_an_error_per_problem_and_repairs_with_auto_repair(auto_repair, vendors, config_file,
                                                                                    capsys):
    vendor = vendors["bigcommerce"]
    vendor.route("GET", r"/stores/(?P<store>[^/]+)/v2/orders", _empty_orders)
    run(config_file, capsys, "install", "--shop", "outdoor")
    gone = fakes.find(vendor, "bigcommerce", "store/order/archived")
    del vendor.state["items"][gone["id"]]
    if auto_repair:
        with open(config_file) as handle:
            text = handle.read()
        with open(config_file, "w") as handle:
            handle.write(text.replace('currency = "USD"\n', 'currency = "USD"\nauto_repair = true\n'))

    code = main(["--config", config_file, "poll", "--shop", "outdoor"])
    out, err = capsys.readouterr()
    assert code == 0
    assert out.startswith("polled outdoor (bigcommerce)")
    errors = [line for line in err.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "outdoor: store/order/archived: subscription missing on bigcommerce" in errors[0]
    archived = [r for r in fakes.records(vendor) if r["scope"] == "store/order/archived"]
    if auto_repair:
        assert "outdoor: store/order/archived: created by auto_repair" in err
        assert len(archived) == 1 and archived[0]["destination"] == f"{PUBLIC}/webhooks/outdoor"
    else:
        assert archived == []


def test_status_shows_the_last_accepted_webhook_and_fails_on_refused_deliveries(vendors, config_file, database_url,
                                                                                capsys):
    from datetime import datetime, timezone

    from connector import config
    from connector.web.app import create_app
    from tests.fakes.senders import ShopifySender

    run(config_file, capsys, "install", "--shop", "acme")
    settings = config.load(config_file)
    client = create_app(settings).test_client()
    sender = ShopifySender(secret=fakes.SHOPIFY_CLIENT_SECRET)  # a Dev Dashboard app signs with its client secret
    good = sender.order(1001, "jane@example.com", "59.90", datetime.now(timezone.utc))
    assert client.post("/webhooks/acme", data=good.body, headers=good.headers).status_code == 200
    code, out, _ = run(config_file, capsys, "status", "--shop", "acme")
    assert code == 0, out
    accepted = next(line for line in out.splitlines() if line.strip().startswith("orders/updated"))
    assert "active" in accepted and "last accepted 20" in accepted
    assert "refused in the last 24 h: none; missed orders: 0" in out

    forged = ShopifySender(secret="not-the-client-secret").order(1002, "joe@example.com", "10.00",
                                                                 datetime.now(timezone.utc))
    assert client.post("/webhooks/acme", data=forged.body, headers=forged.headers).status_code == 401
    assert client.post("/webhooks/nosuch", data=good.body, headers=good.headers).status_code == 404
    code, out, _ = run(config_file, capsys, "status")
    assert code == 1
    problems = [line for line in out.splitlines() if line.startswith("PROBLEM")]
    assert any(p.startswith("PROBLEM acme: 1 webhook deliveries refused in the last 24 h: bad or missing signature")
               for p in problems), problems
    assert any(p.startswith("PROBLEM deliveries to unknown shops: 1 webhook deliveries refused") for p in problems)
    assert "refused in the last 24 h: 1 bad_signature" in out
