"""Privacy webhooks. `customers/redact` forgets the customer by every identity it names (email,
phone, the platform's customer id, the listed orders) in every table keyed by the customer. Every
`customers/data_request` is recorded, whatever it names; the store owner lists them (`stagesync
requests`, the dashboard card) and exports the customer's data as JSON."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from connector.cli import main
from connector.domain.orders import Order
from connector.services import evaluation
from connector.storage import schema
from connector.storage.predictions import replace_predictions
from connector.storage.schema import data_requests
from tests.conftest import NOW
from tests.fakes.senders import SENDERS, ShopifySender, fixture
from tests.http_client import BEARER, deliver

JANE, PHONE, OLD_JANE, CUSTOMER_ID = "jane.doe@example.com", "+33612345678", "old.jane@example.com", "7294715560093"


def post(client, payload: dict, topic: str = "customers/data_request"):
    return deliver(client, "shopify", ShopifySender(clock=NOW).signed(payload, topic))


def nameless_request() -> dict:
    payload = fixture("shopify", "customers/data_request")
    payload["customer"] = {"id": 7294715560093}
    payload["data_request"] = {"id": 10001}
    return payload


def cli(config_file, capsys, *args) -> tuple[int, str, str]:
    code = main(["--config", str(config_file), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_request_naming_no_email_or_phone_is_recorded_and_listed(client, platform_store, platform_config_file,
                                                                    capsys):
    answer = post(client, nameless_request())
    assert answer.status_code == 200 and answer.get_json()["status"] == "accepted"
    with platform_store.read() as conn:
        assert conn.execute(select(func.count()).select_from(data_requests)).scalar_one() == 1
    code, out, _ = cli(platform_config_file, capsys, "requests", "--shop", "shopify", "--json")
    listed = json.loads(out)
    assert code == 0 and len(listed) == 1
    assert {k: listed[0][k] for k in ("request_id", "email", "phone", "customer_id", "orders_requested")} == {
        "request_id": "10001", "email": None, "phone": None, "customer_id": "7294715560093",
        "orders_requested": ["5873412096157", "5873413243037"]}


def test_the_export_gives_the_customers_orders_stages_and_history(client, platform_config_file, capsys):
    sender = ShopifySender(clock=NOW)
    for delivery in (sender.order(5873412096157, "jane.doe@example.com", "89.80", NOW - timedelta(days=3)),
                     sender.order(77, "bob@example.com", "10.00", NOW - timedelta(days=2))):
        assert client.post("/webhooks/shopify", data=delivery.body, headers=delivery.headers).status_code == 200
    assert post(client, fixture("shopify", "customers/data_request")).status_code == 200
    code, out, _ = cli(platform_config_file, capsys, "requests", "--shop", "shopify")
    assert code == 0 and "ja***@ex***.com" in out and "jane.doe@example.com" not in out
    request_row = json.loads(cli(platform_config_file, capsys, "requests", "--shop", "shopify", "--json")[1])[0]["id"]

    code, out, _ = cli(platform_config_file, capsys, "requests", "--shop", "shopify", "--export", str(request_row))
    exported = json.loads(out)
    assert code == 0 and exported["request"]["request_id"] == "9999"
    assert [c["customer"] for c in exported["customers"]] == ["jane.doe@example.com"]  # Bob is not in it
    jane = exported["customers"][0]
    assert [o["order_id"] for o in jane["orders"]] == ["5873412096157"] and Decimal(jane["orders"][0]["total"]) == Decimal("89.80")
    assert {"rfm", "phases"} <= set(jane)  # the stages now (the command reads the clock)
    assert {(h["model"], h["to"]) for h in jane["history"]} == {("rfm", "recent"), ("phases", "conversion")}


def test_exporting_an_unknown_request_is_one_line_and_exit_1(platform_config_file, platform_store, capsys):
    code, out, err = cli(platform_config_file, capsys, "requests", "--shop", "shopify", "--export", "42")
    assert code == 1 and out == "" and err.startswith("stagesync: no data request 42 in shop shopify")


def test_the_dashboard_lists_the_requests_and_downloads_the_answer(client):
    post(client, nameless_request())
    post(client, fixture("shopify", "customers/data_request"))
    page = client.get("/dashboard/shopify", headers=BEARER).get_data(as_text=True)
    assert 'id="data-requests"' in page and "2 received" in page
    assert "ja***@ex***.com" in page and "jane.doe@example.com" not in page
    assert page.count("<tr data-request=") == 2
    rows = [int(part.split('"')[0]) for part in page.split('<tr data-request="')[1:]]
    download = client.get(f"/dashboard/shopify/requests/{rows[-1]}.json", headers=BEARER)
    assert download.status_code == 200 and download.mimetype == "application/json"
    assert download.get_json()["request"]["customer_id"] == "7294715560093"
    assert client.get("/dashboard/shopify/requests/999.json", headers=BEARER).status_code == 404
    assert client.get(f"/dashboard/shopify/requests/{rows[0]}.json").status_code == 401


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


def test_customers_redact_forgets_the_email_the_phone_and_the_platform_customer(platform_shops, platform_store, client):
    seed(platform_store, platform_shops)
    delivery = ShopifySender(clock=NOW).signed(fixture("shopify", "customers/redact"), "customers/redact")
    answer = client.post("/webhooks/shopify", data=delivery.body, headers=delivery.headers)
    assert answer.status_code == 200 and answer.get_json()["status"] == "accepted"

    kept = {"bob@example.com", "carl@example.com"}
    with platform_store.read() as conn:
        orders = {row.order_id: row.phone for row in conn.execute(select(
            schema.orders.c.order_id, schema.orders.c.phone).where(schema.orders.c.shop_id == "shopify"))}
    assert orders == {"4": None, "5": None}  # Bob's order keeps counting, without Jane's phone
    assert keys_in(platform_store, schema.customers) == kept
    assert keys_in(platform_store, schema.stage_changes) == kept
    assert keys_in(platform_store, schema.customer_predictions) == {"bob@example.com"}
    assert keys_in(platform_store, schema.data_requests) == set()
    # every forgotten key is queued once more, so that the worker clears what it wrote, then forgets it
    assert {JANE, PHONE, OLD_JANE} <= keys_in(platform_store, schema.outbox)
    assert keys_in(platform_store, schema.customers, "standard") == {PHONE}  # another shop's customer is its own


def test_a_standard_webhooks_redaction_by_customer_id_alone_forgets_the_customer(platform_shops, platform_store,
                                                                                 client):
    with platform_store.transaction() as conn:
        platform_store.upsert_orders(conn, [order("1", JANE, customer_id="c-42", shop_id="standard"),
                                       order("2", "bob@example.com", shop_id="standard")])
    evaluation.recompute(platform_store, platform_shops.shops["standard"], NOW)
    sender = SENDERS["standard"](clock=NOW)
    payload = {"type": "customer.redacted", "timestamp": "2026-06-01T12:00:00Z", "data": {"customer_id": "c-42"}}
    delivery = sender.signed(payload, "customer.redacted")
    assert client.post("/webhooks/standard", data=delivery.body, headers=delivery.headers).status_code == 200
    assert keys_in(platform_store, schema.customers, "standard") == {"bob@example.com"}
    assert keys_in(platform_store, schema.orders, "standard") == {"bob@example.com"}
