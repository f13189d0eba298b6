"""A server in a child process: wait until it answers, stop it. Used by `stagesync demo`, the
end-to-end tests and the benchmarks, which each start `stagesync serve` (or gunicorn) themselves."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request


# The server is ours, on this machine: never ask it through an HTTP proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NotReady(Exception):
    """The server exited, or did not answer its health check in time."""


def wait_healthy(process: subprocess.Popen, url: str, timeout: float) -> None:
    """Return once `GET <url>/healthz` answers 200; raise NotReady when the process exits first or
    `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NotReady(f"the server exited (code {process.returncode})")
        try:
            with _DIRECT.open(f"{url}/healthz", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:  # not listening yet, still loading the app, or 503 (urllib's errors are OSErrors)
            pass
        time.sleep(0.1)
    raise NotReady(f"the server did not answer within {timeout:.0f} s")


def stop(process: subprocess.Popen, timeout: float = 20, group: bool = False) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds. With `group`, to the process's whole group
    (a server started with `start_new_session=True`: gunicorn's master and all its workers)."""
    if process.poll() is not None:
        return

    def send(sig: signal.Signals) -> None:
        if group:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)

    send(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        process.wait()
