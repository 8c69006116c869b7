"""Which blueprint lines move hosts: the changed values of the documents a change touches.

Documents are matched across the two sides by kind and name.  In a document
that differs, every changed value (and every value added) is located through
the loader's source map; the document counts when the hosts that move belong
to it (a Deployment or its Model: that deployment's hosts; a DeviceClass: the
hosts of the class; a Runtime, a PrivacyPolicy, an Overlay: the hosts that use
it before or after).  A change that moves nobody is not annotated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from slmops_bp.diff import Change, PlanDiff
from slmops_bp.load import Document, Loc

MAX_LINES_PER_DOCUMENT = 10


@dataclass(frozen=True)
class Note:
    """One blueprint line (path:line:col) and what moves because of its document.

    A document that exists only at the revision has no line to annotate: path is ''.
    """

    path: str
    line: int
    column: int
    kind: str
    name: str
    message: str


def _key(doc: Document) -> tuple[str, str] | None:
    data = doc.data
    if not isinstance(data, dict):
        return None
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    kind = data.get("kind")
    if not isinstance(kind, str) or not isinstance(name, str):
        return None
    return kind, name


def _index(docs: Sequence[Document]) -> dict[tuple[str, str], Document]:
    out: dict[tuple[str, str], Document] = {}
    for doc in docs:
        key = _key(doc)
        if key is not None:
            out.setdefault(key, doc)
    return out


def changed_locs(old: Any, new: Any, loc: Loc = ()) -> Iterator[Loc]:
    """Where ``new`` differs from ``old``: the deepest differing locations."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in new:
            if key not in old:
                yield (*loc, key)
            elif old[key] != new[key]:
                yield from changed_locs(old[key], new[key], (*loc, key))
        if any(key not in new for key in old):
            yield loc
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            if a != b:
                yield from changed_locs(a, b, (*loc, i))
    elif old != new:
        yield loc


def _spec(doc: Document | None) -> dict[str, Any]:
    if doc is None or not isinstance(doc.data, dict):
        return {}
    spec = doc.data.get("spec")
    return spec if isinstance(spec, dict) else {}


def _relevant(kind: str, name: str, change: Change, models: dict[str, set[str]]) -> bool:
    if kind == "Deployment":
        return change.deployment == name
    if kind == "Model":
        return change.deployment in models.get(name, set())
    column = {"DeviceClass": "class", "Runtime": "runtime", "PrivacyPolicy": "privacy"}.get(kind)
    if column is not None:
        return name in (change.value(column, before=True), change.value(column))
    if kind == "Overlay":
        return any(name in (change.value("overlays", before=b) or ()) for b in (True, False))
    return False


def _message(kind: str, name: str, moved: list[Change]) -> str:
    per_dep: Counter[str] = Counter(c.deployment for c in moved)
    statuses: Counter[str] = Counter(c.status for c in moved)
    parts = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    deps = ", ".join(f"{d} ({n})" for d, n in sorted(per_dep.items()))
    fields: Counter[str] = Counter(
        f for c in moved if c.status == "changed" for f in c.fields if f != "stage"
    )
    what = f"; {', '.join(sorted(fields))}" if fields else ""
    hosts = len({c.host for c in moved})
    return f"{kind} {name}: this change moves {hosts} host(s): {parts} — {deps}{what}"


def notes(base: Sequence[Document], head: Sequence[Document], diff: PlanDiff) -> list[Note]:
    """One note per changed line of each document whose change moves hosts."""
    moved = [c for c in diff.changes if c.moves]
    if not moved:
        return []
    old_docs, new_docs = _index(base), _index(head)
    models: dict[str, set[str]] = {}
    for docs in (old_docs, new_docs):
        for (kind, name), doc in docs.items():
            model = _spec(doc).get("model")
            if kind == "Deployment" and isinstance(model, str):
                models.setdefault(model, set()).add(name)
    out: list[Note] = []
    for key in sorted(old_docs.keys() | new_docs.keys()):
        kind, name = key
        old, new = old_docs.get(key), new_docs.get(key)
        if old is not None and new is not None and old.data == new.data:
            continue
        touched = [c for c in moved if _relevant(kind, name, c, models)]
        if not touched:
            continue
        message = _message(kind, name, touched)
        if new is None:
            assert old is not None
            where = f"{old.path}:{old.line}:{old.column}"
            out.append(Note("", 0, 0, kind, name, f"{message} (removed; it was at {where})"))
            continue
        locs = [()] if old is None else list(changed_locs(old.data, new.data))
        lines: dict[int, tuple[int, int]] = {}
        for loc in locs:
            line, column = new.pos(loc, key=bool(loc))
            lines.setdefault(line, (line, column))
        for line, column in sorted(lines.values())[:MAX_LINES_PER_DOCUMENT]:
            out.append(Note(new.path, line, column, kind, name, message))
    return out
