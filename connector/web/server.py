"""`stagesync serve`: the Flask app under gunicorn, plus the sync worker as a child process.

The schema is migrated once in the master, before any worker forks; each gunicorn worker opens
its own database connections on first use. The sync worker runs as a separate process (not a
thread of the master, which forks) and is stopped with the server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

from gunicorn.app.base import BaseApplication

from connector.web.app import webhook_threads
from connector.config import Settings


class _Gunicorn(BaseApplication):
    def __init__(self, settings: Settings, options: dict):
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from connector.web.app import create_app

        return create_app(self.settings)


def serve(settings: Settings, config_path: str | None, host: str, port: int, workers: int | None,
          with_worker: bool) -> None:
    from connector.storage.store import Store

    Store.open(settings.database_url).close()  # migrate once, before forking
    worker: subprocess.Popen | None = None
    metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every gunicorn worker and the sync worker count into this directory; /metrics sums them.
        metrics_dir = tempfile.mkdtemp(prefix="stagesync-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir

    def start_sync_worker(_arbiter) -> None:
        nonlocal worker
        if with_worker:
            command = [sys.executable, "-m", "connector.cli"]
            if config_path:
                command += ["--config", config_path]
            worker = subprocess.Popen([*command, "worker"])

    def stop_sync_worker(_arbiter) -> None:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)

    options = {
        "bind": f"{host}:{port}",
        "workers": workers or os.cpu_count() or 1,
        "worker_class": "gthread",
        "threads": webhook_threads(settings.database_url),
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": None,
        "when_ready": start_sync_worker,
        "on_exit": stop_sync_worker,
    }
    _Gunicorn(settings, options).run()
