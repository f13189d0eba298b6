"""The dashboard's win-back list through Flask's test client, on both engines: each stage, phase and
churn band of the shop page links to its customers, sorted by predicted CLV, paginated, as CSV,
each row opening the customer page; the "value at risk" figure; `?at=` replays read-only."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest

from connector import config
from connector.services.evaluation import recompute, snapshot
from connector.errors import mask
from connector.services.predicting import predictions_at
from connector.services.reports import stage_counts
from connector.storage.store import Store
from connector.web.app import create_app
from connector.web.dashboard import LIST_PAGE_SIZE
from tests.conftest import NOW, SLOW_ON_POSTGRESQL
from tests.predicted_shop import TOML, seed, store_orders, table_contents, tiny_orders

BEARER = {"Authorization": "Bearer test-admin-token"}
LIST_LINK = re.compile(r'<a href="([^"]+)" data-list="([\w]+):([\w]+)"')
ROW = re.compile(r'<tr data-customer-row>.*?<td class="num muted">(\d+)</td>.*?<a href="([^"]+)">([^<]+)</a>.*?'
                 r'data-total-spent>([^<]+)<.*?data-clv>([^<]+)<', re.S)


@pytest.fixture
def settings(database_url):
    return config.parse(TOML.format(url=database_url), env={})


@pytest.fixture
def db(settings):
    store = Store.open(settings.database_url)
    yield store
    store.close()


def client_for(settings, db):
    return create_app(settings, store=db, clock=lambda: NOW).test_client()


@pytest.fixture
def client(settings, db):
    seed(db, settings.shops["acme"], NOW)
    return client_for(settings, db)


def page(client, url: str) -> str:
    answer = client.get(url, headers=BEARER)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    return answer.get_data(as_text=True)


def rows_of(html: str) -> list[tuple[int, str, str, Decimal, Decimal | None]]:
    return [(int(n), unescape(href), masked, Decimal(spent.replace(",", "")),
             None if clv == "-" else Decimal(clv.replace(",", ""))) for n, href, masked, spent, clv in ROW.findall(html)]


# the list queries on PostgreSQL: the sorting, paging, CSV and value-at-risk tests below
@pytest.mark.parametrize("database_url", SLOW_ON_POSTGRESQL, indirect=True)
def test_every_stage_phase_and_churn_band_links_to_its_customers(client, settings, db):
    html = page(client, "/dashboard/acme")
    links = {(model, value): unescape(href) for href, model, value in LIST_LINK.findall(html)}
    counts = stage_counts(snapshot(db, settings.shops["acme"], NOW))
    bands = predictions_at(db, settings.shops["acme"], NOW).churn_bands()
    expected = {("rfm", s) for s in counts["rfm"]} | {("phases", p) for p in counts["phases"]} | {
        ("churn_band", b) for b in bands}
    assert set(links) == expected
    for (model, value), href in links.items():
        total = counts[model][value] if model != "churn_band" else bands[value]
        shown = page(client, href)
        assert re.search(r"data-list-total>([\d,]+) customer", shown).group(1).replace(",", "") == str(total)


def test_the_list_is_sorted_by_predicted_clv_and_paginated(client):
    first = page(client, "/dashboard/acme/customers?model=churn_band&value=high")
    total = int(re.search(r"data-list-total>([\d,]+)", first).group(1).replace(",", ""))
    assert total > 2 * LIST_PAGE_SIZE
    rows = rows_of(first)
    assert [n for n, *_ in rows] == list(range(1, LIST_PAGE_SIZE + 1))
    assert 'rel="next"' in first and 'rel="prev"' not in first
    pages = [rows]
    for number in range(2, -(-total // LIST_PAGE_SIZE) + 1):
        html = page(client, f"/dashboard/acme/customers?model=churn_band&value=high&page={number}")
        assert f"page {number} of" in html and 'rel="prev"' in html
        pages.append(rows_of(html))
    every = [row for p in pages for row in p]
    assert len(every) == total and len({href for _, href, *_ in every}) == total
    clv = [row[4] for row in every]
    assert None not in clv and clv == sorted(clv, reverse=True)
    beyond = page(client, "/dashboard/acme/customers?model=churn_band&value=high&page=999")
    assert rows_of(beyond) == pages[-1]  # clamped to the last page


def test_the_csv_download_has_every_row_in_the_same_order_with_whole_emails(client):
    answer = client.get("/dashboard/acme/customers?model=rfm&value=about_to_lose&format=csv", headers=BEARER)
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="acme-rfm-about_to_lose-20260601.csv"'
    text = answer.get_data(as_text=True)
    records = list(csv.DictReader(io.StringIO(text)))
    assert list(records[0]) == ["email", "phone", "rfm", "phases", "last_order_date", "orders_total", "total_spent",
                                "churn_risk", "churn_band", "predicted_clv_365d", "next_order_date"]
    assert {r["rfm"] for r in records} == {"about_to_lose"}
    first_page = rows_of(page(client, "/dashboard/acme/customers?model=rfm&value=about_to_lose"))
    assert [(mask(r["email"]), Decimal(r["total_spent"])) for r in records[:len(first_page)]] == [
        (masked, spent) for _, _, masked, spent, _ in first_page]
    assert [r["email"] for r in records[:3]] == [email_on(client, href) for _, href, *_ in first_page[:3]]
    assert "nan" not in text.lower() and "inf" not in text.lower()


def email_on(client, href: str) -> str:
    """The whole email a customer page (reached by its ref) shows as its title."""
    return re.search(r"<h1>([^<]+)</h1>", page(client, href)).group(1)


def test_each_row_opens_the_customer_page_by_an_opaque_ref_with_the_email_masked_in_the_list(client):
    html = page(client, "/dashboard/acme/customers?model=rfm&value=at_risk")
    rows = rows_of(html)
    assert rows
    again = rows_of(page(client, "/dashboard/acme/customers?model=rfm&value=at_risk"))
    assert [href for _, href, *_ in again] == [href for _, href, *_ in rows]  # a ref is stable
    for _, href, masked, _, _ in rows[:5]:
        email = email_on(client, href)
        assert "@" not in href and email.split("@")[0] not in href
        assert masked == "bu***@ex***.com" and email not in html
        customer = page(client, href)
        assert f"<h1>{email}</h1>" in customer and 'id="predictions"' in customer
        assert 'data-field="p_alive"' in customer and "shop's parameters" in customer


def test_value_at_risk_is_the_predicted_clv_of_cant_lose_at_risk_and_about_to_lose(client, settings, db):
    shop = settings.shops["acme"]
    snap = snapshot(db, shop, NOW)
    predictions = predictions_at(db, shop, NOW)
    expected = sum(predictions.customer(key).predicted_clv_365d for key, e in snap.evaluations.items()
                   if e.rfm in ("cant_lose", "at_risk", "about_to_lose"))
    assert expected > 0
    shown = re.search(r"data-value-at-risk>([^<]+)<", page(client, "/dashboard/acme")).group(1)
    assert shown == f"{expected:,.2f} EUR"


def test_at_replays_the_list_read_only_and_keeps_the_instant_in_its_links(client, db):
    before = table_contents(db)
    html = page(client, "/dashboard/acme/customers?model=rfm&value=about_to_lose&at=2026-03-01")
    assert "(replayed)" in html and 'datetime="2026-03-01T00:00:00Z"' in html
    assert all("at=2026-03-01" in href for _, href, *_ in rows_of(html))
    shop_page = page(client, "/dashboard/acme?at=2026-03-01")
    assert all("at=2026-03-01" in unescape(href) for href, *_ in LIST_LINK.findall(shop_page))
    page(client, "/dashboard/acme/customers?model=churn_band&value=low&at=2026-03-01&format=csv")
    assert table_contents(db) == before


def test_without_predictions_the_list_is_sorted_by_total_spent(settings, db):
    store_orders(db, "acme", tiny_orders(NOW) + [("big", "whale@example.com", NOW - timedelta(days=20), Decimal("99"))])
    recompute(db, settings.shops["acme"], NOW)
    client = client_for(settings, db)
    shop_page = page(client, "/dashboard/acme")
    assert "data-value-at-risk>-<" in shop_page and 'data-prediction-status="insufficient_data"' in shop_page
    html = page(client, "/dashboard/acme/customers?model=phases&value=conversion")
    rows = rows_of(html)
    assert email_on(client, rows[0][1]) == "whale@example.com" and rows[0][3] == Decimal("99")
    assert {row[4] for row in rows} == {None} and "by total spent instead" in html


def test_a_list_of_nothing_known_is_a_400(client):
    for query in ("model=rfm&value=nope", "model=churn_band&value=huge", "model=x&value=champion", ""):
        assert client.get(f"/dashboard/acme/customers?{query}", headers=BEARER).status_code == 400
    assert client.get("/dashboard/acme/customers?model=rfm&value=champion").status_code == 401
