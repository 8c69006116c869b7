"""Blueprints as they were at a git revision, read from git objects.

No checkout and no temporary worktree: ``git ls-tree`` lists the blobs under
the blueprint paths (given as on the command line, relative to the current
directory, resolved inside the repository) and one ``git cat-file --batch``
reads them all.  Each file is loaded by the ordinary loader with the display
path ``REV:path``, so every diagnostic of that side reads ``REV:path:line:col``.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from slmops_bp.diagnostics import Diagnostic, EnvironmentFailure, UsageFailure, error, sort_unique
from slmops_bp.load import Document, load_text

_SUFFIXES = (".yaml", ".yml")
_BLOB_MODES = ("100644", "100755")
_SYMLINK = "120000"


@dataclass
class Revision:
    """One revision's blueprint files, loaded."""

    name: str
    """the revision as the user wrote it (``origin/main``, ``HEAD~1``)"""
    commit: str
    documents: list[Document] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: int = 0
    missing: list[str] = field(default_factory=list)
    """blueprint paths that do not exist at the revision (an empty side, not an error)"""


def _git(args: Sequence[str], cwd: str, stdin: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, input=stdin, capture_output=True, check=False
        )
    except FileNotFoundError as exc:
        raise EnvironmentFailure("git is not installed (bp diff reads revisions with it)") from exc
    if proc.returncode != 0:
        reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise _Failed(reason[-1] if reason else f"git {args[0]} failed ({proc.returncode})")
    return proc.stdout


class _Failed(Exception):
    pass


def repository_root(cwd: str = ".") -> str:
    try:
        out = _git(["rev-parse", "--show-toplevel"], cwd)
    except _Failed as exc:
        raise UsageFailure(f"not inside a git repository ({exc})") from exc
    return os.path.realpath(out.decode().rstrip("\n"))


def resolve_commit(revision: str, cwd: str = ".") -> str:
    if revision.startswith("-"):
        raise UsageFailure(f"not a revision: {revision!r}")
    try:
        out = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", revision + "^{commit}"],
                   cwd)  # fmt: skip
    except _Failed as exc:
        raise UsageFailure(f"unknown revision {revision!r} (git: {exc})") from exc
    return out.decode().strip()


def in_repository(path: str, root: str) -> str:
    """``path`` (relative to the current directory) as a path inside the repository ('' = root)."""
    rel = os.path.relpath(os.path.realpath(path), root)
    if rel == os.curdir:
        return ""
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        raise UsageFailure(f"{path}: outside the git repository at {root}")
    return rel.replace(os.sep, "/")


def load_revision(revision: str, paths: Sequence[str], cwd: str = ".") -> Revision:
    """Load the blueprint files under ``paths`` as they are at ``revision``."""
    root = repository_root(cwd)
    commit = resolve_commit(revision, cwd)
    rev = Revision(revision, commit)
    wanted: list[tuple[str, str, str]] = []  # (display path, object id, repo path)
    seen: set[str] = set()
    for given in paths:
        inside = in_repository(os.path.join(cwd, given), root)
        try:
            found = _list(commit, inside, given, root, rev)
        except _Failed as exc:
            raise EnvironmentFailure(f"git ls-tree: {exc}") from exc
        for display, oid, repo_path in found:
            if repo_path not in seen:
                seen.add(repo_path)
                wanted.append((display, oid, repo_path))
    wanted.sort(key=lambda item: tuple(item[2].split("/")))
    try:
        blobs = _read_blobs([oid for _, oid, _ in wanted], root)
    except _Failed as exc:
        raise EnvironmentFailure(f"git cat-file: {exc}") from exc
    for (display, _, _), data in zip(wanted, blobs, strict=True):
        docs, diags = load_text(data, f"{revision}:{display}")
        rev.documents.extend(docs)
        rev.diagnostics.extend(diags)
    rev.files = len(wanted)
    rev.diagnostics = sort_unique(rev.diagnostics)
    return rev


def _list(
    commit: str, inside: str, given: str, root: str, rev: Revision
) -> list[tuple[str, str, str]]:
    """(display path, object id, repository path) of the YAML files under ``inside``."""
    args = ["--literal-pathspecs", "ls-tree", "-r", "-z", "--full-tree", commit]
    if inside:
        args += ["--", inside]
    out = _git(args, root)
    found: list[tuple[str, str, str]] = []
    prefix = inside + "/" if inside else ""
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, name_bytes = record.partition(b"\t")
        mode, kind, oid = meta.decode().split(" ")
        name = name_bytes.decode("utf-8", "surrogateescape")
        if name == inside:  # the path is a file
            if kind != "blob" or mode not in _BLOB_MODES:
                rev.diagnostics.append(_not_a_file(rev.name, given, mode))
            else:
                found.append((given, oid, name))
            continue
        if not name.startswith(prefix):
            continue
        below = name[len(prefix) :]
        parts = below.split("/")
        if any(p.startswith(".") for p in parts) or not below.endswith(_SUFFIXES):
            continue
        display = posixpath.join(given.replace(os.sep, "/"), below)
        if kind != "blob" or mode not in _BLOB_MODES:
            rev.diagnostics.append(_not_a_file(rev.name, display, mode))
            continue
        found.append((display, oid, name))
    if not found and not any(d.is_error for d in rev.diagnostics):
        rev.missing.append(given)
    return found


def _not_a_file(revision: str, display: str, mode: str) -> Diagnostic:
    what = "a symbolic link" if mode == _SYMLINK else "not a regular file"
    return error(
        "BP108",
        f"{what} at this revision; blueprints are read from regular files only",
        f"{revision}:{display}",
    )


def _read_blobs(oids: Sequence[str], root: str) -> list[bytes]:
    """The contents of ``oids``, in order, with one ``git cat-file --batch``."""
    if not oids:
        return []
    out = _git(["cat-file", "--batch"], root, stdin="".join(o + "\n" for o in oids).encode())
    blobs: list[bytes] = []
    pos = 0
    for oid in oids:
        end = out.index(b"\n", pos)
        header = out[pos:end].decode().split(" ")
        if len(header) != 3 or header[0] != oid:
            raise EnvironmentFailure(f"git cat-file: unexpected answer for {oid}: {header}")
        size = int(header[2])
        start = end + 1
        blobs.append(out[start : start + size])
        pos = start + size + 1  # the content is followed by a newline
    return blobs
