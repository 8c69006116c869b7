"""The content-addressed store: ``<root>/sha256/<hex>/<file>`` plus an index of builds.

``<root>/index/<key>.json`` maps a build key (recipe, source, tool versions) to the artifact
it produced, so a recipe whose inputs did not change is never run again.  ``bp serve
<root>`` publishes the artifacts; ``--base-uri`` says where they are published.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_ROOT = Path(".bp") / "store"


@dataclass(frozen=True)
class Stored:
    sha256: str
    size: int
    path: Path


def _hex(key: str) -> str:
    return key.removeprefix("sha256:")


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root

    def blob(self, sha256: str, filename: str) -> Path:
        return self.root / "sha256" / sha256 / filename

    def uri(self, base_uri: str | None, sha256: str, filename: str) -> str:
        if base_uri:
            return f"{base_uri.rstrip('/')}/sha256/{sha256}/{filename}"
        return self.blob(sha256, filename).absolute().as_uri()

    def put(self, file: Path, filename: str) -> Stored:
        """Move ``file`` into the store under its own digest (kept when already there)."""
        h = hashlib.sha256()
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        sha = h.hexdigest()
        target = self.blob(sha, filename)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.parent / f".{filename}.{os.getpid()}.tmp"
            shutil.copyfile(file, tmp)
            os.replace(tmp, target)
        return Stored(sha, target.stat().st_size, target)

    def _index(self, key: str) -> Path:
        return self.root / "index" / f"{_hex(key)}.json"

    def lookup(self, key: str) -> dict[str, Any] | None:
        """The record of an earlier build with this key whose artifact is still stored."""
        try:
            record = json.loads(self._index(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict):
            return None
        if not self.blob(str(record.get("sha256")), str(record.get("filename"))).is_file():
            return None
        return record

    def record(self, key: str, record: dict[str, Any]) -> None:
        path = self._index(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, sort_keys=True, indent=1)
        os.replace(tmp, path)

    def outputs_path(self, key: str) -> Path:
        return self.root / "outputs" / f"{_hex(key)}.npz"
