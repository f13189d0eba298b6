"""`stagesync demo` as a user runs it, and its dashboard in a real headless Chromium.

The demo feeds its shop over HTTP; a browser then signs in, reads the stage counts off the page and
compares them with `stagesync stages --json` at the instant the page shows. A screenshot goes to
test-artifacts/. Chromium is Debian's (`tests/e2e/install_browser.sh`), driven by Playwright.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.server import STAGESYNC, free_port, run

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / "connector" / "examples" / "demo.toml"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ORDERS = 400
TOKEN = "demo-admin-token"


@pytest.fixture
def chromium():
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run tests/e2e/install_browser.sh (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Demo:
    """`stagesync demo` in a subprocess, in its own directory, until it says it is serving."""

    def __init__(self, workdir: Path, database_url: str):
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "STAGESYNC_DATABASE_URL": database_url}
        self.output = workdir / "demo.out"
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [*STAGESYNC, "--config", str(DEMO_CONFIG), "demo", "--port", str(self.port), "--orders", str(ORDERS)],
                cwd=workdir, stdout=out, stderr=subprocess.STDOUT, env=self.env)

    def printed(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_serving(self, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Serving until Ctrl-C." in self.printed():
                return self.printed()
            if self.process.poll() is not None:
                raise AssertionError(f"the demo exited ({self.process.returncode}):\n{self.printed()}")
            time.sleep(0.25)
        raise AssertionError(f"the demo did not finish its feed in {timeout} s:\n{self.printed()}")

    def stages(self, at: str) -> dict:
        result = subprocess.run([*STAGESYNC, "--config", str(DEMO_CONFIG), "stages", "--shop", "demo", "--json",
                                 "--at", at], cwd=self.workdir, env=self.env, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # what Ctrl-C does
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def demo(tmp_path, database_url):
    running = Demo(tmp_path, database_url)
    yield running
    running.stop()


def shown_counts(page) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for row in page.locator('table[data-chart="count"] tr[data-stage]').all():
        text = row.locator("td[data-count]").inner_text()
        counts.setdefault(row.get_attribute("data-model"), {})[row.get_attribute("data-stage")] = int(
            text.replace(",", ""))
    return counts


@pytest.mark.slow
def test_the_demo_dashboard_shows_what_stagesync_stages_says(demo, chromium, database_url):
    printed = demo.wait_serving()
    assert f"dashboard   {demo.url}/dashboard/demo" in printed and f"admin token {TOKEN}" in printed

    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    answer = page.goto(f"{demo.url}/dashboard/demo")
    assert answer.status == 401 and page.locator("input[name=token]").is_visible()
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{demo.url}/dashboard/demo")

    at = page.locator("time#at").get_attribute("datetime")
    expected = demo.stages(at)
    assert shown_counts(page) == {"rfm": expected["rfm"], "phases": expected["phases"]}
    assert sum(expected["rfm"].values()) > 50
    assert int(page.locator("[data-total-customers]").inner_text().replace(",", "")) == sum(expected["rfm"].values())
    ARTIFACTS.mkdir(exist_ok=True)
    engine = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{engine}.png"), full_page=True)

    rows = json.loads(run(DEMO_CONFIG, "export", "--shop", "demo", "--format", "json", "--at", at,
                          env={"STAGESYNC_DATABASE_URL": demo.env["STAGESYNC_DATABASE_URL"]}).stdout)
    customer = next(r for r in rows if r["email"] and r["rfm"] == "champion")
    page.fill("input[name=q]", customer["email"])
    page.click("header button[type=submit]:has-text('Find')")
    page.wait_for_url(re.compile(r".*/dashboard/demo/customer/[A-Za-z0-9_-]+$"))  # by ref: no email in the URL
    assert customer["email"] not in page.url
    assert page.locator('[data-field="rfm"]').get_attribute("data-stage") == "champion"
    assert page.locator('[data-field="orders_365d"]').inner_text() == str(customer["orders_365d"])
    page.screenshot(path=str(ARTIFACTS / f"customer-{engine}.png"), full_page=True)

    # /metrics adds up every server process (multiprocess mode): each final 200 answer counted once.
    answered = sum(int(n.replace(",", "")) for n in re.findall(r"([\d,]+) 200 \w+", printed))
    samples = [s for family in text_string_to_metric_families(requests.get(f"{demo.url}/metrics", timeout=10).text)
               for s in family.samples]
    assert sum(s.value for s in samples if s.name == "stagesync_webhooks_total" and s.labels["code"] == "200") \
        == answered
    placed = int(re.search(r"\(([\d,]+) orders over two years\)", printed).group(1).replace(",", ""))
    assert ORDERS * 0.95 < placed <= ORDERS  # the generator's orders after now are not sent
    assert next(s.value for s in samples if s.name == "stagesync_orders_stored" and s.labels["shop"] == "demo") \
        == placed

    assert demo.stop() == 0
    log = (demo.workdir / "stagesync-demo.log").read_text(errors="replace")
    assert "answer=200" in log and "@example.com" not in log  # emails are masked on every line
