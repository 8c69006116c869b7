"""YAML syntax on libyaml's composer: node graphs per document, syntax and depth problems."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any, Final, Protocol

import yaml
from yaml.composer import Composer
from yaml.error import MarkedYAMLError
from yaml.events import CollectionEndEvent, CollectionStartEvent, DocumentStartEvent, Event
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.scanner import Scanner

from slmops_bp.diagnostics import Diagnostic, error, warning
from slmops_bp.load.build import MAP, PLAIN, SEQ, STR, AliasBuilder, Builder, to_document
from slmops_bp.load.document import Document, line_col
from slmops_bp.load.limits import MAX_DEPTH, too_deep


class _Composing(Protocol):
    def check_node(self) -> bool: ...
    def get_node(self) -> Node | None: ...
    def check_event(self, *choices: Any) -> bool: ...
    def get_event(self) -> Event | None: ...
    def dispose(self) -> None: ...


class _Unresolved:
    """Leaves implicit tags to us: untagged plain scalars get ``PLAIN``."""

    def resolve(self, kind: type[Node], value: str | None, implicit: Any) -> str:
        if kind is ScalarNode:
            return PLAIN if implicit[0] else STR
        return MAP if kind is MappingNode else SEQ

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


def load_source(source: str, path: str) -> tuple[list[Document], list[Diagnostic]]:
    """Compose and build document by document; no documents from the first failing one on."""
    deep = _deep_position(source) if _NEEDS_DEPTH_PRESCAN and _may_nest(source) else None
    builder = AliasBuilder if "&" in source and _starts_token(source, "*") else Builder
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
                diags.append(too_deep(path, deep[1], deep[2]))
                break
            try:
                if not composer.check_node():
                    break
                root = composer.get_node()
            except _PARSE_ERRORS as exc:
                diags.append(_parse_problem(exc, source, path))
                break
            assert root is not None
            doc, problems = to_document(root, builder(path, source, bang), index)
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
        return too_deep(path, *(deep[1:] if deep else _error_mark(exc)))
    if isinstance(exc, MemoryError):
        return error("BP111", "file is too large to load: out of memory", path, 1, 1)
    if isinstance(exc, ReaderError):
        message = f"{exc.reason}: character U+{int(exc.character):04X}"
        return error("BP101", message, path, *line_col(source, int(exc.position)))
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
