"""A loopback HTTPS proxy that brings registry host names (``<name>.azurecr.io``) to the emulator.

Tools such as the Azure CLI build registry URLs from the login server name, and the emulator
cannot own that name in the machine's resolver. With ``HTTPS_PROXY`` pointing here, a client
asks ``CONNECT acrprodweu.azurecr.io:443`` and this proxy tunnels the connection to the
emulator, whose certificate also names ``*.azurecr.io``; the emulator routes the request by its
``Host``. Nothing is resolved and nothing leaves loopback: any other host is refused (403).
"""

from __future__ import annotations

import re
import select
import socket
import socketserver
import threading

# ACR login server suffixes of the public and sovereign clouds.
REGISTRY_HOST = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}\.azurecr\.(io|cn|us)$", re.IGNORECASE)
_IDLE_SECONDS = 30.0


class RegistryProxy:
    """Start with the emulator's port; point ``HTTPS_PROXY`` at :attr:`url`."""

    def __init__(self, emulator_port: int) -> None:
        self.emulator_port = emulator_port
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(_IDLE_SECONDS)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 16384:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split()
        if len(parts) != 3 or parts[0].upper() != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        host, _, port = parts[1].rpartition(":")
        if port != "443" or not REGISTRY_HOST.match(host):
            body = b"only registry hosts (*.azurecr.io:443) are served here"
            client.sendall(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            return
        with socket.create_connection(("127.0.0.1", self.emulator_port), timeout=5) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _relay(client, upstream)


def _relay(a: socket.socket, b: socket.socket) -> None:
    sockets = [a, b]
    while True:
        readable, _, _ = select.select(sockets, [], [], _IDLE_SECONDS)
        if not readable:
            return
        for source in readable:
            data = source.recv(65536)
            if not data:
                return
            (b if source is a else a).sendall(data)
