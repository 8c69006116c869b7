"""The ansible-core path: ``InventoryManager`` and ``VariableManager`` as
``ansible-inventory --list`` runs them.

This module runs in a child process (``python -m slmops_bp.inventory.ansible_core``,
started by :mod:`slmops_bp.inventory.worker`) so that an inventory script or plugin
that never finishes can be stopped: it reads ``(given, resolved, range_limit)`` as a
pickle on stdin and writes ``(inventory, diagnostics)`` as a pickle on stdout.

Where ansible-core warns and goes on (a source it cannot parse, a YAML key it
skips), the result keeps what Ansible kept and says so (BP809); only when no
host at all is left is a parse failure an error (BP801).
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from slmops_bp.ansible_yaml import Unsafe
from slmops_bp.diagnostics import Diagnostic, EnvironmentFailure, error, warning
from slmops_bp.inventory.model import (
    CODE_NO_HOSTS,
    CODE_RANGE,
    CODE_SKIPPED,
    CODE_UNPARSEABLE,
    Host,
    Inventory,
    RangeTooLarge,
    group_members,
)
from slmops_bp.inventory.patterns import check_range
from slmops_bp.inventory.values import DUPLICATE_HINT, json_key

PROGRESS = "bp-inventory-source: "  # a line on stderr each time a source is started


@dataclass
class _Failure:
    top: str  # the source as passed to InventoryManager
    file: str  # the file (inside it) that failed
    plugin: str
    message: str
    line: int = 0
    column: int = 0


@dataclass
class _Recorder:
    """Collects what Ansible would print; tracks which source is being parsed."""

    failures: list[_Failure] = field(default_factory=list)
    # (file, line, column, Ansible's warning): what Ansible warns about and goes on
    skipped: list[tuple[str, int, int, str]] = field(default_factory=list)
    too_large: list[RangeTooLarge] = field(default_factory=list)
    top: str = ""
    file: str = ""

    def failure(self, msg: str | None, exception: BaseException | None = None, **_: Any) -> None:
        plugin = re.search(r"'([^']+)' plugin", msg or "")
        text = _one_line(str(exception)) if exception is not None else _one_line(msg or "")
        line, column = _exception_position(exception)
        name = plugin.group(1) if plugin else ""
        self.failures.append(_Failure(self.top, self.file, name, text, line, column))

    def warning(self, msg: str, *_: Any, obj: Any = None, **__: Any) -> None:
        text = str(msg)
        legacy = re.search(r"Failed to parse (.+?) with (\S+) plugin: (.*)", text, re.S)
        duplicate = _LEGACY_DUPLICATE.search(text)
        if legacy:  # ansible-core < 2.19 reports plugin failures as plain warnings
            path, plugin, detail = legacy.groups()
            line, column = _legacy_position(path, detail)
            self.failures.append(_Failure(self.top, path, plugin, _one_line(detail), line, column))
        elif duplicate:  # ansible-core < 2.19: the position of the mapping
            source, row, col, key = duplicate.groups()
            message = f"Found duplicate mapping key {key!r}. {DUPLICATE_HINT}"
            self.skipped.append((source, int(row), int(col), message))
        elif text.startswith("Skipping "):
            self.skipped.append((self.file, 0, 0, _type_names(_one_line(text))))
        elif text.startswith("Found both group and host"):  # after all sources are read
            self.skipped.append((self.top, 0, 0, _one_line(text)))
        elif text.startswith("Found duplicate mapping key"):
            origin = _origin_of(obj)
            path = getattr(origin, "path", None) or self.file
            line = getattr(origin, "line_num", None) or 0
            column = getattr(origin, "col_num", None) or 0
            if DUPLICATE_HINT not in text:
                text = f"{text} {DUPLICATE_HINT}"
            self.skipped.append((str(path), line, column, _one_line(text)))

    def ignore(self, *_: Any, **__: Any) -> None:
        return None


_LEGACY_DUPLICATE = re.compile(
    r"While constructing a mapping from (.+?), line (\d+), column (\d+),"
    r" found a duplicate dict key \((.*)\)\."
)


def _legacy_position(path: str, detail: str) -> tuple[int, int]:
    """The line (and column) ansible-core < 2.19 names in a failure's text."""
    found = re.search(r"line (\d+), column (\d+)", detail)
    if found:
        return int(found.group(1)), int(found.group(2))
    found = re.search(re.escape(path) + r":(\d+):", detail)
    return (int(found.group(1)), 0) if found else (0, 0)


def _type_names(text: str) -> str:
    """ "<class '..._AnsibleTaggedList'>" -> "list", as the fast path says it."""
    return re.sub(
        r"<class '(?:[\w.]*\.)?(?:_AnsibleTagged)?(\w+)'>", lambda m: m.group(1).lower(), text
    )


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text).strip()


def _exception_position(exception: BaseException | None) -> tuple[int, int]:
    _path, line, column = _exception_origin(exception)
    return line, column


def _exception_origin(exception: BaseException | None) -> tuple[str | None, int, int]:
    """(path, line, column) of the first Ansible Origin found along the exception chain."""
    first_path: str | None = None
    seen: set[int] = set()
    while exception is not None and id(exception) not in seen:
        seen.add(id(exception))
        origin = _origin_of(getattr(exception, "obj", None))
        path, line = getattr(origin, "path", None), getattr(origin, "line_num", None)
        first_path = first_path or (path if isinstance(path, str) else None)
        if isinstance(line, int) and line > 0:
            column = getattr(origin, "col_num", None)
            return first_path, line, column if isinstance(column, int) else 0
        exception = exception.__cause__ or exception.__context__
    return first_path, 0, 0


def _origin_of(obj: Any) -> Any:
    """An Origin itself, or the Origin tag of a tagged value (ansible-core >= 2.19)."""
    if obj is None or hasattr(obj, "line_num"):
        return obj
    try:
        from ansible._internal._datatag._tags import Origin
    except ImportError:
        return None
    return Origin.get_tag(obj)


@contextmanager
def _quiet_ansible(recorder: _Recorder) -> Iterator[None]:
    """Route Ansible's Display output into the recorder instead of stderr/stdout."""
    from ansible.utils.display import Display

    display = Display()
    patches: dict[str, Callable[..., None]] = {
        "display": recorder.ignore,
        "warning": recorder.warning,
        "error_as_warning": recorder.failure,
        "deprecated": recorder.ignore,
        "error": recorder.ignore,
    }
    for name, replacement in patches.items():
        setattr(display, name, replacement)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _cap_host_ranges(plugin: Any, recorder: _Recorder, limit: int) -> None:
    """Count a host pattern's hosts before the plugin expands it (Ansible has no limit)."""
    original = getattr(plugin, "_expand_hostpattern", None)
    if original is None or getattr(original, "bp_capped", False):
        return

    def expand(hostpattern: Any) -> Any:
        from ansible.errors import AnsibleError

        try:
            check_range(str(hostpattern), limit)
        except RangeTooLarge as exc:
            exc.path = recorder.file
            exc.line = getattr(_origin_of(hostpattern), "line_num", 0) or 0
            recorder.too_large.append(exc)
            raise AnsibleError(str(exc)) from None
        return original(hostpattern)

    expand.bp_capped = True  # type: ignore[attr-defined]
    plugin._expand_hostpattern = expand


def _manager_class(base: Any) -> Any:
    """InventoryManager that records, per top-level source, the hosts it defines."""

    class RecordingInventoryManager(base):  # type: ignore[misc]
        def __init__(
            self, loader: Any, sources: list[str], recorder: _Recorder, range_limit: int
        ) -> None:
            self.bp_recorder = recorder
            self.bp_range_limit = range_limit
            self.bp_hosts: dict[str, set[str]] = {}
            self.bp_parsed: dict[str, bool] = {}
            self.bp_depth = 0
            super().__init__(loader=loader, sources=sources)

        def _fetch_inventory_plugins(self) -> list[Any]:
            plugins: list[Any] = super()._fetch_inventory_plugins()
            for plugin in plugins:
                _cap_host_ranges(plugin, self.bp_recorder, self.bp_range_limit)
            return plugins

        def parse_sources(self, cache: bool = False) -> None:
            data = self._inventory
            original = data.add_host

            def add_host(host: str, group: str | None = None, port: Any = None) -> Any:
                name = original(host, group, port)
                self.bp_hosts.setdefault(self.bp_recorder.top, set()).add(str(name))
                return name

            data.add_host = add_host
            try:
                super().parse_sources(cache=cache)
            finally:
                del data.add_host

        def parse_source(self, source: str, cache: bool = False) -> bool:
            self.bp_recorder.file = str(source)
            sys.stderr.write(f"{PROGRESS}{source}\n")
            sys.stderr.flush()
            if self.bp_depth:
                return bool(super().parse_source(source, cache=cache))
            self.bp_recorder.top = str(source)
            self.bp_hosts.setdefault(str(source), set())
            self.bp_depth = 1
            try:
                parsed = bool(super().parse_source(source, cache=cache))
            finally:
                self.bp_depth = 0
            self.bp_parsed[str(source)] = parsed
            return parsed

    return RecordingInventoryManager


def _init_plugin_loader() -> None:
    """What CLI.run does first: install the collection loader (inventory plugins by FQCN)."""
    from ansible.plugins import loader
    from ansible.utils.collection_loader import AnsibleCollectionConfig

    if not AnsibleCollectionConfig.collection_finder and hasattr(loader, "init_plugin_loader"):
        loader.init_plugin_loader()


def load_with_ansible(
    given: list[str], resolved: list[str], range_limit: int
) -> tuple[Inventory | None, list[Diagnostic]]:
    recorder = _Recorder()
    shown = dict(zip(resolved, given, strict=True))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from ansible import constants
            from ansible.inventory.manager import InventoryManager
            from ansible.parsing.dataloader import DataLoader
            from ansible.vars.manager import VariableManager
    except ImportError as exc:  # pragma: no cover - ansible-core is a dependency
        raise EnvironmentFailure(f"cannot import ansible-core: {exc}") from exc
    with _quiet_ansible(recorder):
        _init_plugin_loader()
        loader = DataLoader()
        try:
            manager = _manager_class(InventoryManager)(
                loader, list(resolved), recorder, range_limit
            )
        except Exception as exc:
            return None, [_exception_diag(exc, given[0])]
        if recorder.too_large:
            return None, [_range_diag(exc, shown) for exc in recorder.too_large]
        diags = _parse_diagnostics(manager, recorder, shown)
        if any(d.is_error for d in diags):
            return None, diags + _skipped_diags(recorder, shown)
        try:
            variables = VariableManager(loader=loader, inventory=manager)
            hosts = _ansible_hosts(manager, variables, constants.INTERNAL_STATIC_VARS)
        except Exception as exc:
            return None, [*diags, _exception_diag(exc, given[0])]
    inventory = Inventory(hosts, {}, list(given), "ansible")
    inventory.groups = group_members(manager.groups, hosts)
    return inventory, diags + _skipped_diags(recorder, shown)


def _skipped_diags(recorder: _Recorder, shown: dict[str, str]) -> list[Diagnostic]:
    """What Ansible warned about and went on (vars files are read last, by get_vars)."""
    return [
        warning(CODE_SKIPPED, text, shown.get(path, path), line, column)
        for path, line, column, text in dict.fromkeys(recorder.skipped)
    ]


def _range_diag(exc: RangeTooLarge, shown: dict[str, str]) -> Diagnostic:
    line = exc.line or _line_of(exc.path, exc.pattern)
    return error(CODE_RANGE, str(exc), shown.get(exc.path, exc.path), line)


def _line_of(path: str, text: str) -> int:
    """The first line of ``path`` holding ``text`` (0 when unknown)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if text in line:
                    return number
    except OSError:
        pass
    return 0


def _parse_diagnostics(
    manager: Any, recorder: _Recorder, shown: dict[str, str]
) -> list[Diagnostic]:
    """Parse failures: warnings while Ansible goes on, errors when no source parsed at all
    (Ansible then has no inventory: only the implicit localhost)."""
    nothing_left = not any(manager.bp_parsed.values())
    diags = [
        _failure_diag(f, shown, as_error=nothing_left)
        for f in _preferred_failures(recorder.failures)
    ]
    failed_tops = {f.top for f in recorder.failures}
    for top, hosts in manager.bp_hosts.items():
        if not hosts and top not in failed_tops:
            diags.append(
                warning(CODE_NO_HOSTS, "inventory source defines no hosts", shown.get(top, top))
            )
    return diags


def _preferred_failures(failures: list[_Failure]) -> list[_Failure]:
    """One failure per file: the plugin that was meant to read it."""
    by_file: dict[str, list[_Failure]] = {}
    for failure in failures:
        by_file.setdefault(failure.file, []).append(failure)
    chosen = []
    for path, candidates in by_file.items():
        wanted = _plugin_preference(path)
        ranked = sorted(
            candidates,
            key=lambda f: wanted.index(f.plugin) if f.plugin in wanted else len(wanted),
        )
        chosen.append(ranked[0])
    return chosen


def _plugin_preference(path: str) -> list[str]:
    """The plugins that were meant to read ``path``, most likely first."""
    ext = os.path.splitext(path)[1]
    wanted = ["script"] if os.path.isfile(path) and os.access(path, os.X_OK) else []
    if ext in (".yml", ".yaml"):
        wanted += ["auto", "yaml"]
    wanted += ["yaml"] if ext == ".json" else ["ini", "yaml"]
    return wanted


def _failure_diag(failure: _Failure, shown: dict[str, str], as_error: bool) -> Diagnostic:
    path = shown.get(failure.file, failure.file)
    plugin = f" with the '{failure.plugin}' plugin" if failure.plugin else ""
    if as_error:
        message = f"cannot parse inventory source{plugin}: {failure.message}"
        return error(CODE_UNPARSEABLE, message, path, failure.line, failure.column)
    message = (
        f"inventory source skipped, as Ansible does: cannot parse it{plugin}: {failure.message}"
    )
    return warning(CODE_SKIPPED, message, path, failure.line, failure.column)


def _exception_diag(exc: BaseException, default_path: str) -> Diagnostic:
    path, line, column = _exception_origin(exc)
    path = path or default_path
    message = _one_line(str(exc)) or type(exc).__name__
    return error(CODE_UNPARSEABLE, f"cannot load inventory: {message}", str(path), line, column)


def _ansible_hosts(manager: Any, variables: Any, internal: frozenset[str]) -> dict[str, Host]:
    untrusted = _untrusted_test()
    hosts = {}
    for name in sorted(manager.hosts):
        host = manager.hosts[name]
        raw = variables.get_vars(host=host, include_hostvars=False, stage="all")
        plain = {
            json_key(key, strict=False): _plain(value, untrusted)
            for key, value in raw.items()
            if key not in internal
        }
        groups = frozenset(str(group.name) for group in host.get_groups())
        hosts[str(name)] = Host(str(name), groups, plain)
    return hosts


def _untrusted_test() -> Callable[[Any], bool]:
    """A string Ansible will not template: untagged by TrustedAsTemplate (>= 2.19),
    an AnsibleUnsafe (older)."""
    try:
        from ansible._internal._datatag._tags import TrustedAsTemplate
    except ImportError:
        from ansible.utils.unsafe_proxy import AnsibleUnsafe

        return lambda value: isinstance(value, AnsibleUnsafe)
    return lambda value: not TrustedAsTemplate.is_tagged_on(value)


def _plain(value: Any, untrusted: Callable[[Any], bool]) -> Any:
    """An Ansible value as ansible-inventory's JSON shows it, untrusted strings as Unsafe."""
    if value is None or value is True or value is False:
        return value
    ciphertext = _vault_ciphertext(value)
    if ciphertext is not None:
        return {"__ansible_vault": ciphertext}
    if isinstance(value, str):
        text = str.__str__(value)
        return Unsafe(text) if untrusted(value) else text
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {json_key(k, strict=False): _plain(v, untrusted) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, untrusted) for v in value]
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _vault_ciphertext(value: Any) -> str | None:
    try:
        from ansible.parsing.vault import VaultHelper
    except ImportError:  # ansible-core < 2.19
        legacy = getattr(value, "_ciphertext", None)
        return legacy.decode() if isinstance(legacy, bytes) else None
    text = VaultHelper.get_ciphertext(value, with_tags=False)
    return str(text) if text is not None else None


def main() -> int:
    """Child process: pickle in on stdin, pickle out on the original stdout."""
    result_fd = os.dup(1)
    os.dup2(2, 1)  # whatever Ansible or a plugin prints must not mix with the result
    given, resolved, range_limit = pickle.load(sys.stdin.buffer)
    try:
        result: Any = ("ok", load_with_ansible(given, resolved, range_limit))
    except EnvironmentFailure as exc:
        result = ("environment", str(exc))
    with os.fdopen(result_fd, "wb") as out:
        pickle.dump(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
