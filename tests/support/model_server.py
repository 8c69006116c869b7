"""A local artifact server on 127.0.0.1 with drill modes, started and stopped by tests."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ModelServer:
    """Serves artifacts with drill modes.

    ``put(path, data, mode)``: ``ok`` serves ``data``; ``wrong`` serves other bytes of the same
    length; ``drop`` announces the full length, sends half and closes the connection;
    ``slow`` announces the full length, sends half, then holds the download open until
    :meth:`release` is called (or two minutes pass) and sends the rest.
    ``hits`` counts GET requests per path.
    """

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, str]] = {}
        self.hits: Counter[str] = Counter()
        self.released = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.hits[self.path] += 1
                route = server.routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data, mode = route
                body = bytes(b ^ 0xFF for b in data) if mode == "wrong" else data
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "drop":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if mode == "slow":
                    with contextlib.suppress(OSError):  # the client may be gone meanwhile
                        self.wfile.write(body[: len(body) // 2])
                        self.wfile.flush()
                        server.released.wait(120)
                        self.wfile.write(body[len(body) // 2 :])
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def put(self, path: str, data: bytes, mode: str = "ok") -> str:
        self.routes[path] = (data, mode)
        return self.url(path)

    def start(self) -> ModelServer:
        self.thread.start()
        return self

    def release(self) -> None:
        """Let every download held by ``slow`` finish."""
        self.released.set()

    def stop(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()
