"""Plain values from one document's node graph (YAML 1.2 core schema), with positions."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Final

from yaml.nodes import MappingNode, Node, ScalarNode

from slmops_bp.diagnostics import Diagnostic, error, warning
from slmops_bp.load.document import Document, Loc, Position
from slmops_bp.load.limits import MAX_ALIASES, MAX_DEPTH, MAX_NODES, too_deep

_STD: Final = "tag:yaml.org,2002:"
STR: Final = _STD + "str"
MAP: Final = _STD + "map"
SEQ: Final = _STD + "seq"
PLAIN: Final = "<plain>"  # tag the composer gets for untagged plain scalars; compared by identity
_INVALID: Final[Any] = object()
_ALLOWED_TAGS: Final = "!!str, !!int, !!float, !!bool, !!null, !!map, !!seq"
_TOO_MANY_NODES: Final = (
    f"aliases/anchors expand too much: more than {MAX_NODES} values in one document"
)

# --- building values --------------------------------------------------------

# Position(...) goes through a Python-level __new__; this is the per-value hot path
_position: Final = tuple.__new__


class _Abort(Exception):
    """Stops building a document (limits: size, aliases, depth)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


class Builder:
    """Builds plain values from one document's node graph, recording positions."""

    __slots__ = ("bang", "diags", "nodes", "path", "positions", "root", "source")

    def __init__(self, path: str, source: str, bang: bool) -> None:
        self.path = path
        self.source = source
        self.bang = bang  # the file may use the non-specific tag '!': look for it
        self.positions: dict[Loc, Position] = {}
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
            where = (line, col, key_line or line, key_col or col, mark.index, end)
            self.positions[loc] = _position(Position, where)
            if node.tag is PLAIN and not self.bang and not node.style:  # the common case
                return _resolve_plain(node.value)
            return self._scalar(node)
        self.positions[loc] = _position(
            Position, (line, col, key_line or line, key_col or col, -1, -1)
        )
        if depth > MAX_DEPTH:
            raise _Abort(too_deep(self.path, line, col))
        if type(node) is MappingNode:
            if node.tag is not MAP or self.bang:
                self._check_collection_tag(node, MAP)
            return self._mapping(node, loc, depth)
        if node.tag is not SEQ or self.bang:
            self._check_collection_tag(node, SEQ)
        return [self.build(item, (*loc, i), depth + 1, 0, 0) for i, item in enumerate(node.value)]

    def _mapping(self, node: Node, loc: Loc, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node)
            if key is None:
                continue
            sub = (*loc, key)
            if key in result:
                first = self.positions[sub].key_line
                self.report(
                    "BP103", f"duplicate key {key!r} (first defined at line {first})", key_node
                )
                continue
            mark = key_node.start_mark
            result[key] = self.build(value_node, sub, depth + 1, mark.line + 1, mark.column + 1)
        return result

    def _scalar(self, node: ScalarNode) -> Any:
        if node.tag is STR and not self._nonspecific(node):  # quoted, untagged
            return node.value
        if self._is_plain(node):
            return _resolve_plain(node.value)
        return self._tagged(node)

    def _key(self, node: Node) -> str | None:
        if type(node) is ScalarNode and not self.bang:  # the common cases
            if node.tag is STR:
                return str(node.value)
            if node.tag is PLAIN and not node.style and node.value != "<<":
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
        return node.tag is PLAIN and not node.style and not self._nonspecific(node)

    def _nonspecific(self, node: Node) -> bool:
        """Is the node tagged '!'? (the composer hands such nodes to the resolver)"""
        if not self.bang:
            return False
        index = node.start_mark.index
        source = self.source
        return source.startswith(("!", "&"), index) and bool(_NONSPECIFIC.match(source, index))

    def _tagged(self, node: Node) -> Any:
        """A scalar with an explicit tag (or '!'); _INVALID after reporting."""
        tag = "!" if node.tag is PLAIN or node.tag is STR else node.tag
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
        if tag in _CONVERTERS or tag in (MAP, SEQ):
            kind = {ScalarNode: "scalar", MappingNode: "mapping"}.get(node.__class__, "sequence")
            message = f"tag '{_show_tag(tag)}' cannot be used on a {kind}"
        else:
            message = (
                f"tag '{_show_tag(tag)}' is not allowed (only standard YAML tags: {_ALLOWED_TAGS})"
            )
        self.report("BP104", message, node)


class AliasBuilder(Builder):
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
                return Builder.build(self, node, loc, depth, key_line, key_col)
            finally:
                self.expanding -= 1
        self.seen.add(ident)
        if type(node) is ScalarNode:
            return Builder.build(self, node, loc, depth, key_line, key_col)
        self.active.add(ident)  # anchors are defined before use: cycles show on first visits
        try:
            return Builder.build(self, node, loc, depth, key_line, key_col)
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


def to_document(
    root: Node, builder: Builder, index: int
) -> tuple[Document | None, list[Diagnostic]]:
    mark = root.start_mark
    if root.tag is PLAIN and root.value == "" and mark.index == root.end_mark.index:
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
    STR: str,
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
