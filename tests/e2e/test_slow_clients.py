"""`stagesync serve --workers 1` keeps answering while ~40 clients trickle their headers and ~40
trickle their bodies (slowloris), with no token needed to open those connections: a signed webhook
and /healthz still answer promptly (docs/cli.md, 'serve')."""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.e2e.server import Server
from tests.fakes.senders import SENDERS, shops_toml

pytestmark = pytest.mark.slow

SLOW_CLIENTS = 40  # of each kind
# Not a benchmark: a server that gives a worker or thread to each slow client answers nothing until
# they give up (minutes); one that reads requests asynchronously answers in milliseconds.
PROMPTLY_S = 5.0


class Trickler:
    """Slow clients on loopback: each sends a request's start, then one byte a second, never finishing,
    for at most `seconds` (bounded: the test stops them)."""

    def __init__(self, port: int, count: int, start: bytes):
        self.port, self.count, self.start = port, count, start
        self.sockets: list[socket.socket] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)

    def open(self) -> "Trickler":
        for _ in range(self.count):
            conn = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            conn.sendall(self.start)
            self.sockets.append(conn)
        self.thread.start()
        return self

    def _trickle(self) -> None:
        for _ in range(60):  # at most a minute
            if self.stopped.wait(1.0):
                return
            for conn in self.sockets:
                try:
                    conn.sendall(b"x")
                except OSError:
                    pass  # the server gave up on this one: as it should

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        for conn in self.sockets:
            conn.close()


def test_slow_clients_do_not_freeze_a_single_worker(tmp_path, database_url):
    config = tmp_path / "stagesync.toml"
    config.write_text(shops_toml(database_url))
    delivery = SENDERS["shopify"]().order(7001, "ann.lee@example.com", "12.00",
                                          datetime.now(timezone.utc) - timedelta(days=1))
    with Server(config, tmp_path / "server.log", "--no-worker", "--workers", "1") as server:
        headers = Trickler(server.port, SLOW_CLIENTS, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").open()
        bodies = Trickler(server.port, SLOW_CLIENTS, b"POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\n"
                                                     b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{").open()
        try:
            started = time.monotonic()
            answer = requests.post(f"{server.url}/webhooks/shopify", data=delivery.body, headers=delivery.headers,
                                   timeout=30)
            health = requests.get(f"{server.url}/healthz", timeout=30)
            elapsed = time.monotonic() - started
        finally:
            headers.close()
            bodies.close()
    assert answer.status_code == 200 and answer.json() == {"status": "accepted"}
    assert health.status_code == 200
    assert elapsed < PROMPTLY_S


def _closed_by_the_server(conn: socket.socket, within_s: float) -> bool:
    """Trickle a byte every half second until the server closes the connection (or `within_s` passes)."""
    conn.settimeout(0.5)
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            conn.sendall(b"x")
            if conn.recv(1024) == b"":
                return True
        except socket.timeout:
            continue
        except OSError:  # reset or broken pipe: closed
            return True
    return False


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the HTTP server's behaviour, not the engine's
def test_a_request_never_finished_is_dropped_at_its_deadline(tmp_path, database_url):
    """A trickled head is dropped after the keep-alive time (5 s), a trickled body at --request-timeout."""
    config = tmp_path / "stagesync.toml"
    config.write_text(shops_toml(database_url))
    with Server(config, tmp_path / "server.log", "--no-worker", "--workers", "1", "--request-timeout", "2") as server:
        head = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        head.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        body = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        body.sendall(b"POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000\r\n\r\n{")
        try:
            body_dropped = _closed_by_the_server(body, within_s=15)
            head_dropped = _closed_by_the_server(head, within_s=15)
        finally:
            head.close()
            body.close()
        still_serving = requests.get(f"{server.url}/healthz", timeout=10).status_code
    assert body_dropped and head_dropped
    assert still_serving == 200
