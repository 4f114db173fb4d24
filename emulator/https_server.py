"""The emulator's HTTPS listener: cheroot's threaded WSGI server, with HTTP/1.1 keep-alive.

Azure's front doors (ARM, Graph, an AKS API server) keep a client's TLS connection open across
requests, and the SDKs reuse it. Werkzeug's development server closes every connection after one
response, so every request paid a TCP and TLS handshake on both sides: at a fleet's size, most of
the emulator's and the product's CPU. Cheroot (CherryPy's server) keeps connections alive, parks
idle ones in a selector rather than a thread, and serves from a thread pool.
"""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Any

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from cheroot.workers.threadpool import ThreadPool

log = logging.getLogger(__name__)

# How the WSGI app reaches the connection's socket (to drop it without an answer).
SOCKET_KEY = "emulator.socket"


class _DeferredHandshakeAdapter(BuiltinSSLAdapter):
    """TLS whose handshake runs in the request's thread, on its first read.

    Cheroot wraps accepted sockets in its one accepting thread; a fleet's hundreds of new
    connections at once must not queue behind each other's handshakes (or behind a client that
    connects and never speaks).
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        # The base class loads a certificate from files; the emulator's is in memory.
        self._context = context
        self.certificate = self.private_key = self.certificate_chain = None

    def wrap(self, sock: Any) -> tuple[Any, dict[str, str]]:
        wrapped = self._context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return wrapped, {"wsgi.url_scheme": "https", "HTTPS": "on"}


class _Gateway(wsgi.Gateway_10):
    def get_environ(self) -> dict[str, Any]:  # type: ignore[override]
        environ: dict[str, Any] = super().get_environ()  # type: ignore[no-untyped-call]
        environ[SOCKET_KEY] = self.req.conn.socket
        return environ


class _GrowingPool(ThreadPool):
    """A thread per request in progress: a request waiting out injected latency holds one.

    Cheroot's pool has a fixed size; a test's emulator needs a few threads, a fleet's hundreds.
    """

    def put(self, obj: Any) -> None:
        # Called from the one thread that accepts and polls connections, so no lock.
        threads: list[Any] = self._threads  # type: ignore[attr-defined]
        if self.idle <= self._queue.qsize() and len(threads) < self.max:  # type: ignore[attr-defined]
            threads.append(self._spawn_worker())  # type: ignore[attr-defined]
        super().put(obj)


class _Server(wsgi.Server):
    # Every client may keep its connections (the default keeps ten in all).
    keep_alive_conn_limit = 100_000
    # The selector's timeout: stop() waits up to one, once per test.
    expiration_interval = 0.02

    def __init__(self, app: Any, threads: int) -> None:
        super().__init__(("127.0.0.1", 0), app, request_queue_size=1024)
        self.requests = _GrowingPool(self, min=4, max=threads)
        self.gateway = _Gateway

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        # Cheroot tells of each client that went away (a killed worker, an injected drop) at
        # INFO, and of its own failures at ERROR.
        log.log(level, "%s", msg, exc_info=traceback)


class HttpsServer:
    """Serve ``app`` over TLS on 127.0.0.1 (a free port) from a background thread."""

    def __init__(self, app: Any, context: ssl.SSLContext, *, threads: int = 1024) -> None:
        self._server = _Server(app, threads)
        self._server.ssl_adapter = _DeferredHandshakeAdapter(context)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.bind_addr[1])

    def start(self) -> None:
        self._server.prepare()  # binds: the port is known when this returns
        self._thread = threading.Thread(target=self._server.serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
