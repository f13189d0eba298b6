"""`stagesync serve`: the Flask app under gunicorn, plus the sync worker as a child process.

The schema is migrated once, before any worker forks, in a child process of its own: the master
never imports the database driver, so that each worker imports it after gevent has patched the
standard library (psycopg picks its wait function when imported, in `psycopg.waiting`: a cooperative
one only when gevent has patched `select`). Each
gunicorn worker opens its own database connections on first use. The sync worker runs as a
separate process (not a thread of the master, which forks) and is stopped with the server.

Worker class: gevent, so that a slow client costs a greenlet and not a whole thread or worker.
Under gthread (one thread per connection until its request is read) ~40 clients trickling headers
or bodies froze `--workers 1`. Gunicorn's own advice: non-async workers need a proxy that buffers
slow clients, and "if you need to serve unbuffered internet traffic directly, pick an async worker"
(https://gunicorn.org/deploy, https://gunicorn.org/faq); Caddy streams request bodies through by
default, so it is no such proxy.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile

from gunicorn.app.base import BaseApplication

from connector.config import Settings
from connector.errors import StorageUnavailableError, UserError

# Connections one worker holds at once (gunicorn's `worker_connections`, its default): slow clients
# included, each a greenlet; past it, connections wait in the listen backlog.
WORKER_CONNECTIONS = 1000
KEEPALIVE_S = 5  # a request's head (and an idle kept-alive connection) must come within this long
REQUEST_TIMEOUT_S = 30  # a request's body and answer must be done within this long (gevent_worker.py)


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


def _migrate(url: str, answer) -> None:
    """In a child process: bring the schema up to date; send back None, or the error's one line."""
    from connector.errors import StagesyncError
    from connector.storage.store import Store

    try:
        Store.open(url).close()
        answer.send(None)
    except StagesyncError as exc:
        answer.send(str(exc))


def migrate_apart(url: str) -> None:
    """Migrate in a spawned child (see the module's docstring); its failure is raised here, one line."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_migrate, args=(url, send), name="stagesync-migrate")
    child.start()
    send.close()
    try:
        problem = receive.recv()
    except EOFError:  # the child ended without answering
        child.join()
        problem = f"the schema migration stopped (exit code {child.exitcode})"
    child.join()
    if problem:
        raise StorageUnavailableError(problem)


def port_in_use(host: str, port: int) -> bool:
    """Whether another process listens on host:port (bound as gunicorn binds, SO_REUSEADDR)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def serve(settings: Settings, config_path: str | None, host: str, port: int, workers: int | None,
          with_worker: bool, request_timeout: float = REQUEST_TIMEOUT_S) -> None:
    from connector.web.gevent_worker import with_request_timeout

    if port_in_use(host, port):  # rather than gunicorn's five retries and a dozen lines
        raise UserError(f"port {port} is in use: choose --port")
    migrate_apart(settings.database_url)  # once, before forking
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
        "worker_class": with_request_timeout(request_timeout),
        "worker_connections": WORKER_CONNECTIONS,
        "keepalive": KEEPALIVE_S,
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": None,
        "when_ready": start_sync_worker,
        "on_exit": stop_sync_worker,
    }
    _Gunicorn(settings, options).run()
