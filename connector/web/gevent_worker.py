"""The gunicorn worker of `stagesync serve`: gunicorn's gevent worker, with a deadline on each request.

gunicorn's gevent worker already bounds the wait for a request's head: its `keepalive` timeout
wraps each read of a request line and headers (`timeout_ctx` in gunicorn/workers/ggevent.py, used
by the keep-alive loop of gunicorn/workers/base_async.py), so a client trickling its headers is
dropped after `keepalive` seconds. Nothing bounds the body: a client announcing 100 kB and sending
a byte a second kept its greenlet for as long as it liked. Here a request's body and answer must
be done within `request_timeout_s`, else the connection is closed.
"""

from __future__ import annotations

import gevent
from gunicorn.http.errors import NoMoreData
from gunicorn.workers.ggevent import GeventWorker


class DeadlineGeventWorker(GeventWorker):
    request_timeout_s: float = 30.0  # `stagesync serve --request-timeout` sets it (connector/web/server.py)

    def handle_request(self, listener_name, req, sock, addr):
        with gevent.Timeout(self.request_timeout_s, False):  # False: the deadline ends the block silently
            return super().handle_request(listener_name, req, sock, addr)
        # The deadline passed: gunicorn closes the connection quietly on NoMoreData (a client that stopped).
        raise NoMoreData(f"request not done within {self.request_timeout_s:g} s")


def with_request_timeout(seconds: float) -> type[DeadlineGeventWorker]:
    """The worker class gunicorn is given (a class, not a dotted name: it carries the deadline)."""
    return type("StagesyncGeventWorker", (DeadlineGeventWorker,), {"request_timeout_s": float(seconds)})
