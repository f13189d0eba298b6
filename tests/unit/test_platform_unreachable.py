"""`backfill` and `poll` without a network: one line that names the host and the reason, at once
when the name does not resolve, and a warning naming them before each retry otherwise
(docs/cli.md, 'backfill')."""

from __future__ import annotations

import logging
import socket

import pytest

from adapters.platforms.api import PlatformHttp
from connector.cli import main
from connector.config import ShopSettings
from connector.errors import RetriablePlatformError
from tests.fakes.platforms import NoSleep

CONFIG = """
database_url = "sqlite:///{db}"
[[shops]]
id = "woo"
platform = "woocommerce"
webhook_secret = "wc-webhook-secret-1234"
currency = "EUR"
api = {{ base_url = "https://shop.example", consumer_key = "ck_1234567890abcdef", consumer_secret = "cs_abcdef1234567890" }}
  [[shops.destinations]]
  type = "log"
"""


@pytest.fixture
def no_dns(monkeypatch):
    """A machine without a network: every name lookup fails as getaddrinfo fails then."""
    def fail(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)


@pytest.mark.parametrize("command", [["backfill", "--shop", "woo"], ["poll", "--shop", "woo"]])
def test_without_a_network_backfill_and_poll_fail_at_once_naming_the_host(tmp_path, capsys, no_dns, command):
    path = tmp_path / "stagesync.toml"
    path.write_text(CONFIG.format(db=tmp_path / "db.sqlite"), encoding="utf-8")
    assert main(["--config", str(path), *command]) == 1
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if "cannot reach" in line)
    assert "shop woo (woocommerce): cannot reach shop.example: " in line and "Name or service not known" in line
    assert "retrying" not in err and "Traceback" not in err and "cs_abcdef1234567890" not in err


def test_a_refused_connection_is_retried_with_a_warning_naming_the_host_and_the_reason(caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    shop = ShopSettings(id="woo", platform="woocommerce", webhook_secret="x", currency="EUR")
    sleeps = NoSleep()
    http = PlatformHttp(shop, "woocommerce", sleep=sleeps, attempts=3)
    with caplog.at_level(logging.WARNING, logger="stagesync.platforms"), \
            pytest.raises(RetriablePlatformError, match=rf"cannot reach 127\.0\.0\.1:{port}: .*refused"):
        http.request("GET", f"http://127.0.0.1:{port}/wp-json/wc/v3/orders")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all(f"cannot reach 127.0.0.1:{port}" in w for w in warnings)
