"""What the platforms really send, through the real HTTP endpoint, on SQLite and PostgreSQL.

Bodies come from the documented fixtures in tests/fixtures/<platform>/ (each shaped on the
platform's own reference; see the comment at each test for the source).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from datetime import timedelta
from decimal import Decimal
from email.utils import format_datetime

import pytest
import responses
from sqlalchemy import select

from connector import config
from connector.cli.runs import config_problems
from connector.config import ShopSettings
from connector.services.evaluation import snapshot
from connector.services.properties import field_values
from connector.storage.schema import orders
from connector.storage.store import Store
from connector.storage.values import from_micros
from connector.web.app import create_app
from tests.conftest import NOW
from adapters.platforms import bigcommerce
from tests.fakes.senders import SECRETS, ShopifySender, WooCommerceSender, fixture

PLACED = NOW - timedelta(days=3)
ADMIN = {"Authorization": "Bearer test-admin-token"}


def shop_toml(database_url: str, *shops: str) -> str:
    return f'database_url = "{database_url}"\nadmin_token = "test-admin-token"\n' + "".join(shops)


def shop_block(shop_id: str, platform: str, secret: str, extra: str = "", currency: str = "EUR") -> str:
    return (f'\n[[shops]]\nid = "{shop_id}"\nplatform = "{platform}"\nwebhook_secret = "{secret}"\n'
            f'currency = "{currency}"\n{extra}  [[shops.destinations]]\n  type = "log"\n')


@pytest.fixture
def app_store(database_url):
    store = Store.open(database_url)
    yield store
    store.close()


def client_for(database_url, store, *shops):
    settings = config.parse(shop_toml(database_url, *shops), env={})
    return create_app(settings, store=store, clock=lambda: NOW).test_client()


@pytest.fixture
def woo(database_url, app_store):
    return client_for(database_url, app_store, shop_block("woo", "woocommerce", SECRETS["woocommerce"]))


def post(client, shop_id, delivery):
    return client.post(f"/webhooks/{shop_id}", data=delivery.body, headers=delivery.headers)


def stored_orders(store, shop_id):
    with store.read() as conn:
        found = conn.execute(select(orders.c.order_id, orders.c.status, orders.c.valid, orders.c.amount,
                                    orders.c.placed_at)
                             .where(orders.c.shop_id == shop_id).order_by(orders.c.order_id)).all()
    return {row.order_id: row for row in found}


def customer(client, shop_id, email):
    answer = client.post(f"/shops/{shop_id}/customers/find", json={"email": email}, headers=ADMIN)
    return answer.get_json() if answer.status_code == 200 else None


def naive(moment):
    return None if moment is None else moment.replace(tzinfo=None).isoformat()  # WooCommerce's *_gmt: no offset


def woo_order(order_id: int, email: str, status: str, total: str = "69.80", modified=None, paid=PLACED) -> dict:
    """A REST API v3 order (https://woocommerce.github.io/woocommerce-rest-api-docs/#order-properties),
    from tests/fixtures/woocommerce/order.updated.json."""
    order = copy.deepcopy(fixture("woocommerce", "order.updated"))
    order.update(id=order_id, status=status, total=total, refunds=[],
                 date_created_gmt=naive(PLACED), date_modified_gmt=naive(modified or PLACED),
                 date_paid_gmt=naive(paid))
    order["billing"]["email"] = email
    return order


# --- 1. WooCommerce de-duplication ---------------------------------------------------------------
# WC_Webhook::get_new_delivery_id (plugins/woocommerce/includes/class-wc-webhook.php) returns
# wp_hash( $this->get_id() . strtotime( 'now' ) ): one id per webhook and second.

def test_woocommerce_two_orders_sharing_one_delivery_id_are_both_stored(woo, app_store):
    sender, same_second = WooCommerceSender(), "c2a1e6f0b9d84c7a3e5f1d2b8a6c4e90"
    first = sender.signed(woo_order(2001, "ann@example.com", "processing"), "order.updated", same_second)
    second = sender.signed(woo_order(2002, "bob@example.com", "processing"), "order.updated", same_second)
    assert post(woo, "woo", first).get_json() == {"status": "accepted"}
    assert post(woo, "woo", second).get_json() == {"status": "accepted"}
    assert set(stored_orders(app_store, "woo")) == {"2001", "2002"}
    assert customer(woo, "woo", "bob@example.com")["orders_total"] == 1


def test_woocommerce_a_cancellation_in_the_same_second_is_not_a_duplicate(woo, app_store):
    sender, same_second = WooCommerceSender(), "c2a1e6f0b9d84c7a3e5f1d2b8a6c4e90"
    paid = woo_order(2001, "ann@example.com", "processing")
    cancelled = woo_order(2001, "ann@example.com", "cancelled", modified=PLACED + timedelta(seconds=1))
    assert post(woo, "woo", sender.signed(paid, "order.updated", same_second)).get_json()["status"] == "accepted"
    assert post(woo, "woo", sender.signed(cancelled, "order.updated", same_second)).get_json()["status"] == "accepted"
    assert stored_orders(app_store, "woo")["2001"].status == "cancelled"
    assert customer(woo, "woo", "ann@example.com")["orders_total"] == 0


def test_woocommerce_the_same_body_delivered_again_is_a_duplicate(woo, app_store):
    sender = WooCommerceSender()
    body = woo_order(2001, "ann@example.com", "processing")
    assert post(woo, "woo", sender.signed(body, "order.updated", "first-attempt")).get_json()["status"] == "accepted"
    # WooCommerce's retry of a failed delivery is a new second, hence a new delivery id
    assert post(woo, "woo", sender.signed(body, "order.updated", "retry")).get_json() == {"status": "duplicate"}
    assert len(stored_orders(app_store, "woo")) == 1


# --- 2. BigCommerce: a repeated hash re-reads the order ----------------------------------------------
BC_SECRET = "bc-hook-secret-7d1f0a9e3c"
BC_ORDERS = "https://api.bigcommerce.com/stores/abc123de/v2/orders"


@pytest.fixture
def bc(database_url, app_store):
    api = 'api = { store_hash = "abc123de", access_token = "bc_access_token_5a4b3c2d1e0f9a8b7c6d" }\n'
    return client_for(database_url, app_store, shop_block("bc", "bigcommerce", BC_SECRET, api, currency="USD"))


@pytest.fixture
def bc_api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def bc_order(status_id: int, **changes) -> dict:
    """A V2 order (bigcommerce/api-specs reference/orders.v2.oas2.yml), tests/fixtures/bigcommerce/api/order.json."""
    order = dict(fixture("bigcommerce", "api/order"), status_id=status_id,
                 date_created=format_datetime(PLACED), date_modified=format_datetime(PLACED))
    order.update(changes)
    order["billing_address"] = dict(order["billing_address"], email="ann@example.com")
    return order


def bc_callback(scope: str, event_hash: str):
    """A light callback as in BigCommerce's webhook samples (tests/fixtures/bigcommerce/webhooks/)."""
    payload = dict(fixture("bigcommerce", "webhooks/store_order_created"), scope=scope, hash=event_hash)
    body = json.dumps(payload).encode()

    class Delivery:
        pass
    delivery = Delivery()
    delivery.body, delivery.headers = body, bigcommerce.sign(body, BC_SECRET)
    return delivery


def test_bigcommerce_a_repeated_hash_re_reads_the_order_and_sees_its_cancellation(bc, bc_api, app_store):
    shared = "352e4afc6dd3fc85ea26bfdf3f91852604d57528"
    bc_api.add(responses.GET, f"{BC_ORDERS}/100", json=bc_order(11))  # Awaiting Fulfillment
    assert post(bc, "bc", bc_callback("store/order/updated", shared)).get_json() == {"status": "accepted"}
    assert customer(bc, "bc", "ann@example.com")["orders_total"] == 1
    bc_api.replace(responses.GET, f"{BC_ORDERS}/100",
                   json=bc_order(5, date_modified=format_datetime(PLACED + timedelta(hours=1))))  # Cancelled
    assert post(bc, "bc", bc_callback("store/order/updated", shared)).get_json() == {"status": "accepted"}
    assert len(bc_api.calls) == 2
    assert stored_orders(app_store, "bc")["100"].status == "cancelled"
    assert customer(bc, "bc", "ann@example.com")["orders_total"] == 0


# --- 3. unpaid and abandoned orders are stored, not counted, until placed ------------------------------
# WooCommerce: https://woocommerce.com/document/managing-orders/order-statuses/ ("Pending payment:
# order received, no payment initiated"; "Failed"; the Store API's "checkout-draft").

@pytest.mark.parametrize("raw_status", ["pending", "failed", "checkout-draft"])
def test_woocommerce_an_unpaid_order_is_stored_but_does_not_count(woo, app_store, raw_status):
    unpaid = woo_order(2001, "ann@example.com", raw_status, paid=None)
    assert post(woo, "woo", WooCommerceSender().signed(unpaid, "order.created")).get_json() == {"status": "accepted"}
    stored = stored_orders(app_store, "woo")["2001"]
    assert (stored.status, stored.valid, stored.amount) == ("pending", False, 0)
    view = customer(woo, "woo", "ann@example.com")
    assert view is None or (view["orders_total"], view["total_spent"]) == (0, "0.00")


def test_woocommerce_an_order_paid_later_counts_from_its_payment(woo, app_store):
    paid_at = PLACED + timedelta(days=2)
    sender = WooCommerceSender()
    post(woo, "woo", sender.signed(woo_order(2001, "ann@example.com", "pending", paid=None), "order.created"))
    later = woo_order(2001, "ann@example.com", "processing", modified=paid_at, paid=paid_at)
    assert post(woo, "woo", sender.signed(later, "order.updated")).get_json() == {"status": "accepted"}
    stored = stored_orders(app_store, "woo")["2001"]
    assert stored.valid and from_micros(stored.placed_at) == paid_at  # date_paid_gmt, not date_created_gmt
    view = customer(woo, "woo", "ann@example.com")
    assert (view["orders_total"], view["total_spent"], view["recency_days"]) == (1, "69.80", 1)


@pytest.mark.parametrize("status_id", [0, 1])  # 0 Incomplete, 1 Pending: checkout started, not completed
def test_bigcommerce_an_incomplete_or_pending_checkout_counts_only_once_placed(bc, bc_api, app_store, status_id):
    # https://developer.bigcommerce.com/docs/store-operations/orders#order-statuses
    bc_api.add(responses.GET, f"{BC_ORDERS}/100", json=bc_order(status_id))
    assert post(bc, "bc", bc_callback("store/order/created", "a1")).get_json() == {"status": "accepted"}
    stored = stored_orders(app_store, "bc")["100"]
    assert (stored.status, stored.valid) == ("pending", False)
    assert customer(bc, "bc", "ann@example.com")["orders_total"] == 0
    bc_api.replace(responses.GET, f"{BC_ORDERS}/100",
                   json=bc_order(11, date_modified=format_datetime(PLACED + timedelta(hours=1))))
    post(bc, "bc", bc_callback("store/order/statusUpdated", "a2"))
    assert customer(bc, "bc", "ann@example.com")["orders_total"] == 1


# --- 4. Shopify: the amount is current_total_price (after edits and refunds) --------------------------
# https://shopify.dev/docs/api/admin-rest/latest/resources/order#resource-object: current_total_price
# "reflects order edits, returns, and refunds"; tests/fixtures/shopify/orders/*.json follow the
# webhook reference's samples.

@pytest.fixture
def shopify_client(database_url, app_store):
    return client_for(database_url, app_store, shop_block("shop", "shopify", SECRETS["shopify"]))


def shopify_order(name: str, **changes) -> dict:
    order = copy.deepcopy(fixture("shopify", f"orders/{name}"))
    order.update(processed_at=PLACED.isoformat(), created_at=PLACED.isoformat(), updated_at=PLACED.isoformat(),
                 email="ann@example.com", contact_email="ann@example.com")
    order.update(changes)
    return order


def eur(amount: str) -> dict:
    money = {"amount": amount, "currency_code": "EUR"}
    return {"shop_money": money, "presentment_money": money}


def test_shopify_an_edited_order_counts_its_current_total(shopify_client, app_store):
    # An item removed by an order edit: total_price keeps the original 89.80, current_total_price is 49.85.
    edited = shopify_order("create", current_total_price="49.85", current_total_price_set=eur("49.85"))
    assert post(shopify_client, "shop", ShopifySender().signed(edited, "orders/updated")).get_json()["status"] == "accepted"
    assert customer(shopify_client, "shop", "ann@example.com")["total_spent"] == "49.85"


def test_shopify_a_refunded_order_is_not_refunded_twice(shopify_client, app_store):
    # orders/updated after a 39.95 refund of an 89.80 order: current_total_price 49.85, refunds [39.95].
    refunded = shopify_order("updated")
    assert refunded["current_total_price"] == "49.85" and refunded["total_price"] == "89.80"
    sender = ShopifySender()
    assert post(shopify_client, "shop", sender.signed(refunded, "orders/updated")).get_json()["status"] == "accepted"
    assert customer(shopify_client, "shop", "ann@example.com")["total_spent"] == "49.85"  # not 9.90
    # the same refund's refunds/create, before or after, changes nothing
    refund = fixture("shopify", "refunds/create")
    assert post(shopify_client, "shop", sender.signed(refund, "refunds/create")).get_json()["status"] == "accepted"
    assert customer(shopify_client, "shop", "ann@example.com")["total_spent"] == "49.85"


def test_shopify_a_refund_announced_before_the_order_update_is_counted_once(shopify_client, app_store):
    sender = ShopifySender()
    original = shopify_order("updated", current_total_price="89.80", current_total_price_set=eur("89.80"),
                             refunds=[], financial_status="paid", updated_at=(PLACED - timedelta(hours=1)).isoformat())
    post(shopify_client, "shop", sender.signed(original, "orders/create"))
    post(shopify_client, "shop", sender.signed(fixture("shopify", "refunds/create"), "refunds/create"))
    assert customer(shopify_client, "shop", "ann@example.com")["total_spent"] == "49.85"
    post(shopify_client, "shop", sender.signed(shopify_order("updated"), "orders/updated"))
    assert customer(shopify_client, "shop", "ann@example.com")["total_spent"] == "49.85"


# --- 6. Standard Webhooks secrets without base64 padding ------------------------------------------------
# The reference library decodes `whsec_` + base64 after adding the padding back
# (standard-webhooks libraries/python/standardwebhooks/webhooks.py: base64.b64decode(whsecret + "==")).
KEY = bytes(range(32))  # base64 "AAEC...Hh8=": one "=" of padding
UNPADDED = "whsec_" + base64.b64encode(KEY).decode().rstrip("=")


def standard_delivery(payload: dict, msg_id: str) -> tuple[bytes, dict]:
    """Signed as the spec says, independently of stagesync: HMAC-SHA256(key, "{id}.{timestamp}.{body}")."""
    body = json.dumps(payload).encode()
    timestamp = str(int(NOW.timestamp()))
    digest = hmac.new(KEY, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return body, {"Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": timestamp,
                  "webhook-signature": "v1," + base64.b64encode(digest).decode()}


def test_standard_a_secret_without_padding_verifies_and_passes_check_config(database_url, app_store):
    assert not UNPADDED.endswith("=")
    settings = config.parse(shop_toml(database_url, shop_block("std", "standard", UNPADDED)), env={})
    check_config(settings)  # check-config: OK
    client = create_app(settings, store=app_store, clock=lambda: NOW).test_client()
    order = copy.deepcopy(fixture("standard", "order.upserted"))
    order["data"].update(placed_at=PLACED.isoformat(), updated_at=PLACED.isoformat(), email="ann@example.com")
    body, headers = standard_delivery(order, "msg_2mQ1kZ7a")
    answer = client.post("/webhooks/std", data=body, headers=headers)
    assert (answer.status_code, answer.get_json()) == (200, {"status": "accepted"})


def test_standard_check_config_refuses_a_secret_that_verification_would_refuse(database_url):
    settings = config.parse(shop_toml(database_url, shop_block("std", "standard", "whsec_not*base64!")), env={})
    with pytest.raises(config.ConfigError, match="webhook_secret"):
        check_config(settings)


def check_config(settings) -> None:
    """What `stagesync check-config` checks beyond parsing: ConfigError listing every problem."""
    problems = config_problems(settings)
    if problems:
        raise config.ConfigError(problems)


# --- 5. orders in another currency ----------------------------------------------------------------------
# WooCommerce's order `currency` is the currency of its amounts (REST API v3, order properties);
# Aelia Currency Switcher adds `_order_total_base_currency` to the order's meta_data.

def usd_order(order_id: int, meta=(), email: str = "ann@example.com") -> dict:
    order = woo_order(order_id, email, "processing", total="100.00")
    order["currency"] = "USD"
    order["meta_data"] = list(order["meta_data"]) + list(meta)
    return order


def amount_known(store, shop_id, order_id):
    with store.read() as conn:
        return conn.execute(select(orders.c.amount_known).where(
            orders.c.shop_id == shop_id, orders.c.order_id == order_id)).scalar_one()


def test_a_foreign_order_without_a_rate_counts_but_stays_out_of_money_figures(woo, app_store):
    post(woo, "woo", WooCommerceSender().signed(woo_order(2000, "ann@example.com", "processing", total="50.00"),
                                                "order.updated"))
    assert post(woo, "woo", WooCommerceSender().signed(usd_order(2001), "order.updated")).get_json()["status"] == "accepted"
    view = customer(woo, "woo", "ann@example.com")
    assert (view["orders_total"], view["total_spent"]) == (2, "50.00")  # never USD 100 read as EUR 100
    assert amount_known(app_store, "woo", "2001") is False and amount_known(app_store, "woo", "2000") is True


def test_an_unconverted_order_counts_as_an_order_but_in_no_money_figure(woo, app_store):
    """EUR shop: ann has EUR 100 and USD 100 with no rate, bob EUR 50, carl only USD 100. Ann's AOV
    is 100 (not 50), F 2, total_spent 100; the shop AOV is (100 + 50) / 2, not 150 / 4 (docs/rules.md,
    'Amounts and currencies'); carl has no AOV, so is not high value."""
    sender = WooCommerceSender()
    for order in (woo_order(2000, "ann@example.com", "processing", total="100.00"), usd_order(2001),
                  woo_order(2002, "bob@example.com", "processing", total="50.00")):
        assert post(woo, "woo", sender.signed(order, "order.updated")).get_json()["status"] == "accepted"
    assert post(woo, "woo", sender.signed(usd_order(2003, email="carl@example.com"), "order.updated")).get_json()["status"] == "accepted"
    ann = customer(woo, "woo", "ann@example.com")
    assert (ann["orders_365d"], ann["orders_total"], ann["aov_365d"], ann["total_spent"]) == (2, 2, "100.00", "100.00")
    assert (ann["shop_aov_365d"], ann["high_value"]) == ("75.00", True)
    carl_view = customer(woo, "woo", "carl@example.com")
    assert (carl_view["orders_365d"], carl_view["aov_365d"], carl_view["total_spent"], carl_view["high_value"]) == \
        (1, None, "0.00", False)
    shop = ShopSettings(id="woo", platform="woocommerce", webhook_secret="x", currency="EUR")
    with app_store.read() as conn:  # what the destinations are sent: from the state the webhook stored
        stored = app_store.load_state(conn, "woo", "ann@example.com")
    assert (field_values(stored, shop)["aov_365d"], field_values(stored, shop)["total_spent"]) == ("100.00", "100.00")
    snap = snapshot(app_store, shop, NOW)  # the dashboard's and export's whole-shop path
    assert (snap.shop.shop_aov, snap.shop.window_orders) == (Decimal("75"), 4)
    assert snap.evaluations["ann@example.com"].figures.aov_365d == Decimal("100")


def test_a_foreign_order_is_converted_with_the_shops_rates(database_url, app_store):
    client = client_for(database_url, app_store,
                        shop_block("woo", "woocommerce", SECRETS["woocommerce"], "rates = { USD = 0.92 }\n"))
    post(client, "woo", WooCommerceSender().signed(usd_order(2001), "order.updated"))
    assert customer(client, "woo", "ann@example.com")["total_spent"] == "92.00"
    assert amount_known(app_store, "woo", "2001") is True


def test_the_platforms_rate_wins_over_the_shops_rates(database_url, app_store):
    client = client_for(database_url, app_store,
                        shop_block("woo", "woocommerce", SECRETS["woocommerce"], "rates = { USD = 0.92 }\n"))
    aelia = [{"id": 30500, "key": "_order_total_base_currency", "value": "90.50"}]
    post(client, "woo", WooCommerceSender().signed(usd_order(2001, aelia), "order.updated"))
    assert customer(client, "woo", "ann@example.com")["total_spent"] == "90.50"


def test_a_standard_order_may_carry_its_exchange_rate(database_url, app_store):
    from tests.fakes.senders import StandardSender
    client = client_for(database_url, app_store, shop_block("standard", "standard", SECRETS["standard"]))
    data = {"order_id": "A-1", "placed_at": PLACED.isoformat(), "total": "100.00", "currency": "USD",
            "exchange_rate": "0.9", "email": "ann@example.com"}
    delivery = StandardSender(clock=NOW).signed({"type": "order.upserted", "data": data}, "order.upserted")
    assert post(client, "standard", delivery).get_json() == {"status": "accepted"}
    assert customer(client, "standard", "ann@example.com")["total_spent"] == "90.00"


def test_rates_are_checked_by_check_config(database_url):
    with pytest.raises(config.ConfigError, match=r"rates\.USD"):
        config.parse(shop_toml(database_url, shop_block("w", "woocommerce", "s", "rates = { USD = -1 }\n")), env={})


# --- 7. Shopify Dev Dashboard apps: webhooks are signed with the app's client secret --------------------
# https://shopify.dev/docs/apps/build/webhooks/verify-deliveries ("the app's client secret")

def test_shopify_webhooks_verify_with_the_client_secret_when_no_webhook_secret_is_set(database_url, app_store):
    client_secret = "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"
    toml = shop_toml(database_url) + (
        '\n[[shops]]\nid = "dev"\nplatform = "shopify"\ncurrency = "EUR"\n'
        f'api = {{ shop_domain = "acme.myshopify.com", client_id = "3f1c0e9a", client_secret = "{client_secret}" }}\n'
        '  [[shops.destinations]]\n  type = "log"\n')
    app = create_app(config.parse(toml, env={}), store=app_store, clock=lambda: NOW).test_client()
    order = shopify_order("create")
    assert post(app, "dev", ShopifySender(secret=client_secret).signed(order, "orders/create")).get_json() == \
        {"status": "accepted"}
    assert post(app, "dev", ShopifySender(secret="another").signed(order, "orders/create")).status_code == 401


def test_unconverted_orders_are_shown_by_the_customer_view_the_dashboard_and_the_metrics(woo, app_store):
    post(woo, "woo", WooCommerceSender().signed(usd_order(2001), "order.updated"))
    view = customer(woo, "woo", "ann@example.com")
    assert "another currency" in view["unconverted"]
    assert [(o["currency"], o["amount_known"]) for o in view["orders"]] == [("USD", False)]
    page = woo.get("/dashboard/woo", headers=ADMIN).get_data(as_text=True)
    assert "data-unconverted" in page and "another currency" in page
    assert 'stagesync_orders_unconverted{shop="woo"} 1.0' in woo.get("/metrics").get_data(as_text=True)


def test_explain_says_when_an_order_amount_is_unconverted(woo, database_url, tmp_path, capsys):
    from connector.cli import main
    post(woo, "woo", WooCommerceSender().signed(usd_order(2001), "order.updated"))
    path = tmp_path / "stagesync.toml"
    path.write_text(shop_toml(database_url, shop_block("woo", "woocommerce", SECRETS["woocommerce"])))
    assert main(["--config", str(path), "explain", "--shop", "woo", "ann@example.com",
                 "--at", NOW.isoformat()]) == 0
    out = capsys.readouterr().out
    assert "orders_total    1" in out and "total_spent     0.00" in out
    assert "unconverted     1 order(s) in another currency with no exchange rate" in out
