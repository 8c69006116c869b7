"""Measured values into the Model document, with ruamel.yaml in round-trip mode.

Only the Model documents that get new values are re-emitted; every other document of the
file stays byte for byte.  Comments, key order, quoting and the document's own indentation
are kept, so the diff of a build shows the measured fields and nothing else.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

_SEPARATOR = re.compile(r"^---(?:[ \t].*)?$")
_INDENTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0), (3, 3, 0))
"""(mapping, sequence, offset) styles tried until one re-emits the document unchanged."""


@dataclass(frozen=True)
class Measured:
    """What ``bp build`` writes into one variant."""

    uri: str
    sha256: str
    size: int
    memory: str
    quality: float
    sparsity: float | None
    digest: str
    seal: str


def split_documents(text: str) -> list[str]:
    """The file's documents as text, each with its own ``---`` line; joined they are ``text``."""
    parts: list[str] = []
    current: list[str] = []
    for line in text.splitlines(keepends=True):
        if _SEPARATOR.match(line.rstrip("\r\n")) and current:
            parts.append("".join(current))
            current = []
        current.append(line)
    parts.append("".join(current))
    return parts


def _yaml(indent: tuple[int, int, int]) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    return yaml


def _emit(yaml: YAML, data: Any, explicit_start: bool) -> str:
    yaml.explicit_start = explicit_start
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _style(segment: str) -> tuple[YAML, Any, bool]:
    """A YAML instance that re-emits ``segment`` unchanged (or the closest guess), its data."""
    explicit = bool(_SEPARATOR.match(segment.lstrip("\ufeff").split("\n", 1)[0]))
    for indent in _INDENTS:
        yaml = _yaml(indent)
        data = yaml.load(segment)
        if _emit(yaml, data, explicit) == segment:
            return yaml, data, explicit
    yaml = _yaml(_INDENTS[0])
    return yaml, yaml.load(segment), explicit


def _set(mapping: CommentedMap, key: str, value: Any, after: tuple[str, ...]) -> None:
    if key in mapping:
        mapping[key] = value
        return
    keys = list(mapping)
    position = len(keys)
    for anchor in after:
        if anchor in mapping:
            position = keys.index(anchor) + 1
            break
    mapping.insert(position, key, value)


def apply(variant: CommentedMap, m: Measured) -> None:
    if m.sparsity is not None:
        _set(variant, "sparsity", m.sparsity, ("precision", "format", "name"))
    build = variant["build"]
    _set(build, "digest", m.digest, ())
    _set(build, "seal", m.seal, ())
    artifact = variant.get("artifact")
    if not isinstance(artifact, CommentedMap):
        artifact = CommentedMap()
        _set(variant, "artifact", artifact, ("build",))
    for key, value in (("uri", m.uri), ("sha256", m.sha256), ("size", f"{m.size}B")):
        _set(artifact, key, value, ())
    _set(variant, "memory", m.memory, ("artifact",))
    _set(variant, "quality", m.quality, ("memory",))


def _is_model(data: Any, name: str) -> bool:
    return (
        isinstance(data, Mapping)
        and data.get("kind") == "Model"
        and isinstance(data.get("metadata"), Mapping)
        and data["metadata"].get("name") == name
    )


def write_back(path: Path, updates: Mapping[str, Mapping[str, Measured]]) -> bool:
    """``updates``: model name → variant name → values.  True when the file changed."""
    text = path.read_text(encoding="utf-8")
    segments = split_documents(text)
    for index, segment in enumerate(segments):
        if "Model" not in segment:
            continue
        names = [n for n in updates if f"{n}" in segment]
        if not names:
            continue
        yaml, data, explicit = _style(segment)
        model = next((n for n in names if _is_model(data, n)), None)
        if model is None:
            continue
        for variant in data["spec"]["variants"]:
            measured = updates[model].get(str(variant.get("name")))
            if measured is not None:
                apply(variant, measured)
        segments[index] = _emit(yaml, data, explicit)
    new = "".join(segments)
    if new == text:
        return False
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
