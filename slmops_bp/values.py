"""Values that reach a device: versions, artifact URIs and egress entries (SPEC §2, §6).

Each rule lives here once.  The model validates with these functions (a value
that cannot work on a device is refused by ``bp validate``), and the renderer
hands the device what they resolve to (the artifact's file name, egress
entries as host/port pairs or addresses), so the collection parses nothing.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Final
from urllib.parse import SplitResult, unquote, urlsplit

from slmops_bp.contract import EGRESS_WILDCARD, HIDDEN_PREFIX
from slmops_bp.diagnostics import shown

SEGMENT_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$"
"""A version as a path segment on the device: ``<runtime>-<version>``, ``<version>-<variant>``."""
_SEGMENT: Final = re.compile(SEGMENT_PATTERN)
URI_PATTERN: Final = r"^(https?|file)://[^\s/]*/\S*[^\s/]$"
"""What the JSON Schema can say about an artifact URI; :func:`artifact_file` says the rest."""
DEFAULT_PORTS: Final = {"https": 443, "http": 80}
FILE_NAME_MAX: Final = 255  # bytes, as most file systems allow
RESERVED_PREFIX: Final = HIDDEN_PREFIX
"""The device keeps its own files in a release directory as hidden names (``.bp-release.json``)."""
EGRESS_PATTERN: Final = r"^[^\s/]+(/[0-9]{1,3})?$"
"""What the JSON Schema can say about an egress entry; :func:`parse_egress` says the rest."""
_LABEL: Final = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_PORT: Final = re.compile(r"^[0-9]{1,5}$")


class ValueProblem(ValueError):
    """A value that cannot work on a device; the message says why and what to write."""


# ---------------------------------------------------------------- versions


def check_segment(value: str, what: str = "version") -> str:
    """A version is one safe path segment: letters, digits, ``.``, ``_``, ``+``, ``-``."""
    if not _SEGMENT.match(value) or ".." in value:
        raise ValueProblem(
            f"{what} {shown(value)} is not safe as a directory name on the device: use up to "
            "128 letters, digits, '.', '_', '+' and '-', starting with a letter or digit "
            "(e.g. '1.20.1')"
        )
    return value


# ---------------------------------------------------------------- artifact URIs


@lru_cache(maxsize=4096)
def artifact_file(uri: str) -> str:
    """The file name an artifact is stored under on the device: the URI path's last segment.

    Query and fragment never reach the file system.  Refused: a URI without a
    host (http/https), with an invalid port, with a path that ends in ``/``,
    ``.`` or ``..``, or whose last segment is hidden (the device reserves those
    names), holds a separator or control character once decoded, or is too long.
    """
    parts = _split(uri)
    if parts.scheme in DEFAULT_PORTS:
        if not parts.hostname:
            raise ValueProblem(f"URI {shown(uri)} has no host: write {parts.scheme}://HOST/PATH")
        _port(parts, uri)
    elif parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueProblem(
                f"file URI {shown(uri)} names a host ({shown(parts.netloc)}); a file URI is a "
                "path on the machine that reads it: write file:///PATH"
            )
    else:
        raise ValueProblem(f"URI {shown(uri)}: use https://, http:// or file://")
    path = parts.path
    if not path.startswith("/") or path.endswith("/"):
        raise ValueProblem(
            f"URI {shown(uri)} does not name a file: its path must end in a file name"
        )
    try:
        name = unquote(path.rsplit("/", 1)[-1], errors="strict")
    except UnicodeDecodeError:
        raise ValueProblem(f"URI {shown(uri)}: its file name is not UTF-8 once decoded") from None
    if "/" in name or "\\" in name or any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise ValueProblem(
            f"URI {shown(uri)}: its file name {shown(name)} holds a path separator or a "
            "control character once decoded"
        )
    if name in (".", ".."):
        raise ValueProblem(f"URI {shown(uri)} ends in {shown(name)}: it must end in a file name")
    if name.startswith(RESERVED_PREFIX):
        raise ValueProblem(
            f"URI {shown(uri)} names a hidden file {shown(name)}; the device reserves hidden "
            "names in a release directory (e.g. '.bp-release.json'): use a plain file name"
        )
    if len(name.encode("utf-8")) > FILE_NAME_MAX:
        raise ValueProblem(f"URI {shown(uri)}: its file name is longer than {FILE_NAME_MAX} bytes")
    return name


def uri_host_port(uri: str) -> tuple[str, int] | None:
    """(host, port) an http(s) URI connects to (port defaulted by scheme); None otherwise."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.hostname.lower(), port if port is not None else DEFAULT_PORTS[parts.scheme]


def _split(uri: str) -> SplitResult:
    try:
        return urlsplit(uri)
    except ValueError as exc:
        raise ValueProblem(f"URI {shown(uri)} cannot be parsed: {exc}") from None


def _port(parts: SplitResult, uri: str) -> None:
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (port is None and parts.netloc.rstrip("]").endswith(":")):
        raise ValueProblem(f"URI {shown(uri)} has an invalid port: use 1 to 65535")


# ---------------------------------------------------------------- egress entries


@dataclass(frozen=True, order=True)
class EgressEntry:
    """One ``egress.allow`` entry, resolved: a host name (glob) or an address/network, and a port.

    ``host`` and ``address`` exclude each other; ``port`` None means any port.
    """

    host: str | None
    address: str | None
    port: int | None

    def as_dict(self) -> dict[str, str | int | None]:
        """What the device receives (and reads without parsing)."""
        return {"host": self.host, "address": self.address, "port": self.port}

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.address is not None:
            address = _address(host)
            return address is not None and address in ipaddress.ip_network(self.address)
        return self.host is not None and _glob(self.host).match(host) is not None

    def covers(self, other: EgressEntry) -> bool:
        """Does this entry allow everything ``other`` allows?"""
        if self.port is not None and self.port != other.port:
            return False
        if self.address is not None and other.address is not None:
            mine, theirs = ipaddress.ip_network(self.address), ipaddress.ip_network(other.address)
            return mine.version == theirs.version and theirs.subnet_of(mine)  # type: ignore[arg-type]
        if self.host is not None and other.host is not None:
            return _glob(self.host).match(other.host) is not None
        return False


@lru_cache(maxsize=4096)
def parse_egress(entry: str) -> EgressEntry:
    """``host``, ``*.host``, ``host:port``, an IPv4/IPv6 address (``[v6]:port``), or a CIDR."""
    text = entry
    if not text or text != text.strip() or any(ch.isspace() for ch in text):
        raise _bad_egress(entry, "it holds spaces")
    port: int | None = None
    if text.startswith("["):  # [v6] or [v6]:port
        close = text.find("]")
        rest = text[close + 1 :] if close > 0 else "?"
        if rest and not (rest.startswith(":") and _PORT.match(rest[1:])):
            raise _bad_egress(entry, "write an IPv6 address as [ADDRESS] or [ADDRESS]:PORT")
        port = _egress_port(entry, rest[1:]) if rest else None
        text = text[1:close]
        if _address(text) is None:
            raise _bad_egress(entry, f"{shown(text)} is not an IPv6 address")
    elif "/" in text:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise _bad_egress(entry, "not a network in CIDR notation (e.g. 10.0.0.0/8)") from None
        return EgressEntry(None, str(network), None)
    elif text.count(":") == 1:
        text, port_text = text.split(":")
        if not _PORT.match(port_text):
            raise _bad_egress(entry, f"port {shown(port_text)} is not a number")
        port = _egress_port(entry, port_text)
    address = _address(text)
    if address is not None:
        return EgressEntry(None, str(address), port)
    if ":" in text:
        raise _bad_egress(entry, "not a host, host:port, address or CIDR")
    return EgressEntry(_host_name(entry, text), None, port)


def _egress_port(entry: str, text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise _bad_egress(entry, f"port {port} is outside 1 to 65535")
    return port


def _host_name(entry: str, text: str) -> str:
    name = text.lower().removesuffix(".")
    labels = name.split(".")
    if name.startswith(EGRESS_WILDCARD) and len(labels) > 1:  # any host under the domain
        labels = labels[1:]
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise _bad_egress(
            entry,
            "not a host, host:port, address or CIDR (a host is a DNS name such as "
            "'models.example.com', optionally '*.example.com')",
        )
    return name


def _bad_egress(entry: str, why: str) -> ValueProblem:
    hint = ""
    if "://" in entry:
        parts = urlsplit(entry)
        try:
            port = parts.port or DEFAULT_PORTS.get(parts.scheme)
        except ValueError:
            port = None
        host = parts.hostname or "HOST"
        hint = f"; write {shown(f'{host}:{port}' if port else host)}, not a URL"
    return ValueProblem(f"invalid egress entry {shown(entry)}: {why}{hint}")


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    """``*.example.com`` matches any name under example.com (not example.com itself)."""
    if pattern.startswith(EGRESS_WILDCARD):
        return re.compile(r"(?:[^.]+\.)+" + re.escape(pattern[len(EGRESS_WILDCARD) :]) + r"\Z")
    return re.compile(re.escape(pattern) + r"\Z")
