"""The admin API names customers by an opaque ref: `POST /shops/<id>/customers/find` with an email or
a phone in the body, `GET /shops/<id>/customers/<ref>`; no email or phone in any URL, on both engines."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from connector.storage.schema import customer_refs
from tests.conftest import NOW
from tests.fakes.senders import ShopifySender, StandardSender
from tests.http_client import BEARER, deliver

@pytest.fixture
def client(client):
    """The app's client after Ann's order of three days ago came in."""
    order = ShopifySender().order(1, "Ann@Example.com", "40.00", NOW - timedelta(days=3))
    assert deliver(client, "shopify", order).status_code == 200
    return client


def test_find_by_email_answers_the_customer_with_a_stable_opaque_ref(client, platform_store):
    found = client.post("/shops/shopify/customers/find", json={"email": " ann@example.COM "}, headers=BEARER)
    assert found.status_code == 200
    view = found.get_json()
    assert view["customer"] == "ann@example.com" and view["orders_total"] == 1
    ref = view["ref"]
    assert len(ref) >= 16 and "ann" not in ref.lower() and "@" not in ref
    again = client.post("/shops/shopify/customers/find", json={"email": "ann@example.com"}, headers=BEARER)
    assert again.get_json()["ref"] == ref
    by_ref = client.get(f"/shops/shopify/customers/{ref}", headers=BEARER)
    assert by_ref.status_code == 200 and by_ref.get_json()["customer"] == "ann@example.com"
    assert by_ref.get_json()["ref"] == ref
    with platform_store.read() as conn:
        assert conn.execute(select(customer_refs.c.ref)).scalars().all() == [ref]  # stored, not derived


def test_find_by_phone(app):
    client = app.test_client()
    sender = StandardSender(clock=NOW)
    delivery = sender.signed({"type": "order.upserted", "data": {
        "order_id": "P-1", "placed_at": "2026-05-30T10:00:00Z", "total": "12.00", "phone": "+33612345678"}},
        "order.upserted")
    assert client.post("/webhooks/standard", data=delivery.body, headers=delivery.headers).status_code == 200
    found = client.post("/shops/standard/customers/find", json={"phone": "+33 6 12 34 56 78"}, headers=BEARER)
    assert found.status_code == 200 and found.get_json()["customer"] == "+33612345678"
    assert client.get(f"/shops/standard/customers/{found.get_json()['ref']}", headers=BEARER).status_code == 200


def test_emails_in_urls_are_not_accepted_and_unknown_customers_get_no_ref(client, platform_store):
    assert client.get("/shops/shopify/customers/ann@example.com", headers=BEARER).status_code == 404
    missing = client.post("/shops/shopify/customers/find", json={"email": "nobody@example.com"}, headers=BEARER)
    assert missing.status_code == 404 and "nobody@example.com" not in missing.get_data(as_text=True)
    with platform_store.read() as conn:
        assert conn.execute(select(customer_refs.c.ref)).first() is None


@pytest.mark.parametrize("body", [None, {}, {"email": ""}, {"email": 42}, ["ann@example.com"]])
def test_find_needs_an_email_or_a_phone_in_a_json_object(client, body):
    answer = client.post("/shops/shopify/customers/find", json=body, headers=BEARER)
    assert answer.status_code == 400


def test_both_routes_need_the_admin_token(client):
    assert client.post("/shops/shopify/customers/find", json={"email": "ann@example.com"}).status_code == 401
    ref = client.post("/shops/shopify/customers/find", json={"email": "ann@example.com"}, headers=BEARER).get_json()["ref"]
    assert client.get(f"/shops/shopify/customers/{ref}").status_code == 401
    assert client.get(f"/shops/shopify/customers/{ref}", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_redacting_the_customer_forgets_the_ref(client):
    ref = client.post("/shops/shopify/customers/find", json={"email": "ann@example.com"}, headers=BEARER).get_json()["ref"]
    redact = ShopifySender().signed({"shop_id": 1, "shop_domain": "acme.myshopify.com",
                                     "customer": {"id": 9, "email": "ann@example.com"}, "orders_to_redact": []},
                                    "customers/redact")
    assert client.post("/webhooks/shopify", data=redact.body, headers=redact.headers).status_code == 200
    assert client.get(f"/shops/shopify/customers/{ref}", headers=BEARER).status_code == 404
