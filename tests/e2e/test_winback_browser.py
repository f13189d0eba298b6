"""The win-back list in a real headless Chromium, against `stagesync serve`: the shop page's stage
link opens the list of its customers, most valuable first, and a row opens the customer page.

A shop with enough history for predictions (a seeded BG/NBD simulation up to today) is stored and
recomputed first; the server then shows it live. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from connector import config
from connector.storage.store import Store
from tests.e2e.server import Server
from tests.e2e.test_dashboard_browser import ARTIFACTS, chromium  # noqa: F401 (the browser fixture)
from tests.predicted_shop import TOKEN, TOML, seed



@pytest.fixture
def server(tmp_path, database_url):
    path = tmp_path / "stagesync.toml"
    path.write_text(TOML.format(url=database_url))
    settings = config.load(path, env={})
    store = Store.open(database_url)
    assert seed(store, settings.shops["acme"], datetime.now(timezone.utc)).predictions.status == "ok"
    store.close()
    with Server(path, tmp_path / "serve.log", "--no-worker") as running:
        yield running


def money(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


@pytest.mark.slow
def test_a_stage_link_opens_its_win_back_list_and_a_row_opens_the_customer(server, chromium, database_url):  # noqa: F811
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    assert page.goto(f"{server.url}/dashboard/acme").status == 401
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/dashboard/acme")
    assert re.fullmatch(r"[\d,]+\.\d\d EUR", page.locator("[data-value-at-risk]").inner_text())
    shown = int(page.locator('table[data-chart="count"] tr[data-model="rfm"][data-stage="about_to_lose"] '
                             'td[data-count]').inner_text().replace(",", ""))

    page.click('a[data-list="rfm:about_to_lose"]')
    page.wait_for_url(re.compile(r".*/dashboard/acme/customers\?model=rfm&value=about_to_lose$"))
    assert page.locator("[data-list-total]").inner_text() == f"{shown:,} customer(s)"
    rows = page.locator("tr[data-customer-row]")
    assert rows.count() == min(shown, 50)
    clv = [money(t) for t in page.locator("tr[data-customer-row] td[data-clv]").all_inner_texts()]
    assert clv == sorted(clv, reverse=True) and clv[0] > 0
    ARTIFACTS.mkdir(exist_ok=True)
    engine = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    page.screenshot(path=str(ARTIFACTS / f"winback-{engine}.png"), full_page=True)

    first = rows.first.locator("a")
    masked = first.inner_text()
    assert "***" in masked
    first.click()
    page.wait_for_url(re.compile(r".*/dashboard/acme/customer/[A-Za-z0-9_-]+$"))  # by ref: no email in the URL
    email = page.locator("h1").inner_text()
    assert email.startswith(masked.split("***")[0]) and "@" in email and email not in page.url
    assert page.locator('[data-field="rfm"]').get_attribute("data-stage") == "about_to_lose"
    assert money(page.locator('[data-field="predicted_clv_365d"]').inner_text()) == clv[0]
    page.screenshot(path=str(ARTIFACTS / f"winback-customer-{engine}.png"), full_page=True)
