"""Strict YAML 1.2 loading with source positions.

libyaml's composer gives the node graph with marks; the values are built here
(YAML 1.2 core schema, never PyYAML's constructor), so ``no``/``off`` stay
strings, only standard tags pass, and every value's position is kept for
later diagnostics.  User mistakes become BP1xx diagnostics, never exceptions.
"""

from __future__ import annotations

import gc
import math
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import yaml
from yaml.composer import Composer
from yaml.error import MarkedYAMLError
from yaml.events import CollectionEndEvent, CollectionStartEvent, DocumentStartEvent, Event
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.scanner import Scanner

from slmops_bp.diagnostics import Diagnostic, error, sort_unique, warning

MAX_FILE_BYTES: Final = 16 * 1024 * 1024
MAX_DEPTH: Final = 64
MAX_NODES: Final = 100_000
MAX_ALIASES: Final = 100

Loc = tuple[str | int, ...]
# value line, value column, key line, key column, scalar start, scalar end (-1: not a scalar)
_Pos = tuple[int, int, int, int, int, int]

_STD: Final = "tag:yaml.org,2002:"
_STR: Final = _STD + "str"
_MAP: Final = _STD + "map"
_SEQ: Final = _STD + "seq"
_PLAIN: Final = "<plain>"  # tag the composer gets for untagged plain scalars; compared by identity
_INVALID: Final[Any] = object()
_SUFFIXES: Final = (".yaml", ".yml")
_ALLOWED_TAGS: Final = "!!str, !!int, !!float, !!bool, !!null, !!map, !!seq"
_TOO_MANY_NODES: Final = (
    f"aliases/anchors expand too much: more than {MAX_NODES} values in one document"
)


@dataclass
class Document:
    """One YAML document: plain data plus where each value came from."""

    path: str
    index: int
    data: Any
    line: int
    column: int
    positions: dict[Loc, _Pos] = field(
        default_factory=dict, repr=False, compare=False, kw_only=True
    )
    source: str = field(default="", repr=False, compare=False, kw_only=True)

    def pos(self, loc: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value (or key) at ``loc``, else of its deepest ancestor."""
        path = tuple(loc)
        found = self.positions.get(path)
        if found is not None:
            return (found[2], found[3]) if key else (found[0], found[1])
        while path:
            path = path[:-1]
            found = self.positions.get(path)
            if found is not None:
                return found[2], found[3]
        return self.line, self.column

    def raw(self, loc: Sequence[str | int]) -> str | None:
        """The scalar at ``loc`` as written (quotes kept; anchor and tag dropped), else None."""
        found = self.positions.get(tuple(loc))
        if found is None or found[4] < 0:
            return None
        text = self.source[found[4] : found[5]]
        properties = _PROPERTIES.match(text)
        return text[properties.end() :] if properties else text


def load_files(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[Document], list[Diagnostic]]:
    """Load files and directories (recursive ``*.yaml``/``*.yml``, hidden names skipped)."""
    diags: list[Diagnostic] = []
    docs: list[Document] = []
    for path in _collect(paths, diags):
        data = _read(path)
        if isinstance(data, Diagnostic):
            diags.append(data)
            continue
        found, problems = load_text(data, path)
        docs.extend(found)
        diags.extend(problems)
    return docs, sort_unique(diags)


def load_text(text: str | bytes, path: str) -> tuple[list[Document], list[Diagnostic]]:
    """Load every document of one file's content; ``path`` is only for display."""
    source = _decode(text, path) if isinstance(text, bytes) else _unicode(text, path)
    if isinstance(source, Diagnostic):
        return [], [source]
    bad = _BAD_CHAR.search(source)
    if bad is not None:
        return [], [_bad_char(source, bad.start(), path)]
    docs, diags = _load_source(source, path)
    return docs, sort_unique(diags)


# --- files ------------------------------------------------------------------


def _collect(paths: Sequence[str | os.PathLike[str]], diags: list[Diagnostic]) -> list[str]:
    """The files to load, each once, sorted by path."""
    seen: set[str] = set()
    files: list[str] = []
    for given in paths:
        path = os.fspath(given)
        for file in _walk(path, diags) if os.path.isdir(path) else [path]:
            ident = os.path.normcase(os.path.abspath(file))
            if ident not in seen:
                seen.add(ident)
                files.append(file)
    return sorted(files, key=_path_key)


def _walk(top: str, diags: list[Diagnostic]) -> list[str]:
    failures: list[OSError] = []
    found: list[str] = []
    for root, dirs, files in os.walk(top, onerror=failures.append):
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        found += [
            os.path.join(root, name)
            for name in files
            if not name.startswith(".") and name.endswith(_SUFFIXES)
        ]
    for exc in failures:
        reason = exc.strerror or str(exc)
        diags.append(error("BP108", f"cannot read directory: {reason}", str(exc.filename or top)))
    if not found and not failures:
        diags.append(error("BP108", "directory contains no YAML files (*.yaml, *.yml)", top))
    return found


def _path_key(path: str) -> tuple[str, ...]:
    return tuple(path.replace(os.sep, "/").split("/"))


def _read(path: str) -> bytes | Diagnostic:
    """The file's bytes; only regular files (symlinks followed) are opened.

    A FIFO, socket or device named ``*.yaml`` would block the read or touch
    hardware: it is reported without being opened (``stat`` first), and the
    file is opened non-blocking so that a swap between ``stat`` and ``open``
    cannot hang either.
    """
    try:
        kind = _not_regular(os.stat(path).st_mode)
        if kind:
            return _not_a_file(path, kind)
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_NOCTTY | _O_BINARY)
        with open(fd, "rb") as handle:
            info = os.fstat(fd)
            kind = _not_regular(info.st_mode)
            if kind:
                return _not_a_file(path, kind)
            if info.st_size > MAX_FILE_BYTES:
                return _too_large(path, info.st_size)
            return handle.read(MAX_FILE_BYTES + 1)  # grown since fstat: load_text checks
    except FileNotFoundError:
        return error("BP108", "path does not exist", path)
    except OSError as exc:
        return error("BP108", f"cannot read file: {exc.strerror or exc}", path)


_O_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)
_O_NOCTTY: Final = getattr(os, "O_NOCTTY", 0)
_O_BINARY: Final = getattr(os, "O_BINARY", 0)


def _not_regular(mode: int) -> str:
    """What a non-regular file is (``a FIFO``, ...), or '' for a regular file."""
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "another kind of special file"


def _not_a_file(path: str, kind: str) -> Diagnostic:
    message = f"not a regular file (it is {kind}); blueprints are read from regular files only"
    return error("BP108", message, path)


def _too_large(path: str, size: int) -> Diagnostic:
    message = f"file is larger than 16 MiB ({size} bytes); refusing to parse it"
    return error("BP111", message, path, 1, 1)


# --- text -------------------------------------------------------------------

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
        return _too_large(path, len(data))
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
        return error("BP102", message, path, *_line_col(prefix, len(prefix)))


def _unicode(text: str, path: str) -> str | Diagnostic:
    if len(text) > MAX_FILE_BYTES:
        return _too_large(path, len(text))
    return text.removeprefix("\ufeff")


def _bad_char(source: str, index: int, path: str) -> Diagnostic:
    code = ord(source[index])
    where = _line_col(source, index)
    if 0xD800 <= code <= 0xDFFF:
        return error(
            "BP102", f"text is not valid Unicode: lone surrogate U+{code:04X}", path, *where
        )
    hint = " (is the file UTF-16?)" if code == 0 else ""
    message = f"control character U+{code:04X} is not allowed in YAML{hint}"
    return error("BP101", message, path, *where)


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of ``text[index]`` (line breaks: LF, CRLF, CR)."""
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + text.count("\r", 0, index) - text.count("\r\n", 0, index)
    start = max(text.rfind("\n", 0, index), text.rfind("\r", 0, index)) + 1
    return line + 1, index - start + 1


# --- composing --------------------------------------------------------------


class _Composing(Protocol):
    def check_node(self) -> bool: ...
    def get_node(self) -> Node | None: ...
    def check_event(self, *choices: Any) -> bool: ...
    def get_event(self) -> Event | None: ...
    def dispose(self) -> None: ...


class _Unresolved:
    """Leaves implicit tags to us: untagged plain scalars get ``_PLAIN``."""

    def resolve(self, kind: type[Node], value: str | None, implicit: Any) -> str:
        if kind is ScalarNode:
            return _PLAIN if implicit[0] else _STR
        return _MAP if kind is MappingNode else _SEQ

    def descend_resolver(self, parent: Node | None, index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


class _PyComposer(_Unresolved, Reader, Scanner, Parser, Composer):
    """Pure-Python composer, used when PyYAML was built without libyaml."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)


_COMPOSER: Callable[[str], _Composing] = _PyComposer
# libyaml >= 0.2.6 stops at 1000 nesting levels itself; older ones need our pre-scan
_NEEDS_DEPTH_PRESCAN = False
try:
    from yaml._yaml import CParser, get_version
except ImportError:  # pragma: no cover - PyYAML without libyaml
    pass
else:

    class _CComposer(_Unresolved, CParser):
        """libyaml's composer (fast)."""

    _COMPOSER = _CComposer
    _NEEDS_DEPTH_PRESCAN = get_version() < (0, 2, 6)

_PARSE_ERRORS: Final = (yaml.YAMLError, RecursionError, MemoryError, UnicodeError)


def _load_source(source: str, path: str) -> tuple[list[Document], list[Diagnostic]]:
    """Compose and build document by document; no documents from the first failing one on."""
    deep = _deep_position(source) if _NEEDS_DEPTH_PRESCAN and _may_nest(source) else None
    builder = _AliasBuilder if "&" in source and _starts_token(source, "*") else _Builder
    bang = _starts_token(source, "!", " \t\r\n,]}")  # the non-specific tag '!'
    docs: list[Document] = []
    diags: list[Diagnostic] = []
    failed = False
    index = 0
    composer = _COMPOSER(source)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while True:
            if deep is not None and index == deep[0]:
                diags.append(_too_deep(path, deep[1], deep[2]))
                break
            try:
                if not composer.check_node():
                    break
                root = composer.get_node()
            except _PARSE_ERRORS as exc:
                diags.append(_parse_problem(exc, source, path))
                break
            assert root is not None
            doc, problems = _document(root, builder(path, source, bang), index)
            diags += problems
            failed = failed or any(d.is_error for d in problems)
            if doc is not None and not failed:
                docs.append(doc)
            index += 1
    finally:
        composer.dispose()
        if gc_was_enabled:
            gc.enable()
    if index == 0 and not diags:
        diags.append(warning("BP107", "empty file: no YAML document", path, 1, 1))
    return docs, diags


def _starts_token(source: str, sign: str, followers: str = "") -> bool:
    """Cheap hint: may ``sign`` start a token (alias, tag) somewhere, followed by ``followers``?"""
    index = source.find(sign)
    while index >= 0:
        after = source[index + 1 : index + 2]
        if (index == 0 or source[index - 1] in " \t\r\n[{,:") and (
            not followers or after in followers
        ):
            return True
        index = source.find(sign, index + 1)
    return False


def _document(
    root: Node, builder: _Builder, index: int
) -> tuple[Document | None, list[Diagnostic]]:
    mark = root.start_mark
    if root.tag is _PLAIN and root.value == "" and mark.index == root.end_mark.index:
        line = _document_line(builder.source, mark.index, mark.line + 1)
        return None, [warning("BP107", "empty document (skipped)", builder.path, line, 1)]
    try:
        data = builder.build_document(root)
    except _Abort as abort:
        return None, [*builder.diags, abort.diagnostic]
    if root.__class__ is not MappingNode:
        kind = "a scalar" if data is _INVALID else _kind(data)
        message = (
            f"document is not a mapping (it is {kind}); expected apiVersion, kind, metadata, spec"
        )
        builder.report("BP109", message, root)
    if builder.diags:
        return None, builder.diags
    line, column = mark.line + 1, mark.column + 1
    return Document(
        builder.path, index, data, line, column, positions=builder.positions, source=builder.source
    ), []


def _document_line(source: str, index: int, line: int) -> int:
    """Line of the ``---`` that starts an empty document ending at ``index``."""
    marker = source.rfind("\n---", 0, index)
    if marker < 0:
        return 1 if source.startswith("---") else line
    return line - source.count("\n", marker + 1, index)


def _parse_problem(exc: BaseException, source: str, path: str) -> Diagnostic:
    if isinstance(exc, RecursionError) or (
        isinstance(exc, MarkedYAMLError) and "maximum nesting depth" in str(exc.problem)
    ):
        # libyaml's own limit (1000 levels) stops its look-ahead: scan only up to there
        end = (
            exc.problem_mark.index
            if isinstance(exc, MarkedYAMLError) and exc.problem_mark
            else None
        )
        deep = _deep_position(source[:end])
        return _too_deep(path, *(deep[1:] if deep else _error_mark(exc)))
    if isinstance(exc, MemoryError):
        return error("BP111", "file is too large to load: out of memory", path, 1, 1)
    if isinstance(exc, ReaderError):
        message = f"{exc.reason}: character U+{int(exc.character):04X}"
        return error("BP101", message, path, *_line_col(source, int(exc.position)))
    return error("BP101", _syntax_message(exc), path, *_error_mark(exc))


def _error_mark(exc: BaseException) -> tuple[int, int]:
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            return mark.line + 1, mark.column + 1
    return 1, 1


def _syntax_message(exc: BaseException) -> str:
    if not isinstance(exc, MarkedYAMLError):
        return str(exc).strip() or type(exc).__name__
    context, first = exc.context, exc.context_mark
    if context and "duplicate anchor" in context and first is not None:
        return f"duplicate anchor (first defined at line {first.line + 1})"
    problem = exc.problem or context or "invalid YAML"
    if not exc.problem or not context:
        return problem
    where = f" at line {first.line + 1}, column {first.column + 1}" if first is not None else ""
    return f"{problem} ({context}{where})"


def _too_deep(path: str, line: int, column: int) -> Diagnostic:
    return error("BP106", f"nesting deeper than {MAX_DEPTH} levels", path, line, column)


def _may_nest(source: str) -> bool:
    """Cheap bound: could ``source`` nest deeper than libyaml's composer safely recurses?"""
    limit = 1000
    if len(source) <= limit:  # every level takes at least one character
        return False
    flow = source.count("[") + source.count("{")
    # a block collection is indented past its parent, or (a sequence in a mapping) level with it
    widest = max(map(len, source.split("\n")))
    return flow + 2 * (widest + 1) > limit


def _deep_position(source: str) -> tuple[int, int, int] | None:
    """(document index, line, column) of the first collection nested deeper than MAX_DEPTH."""
    parser = _COMPOSER(source)
    depth, doc = 0, -1
    try:
        while parser.check_event():
            event = parser.get_event()
            if isinstance(event, CollectionStartEvent):
                depth += 1
                mark = event.start_mark
                if depth > MAX_DEPTH and mark is not None:
                    return doc, mark.line + 1, mark.column + 1
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
            elif isinstance(event, DocumentStartEvent):
                doc += 1
    except _PARSE_ERRORS:
        return None
    finally:
        parser.dispose()
    return None


# --- building values --------------------------------------------------------


class _Abort(Exception):
    """Stops building a document (limits: size, aliases, depth)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


class _Builder:
    """Builds plain values from one document's node graph, recording positions."""

    __slots__ = ("bang", "diags", "nodes", "path", "positions", "root", "source")

    def __init__(self, path: str, source: str, bang: bool) -> None:
        self.path = path
        self.source = source
        self.bang = bang  # the file may use the non-specific tag '!': look for it
        self.positions: dict[Loc, _Pos] = {}
        self.diags: list[Diagnostic] = []
        self.nodes = 0
        self.root: Node | None = None

    def build_document(self, root: Node) -> Any:
        self.root = root
        return self.build(root, (), 1, 0, 0)

    def diagnostic(self, code: str, message: str, node: Node) -> Diagnostic:
        mark = node.start_mark
        return error(code, message, self.path, mark.line + 1, mark.column + 1)

    def report(self, code: str, message: str, node: Node) -> None:
        self.diags.append(self.diagnostic(code, message, node))

    def build(self, node: Node, loc: Loc, depth: int, key_line: int, key_col: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Abort(self.diagnostic("BP105", _TOO_MANY_NODES, node))
        mark = node.start_mark
        line, col = mark.line + 1, mark.column + 1
        if type(node) is ScalarNode:
            end = node.end_mark.index
            self.positions[loc] = (line, col, key_line or line, key_col or col, mark.index, end)
            if node.tag is _PLAIN and not self.bang and not node.style:  # the common case
                return _resolve_plain(node.value)
            return self._scalar(node)
        self.positions[loc] = (line, col, key_line or line, key_col or col, -1, -1)
        if depth > MAX_DEPTH:
            raise _Abort(_too_deep(self.path, line, col))
        if type(node) is MappingNode:
            if node.tag is not _MAP or self.bang:
                self._check_collection_tag(node, _MAP)
            return self._mapping(node, loc, depth)
        if node.tag is not _SEQ or self.bang:
            self._check_collection_tag(node, _SEQ)
        return [self.build(item, (*loc, i), depth + 1, 0, 0) for i, item in enumerate(node.value)]

    def _mapping(self, node: Node, loc: Loc, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node)
            if key is None:
                continue
            sub = (*loc, key)
            if key in result:
                first = self.positions[sub][2]
                self.report(
                    "BP103", f"duplicate key {key!r} (first defined at line {first})", key_node
                )
                continue
            mark = key_node.start_mark
            result[key] = self.build(value_node, sub, depth + 1, mark.line + 1, mark.column + 1)
        return result

    def _scalar(self, node: ScalarNode) -> Any:
        if node.tag is _STR and not self._nonspecific(node):  # quoted, untagged
            return node.value
        if self._is_plain(node):
            return _resolve_plain(node.value)
        return self._tagged(node)

    def _key(self, node: Node) -> str | None:
        if type(node) is ScalarNode and not self.bang:  # the common cases
            if node.tag is _STR:
                return str(node.value)
            if node.tag is _PLAIN and not node.style and node.value != "<<":
                value = _resolve_plain(node.value)
                if type(value) is str:
                    return value
        return self._checked_key(node)

    def _checked_key(self, node: Node) -> str | None:
        """The key as a string, or None after reporting why it is not one."""
        if not isinstance(node, ScalarNode):
            kind = "a mapping" if isinstance(node, MappingNode) else "a sequence"
            self.report("BP110", f"mapping key is not a string (it is {kind})", node)
            return None
        if self._is_plain(node) and node.value == "<<":
            message = "merge key '<<' is not supported; write the keys out explicitly"
            self.report("BP104", message, node)
            return None
        value = self._scalar(node)
        if value is _INVALID:
            return None
        if isinstance(value, str):
            return value
        text = node.value
        message = (
            f'mapping key {text} is not a string (YAML reads {_kind(value)}); quote it: "{text}"'
        )
        if not text:
            message = "mapping key is empty (YAML reads null); write a string key"
        self.report("BP110", message, node)
        return None

    def _is_plain(self, node: ScalarNode) -> bool:
        """An untagged plain scalar (not quoted, no non-specific tag '!')."""
        return node.tag is _PLAIN and not node.style and not self._nonspecific(node)

    def _nonspecific(self, node: Node) -> bool:
        """Is the node tagged '!'? (the composer hands such nodes to the resolver)"""
        if not self.bang:
            return False
        index = node.start_mark.index
        source = self.source
        return source.startswith(("!", "&"), index) and bool(_NONSPECIFIC.match(source, index))

    def _tagged(self, node: Node) -> Any:
        """A scalar with an explicit tag (or '!'); _INVALID after reporting."""
        tag = "!" if node.tag is _PLAIN or node.tag is _STR else node.tag
        convert = _CONVERTERS.get(tag)
        if convert is None:
            self._reject_tag(node, tag)
            return _INVALID
        value = convert(node.value)
        if value is _INVALID:
            message = f"tag '{_show_tag(node.tag)}' does not fit the value {node.value!r}"
            self.report("BP104", message, node)
        return value

    def _check_collection_tag(self, node: Node, implicit: str) -> None:
        if node.tag is implicit:  # untagged, or '!'
            if self._nonspecific(node):
                self._reject_tag(node, "!")
        elif node.tag != implicit:
            self._reject_tag(node, node.tag)

    def _reject_tag(self, node: Node, tag: str) -> None:
        if tag in _CONVERTERS or tag in (_MAP, _SEQ):
            kind = {ScalarNode: "scalar", MappingNode: "mapping"}.get(node.__class__, "sequence")
            message = f"tag '{_show_tag(tag)}' cannot be used on a {kind}"
        else:
            message = (
                f"tag '{_show_tag(tag)}' is not allowed (only standard YAML tags: {_ALLOWED_TAGS})"
            )
        self.report("BP104", message, node)


class _AliasBuilder(_Builder):
    """A builder for files with anchors: counts alias uses and catches recursive ones."""

    __slots__ = ("active", "aliases", "expanding", "seen")

    def __init__(self, path: str, source: str, bang: bool) -> None:
        super().__init__(path, source, bang)
        self.aliases = 0
        self.expanding = 0
        self.seen: set[int] = set()
        self.active: set[int] = set()

    def build(self, node: Node, loc: Loc, depth: int, key_line: int, key_col: int) -> Any:
        ident = id(node)
        if ident in self.seen:  # an alias (or a value inside one)
            self._count_alias(node)
            self.expanding += 1
            try:
                return _Builder.build(self, node, loc, depth, key_line, key_col)
            finally:
                self.expanding -= 1
        self.seen.add(ident)
        if type(node) is ScalarNode:
            return _Builder.build(self, node, loc, depth, key_line, key_col)
        self.active.add(ident)  # anchors are defined before use: cycles show on first visits
        try:
            return _Builder.build(self, node, loc, depth, key_line, key_col)
        finally:
            self.active.discard(ident)

    def _count_alias(self, node: Node) -> None:
        if id(node) in self.active:
            raise _Abort(
                self.diagnostic("BP105", "recursive alias: an anchor is used inside itself", node)
            )
        if self.expanding:
            return
        self.aliases += 1
        if self.aliases > MAX_ALIASES:
            message = f"aliases/anchors expand too much: more than {MAX_ALIASES} alias uses"
            raise _Abort(self.diagnostic("BP105", message, node))
        if self.aliases == 1:
            self._check_expansion()

    def _check_expansion(self) -> None:
        """Before the first alias expands: would the document grow past MAX_NODES values?"""
        sizes: dict[int, int] = {}
        node = self.root
        if node is None or _expanded_size(node, sizes, 1) <= MAX_NODES:
            return
        visited: set[int] = set()  # point at the innermost value that alone is too big
        while id(node) not in visited:
            visited.add(id(node))
            big = [child for child in _children(node) if sizes.get(id(child), 1) > MAX_NODES]
            if not big:
                break
            node = big[0]
        message = (
            f"aliases/anchors expand too much: this value expands to more than {MAX_NODES} values"
        )
        raise _Abort(self.diagnostic("BP105", message, node))


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [value for _, value in node.value]
    return [] if isinstance(node, ScalarNode) else list(node.value)


def _expanded_size(node: Node, sizes: dict[int, int], depth: int) -> int:
    """How many values ``node`` expands to, aliases included (memoized by node)."""
    if depth > MAX_DEPTH:  # build() stops there
        return 1
    known = sizes.get(id(node))
    if known is None:
        sizes[id(node)] = 0  # a recursive alias: build() reports it
        children = _children(node)
        known = 1 + sum(_expanded_size(child, sizes, depth + 1) for child in children)
        sizes[id(node)] = known
    return known


# --- scalars: YAML 1.2 core schema -------------------------------------------

_NULLS: Final[dict[str, Any]] = dict.fromkeys(("", "~", "null", "Null", "NULL"))
_BOOLS: Final[dict[str, Any]] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
}
_FLOAT_WORDS: Final[dict[str, Any]] = {
    **{sign + dot: math.inf for sign in ("", "+") for dot in (".inf", ".Inf", ".INF")},
    **{"-" + dot: -math.inf for dot in (".inf", ".Inf", ".INF")},
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
}
_WORDS: Final = {**_NULLS, **_BOOLS, **_FLOAT_WORDS}
_INT: Final = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT: Final = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_NUMBER_START: Final = frozenset("0123456789+-.")
# the non-specific tag '!' (maybe after an anchor) at a node's start
_NONSPECIFIC: Final = re.compile(
    r"(?:&[^ \t\r\n]*+(?:[ \t\r\n]|#[^\r\n]*+)*+)?!(?:[ \t\r\n,\]}]|$)"
)
# anchors and tags in front of a scalar, with the spaces and comments after them
_PROPERTIES: Final = re.compile(r"(?:[!&][^ \t\r\n]*+(?:[ \t\r\n]|#[^\r\n]*+)*+)*+")


def _to_int(text: str) -> Any:
    """The int of a text matching _INT (_INVALID past Python's digit limit)."""
    base = {"0o": 8, "0x": 16}.get(text[:2], 10)
    try:
        return int(text if base == 10 else text[2:], base)
    except ValueError:
        return _INVALID


def _parse_int(text: str) -> Any:
    return _INVALID if _INT.fullmatch(text) is None else _to_int(text)


def _parse_float(text: str) -> Any:
    if text in _FLOAT_WORDS:
        return _FLOAT_WORDS[text]
    return float(text) if _FLOAT.fullmatch(text) else _INVALID


def _resolve_plain(text: str) -> Any:
    """YAML 1.2 core schema for an untagged plain scalar."""
    value = _WORDS.get(text, _INVALID)
    if value is _INVALID and text[0] in _NUMBER_START:
        if _INT.fullmatch(text):
            value = _to_int(text)
        elif _FLOAT.fullmatch(text):
            value = float(text)
    return text if value is _INVALID else value


_CONVERTERS: Final[dict[str, Callable[[str], Any]]] = {
    _STR: str,
    _STD + "int": _parse_int,
    _STD + "float": _parse_float,
    _STD + "bool": lambda text: _BOOLS.get(text, _INVALID),
    _STD + "null": lambda text: None if text in _NULLS else _INVALID,
}


def _show_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_STD) if tag.startswith(_STD) else tag


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a mapping" if isinstance(value, dict) else "a sequence"
