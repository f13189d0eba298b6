"""A wrong database URL is one clear line, from check-config first and from any command that opens
the database; `postgres://` and `postgresql://` both mean PostgreSQL through psycopg 3; the reason a
database is unavailable is given, never its password (docs/configuration.md, 'database_url')."""

from __future__ import annotations

import socket

import pytest

from connector import config
from connector.cli import main
from connector.storage.engine import normalise_url
from tests.unit.test_cli import VALID

SHOP = VALID.replace("sqlite:///{db}", "{url}")  # one shop, any database URL


def write(tmp_path, url: str):
    path = tmp_path / "stagesync.toml"
    path.write_text(SHOP.format(url=url), encoding="utf-8")
    return str(path)


@pytest.fixture
def refused_port():
    """A loopback port where nothing listens."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


@pytest.mark.parametrize("url, said", [
    ("sqlite:/stagesync.db", "three slashes"),
    ("sqlite:stagesync.db", "three slashes"),
    ("mysql://root:hunter2secret@db/shop", "mysql:// is not supported"),
    ("stagesync.db", "is not a URL"),
    ("postgresql://u:hunter2secret@db:five/x", "the port must be a number"),
])
def test_check_config_names_a_malformed_database_url_in_one_line(tmp_path, capsys, url, said):
    assert main(["--config", write(tmp_path, url), "check-config", "--offline"]) == 1
    err = capsys.readouterr().err
    assert "database_url: " in err and said in err
    assert "Traceback" not in err and "hunter2secret" not in err


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg"])
def test_postgres_and_postgresql_urls_are_accepted_and_mean_psycopg(scheme):
    settings = config.parse(SHOP.format(url=f"{scheme}://u:pw@db.example/shop"), env={})
    assert normalise_url(settings.database_url) == "postgresql+psycopg://u:pw@db.example/shop"


def test_check_config_tries_the_database_and_says_why_it_failed(tmp_path, capsys, refused_port):
    url = f"postgresql://stagesync:hunter2secret@127.0.0.1:{refused_port}/shop"
    assert main(["--config", write(tmp_path, url), "check-config"]) == 1
    err = capsys.readouterr().err
    assert f"cannot connect to postgresql 127.0.0.1:{refused_port}/shop" in err and "refused" in err.lower()
    assert "hunter2secret" not in err and "Traceback" not in err


def test_check_config_says_when_the_sqlite_folder_does_not_exist(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'missing' / 'stagesync.db'}"
    assert main(["--config", write(tmp_path, url), "check-config"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()


def test_an_unavailable_database_is_one_line_with_the_reason_and_no_password(tmp_path, capsys, refused_port):
    url = f"postgresql://stagesync:hunter2secret@127.0.0.1:{refused_port}/shop"
    assert main(["--config", write(tmp_path, url), "deadletters"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"stagesync: database unavailable (postgresql 127.0.0.1:{refused_port}/shop): ")
    assert "refused" in err.lower() and err.count("\n") == 1
    assert "hunter2secret" not in err and "Traceback" not in err
