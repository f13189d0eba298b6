"""connector.services.child_server: waiting for a server in a child process, and stopping it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from connector.services import child_server
from tests.e2e.server import free_port

# Answers 503 on /healthz for its first 0.3 s, then 200; ignores SIGTERM when told to.
HEALTH_SERVER = """
import http.server, signal, sys, time
started = time.monotonic()
if sys.argv[2] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if time.monotonic() - started > 0.3 else 503)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def start(mode: str = "polite", **kwargs) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", HEALTH_SERVER, str(port), mode], **kwargs)
    return process, f"http://127.0.0.1:{port}"


def test_waits_through_refusals_and_503s_until_200_then_stops_with_sigterm():
    process, url = start()
    try:
        child_server.wait_healthy(process, url, timeout=30)
        assert process.poll() is None
    finally:
        child_server.stop(process)
    assert process.returncode == -15  # SIGTERM was enough


def test_a_process_that_exits_is_not_ready_at_once():
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    started = time.monotonic()
    with pytest.raises(child_server.NotReady, match=r"exited \(code 3\)"):
        child_server.wait_healthy(process, f"http://127.0.0.1:{free_port()}", timeout=30)
    assert time.monotonic() - started < 10


def test_a_server_that_never_answers_is_not_ready_after_the_timeout():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(child_server.NotReady, match="did not answer within 1 s"):
            child_server.wait_healthy(process, f"http://127.0.0.1:{free_port()}", timeout=1)
    finally:
        child_server.stop(process)


def test_a_process_that_ignores_sigterm_is_killed_also_through_its_process_group():
    process, url = start("stubborn", start_new_session=True)
    child_server.wait_healthy(process, url, timeout=30)
    child_server.stop(process, timeout=0.5, group=True)
    assert process.returncode == -9
