"""The `stagesync` command line itself: help everywhere, --version, usage errors exit 2, user
errors one line on stderr and exit 1, an interrupt exit 130, $STAGESYNC_CONFIG."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from connector.cli import cli, main

COMMANDS = ["serve", "worker", "sync", "recompute", "import", "backfill", "poll", "stages", "explain", "export",
            "predict", "webhooks", "deadletters", "requests", "check-config", "demo"]

VALID = """
database_url = "sqlite:///{db}"
[[shops]]
id = "acme"
platform = "shopify"
webhook_secret = "shpss_test_secret"
  [[shops.destinations]]
  type = "log"
"""


def test_the_commands_are_listed_in_the_documented_order(capsys):
    assert list(cli.list_commands(None)) == COMMANDS
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out.split("Commands:")[1]
    assert [line.split()[0] for line in listed.splitlines() if line.startswith("  ") and line[2] != " "] == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_answers_help_and_exits_0(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: stagesync {command} ")


def test_version_is_the_installed_package_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"stagesync {version('stagesync')}\n"


@pytest.mark.parametrize("argv", [
    [],
    ["frobnicate"],
    ["stages"],  # --shop is required
    ["export", "--shop", "acme", "--format", "xml"],
    ["serve", "--port", "eighty"],
    ["import", "--shop", "acme"],  # FILE.csv missing
    ["check-config", "--config", "x.toml"],  # --config goes before the command
])
def test_a_usage_error_exits_2_with_the_usage_on_stderr(argv, capsys):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Usage: stagesync" in err and "Traceback" not in err


def test_the_configuration_comes_from_stagesync_config_when_no_flag_is_given(tmp_path, monkeypatch, capsys):
    path = tmp_path / "from-env.toml"
    path.write_text(VALID.format(db=tmp_path / "db.sqlite"), encoding="utf-8")
    monkeypatch.setenv("STAGESYNC_CONFIG", str(path))
    assert main(["check-config"]) == 0
    assert capsys.readouterr().out == f"{path}: OK, 1 shop(s): acme\n"


def test_a_missing_configuration_is_one_user_error_and_exit_1(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "absent.toml"), "check-config"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("stagesync: invalid configuration:") and "absent.toml" in err
    assert "Traceback" not in err


def test_an_unknown_shop_lists_the_configured_ones_and_exits_1(tmp_path, capsys):
    path = tmp_path / "stagesync.toml"
    path.write_text(VALID.format(db=tmp_path / "db.sqlite"), encoding="utf-8")
    assert main(["--config", str(path), "deadletters", "--shop", "nope"]) == 1
    assert capsys.readouterr().err == "stagesync: unknown shop 'nope' (configured: acme)\n"


def test_explain_shows_the_address_the_user_typed_when_no_customer_has_it(tmp_path, capsys):
    path = tmp_path / "stagesync.toml"
    path.write_text(VALID.format(db=tmp_path / "db.sqlite"), encoding="utf-8")
    assert main(["--config", str(path), "explain", "--shop", "acme", "Ann.Typo@Example.com"]) == 1
    assert capsys.readouterr().err == "stagesync: no customer 'Ann.Typo@Example.com' in shop acme\n"


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path, capsys):
    import socket

    path = tmp_path / "stagesync.toml"
    path.write_text(VALID.format(db=tmp_path / "db.sqlite"), encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["--config", str(path), "serve", "--port", str(port), "--no-worker"]) == 1
    assert capsys.readouterr().err == f"stagesync: port {port} is in use: choose --port\n"


def test_an_interrupt_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys):
    path = tmp_path / "stagesync.toml"
    path.write_text(VALID.format(db=tmp_path / "db.sqlite"), encoding="utf-8")

    def interrupted(settings):
        raise KeyboardInterrupt

    monkeypatch.setattr("connector.cli.runs.config_problems", interrupted)
    assert main(["--config", str(path), "check-config"]) == 130
    assert capsys.readouterr().err == "stagesync: interrupted\n"
