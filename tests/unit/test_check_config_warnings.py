"""`check-config` warns about weak webhook secrets and a weak admin token, and still passes."""

from __future__ import annotations

from connector.cli import main

CONFIG = """
database_url = "sqlite:///{db}"
admin_token = "{token}"
[[shops]]
id = "acme"
platform = "shopify"
webhook_secret = "{secret}"
  [[shops.destinations]]
  type = "log"
"""


def check(tmp_path, capsys, token: str, secret: str) -> tuple[int, str, str]:
    path = tmp_path / "stagesync.toml"
    path.write_text(CONFIG.format(db=tmp_path / "db.sqlite", token=token, secret=secret), encoding="utf-8")
    code = main(["--config", str(path), "check-config"])
    out, err = capsys.readouterr()
    return code, out, err


def test_short_and_repetitive_secrets_are_warned_about_without_failing(tmp_path, capsys):
    code, out, err = check(tmp_path, capsys, token="password", secret="abababababababababab")
    assert code == 0 and out.endswith(": OK, 1 shop(s): acme\n")
    assert err.splitlines() == [
        "stagesync: warning: admin_token is shorter than 16 characters",
        "stagesync: warning: shops[acme].webhook_secret has little variety (2 different characters; use a random value)",
    ]
    assert "password" not in err and "abababab" not in err


def test_strong_secrets_give_no_warning(tmp_path, capsys):
    code, _, err = check(tmp_path, capsys, token="Vq3-xT9_pL2mZr8KwY4n", secret="shpss_5f1c0e9a7b3d2c8e4f6a1b0d9c7e")
    assert code == 0 and err == ""
