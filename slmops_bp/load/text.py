"""One file's text: encoding and characters checked (BP101, BP102), then composed."""

from __future__ import annotations

import re
from typing import Final

from slmops_bp.diagnostics import Diagnostic, error, sort_unique
from slmops_bp.load.compose import load_source
from slmops_bp.load.document import Document, line_col
from slmops_bp.load.limits import MAX_FILE_BYTES, too_large


def load_text(text: str | bytes, path: str) -> tuple[list[Document], list[Diagnostic]]:
    """Load every document of one file's content; ``path`` is only for display."""
    source = _decode(text, path) if isinstance(text, bytes) else _unicode(text, path)
    if isinstance(source, Diagnostic):
        return [], [source]
    bad = _BAD_CHAR.search(source)
    if bad is not None:
        return [], [_bad_char(source, bad.start(), path)]
    docs, diags = load_source(source, path)
    return docs, sort_unique(diags)


_BOMS: Final = (
    (b"\xff\xfe\x00\x00", "UTF-32 LE"),
    (b"\x00\x00\xfe\xff", "UTF-32 BE"),
    (b"\xff\xfe", "UTF-16 LE"),
    (b"\xfe\xff", "UTF-16 BE"),
)
# what YAML (and libyaml's reader) rejects: all but c-printable (the complement is slow to compile)
_BAD_CHAR: Final = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]"
)


def _decode(data: bytes, path: str) -> str | Diagnostic:
    if len(data) > MAX_FILE_BYTES:
        return too_large(path, len(data))
    for bom, name in _BOMS:
        if data.startswith(bom):
            message = f"file is encoded as {name} (byte order mark); save it as UTF-8"
            return error("BP102", message, path, 1, 1)
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8")
        message = f"file is not valid UTF-8: byte 0x{data[exc.start]:02X} ({exc.reason})"
        return error("BP102", message, path, *line_col(prefix, len(prefix)))


def _unicode(text: str, path: str) -> str | Diagnostic:
    if len(text) > MAX_FILE_BYTES:
        return too_large(path, len(text))
    return text.removeprefix("\ufeff")


def _bad_char(source: str, index: int, path: str) -> Diagnostic:
    code = ord(source[index])
    where = line_col(source, index)
    if 0xD800 <= code <= 0xDFFF:
        return error(
            "BP102", f"text is not valid Unicode: lone surrogate U+{code:04X}", path, *where
        )
    hint = " (is the file UTF-16?)" if code == 0 else ""
    message = f"control character U+{code:04X} is not allowed in YAML{hint}"
    return error("BP101", message, path, *where)
