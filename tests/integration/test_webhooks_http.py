"""Every answer of docs/architecture.md, 'The path of one webhook', on every webhook platform,
through Flask, on both engines."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from connector.web.app import create_app
from connector.storage.schema import customers, data_requests, deliveries, orders, outbox
from tests.conftest import NOW
from tests.fakes.senders import SENDERS, ShopifySender, fixture
from tests.http_client import BEARER, deliver

PLATFORMS = tuple(SENDERS)
PLACED = NOW - timedelta(days=3)


def rows(store, table) -> int:
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def nothing_stored(store) -> bool:
    return all(rows(store, t) == 0 for t in (orders, customers, outbox, deliveries))


def stage(client, platform, email):
    answer = client.post(f"/shops/{platform}/customers/find", json={"email": email}, headers=BEARER)
    return answer.get_json() if answer.status_code == 200 else None


@pytest.fixture(params=PLATFORMS)
def platform(request):
    return request.param


@pytest.fixture
def sender(platform):
    return SENDERS[platform](clock=NOW)


def test_a_good_signature_is_accepted_and_everything_is_committed(client, platform_store, platform, sender):
    answer = deliver(client, platform, sender.order(1001, "ann@example.com", "80.00", PLACED))
    assert (answer.status_code, answer.get_json()) == (200, {"status": "accepted"})
    assert rows(platform_store, orders) == rows(platform_store, customers) == rows(platform_store, outbox) == 1
    assert stage(client, platform, "ann@example.com")["rfm"] == "recent"


@pytest.mark.parametrize("tamper", ["bad", "missing", "other body"])
def test_a_bad_signature_is_401_with_nothing_stored(client, platform_store, platform, sender, tamper):
    delivery = sender.order(1001, "ann@example.com", "80.00", PLACED)
    if tamper == "bad":
        delivery = sender.__class__(secret="whsec_" + "A" * 32 if platform == "standard" else "wrong-secret",
                                    clock=NOW).order(1001, "ann@example.com", "80.00", PLACED)
    elif tamper == "missing":
        signature_headers = {"x-shopify-hmac-sha256", "x-wc-webhook-signature", "webhook-signature"}
        delivery.headers = {k: v for k, v in delivery.headers.items() if k.lower() not in signature_headers}
    else:
        delivery.body = delivery.body.replace(b"80.00", b"8.00")
    answer = deliver(client, platform, delivery)
    assert answer.status_code == 401 and nothing_stored(platform_store)
    assert "secret" not in json.dumps(answer.get_json()).lower() or "invalid" in answer.get_json()["error"]


def test_an_unknown_shop_is_404(client, platform_store, sender):
    assert deliver(client, "nosuchshop", sender.order(1, "a@example.com", "1", PLACED)).status_code == 404


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"id": "x"}', b'"just a string"'])
def test_a_signed_but_malformed_body_is_400_with_nothing_stored(client, platform_store, platform, sender, body):
    topic = {"shopify": "orders/create", "woocommerce": "order.created", "standard": "order.upserted"}[platform]
    answer = deliver(client, platform, sender.signed(body, topic))
    assert answer.status_code == 400 and answer.get_json()["error"]
    assert nothing_stored(platform_store)


def test_a_body_missing_required_fields_is_400(client, platform_store, platform, sender):
    delivery = sender.order(1001, "ann@example.com", "80.00", PLACED)
    payload = json.loads(delivery.body)
    for key in ("total_price", "total", "total_price_set"):
        payload.pop(key, None)
    payload.get("data", {}).pop("total", None)
    topic = {"shopify": "orders/create", "woocommerce": "order.created", "standard": "order.upserted"}[platform]
    answer = deliver(client, platform, sender.signed(payload, topic))
    assert answer.status_code == 400 and "total" in answer.get_json()["error"]
    assert nothing_stored(platform_store)


def test_a_body_over_one_mebibyte_is_413(client, platform_store, platform, sender):
    delivery = sender.signed(b'{"pad": "' + b"x" * (1024 * 1024) + b'"}', "orders/create")
    assert deliver(client, platform, delivery).status_code == 413 and nothing_stored(platform_store)


def test_a_wrong_content_type_is_400(client, platform_store, platform, sender):
    delivery = sender.order(1001, "ann@example.com", "80.00", PLACED)
    answer = deliver(client, platform, delivery, **{"Content-Type": "text/plain"})
    assert answer.status_code == 400 and nothing_stored(platform_store)


def test_a_duplicate_delivery_answers_duplicate_and_changes_nothing(client, platform_store, platform, sender):
    delivery = sender.order(1001, "ann@example.com", "80.00", PLACED, delivery_id="dup-1")
    assert deliver(client, platform, delivery).get_json() == {"status": "accepted"}
    assert deliver(client, platform, delivery).get_json() == {"status": "duplicate"}
    assert rows(platform_store, orders) == rows(platform_store, deliveries) == 1


def test_out_of_order_deliveries_keep_the_newest_version(client, platform, sender):
    newer = sender.order(1001, "ann@example.com", "120.00", PLACED, updated_at=PLACED + timedelta(hours=2))
    older = sender.order(1001, "ann@example.com", "80.00", PLACED, updated_at=PLACED + timedelta(hours=1))
    deliver(client, platform, newer)
    deliver(client, platform, older)
    assert stage(client, platform, "ann@example.com")["total_spent"] == "120.00"


def test_a_cancellation_arriving_before_the_creation_still_ends_cancelled(client, platform, sender):
    cancel = sender.order(1001, "ann@example.com", "80.00", PLACED, updated_at=PLACED + timedelta(hours=5),
                          status="cancelled")
    create = sender.order(1001, "ann@example.com", "80.00", PLACED)
    deliver(client, platform, cancel)
    deliver(client, platform, create)
    view = stage(client, platform, "ann@example.com")
    assert (view["rfm"], view["orders_total"]) == ("prospect", 0)


def test_a_partial_refund_lowers_the_amount_and_a_full_one_removes_the_order(client, platform, sender):
    deliver(client, platform, sender.order(1001, "ann@example.com", "100.00", PLACED))
    deliver(client, platform, sender.order(1001, "ann@example.com", "100.00", PLACED, refunded="30.00",
                                           updated_at=PLACED + timedelta(hours=1)))
    assert stage(client, platform, "ann@example.com")["total_spent"] == "70.00"
    deliver(client, platform, sender.order(1001, "ann@example.com", "100.00", PLACED, status="refunded",
                                           refunded="100.00", updated_at=PLACED + timedelta(hours=2)))
    assert stage(client, platform, "ann@example.com")["orders_total"] == 0


@pytest.mark.parametrize("platform_name", ["shopify", "standard"])
def test_a_test_order_is_ignored(client, platform_store, platform_name):
    sender = SENDERS[platform_name](clock=NOW)
    answer = deliver(client, platform_name, sender.order(1001, "ann@example.com", "80.00", PLACED, test=True))
    assert answer.get_json() == {"status": "ignored"} and nothing_stored(platform_store)


def test_the_woocommerce_creation_ping_is_answered_and_stores_nothing(client, platform_store):
    answer = client.post("/webhooks/woocommerce", data=b"webhook_id=42",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.get_json() == {"status": "ignored"} and nothing_stored(platform_store)


def test_a_shopify_refund_webhook_is_recorded_once(client):
    sender = ShopifySender(clock=NOW)
    deliver(client, "shopify", sender.order(5873412096157, "jane.doe@example.com", "89.80", PLACED))
    refund = sender.signed(fixture("shopify", "refunds/create"), "refunds/create")
    assert deliver(client, "shopify", refund).get_json() == {"status": "accepted"}
    assert deliver(client, "shopify", refund).get_json() == {"status": "duplicate"}
    assert stage(client, "shopify", "jane.doe@example.com")["total_spent"] == "49.85"


def test_customers_redact_deletes_the_customer_and_queues_clearing(client, platform_store):
    sender = ShopifySender(clock=NOW)
    deliver(client, "shopify", sender.order(5873412096157, "jane.doe@example.com", "89.80", PLACED))
    deliver(client, "shopify", sender.order(77, "bob@example.com", "10.00", PLACED))
    answer = deliver(client, "shopify", sender.signed(fixture("shopify", "customers/redact"), "customers/redact"))
    assert answer.status_code == 200
    assert stage(client, "shopify", "jane.doe@example.com") is None
    # one order left; the outbox holds bob's row and jane's, which now clears her properties
    assert rows(platform_store, orders) == 1 and rows(platform_store, outbox) == 2


def test_shop_redact_deletes_everything_of_the_shop(client, platform_store):
    sender = ShopifySender(clock=NOW)
    deliver(client, "shopify", sender.order(1, "jane.doe@example.com", "89.80", PLACED))
    deliver(client, "standard", SENDERS["standard"](clock=NOW).order(1, "bob@example.com", "10.00", PLACED))
    answer = deliver(client, "shopify", sender.signed(fixture("shopify", "shop/redact"), "shop/redact"))
    assert answer.status_code == 200
    with platform_store.read() as conn:
        assert conn.execute(select(orders.c.shop_id)).scalars().all() == ["standard"]


def test_customers_data_request_is_recorded_and_the_data_is_exportable(client, platform_store):
    sender = ShopifySender(clock=NOW)
    deliver(client, "shopify", sender.order(5873412096157, "jane.doe@example.com", "89.80", PLACED))
    answer = deliver(client, "shopify", sender.signed(fixture("shopify", "customers/data_request"),
                                                      "customers/data_request"))
    assert answer.status_code == 200 and rows(platform_store, data_requests) == 1
    view = stage(client, "shopify", "jane.doe@example.com")
    assert view["data_requests"][0]["request_id"] == "9999" and view["orders"][0]["order_id"] == "5873412096157"


@pytest.mark.parametrize("topic", ["customers/redact", "shop/redact", "customers/data_request"])
def test_privacy_webhooks_with_a_bad_signature_are_401(client, platform_store, topic):
    delivery = ShopifySender(secret="wrong", clock=NOW).signed(fixture("shopify", topic), topic)
    assert deliver(client, "shopify", delivery).status_code == 401


def test_storage_unavailable_answers_503_and_stores_nothing_half_way(client, platform_store, platform, sender,
                                                                     monkeypatch):
    from connector.services import evaluation

    def storage_fails(*args, **kwargs):
        from connector.errors import StorageUnavailableError
        raise StorageUnavailableError("database unavailable: OperationalError")

    monkeypatch.setattr(evaluation, "next_state_micros", storage_fails)  # fails after the order was written
    answer = deliver(client, platform, sender.order(1001, "ann@example.com", "80.00", PLACED))
    assert answer.status_code == 503 and nothing_stored(platform_store)


def test_a_database_that_does_not_answer_gives_503(platform_shops):
    dead = platform_shops.__class__(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
                              admin_token=platform_shops.admin_token, shops=platform_shops.shops)
    client = create_app(dead, clock=lambda: NOW).test_client()
    answer = deliver(client, "shopify", ShopifySender(clock=NOW).order(1, "a@example.com", "1.00", PLACED))
    assert answer.status_code == 503
    assert client.get("/healthz").status_code == 503


def test_healthz_answers_200_when_the_database_answers(client):
    assert client.get("/healthz").status_code == 200


def test_admin_routes_need_the_bearer_token(client):
    assert client.get("/shops/shopify/stages").status_code == 401
    assert client.get("/shops/shopify/stages", headers={"Authorization": "Bearer nope"}).status_code == 401
    answer = client.get("/shops/shopify/stages", headers={"Authorization": "Bearer test-admin-token"})
    assert answer.status_code == 200 and answer.get_json()["shop"] == "shopify"
