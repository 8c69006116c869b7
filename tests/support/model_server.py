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
    ``hold`` announces the full length, sends half and waits until ``release`` is set (at
    most 5 minutes) before sending the rest: a download in flight, for as long as a drill needs.
    ``hits`` counts GET requests per path.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host  # another address only for devices in a network namespace of the tests
        self.routes: dict[str, tuple[bytes, str]] = {}
        self.hits: Counter[str] = Counter()
        self.release = threading.Event()
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
                # a path ending in "/" is an index page (pip --find-links reads text/html only)
                ctype = "text/html" if self.path.endswith("/") else "application/octet-stream"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "drop":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if mode == "hold":
                    with contextlib.suppress(OSError):
                        self.wfile.write(body[: len(body) // 2])
                        self.wfile.flush()
                        server.release.wait(timeout=300)
                        self.wfile.write(body[len(body) // 2 :])
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def put(self, path: str, data: bytes, mode: str = "ok") -> str:
        self.routes[path] = (data, mode)
        return self.url(path)

    def start(self) -> ModelServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
