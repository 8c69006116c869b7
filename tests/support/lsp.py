"""A minimal Language Server Protocol client over stdio, to drive yaml-language-server.

It speaks JSON-RPC with ``Content-Length`` framing, answers the few requests a
server sends back (configuration, capability registration, progress), and
collects ``textDocument/publishDiagnostics`` per document URI.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any


class LanguageServer:
    def __init__(self, command: list[str], root: Path, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._next_id = 0
        self._responses: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.diagnostics: dict[str, list[dict[str, Any]]] = {}
        self._open: set[str] = set()
        self._version = 0
        self._published = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.request(
            "initialize",
            {
                "processId": None,
                "rootUri": root.as_uri(),
                "capabilities": {
                    "textDocument": {
                        "hover": {"contentFormat": ["markdown", "plaintext"]},
                        "publishDiagnostics": {},
                    },
                    "workspace": {"configuration": True},
                },
                "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}],
            },
        )
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration", {"settings": settings})

    # ------------------------------------------------------------ transport

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        with self._lock:
            self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.proc.stdin.flush()

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            length = 0
            while True:
                line = stream.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            message = json.loads(stream.read(length))
            self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "id" in message and "method" in message:  # a request from the server
            result: Any = None
            if message["method"] == "workspace/configuration":
                items = message["params"]["items"]
                result = [self._section(item.get("section")) for item in items]
            self._send({"id": message["id"], "result": result})
        elif "id" in message:
            self._responses.setdefault(message["id"], queue.Queue()).put(message)
        elif message.get("method") == "textDocument/publishDiagnostics":
            with self._published:
                params = message["params"]
                self.diagnostics[params["uri"]] = params["diagnostics"]
                self._published.notify_all()

    def _section(self, section: str | None) -> Any:
        node: Any = self.settings
        for part in (section or "").split(".") if section else []:
            node = node.get(part, {}) if isinstance(node, dict) else None
        return node

    # ------------------------------------------------------------ API

    def request(self, method: str, params: dict[str, Any], timeout: float = 30) -> Any:
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            self._responses.setdefault(ident, queue.Queue())
        self._send({"id": ident, "method": method, "params": params})
        response = self._responses[ident].get(timeout=timeout)
        if "error" in response:
            raise RuntimeError(f"{method}: {response['error']}")
        return response.get("result")

    def _next_version(self) -> int:
        self._version += 1
        return self._version

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self._send({"method": method, "params": params})

    def open(self, path: Path, text: str) -> str:
        uri = path.as_uri()
        if uri in self._open:  # a fresh text under the same name: close the old one first
            self.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        self._open.add(uri)
        with self._published:
            self.diagnostics.pop(uri, None)
        self.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": uri,
                    "languageId": "yaml",
                    "version": self._next_version(),  # the server caches parses by version
                    "text": text,
                }
            },
        )
        return uri

    def wait_diagnostics(
        self, uri: str, at_least: int = 0, timeout: float = 60, settle: float = 1.5
    ) -> list[Any]:
        """The diagnostics of ``uri`` once there are ``at_least`` and ``settle`` s pass unchanged.

        The server publishes as it validates (an empty list may come before the schema
        is loaded), so a caller that expects findings says how many to wait for.
        """
        deadline = time.monotonic() + timeout
        with self._published:
            while len(self.diagnostics.get(uri, [])) < at_least or uri not in self.diagnostics:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{uri}: {self.diagnostics.get(uri)!r} after {timeout}s")
                self._published.wait(left)
            while True:
                last = self.diagnostics[uri]
                self._published.wait(settle)
                if self.diagnostics[uri] is last or time.monotonic() > deadline:
                    return last

    def hover(self, uri: str, line: int, character: int) -> str:
        result = self.request(
            "textDocument/hover",
            {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}},
        )
        if not result:
            return ""
        contents = result["contents"]
        if isinstance(contents, dict):
            return str(contents.get("value", ""))
        if isinstance(contents, list):
            return "\n".join(c if isinstance(c, str) else c.get("value", "") for c in contents)
        return str(contents)

    def close(self) -> None:
        try:
            self.request("shutdown", {}, timeout=10)
            self.notify("exit", {})
            self.proc.wait(timeout=10)
        except Exception:
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
