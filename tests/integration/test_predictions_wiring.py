"""The `predicted` model wired in, on both engines: the fit stored at recompute, the fields as
destination properties, `stagesync predict`, `export`, `explain`, and what a webhook leaves alone."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from connector import config
from connector.cli import main
from connector.domain.predictions import predict_shop, shop_inputs_from_orders
from connector.services import evaluation
from connector.services.predicting import PREDICTED_FIELDS
from connector.services.properties import desired_properties
from connector.storage import predictions as queries
from connector.storage.schema import customers, outbox
from connector.storage.store import Store
from connector.storage.values import to_micros
from tests.conftest import NOW
from tests.predicted_shop import TOML, seed, simulated_orders, store_orders, table_contents, tiny_orders

PREDICT_KEYS = ["shop", "at", "status", "reason", "customers", "bgnbd", "gamma_gamma", "churn_bands"]
AT = "2026-06-01T12:00:00Z"  # NOW


@pytest.fixture
def config_file(tmp_path, database_url):
    path = tmp_path / "stagesync.toml"
    path.write_text(TOML.format(url=database_url))
    return path


@pytest.fixture
def settings(config_file):
    return config.load(config_file, env={})


@pytest.fixture
def shop(settings):
    return settings.shops["acme"]


@pytest.fixture
def db(settings):
    store = Store.open(settings.database_url)
    yield store
    store.close()


def run(config_file, capsys, *args) -> str:
    assert main(["--config", str(config_file), *args]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def no_nan_anywhere(text: str) -> bool:
    lowered = text.lower()
    return "nan" not in lowered and "inf" not in lowered


def test_recompute_stores_the_fit_with_its_date_and_parameters(db, shop):
    specs = simulated_orders(NOW)
    store_orders(db, "acme", specs)
    result = evaluation.recompute(db, shop, NOW)
    assert result.predictions.status == "ok"
    with db.read() as conn:
        fit = queries.load_fit(conn, "acme")
        stored = queries.stored_predictions(conn, "acme")
        orders = queries.valid_orders(conn, "acme", NOW)
    expected = predict_shop(shop_inputs_from_orders(orders.customer, orders.placed_us, orders.amount, to_micros(NOW)))
    assert (fit.d_now, fit.status, fit.reason, fit.computed_at) == ("2026-06-01", "ok", None, to_micros(NOW))
    assert fit.customers == len({email for _, email, _, _ in specs}) == len(stored)
    assert (fit.r, fit.alpha, fit.a, fit.b) == pytest.approx(
        (expected.bgnbd.r, expected.bgnbd.alpha, expected.bgnbd.a, expected.bgnbd.b), rel=1e-9)
    assert (fit.p, fit.q, fit.v) == pytest.approx((expected.gamma_gamma.p, expected.gamma_gamma.q,
                                                   expected.gamma_gamma.v), rel=1e-9)
    # every customer's fields, as a destination is sent them: numbers to 2 decimals
    i = orders.keys.index("buyer1@example.com")
    one = expected.customer(i)
    assert stored["buyer1@example.com"] == (
        round(one.p_alive, 2), round(one.churn_risk, 2), one.churn_band, round(one.expected_orders_90d, 2),
        round(one.expected_orders_365d, 2), round(one.predicted_clv_365d, 2),
        one.next_order_date.isoformat() if one.next_order_date else None)
    assert all(math.isfinite(v) for row in stored.values() for v in row if isinstance(v, float))
    # the destination mapping a predicted field is queued for them
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar() == fit.customers


def test_a_second_recompute_the_same_day_rewrites_and_queues_nothing(db, shop):
    seed(db, shop, NOW)
    again = evaluation.recompute(db, shop, NOW + timedelta(hours=1))
    assert (again.predictions.status, again.predictions.written, again.predictions.queued) == ("ok", 0, 0)


def test_the_predicted_properties_are_rounded_to_2_decimals(db, shop):
    seed(db, shop, NOW)
    key = "buyer1@example.com"
    with db.read() as conn:
        state = db.load_state(conn, "acme", key)
        predicted = queries.stored_predictions(conn, "acme", [key])[key]
    props = desired_properties(state, shop, shop.destinations[0], predicted)
    for name in ("alive", "risk", "next90", "next365", "clv"):
        assert len(props[name].split(".")[1]) == 2, props
    assert props["band"] in ("low", "medium", "high")
    assert props["risk"] == f"{predicted[1]:.2f}"


def test_a_tiny_shop_has_every_field_null_and_nothing_nan(db, shop, config_file, capsys):
    store_orders(db, "acme", tiny_orders(NOW))
    result = evaluation.recompute(db, shop, NOW)
    assert result.predictions.status == "insufficient_data"
    assert result.predictions.reason == "20 customers with orders, fewer than 500"
    with db.read() as conn:
        fit = queries.load_fit(conn, "acme")
        assert (fit.status, fit.r, fit.v) == ("insufficient_data", None, None)
        assert queries.stored_predictions(conn, "acme") == {}
        state = db.load_state(conn, "acme", "tiny0@example.com")
    props = desired_properties(state, shop, shop.destinations[0], None)
    assert state.rfm == "recent" and props["stage"] == "recent"  # the stages still work
    assert {props[n] for n in ("alive", "risk", "band", "next90", "next365", "clv", "next_order")} == {None}

    for at in ([], ["--at", AT]):
        rows = json.loads(run(config_file, capsys, "export", "--shop", "acme", "--format", "json", *at))
        assert len(rows) == 20 and all(row[f] is None for row in rows for f in PREDICTED_FIELDS)
        text = run(config_file, capsys, "export", "--shop", "acme", *at)
        header, first = text.splitlines()[:2]
        assert header.endswith(",".join(PREDICTED_FIELDS)) and first.endswith(",,,,,,")
        assert no_nan_anywhere(text)
        summary = json.loads(run(config_file, capsys, "predict", "--shop", "acme", "--json", *at))
        assert summary["status"] == "insufficient_data" and summary["customers"] == 20
        assert summary["bgnbd"] == dict.fromkeys("r alpha a b".split()) and summary["gamma_gamma"] == dict.fromkeys("pqv")
        explained = run(config_file, capsys, "explain", "--shop", "acme", "tiny0@example.com", *at)
        assert "insufficient_data: 20 customers with orders, fewer than 500" in explained and no_nan_anywhere(explained)


def test_predict_json_has_exactly_the_documented_shape(db, config_file, capsys):
    store_orders(db, "acme", simulated_orders(NOW))
    data = json.loads(run(config_file, capsys, "predict", "--shop", "acme", "--json", "--at", AT))
    assert list(data) == PREDICT_KEYS
    assert (data["shop"], data["at"], data["status"], data["reason"]) == ("acme", AT, "ok", None)
    assert list(data["bgnbd"]) == ["r", "alpha", "a", "b"] and list(data["gamma_gamma"]) == ["p", "q", "v"]
    assert all(isinstance(v, float) and math.isfinite(v) and v > 0
               for v in [*data["bgnbd"].values(), *data["gamma_gamma"].values()])
    assert list(data["churn_bands"]) == ["low", "medium", "high"]
    assert sum(data["churn_bands"].values()) == data["customers"] == 700


def test_predict_at_writes_nothing(db, shop, config_file, capsys):
    store_orders(db, "acme", simulated_orders(NOW))
    run(config_file, capsys, "predict", "--shop", "acme", "--at", AT)
    assert table_contents(db)["shop_predictions"] == []  # nothing, not even on an empty table
    evaluation.recompute(db, shop, NOW)
    before = table_contents(db)
    assert before["shop_predictions"] and before["customer_predictions"]
    for at in (AT, "2026-03-01"):
        out = run(config_file, capsys, "predict", "--shop", "acme", "--at", at)
        assert "BG/NBD" in out
    assert table_contents(db) == before


def test_predict_without_at_stores_the_fit(db, config_file, capsys):
    store_orders(db, "acme", simulated_orders(NOW))
    # the simulated history ends at NOW; "now" is later, so the shop has had no order for months
    data = json.loads(run(config_file, capsys, "predict", "--shop", "acme", "--json"))
    with db.read() as conn:
        fit = queries.load_fit(conn, "acme")
    assert (fit.status, fit.reason, fit.customers) == (data["status"], data["reason"], data["customers"])


def test_export_adds_the_predicted_fields_after_its_columns(db, shop, config_file, capsys):
    seed(db, shop, NOW)
    rows = json.loads(run(config_file, capsys, "export", "--shop", "acme", "--format", "json", "--at", AT))
    assert list(rows[0])[-7:] == list(PREDICTED_FIELDS) and list(rows[0])[0] == "email"
    one = next(r for r in rows if r["email"] == "buyer1@example.com")
    assert 0 <= one["p_alive"] <= 1 and one["churn_band"] in ("low", "medium", "high")
    assert one["churn_risk"] != round(one["churn_risk"], 2)  # unrounded
    text = run(config_file, capsys, "export", "--shop", "acme", "--at", AT)
    assert no_nan_anywhere(text) and text.splitlines()[0].endswith(",".join(PREDICTED_FIELDS))


def test_explain_shows_the_predictions_and_the_numbers_behind_them(db, shop, config_file, capsys):
    seed(db, shop, NOW)
    out = run(config_file, capsys, "explain", "--shop", "acme", "buyer1@example.com", "--at", AT)
    for text in ("predictions     ok (shop fit of 2026-06-01)", "inputs          x = ", "t_x = ", "T = ", "m = ",
                 "BG/NBD          r = ", "Gamma-Gamma     p = ", "p_alive", "churn_risk", "predicted CLV",
                 "next order date"):
        assert text in out, out


def test_a_webhook_leaves_the_predictions_to_the_daily_recompute(db, shop):
    seed(db, shop, NOW)
    key = "buyer1@example.com"
    with db.read() as conn:
        before = queries.stored_predictions(conn, "acme", [key])
        fit_before = tuple(queries.load_fit(conn, "acme"))
    later = NOW + timedelta(hours=2)
    store_orders(db, "acme", [("fresh", key, later - timedelta(minutes=5), Decimal("50"))])
    with db.transaction() as conn:
        assert evaluation.evaluate_customers(db, conn, shop, [key], later) == {key}  # the stages moved
    with db.read() as conn:
        assert queries.stored_predictions(conn, "acme", [key]) == before
        assert tuple(queries.load_fit(conn, "acme")) == fit_before
    evaluation.recompute(db, shop, later + timedelta(days=1))
    with db.read() as conn:
        assert queries.stored_predictions(conn, "acme", [key]) != before  # the next recompute updates them


TWO_DESTINATIONS = """
database_url = "{url}"
[[shops]]
id = "acme"
platform = "shopify"
webhook_secret = "s"
  [[shops.destinations]]
  type = "log"
  name = "bands"
  properties = {{ stage = "rfm", band = "churn_band" }}
  [[shops.destinations]]
  type = "log"
  name = "values"
  properties = {{ clv = "predicted_clv_365d" }}
  [[shops.destinations]]
  type = "log"
  name = "stages"
  properties = {{ stage = "rfm" }}
"""


def test_the_next_day_queues_each_destination_only_the_customers_whose_fields_it_writes_changed(database_url, db):
    shop = config.parse(TWO_DESTINATIONS.format(url=database_url), env={}).shops["acme"]
    seed(db, shop, NOW)
    with db.read() as conn:
        before = queries.stored_predictions(conn, "acme")
    with db.transaction() as conn:
        conn.execute(outbox.delete())
    later = NOW + timedelta(days=1)
    run = evaluation.recompute(db, shop, later).predictions
    with db.read() as conn:
        after = queries.stored_predictions(conn, "acme")
        queued = {name: set(conn.execute(select(outbox.c.customer_key).where(outbox.c.destination == name)).scalars())
                  for name in ("bands", "values", "stages")}
        restaged = set(conn.execute(select(customers.c.customer_key).where(  # stage states rewritten: every destination
            customers.c.evaluated_at == to_micros(later))).scalars())
    band_changed = {k for k in after if after[k][2] != before[k][2]}
    clv_changed = {k for k in after if after[k][5] != before[k][5]}
    assert 0 < len(band_changed) < len(clv_changed) <= run.written
    assert queued["stages"] == restaged
    assert queued["bands"] == band_changed | restaged and len(queued["bands"]) < len(queued["values"])
    assert queued["values"] == clv_changed | restaged
