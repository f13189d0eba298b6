"""`customers/redact` forgets the customer by every identity it names: the email, the phone, the
platform's customer id and the listed orders, in every table keyed by the customer."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from connector import config
from connector.domain.orders import Order
from connector.services import evaluation
from connector.storage import schema
from connector.storage.predictions import replace_predictions
from connector.storage.store import Store
from connector.web.app import create_app
from tests.conftest import NOW
from tests.fakes.senders import SENDERS, ShopifySender, fixture, shops_toml

JANE, PHONE, OLD_JANE, CUSTOMER_ID = "jane.doe@example.com", "+33612345678", "old.jane@example.com", "7294715560093"


@pytest.fixture
def settings(database_url):
    return config.parse(shops_toml(database_url), env={})


@pytest.fixture
def app_store(settings):
    store = Store.open(settings.database_url)
    yield store
    store.close()


def order(order_id: str, email: str | None = None, phone: str | None = None, customer_id: str | None = None,
          shop_id: str = "shopify") -> Order:
    return Order.build(shop_id=shop_id, order_id=order_id, placed_at=NOW - timedelta(days=3), total=Decimal("30"),
                       email=email, phone=phone, customer_id=customer_id)


def keys_in(store, table, shop_id: str = "shopify") -> set[str]:
    with store.read() as conn:
        return set(conn.execute(select(table.c.customer_key).where(table.c.shop_id == shop_id)).scalars())


def seed(store, settings) -> None:
    """Jane: an email-keyed order, a guest order under her phone, an order under her old email that
    carries her platform customer id; Bob's order with Jane's phone on it; Carl; and the same phone
    in another shop. Stages, history, predictions, a data request and the outbox all hold them."""
    with store.transaction() as conn:
        store.upsert_orders(conn, [order("1", JANE, customer_id=CUSTOMER_ID), order("2", phone=PHONE),
                                   order("3", OLD_JANE, customer_id=CUSTOMER_ID), order("4", "bob@example.com", PHONE),
                                   order("5", "carl@example.com")])
        store.upsert_orders(conn, [order("9", phone=PHONE, shop_id="standard")])
    for shop in settings.shops.values():
        evaluation.recompute(store, shop, NOW)
    with store.transaction() as conn:
        replace_predictions(conn, "shopify", {key: (0.9, 0.2, "low", 0.1, 0.5, 12.0, None)
                                              for key in (JANE, PHONE, OLD_JANE, "bob@example.com")}, [])
        store.record_data_request(conn, "shopify", PHONE, "77", NOW)


def test_customers_redact_forgets_the_email_the_phone_and_the_platform_customer(settings, app_store):
    seed(app_store, settings)
    client = create_app(settings, store=app_store, clock=lambda: NOW).test_client()
    delivery = ShopifySender(clock=NOW).signed(fixture("shopify", "customers/redact"), "customers/redact")
    answer = client.post("/webhooks/shopify", data=delivery.body, headers=delivery.headers)
    assert answer.status_code == 200 and answer.get_json()["status"] == "accepted"

    kept = {"bob@example.com", "carl@example.com"}
    with app_store.read() as conn:
        orders = {row.order_id: row.phone for row in conn.execute(select(
            schema.orders.c.order_id, schema.orders.c.phone).where(schema.orders.c.shop_id == "shopify"))}
    assert orders == {"4": None, "5": None}  # Bob's order keeps counting, without Jane's phone
    assert keys_in(app_store, schema.customers) == kept
    assert keys_in(app_store, schema.stage_changes) == kept
    assert keys_in(app_store, schema.customer_predictions) == {"bob@example.com"}
    assert keys_in(app_store, schema.data_requests) == set()
    # every forgotten key is queued once more, so that the worker clears what it wrote, then forgets it
    assert {JANE, PHONE, OLD_JANE} <= keys_in(app_store, schema.outbox)
    assert keys_in(app_store, schema.customers, "standard") == {PHONE}  # another shop's customer is its own


def test_a_standard_webhooks_redaction_by_customer_id_alone_forgets_the_customer(settings, app_store):
    with app_store.transaction() as conn:
        app_store.upsert_orders(conn, [order("1", JANE, customer_id="c-42", shop_id="standard"),
                                       order("2", "bob@example.com", shop_id="standard")])
    evaluation.recompute(app_store, settings.shops["standard"], NOW)
    client = create_app(settings, store=app_store, clock=lambda: NOW).test_client()
    sender = SENDERS["standard"](clock=NOW)
    payload = {"type": "customer.redacted", "timestamp": "2026-06-01T12:00:00Z", "data": {"customer_id": "c-42"}}
    delivery = sender.signed(payload, "customer.redacted")
    assert client.post("/webhooks/standard", data=delivery.body, headers=delivery.headers).status_code == 200
    assert keys_in(app_store, schema.customers, "standard") == {"bob@example.com"}
    assert keys_in(app_store, schema.orders, "standard") == {"bob@example.com"}
