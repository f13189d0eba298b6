"""Run `stagesync` commands and `stagesync serve` as real processes, as a user would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from connector.services import child_server

STAGESYNC = [sys.executable, "-m", "connector.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(config: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([*STAGESYNC, "--config", str(config), *args], capture_output=True, text=True,
                            timeout=600, env={**os.environ, **(env or {})})
    if check:
        assert result.returncode == 0, result.stderr
    return result


class Server:
    """`stagesync serve` in a subprocess; logs go to a file the test can read."""

    def __init__(self, config: Path, log_path: Path, *extra: str, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [*STAGESYNC, "--config", str(config), "serve", "--port", str(self.port), *extra],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})

    def wait_ready(self, timeout: float = 60) -> "Server":
        try:
            child_server.wait_healthy(self.process, self.url, timeout)
        except child_server.NotReady as exc:
            raise RuntimeError(f"{exc}: {self.logs()}") from None
        return self

    def logs(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        child_server.stop(self.process, timeout=15)
        self._log.close()

    def __enter__(self) -> "Server":
        try:
            return self.wait_ready()
        except BaseException:
            self.stop()  # never leave a half-started server behind
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
