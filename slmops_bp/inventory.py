"""Ansible inventory -> hosts, groups and effective host variables.

The answer is always what ``ansible-inventory -i SRC... --list`` prints: the same
hosts, the same (transitive) group membership and, per host, the same variables
as ``_meta.hostvars`` (group_vars/ and host_vars/ merged with Ansible's
precedence, magic variables removed), as plain JSON-able Python values.

Two loaders produce it:

* the **fast path** parses static INI and YAML inventories, directories of
  them and the ``group_vars/`` / ``host_vars/`` next to them itself, without
  importing ansible, by reproducing ansible-core's rules (the ``ini`` and
  ``yaml`` inventory plugins, ``InventoryData.reconcile_inventory``, the
  ``host_group_vars`` vars plugin and ``VariableManager.get_vars``);
* the **ansible path** runs ansible-core's own ``InventoryManager`` and
  ``VariableManager`` in-process, like ``ansible-inventory --list`` does.

The fast path gives up (:class:`_Unsupported`) on anything it cannot reproduce
exactly -- an executable (dynamic) inventory, an inventory plugin config, vault
data, Ansible-specific YAML tags, a host pattern it does not fully understand,
an ansible.cfg or ``ANSIBLE_*`` setting that changes the rules, a parse error --
and the whole call then goes through ansible-core, which also produces the
diagnostics for broken sources.

Host vars are shared between hosts where Ansible's result is identical; treat
them as read-only.
"""

from __future__ import annotations

import ast
import configparser
import datetime as dt
import json
import os
import re
import shlex
import string
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from slmops_bp.diagnostics import Diagnostic, EnvironmentFailure, error, warning

__all__ = ["Host", "Inventory", "LoaderKind", "load_inventory"]

LoaderKind = Literal["fast", "ansible"]

CODE_UNPARSEABLE = "BP801"
CODE_NO_HOSTS = "BP802"


@dataclass(frozen=True)
class Host:
    """One inventory host as ``ansible-inventory --list`` shows it."""

    name: str
    groups: frozenset[str]  # transitive, includes 'all'
    vars: Mapping[str, Any]  # effective host vars (_meta.hostvars), read-only


@dataclass
class Inventory:
    hosts: dict[str, Host]  # sorted by name
    # group -> sorted host names (transitive); every group Ansible knows, empty ones too
    groups: dict[str, list[str]]
    sources: list[str]  # as given
    loader: LoaderKind = "fast"  # which path produced it
    fallback_reason: str | None = None  # why the fast path was not used (None when it was)

    def group_hosts(self, group: str) -> list[str]:
        """Hosts of ``group`` (transitively); empty for an unknown group."""
        return self.groups.get(group, [])


def load_inventory(
    sources: Sequence[str], *, fast: bool = True
) -> tuple[Inventory | None, list[Diagnostic]]:
    """Load inventory sources the way ``ansible-inventory -i S1 -i S2 ... --list`` does.

    Returns ``(None, diagnostics)`` when a source is missing or cannot be parsed
    (BP801); a source without hosts is a warning (BP802).
    """
    given = [str(s) for s in sources]
    if not given:
        return None, [error(CODE_UNPARSEABLE, "no inventory source given")]
    resolved = [_unfrack(s) for s in given]
    missing = _missing_sources(given, resolved)
    if missing:
        return None, missing
    reason = "fast path disabled by the caller"
    if fast:
        try:
            return _load_fast(given, resolved)
        except _Unsupported as exc:
            reason = str(exc)
        except Exception as exc:  # never worse than ansible-core: fall back, say why
            reason = f"fast path could not handle the input ({type(exc).__name__}: {exc})"
    inventory, diags = _load_with_ansible(given, resolved)
    if inventory is not None:
        inventory.fallback_reason = reason
    return inventory, diags


# --------------------------------------------------------------------------
# shared helpers


class _Unsupported(Exception):
    """The fast path cannot reproduce Ansible exactly here; use ansible-core."""


# ansible.constants.INTERNAL_STATIC_VARS (what ansible-inventory strips from hostvars)
_INTERNAL_VARS = frozenset(
    {
        "ansible_async_path",
        "ansible_collection_name",
        "ansible_config_file",
        "ansible_dependent_role_names",
        "ansible_diff_mode",
        "ansible_facts",
        "ansible_forks",
        "ansible_inventory_sources",
        "ansible_limit",
        "ansible_play_batch",
        "ansible_play_hosts",
        "ansible_play_hosts_all",
        "ansible_play_role_names",
        "ansible_playbook_python",
        "ansible_role_name",
        "ansible_role_names",
        "ansible_run_tags",
        "ansible_skip_tags",
        "ansible_verbosity",
        "ansible_version",
        "inventory_dir",
        "inventory_file",
        "inventory_hostname",
        "inventory_hostname_short",
        "groups",
        "group_names",
        "hostvars",
        "playbook_dir",
        "play_hosts",
        "role_name",
        "role_names",
        "role_path",
        "role_uuid",
    }
)


def _unfrack(source: str) -> str:
    """ansible.utils.path.unfrackpath(follow=False); host lists ('a,b') stay as they are."""
    if "," in source:
        return source
    path = os.path.expanduser(os.path.expandvars(source))
    return os.path.normpath(os.path.join(os.getcwd(), path))


def _missing_sources(given: list[str], resolved: list[str]) -> list[Diagnostic]:
    diags = []
    for shown, path in zip(given, resolved, strict=True):
        if "," in path and not os.path.exists(path):
            continue  # a host list, e.g. 'web1,web2,'
        if not os.path.exists(path):
            diags.append(error(CODE_UNPARSEABLE, "inventory source does not exist", shown))
        elif not os.access(path, os.R_OK):
            diags.append(error(CODE_UNPARSEABLE, "inventory source is not readable", shown))
    return diags


def _json_key(key: Any, strict: bool) -> str:
    """A dict key as ansible-inventory's JSON encoder writes it."""
    if isinstance(key, str):
        return str.__str__(key)
    if key is None or isinstance(key, int | float):
        return json.dumps(key)
    if strict:
        raise _Unsupported(f"mapping key of type {type(key).__name__}")
    return str(key)


def _to_plain(value: Any, strict: bool) -> Any:
    """Tagged / YAML / literal values -> what ansible-inventory's JSON shows, as Python.

    ``strict`` (fast path): anything without an obvious JSON form raises
    :class:`_Unsupported`; otherwise (ansible path) vault data becomes
    ``{"__ansible_vault": ciphertext}`` as ansible-inventory prints it.
    """
    if value is None or value is True or value is False:
        return value
    if type(value) is str:
        return value
    if isinstance(value, str):
        return _other(value, strict) if not strict else str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {_json_key(k, strict): _to_plain(v, strict) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_to_plain(v, strict) for v in value]
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if strict:
        raise _Unsupported(f"value of type {type(value).__name__}")
    return _other(value, strict)


def _plain_strict(value: Any) -> Any:
    return _to_plain(value, strict=True)


# --------------------------------------------------------------------------
# fast path: configuration that would change Ansible's rules


_CONFIG_ENV = (
    "ANSIBLE_HASH_BEHAVIOUR",
    "ANSIBLE_PRECEDENCE",
    "ANSIBLE_INVENTORY_ENABLED",
    "ANSIBLE_INVENTORY_IGNORE",
    "ANSIBLE_INVENTORY_IGNORE_REGEX",
    "ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS",
    "ANSIBLE_YAML_FILENAME_EXT",
    "ANSIBLE_INVENTORY_PLUGIN_EXTS",
    "ANSIBLE_VARS_ENABLED",
    "ANSIBLE_VARS_PLUGINS",
    "ANSIBLE_RUN_VARS_PLUGINS",
    "ANSIBLE_VARS_PLUGIN_STAGE",
    "ANSIBLE_DUPLICATE_YAML_DICT_KEY",
    "ANSIBLE_CACHE_PLUGIN",
    "ANSIBLE_HOME",
)

_CONFIG_KEYS: dict[str, frozenset[str]] = {
    "defaults": frozenset(
        {
            "hash_behaviour",
            "precedence",
            "inventory_ignore_extensions",
            "inventory_ignore_patterns",
            "force_valid_group_names",
            "yaml_valid_extensions",
            "vars_plugins_enabled",
            "vars_plugins",
            "run_vars_plugins",
            "duplicate_dict_key",
            "fact_caching",
            "home",
        }
    ),
    "inventory": frozenset({"enable_plugins", "ignore_extensions", "ignore_patterns"}),
    "inventory_plugin_yaml": frozenset({"yaml_valid_extensions"}),
    "vars_host_group_vars": frozenset({"stage"}),
}

_VARS_PLUGIN_DIRS = ("~/.ansible/plugins/vars", "/usr/share/ansible/plugins/vars")


def _check_fast_config() -> None:
    for name in _CONFIG_ENV:
        if name in os.environ:
            raise _Unsupported(f"environment variable {name} is set")
    for path in _config_files():
        _check_config_file(path)
    for directory in _VARS_PLUGIN_DIRS:
        full = os.path.expanduser(directory)
        if os.path.isdir(full) and os.listdir(full):
            raise _Unsupported(f"vars plugins in {full}")


def _config_files() -> Iterator[str]:
    env = os.environ.get("ANSIBLE_CONFIG")
    candidates = []
    if env:
        env = os.path.expanduser(env)
        candidates.append(os.path.join(env, "ansible.cfg") if os.path.isdir(env) else env)
    candidates += [
        os.path.join(os.getcwd(), "ansible.cfg"),
        os.path.expanduser("~/.ansible.cfg"),
        "/etc/ansible/ansible.cfg",
    ]
    return (path for path in candidates if os.path.isfile(path))


def _check_config_file(path: str) -> None:
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeError) as exc:
        raise _Unsupported(f"cannot read {path}: {exc}") from exc
    for section, keys in _CONFIG_KEYS.items():
        if parser.has_section(section):
            found = keys.intersection(parser.options(section))
            if found:
                raise _Unsupported(f"{path} sets [{section}] {sorted(found)[0]}")


# --------------------------------------------------------------------------
# fast path: the inventory model (ansible.inventory.data / group / host)


@dataclass
class _Group:
    name: str
    hosts: dict[str, None] = field(default_factory=dict)  # direct members, ordered set
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    priority: int = 1


@dataclass
class _HostRecord:
    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, None] = field(default_factory=dict)  # direct groups, ordered set


# group names the fast path accepts: also safe as group_vars/ file names
_SAFE_GROUP = re.compile(r"[\w-][\w.-]*")


class _Model:
    def __init__(self) -> None:
        self.groups: dict[str, _Group] = {"all": _Group("all"), "ungrouped": _Group("ungrouped")}
        self.hosts: dict[str, _HostRecord] = {}
        self.touched: set[str] = set()
        self.add_child("all", "ungrouped")

    def add_group(self, name: object) -> str:
        if not isinstance(name, str) or not _SAFE_GROUP.fullmatch(name):
            raise _Unsupported(f"group name {name!r}")
        if name not in self.groups:
            self.groups[name] = _Group(name)
        return name

    def add_host(self, name: str, group: str | None, port: int | None) -> None:
        record = self.hosts.get(name)
        if record is None:
            record = self.hosts[name] = _HostRecord(name)
            if port:
                record.vars["ansible_port"] = int(port)
        if group:
            self.groups[group].hosts[name] = None
            record.groups[group] = None
        self.touched.add(name)

    def add_child(self, parent: str, child: str) -> None:
        if parent not in self.groups or child == "all" or parent == "ungrouped":
            raise _Unsupported(f"group {child!r} as child of {parent!r}")
        if child in self.groups:
            self._add_child_group(self.groups[parent], self.groups[child])
        elif child in self.hosts:
            self.add_host(child, parent, None)
        else:
            raise _Unsupported(f"unknown child {child!r} of {parent!r}")

    def _add_child_group(self, parent: _Group, child: _Group) -> None:
        if child.name == parent.name or child.name in self.ancestors(parent.name):
            raise _Unsupported(f"group loop through {child.name!r}")
        if child.name not in parent.children:
            parent.children.append(child.name)
        if parent.name not in child.parents:
            child.parents.append(parent.name)

    def ancestors(self, name: str) -> set[str]:
        seen: set[str] = set()
        todo = list(self.groups[name].parents)
        while todo:
            group = todo.pop()
            if group not in seen:
                seen.add(group)
                todo.extend(self.groups[group].parents)
        return seen

    def set_group_var(self, group: str, key: object, value: Any) -> None:
        if not isinstance(key, str):
            raise _Unsupported(f"variable name {key!r}")
        if key == "ansible_group_priority":
            self.groups[group].priority = int(value)
        else:
            self.groups[group].vars[key] = value

    def set_host_var(self, host: str, key: object, value: Any) -> None:
        if not isinstance(key, str):
            raise _Unsupported(f"variable name {key!r}")
        self.hosts[host].vars[key] = value

    def reconcile(self) -> None:
        """InventoryData.reconcile_inventory: orphans under 'all', 'ungrouped' fixed up."""
        for group in list(self.groups.values()):
            if group.name != "all" and not group.parents:
                self.add_child("all", group.name)
        closures = self.closures()
        ungrouped = self.groups["ungrouped"]
        for host in self.hosts.values():
            member_of = closures[host.name]
            if "ungrouped" in member_of:
                if member_of - {"all", "ungrouped"}:
                    ungrouped.hosts.pop(host.name, None)
                    host.groups.pop("ungrouped", None)
            elif not member_of or member_of == {"all"}:
                self.add_host(host.name, "ungrouped", None)

    def closures(self) -> dict[str, frozenset[str]]:
        """Host -> every group it is in, transitively."""
        memo: dict[str, frozenset[str]] = {}

        def up(group: str) -> frozenset[str]:
            if group not in memo:
                memo[group] = frozenset({group}.union(self.ancestors(group)))
            return memo[group]

        return {
            name: frozenset().union(*(up(g) for g in host.groups))
            for name, host in self.hosts.items()
        }

    def depths(self) -> dict[str, int]:
        """Group.depth: the longest path from 'all'."""
        memo: dict[str, int] = {}

        def depth(group: str) -> int:
            if group not in memo:
                parents = self.groups[group].parents
                memo[group] = max((depth(p) + 1 for p in parents), default=0)
            return memo[group]

        return {name: depth(name) for name in self.groups}


# --------------------------------------------------------------------------
# fast path: host patterns (ansible.parsing.utils.addresses + expand_hostname_range)

_RANGE = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_LABEL = rf"(?:\w|{_RANGE})(?:[\w-]|{_RANGE})*(?<![_-])"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*", re.IGNORECASE)
_BRACKETED_HOSTPORT = re.compile(r"\[(.+)\]:([0-9]+)")
_HOSTPORT = re.compile(r"((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)")


def _parse_address(pattern: str) -> tuple[str, int | None]:
    address, port = pattern, None
    for regex in (_BRACKETED_HOSTPORT, _HOSTPORT):
        match = regex.fullmatch(address)
        if match:
            address, port = match.group(1), int(match.group(2))
    if not _HOSTNAME.fullmatch(address):
        raise _Unsupported(f"host pattern {pattern!r}")
    return address, port


def _expand_hostpattern(pattern: object) -> tuple[list[str], int | None]:
    if not isinstance(pattern, str):
        raise _Unsupported(f"host pattern {pattern!r}")
    host, port = _parse_address(pattern)
    return (_expand_ranges(host) if "[" in host else [host]), port


def _expand_ranges(pattern: str) -> list[str]:
    head, rest = pattern.split("[", 1)
    body, tail = rest.split("]", 1)
    bounds = body.split(":")
    begin, end = bounds[0], bounds[1]
    step = int(bounds[2]) if len(bounds) == 3 else 1
    if step == 0:
        raise _Unsupported(f"host range step 0 in {pattern!r}")
    names = []
    for item in _range_items(begin, end, step, pattern):
        name = f"{head}{item}{tail}"
        names.extend(_expand_ranges(name) if "[" in name else [name])
    return names


def _range_items(begin: str, end: str, step: int, pattern: str) -> list[str]:
    letters = string.ascii_letters
    if begin in letters and end in letters:
        first, last = letters.index(begin), letters.index(end)
        if first > last:
            raise _Unsupported(f"host range {pattern!r}")
        return list(letters[first : last + 1 : step])
    numbers = range(int(begin), int(end) + 1, step)
    if begin[0] == "0" and len(begin) > 1:
        if len(begin) != len(end):
            raise _Unsupported(f"host range {pattern!r}")
        return [str(n).zfill(len(begin)) for n in numbers]
    return [str(n) for n in numbers]


# --------------------------------------------------------------------------
# fast path: INI inventories (ansible/plugins/inventory/ini.py)

_SECTION = re.compile(r"\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?")
_GROUP_LINE = re.compile(r"([^:\]\s]+)\s*(?:#.*)?")
_PLAIN_LINE = re.compile(r"[^'\"\\#]*")
_SHELL_SPACE = re.compile(r"[ \t\r\n]+")
_DOTTED_NUMBERS = re.compile(r"[0-9]+(?:\.[0-9]+){2,}")
_LEADING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MISSING = object()
_INI_VALUES: dict[str, Any] = {}


def _ini_tokens(line: str) -> list[str]:
    if _PLAIN_LINE.fullmatch(line):
        return [token for token in _SHELL_SPACE.split(line) if token]
    try:
        return shlex.split(line, comments=True)
    except ValueError as exc:
        raise _Unsupported(f"host line {line!r}: {exc}") from exc


def _not_a_literal(text: str) -> bool:
    """Cheap and exact: texts ast.literal_eval certainly rejects (names, dotted numbers)."""
    if _DOTTED_NUMBERS.fullmatch(text):
        return True
    name = _LEADING_NAME.match(text)
    if name is None or name.group() in ("True", "False", "None", "set"):
        return False
    return text[name.end() : name.end() + 1] not in ("'", '"')


def _ini_value(text: str) -> Any:
    """ini.py _parse_value: ast.literal_eval, else the string itself."""
    cached = _INI_VALUES.get(text, _MISSING)
    if cached is not _MISSING:
        return cached
    if _not_a_literal(text):
        return text
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    except Exception as exc:  # MemoryError, RecursionError, TypeError: a failed parse in Ansible
        raise _Unsupported(f"INI value {text!r}: {exc}") from exc
    result = _ini_coerce(value)
    if isinstance(result, str | int | float | bool | None) and len(_INI_VALUES) < 65536:
        _INI_VALUES[text] = result
    return result


def _ini_coerce(value: Any) -> Any:
    """ini.py _parse_recursive_coerce_types_and_tag, then JSON-shaped."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | set):
        return [_ini_coerce(v) for v in value]
    if isinstance(value, dict):
        return {_json_key(k, strict=True): _ini_coerce(v) for k, v in value.items()}
    if value is Ellipsis:
        return "..."
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Unsupported("non-UTF-8 bytes literal") from exc
    return value


class _IniParser:
    def __init__(self, model: _Model) -> None:
        self.model = model
        self.pending: dict[str, dict[str, Any]] = {}

    def parse(self, text: str) -> None:
        group, state = "ungrouped", "hosts"
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            section = _SECTION.fullmatch(line)
            if section:
                group, state = self._section(section.group(1), section.group(2) or "hosts")
            elif line.startswith("[") and line.endswith("]"):
                raise _Unsupported(f"invalid INI section {line!r}")
            elif state == "hosts":
                self._host_line(line, group)
            elif state == "vars":
                self._var_line(line, group)
            else:
                self._child_line(line, group)
        if self.pending:
            raise _Unsupported(
                f"INI section refers to undeclared group {next(iter(self.pending))!r}"
            )

    def _section(self, name: str, state: str) -> tuple[str, str]:
        if state not in ("hosts", "children", "vars"):
            raise _Unsupported(f"INI section [{name}:{state}]")
        if name not in self.model.groups:
            if state == "vars" and name not in self.pending:
                self.pending[name] = {"state": "vars", "parents": []}
            self.model.add_group(name)
        if name in self.pending and state != "vars":
            if self.pending[name]["state"] == "children":
                self._add_pending_children(name)
            else:
                del self.pending[name]
        return name, state

    def _add_pending_children(self, group: str) -> None:
        for parent in self.pending[group]["parents"]:
            self.model.add_child(parent, group)
            if parent in self.pending and self.pending[parent]["state"] == "children":
                self._add_pending_children(parent)
        del self.pending[group]

    def _host_line(self, line: str, group: str) -> None:
        tokens = _ini_tokens(line)
        if not tokens:
            raise _Unsupported(f"host line {line!r}")
        hosts, port = _expand_hostpattern(tokens[0])
        variables: dict[str, Any] = {}
        for token in tokens[1:]:
            if "=" not in token:
                raise _Unsupported(f"host variable {token!r} without '='")
            key, value = token.split("=", 1)
            variables[key] = _ini_value(value)
        for host in hosts:
            self.model.add_host(host, group, port)
            for key, value in variables.items():
                self.model.set_host_var(host, key, value)

    def _var_line(self, line: str, group: str) -> None:
        if "=" not in line:
            raise _Unsupported(f"group variable line {line!r} without '='")
        key, value = (part.strip() for part in line.split("=", 1))
        self.model.set_group_var(group, key, _ini_value(value))

    def _child_line(self, line: str, group: str) -> None:
        match = _GROUP_LINE.fullmatch(line)
        if not match:
            raise _Unsupported(f"child group line {line!r}")
        child = match.group(1)
        if child in self.model.groups:
            self.model.add_child(group, child)
        elif child in self.pending:
            self.pending[child]["parents"].append(group)
        else:
            self.pending[child] = {"state": "children", "parents": [group]}


# --------------------------------------------------------------------------
# fast path: YAML inventories (ansible/plugins/inventory/yaml.py)


class _YamlParser:
    def __init__(self, model: _Model) -> None:
        self.model = model

    def parse(self, data: dict[Any, Any]) -> None:
        for name, group_data in data.items():
            self._group(name, group_data)

    def _group(self, name: object, data: Any) -> object:
        if not isinstance(data, dict | None):
            return name  # Ansible warns and skips it
        group = self.model.add_group(name)
        if data is None:
            return group
        for section in ("vars", "children", "hosts"):
            if isinstance(data.get(section), str):
                data[section] = {data[section]: None}
            if section in data and not isinstance(data[section], dict | None):
                raise _Unsupported(f"'{section}' of group {group!r} is not a mapping")
        for key, value in data.items():
            if isinstance(value, dict):  # None and non-mappings are skipped by Ansible
                self._section(group, key, value)
        return group

    def _section(self, group: str, key: object, value: dict[Any, Any]) -> None:
        if key == "vars":
            for var, var_value in value.items():
                self.model.set_group_var(group, var, _plain_strict(var_value))
        elif key == "children":
            for child, child_data in value.items():
                child_name = self._group(child, child_data)
                if not isinstance(child_name, str):
                    raise _Unsupported(f"child group {child_name!r}")
                self.model.add_child(group, child_name)
        elif key == "hosts":
            for pattern, host_vars in value.items():
                self._hosts(group, pattern, host_vars or {})

    def _hosts(self, group: str, pattern: object, host_vars: Any) -> None:
        if not isinstance(host_vars, dict):
            raise _Unsupported(f"vars of host {pattern!r} are not a mapping")
        hosts, port = _expand_hostpattern(pattern)
        plain = {key: _plain_strict(value) for key, value in host_vars.items()}
        for host in hosts:
            self.model.add_host(host, group, port)
            for key, value in plain.items():
                self.model.set_host_var(host, key, value)


# --------------------------------------------------------------------------
# fast path: reading files the way DataLoader does

_YAML_EXTENSIONS = (".yml", ".yaml", ".json")
_NOT_STRUCTURED = object()
_CSafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_text(path: str) -> str:
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw.lstrip().startswith(b"$ANSIBLE_VAULT"):
        raise _Unsupported(f"vault-encrypted file {path}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Unsupported(f"{path} is not UTF-8") from exc


def _load_structured(text: str, path: str) -> Any:
    """parsing.utils.yaml.from_yaml: JSON first, then YAML; _NOT_STRUCTURED if neither."""
    try:
        data = json.loads(text)
    except ValueError:
        pass
    else:
        if _has_ansible_json_markers(data):
            raise _Unsupported(f"{path} uses __ansible_unsafe / __ansible_vault")
        return data
    try:
        return yaml.load(text, Loader=_CSafeLoader)  # a safe loader
    except yaml.constructor.ConstructorError as exc:  # e.g. !vault, !unsafe: Ansible-only tags
        raise _Unsupported(f"{path}: {exc.problem}") from exc
    except yaml.YAMLError:
        return _NOT_STRUCTURED


def _has_ansible_json_markers(data: Any) -> bool:
    if isinstance(data, dict):
        if "__ansible_unsafe" in data or "__ansible_vault" in data:
            return True
        return any(_has_ansible_json_markers(v) for v in data.values())
    if isinstance(data, list):
        return any(_has_ansible_json_markers(v) for v in data)
    return False


class _VarsDir:
    """group_vars/ and host_vars/ next to one inventory source (host_group_vars plugin)."""

    def __init__(self, source: str, files: dict[str, dict[str, Any]]) -> None:
        base = source if os.path.isdir(source) else os.path.dirname(source)
        real = os.path.realpath(os.path.abspath(base))
        self._dirs = {kind: os.path.join(real, kind) for kind in ("group_vars", "host_vars")}
        self._listings: dict[str, set[str] | None] = {}
        self._merged: dict[tuple[str, str], dict[str, Any]] = {}
        self._files = files  # shared cache: path -> parsed vars

    def group(self, name: str) -> dict[str, Any]:
        return self._entity("group_vars", name)

    def host(self, name: str) -> dict[str, Any]:
        return self._entity("host_vars", name)

    def _entity(self, kind: str, name: str) -> dict[str, Any]:
        key = (kind, name)
        if key not in self._merged:
            merged: dict[str, Any] = {}
            for path in self._find(kind, name):
                merged.update(self._load(path))
            self._merged[key] = merged
        return self._merged[key]

    def _listing(self, kind: str) -> set[str] | None:
        if kind not in self._listings:
            directory = self._dirs[kind]
            self._listings[kind] = set(os.listdir(directory)) if os.path.isdir(directory) else None
        return self._listings[kind]

    def _find(self, kind: str, name: str) -> list[str]:
        """DataLoader.find_vars_files: the first of NAME, NAME.yml, NAME.yaml, NAME.json."""
        entries = self._listing(kind)
        if not entries or name.startswith(os.sep):
            return []
        for candidate in (name, *(name + ext for ext in _YAML_EXTENSIONS)):
            if candidate not in entries:
                continue
            full = os.path.join(self._dirs[kind], candidate)
            if os.path.exists(full):
                return _dir_vars_files(full) if os.path.isdir(full) else [full]
        return []

    def _load(self, path: str) -> dict[str, Any]:
        if path not in self._files:
            data = _load_structured(_read_text(path), path)
            if data is _NOT_STRUCTURED:
                raise _Unsupported(f"{path} is neither YAML nor JSON")
            if data and not isinstance(data, dict):
                raise _Unsupported(f"{path} is not a mapping")
            self._files[path] = _plain_strict(data) if data else {}
        return self._files[path]


def _dir_vars_files(path: str) -> list[str]:
    found = []
    for entry in sorted(os.listdir(path)):
        if entry.startswith(".") or entry.endswith("~"):
            continue
        ext = os.path.splitext(entry)[1]
        full = os.path.join(path, entry)
        if os.path.isdir(full) and not ext:
            found.extend(_dir_vars_files(full))
        elif os.path.isfile(full) and (not ext or ext in _YAML_EXTENSIONS):
            found.append(full)
    return found


# --------------------------------------------------------------------------
# fast path: sources

_IGNORE_EXTS = (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig")
_IGNORED = re.compile(
    "|".join(
        [r"^\.", "^host_vars$", "^group_vars$", "^vars_plugins$"]
        + [re.escape(ext) + "$" for ext in (*_IGNORE_EXTS, ".cfg", ".retry")]
    )
)


def _parse_source(path: str, model: _Model) -> None:
    if "," in path and not os.path.exists(path):
        raise _Unsupported("host list source")
    if os.path.isdir(path):
        for entry in sorted(os.listdir(path)):
            if not _IGNORED.search(entry):
                _parse_source(os.path.join(path, entry), model)
    else:
        _parse_file(path, model)


def _parse_file(path: str, model: _Model) -> None:
    """The plugin chain host_list, script, auto, yaml, ini, toml for one file."""
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise _Unsupported(f"{path} is not a readable file")
    if os.access(path, os.X_OK):
        raise _Unsupported(f"{path} is executable (dynamic inventory)")
    ext = os.path.splitext(path)[1]
    if ext == ".toml":
        raise _Unsupported(f"{path} is a TOML inventory")
    text = _read_text(path)
    if text.startswith("\ufeff"):
        raise _Unsupported(f"{path} starts with a byte order mark")
    if not ext or ext in _YAML_EXTENSIONS:
        data = _load_structured(text, path)
        if isinstance(data, dict) and data.get("plugin"):
            raise _Unsupported(f"{path} is an inventory plugin configuration")
        if isinstance(data, dict) and data:
            _YamlParser(model).parse(data)
            return
    _IniParser(model).parse(text)


def _load_fast(given: list[str], resolved: list[str]) -> tuple[Inventory, list[Diagnostic]]:
    _check_fast_config()
    model = _Model()
    diags = []
    for shown, path in zip(given, resolved, strict=True):
        model.touched = set()
        _parse_source(path, model)
        if not model.touched:
            diags.append(warning(CODE_NO_HOSTS, "inventory source defines no hosts", shown))
    model.reconcile()
    files: dict[str, dict[str, Any]] = {}
    vars_dirs = [_VarsDir(path, files) for path in resolved]
    inventory = Inventory(_fast_hosts(model, vars_dirs), {}, list(given), "fast")
    inventory.groups = _group_members(model.groups, inventory.hosts)
    return inventory, diags


def _fast_hosts(model: _Model, vars_dirs: list[_VarsDir]) -> dict[str, Host]:
    """VariableManager.get_vars(host) with the default VARIABLE_PRECEDENCE."""
    depths = model.depths()
    closures = model.closures()
    base_by_groups: dict[frozenset[str], dict[str, Any]] = {}
    hosts = {}
    for name in sorted(model.hosts):
        member_of = closures[name]
        base = base_by_groups.get(member_of)
        if base is None:
            ordered = sorted(
                (g for g in member_of if g != "all"),
                key=lambda g: (depths[g], model.groups[g].priority, g),
            )
            base = base_by_groups[member_of] = _group_layers(model, ordered, vars_dirs)
        merged = dict(base)
        merged.update(model.hosts[name].vars)
        for vars_dir in vars_dirs:
            merged.update(vars_dir.host(name))
        if not _INTERNAL_VARS.isdisjoint(merged):
            merged = {k: v for k, v in merged.items() if k not in _INTERNAL_VARS}
        hosts[name] = Host(name, member_of, merged)
    return hosts


def _group_layers(model: _Model, ordered: list[str], vars_dirs: list[_VarsDir]) -> dict[str, Any]:
    merged = dict(model.groups["all"].vars)  # all_inventory
    for group in ordered:  # groups_inventory
        merged.update(model.groups[group].vars)
    for vars_dir in vars_dirs:  # all_plugins_inventory
        merged.update(vars_dir.group("all"))
    for vars_dir in vars_dirs:  # groups_plugins_inventory
        for group in ordered:
            merged.update(vars_dir.group(group))
    return merged


def _group_members(groups: Iterable[str], hosts: dict[str, Host]) -> dict[str, list[str]]:
    members: dict[str, list[str]] = {name: [] for name in sorted(groups)}
    for host in hosts.values():  # already sorted by name
        for group in host.groups:
            members.setdefault(group, []).append(host.name)
    return members


# --------------------------------------------------------------------------
# ansible-core path


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
    top: str = ""
    file: str = ""

    def failure(self, msg: str | None, exception: BaseException | None = None, **_: Any) -> None:
        plugin = re.search(r"'([^']+)' plugin", msg or "")
        text = _one_line(str(exception)) if exception is not None else _one_line(msg or "")
        line, column = _exception_position(exception)
        name = plugin.group(1) if plugin else ""
        self.failures.append(_Failure(self.top, self.file, name, text, line, column))

    def warning(self, msg: str, *_: Any, **__: Any) -> None:
        legacy = re.search(r"Failed to parse (.+?) with (\S+) plugin: (.*)", str(msg), re.S)
        if legacy:  # ansible-core < 2.19 reports plugin failures as plain warnings
            path, plugin, text = legacy.groups()
            self.failures.append(_Failure(self.top, path, plugin, _one_line(text)))

    def ignore(self, *_: Any, **__: Any) -> None:
        return None


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
    saved = {name: display.__dict__[name] for name in patches if name in display.__dict__}
    for name, replacement in patches.items():
        setattr(display, name, replacement)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name in patches:
            if name in saved:
                setattr(display, name, saved[name])
            else:
                delattr(display, name)


def _manager_class(base: Any) -> Any:
    """InventoryManager that records, per top-level source, the hosts it defines."""

    class RecordingInventoryManager(base):  # type: ignore[misc]
        def __init__(self, loader: Any, sources: list[str], recorder: _Recorder) -> None:
            self.bp_recorder = recorder
            self.bp_hosts: dict[str, set[str]] = {}
            self.bp_parsed: dict[str, bool] = {}
            self.bp_depth = 0
            super().__init__(loader=loader, sources=sources)

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


def _clear_vars_plugin_caches() -> None:
    """host_group_vars caches found/missing dirs per process; a long-lived process must not."""
    import sys

    module = sys.modules.get("ansible.plugins.vars.host_group_vars")
    for cache_name in ("FOUND", "NAK", "CANONICAL_PATHS"):
        cache = getattr(module, cache_name, None)
        if isinstance(cache, dict | set):
            cache.clear()


def _load_with_ansible(
    given: list[str], resolved: list[str]
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
        _clear_vars_plugin_caches()
        loader = DataLoader()
        try:
            manager = _manager_class(InventoryManager)(loader, list(resolved), recorder)
        except Exception as exc:
            return None, [_exception_diag(exc, given[0])]
        diags = _parse_diagnostics(manager, recorder, shown)
        if any(d.is_error for d in diags):
            return None, diags
        try:
            variables = VariableManager(loader=loader, inventory=manager)
            hosts = _ansible_hosts(manager, variables, constants.INTERNAL_STATIC_VARS)
        except Exception as exc:
            return None, [*diags, _exception_diag(exc, given[0])]
    inventory = Inventory(hosts, {}, list(given), "ansible")
    inventory.groups = _group_members(manager.groups, hosts)
    return inventory, diags


def _parse_diagnostics(
    manager: Any, recorder: _Recorder, shown: dict[str, str]
) -> list[Diagnostic]:
    diags = [_failure_diag(f, shown) for f in _preferred_failures(recorder.failures)]
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


def _failure_diag(failure: _Failure, shown: dict[str, str]) -> Diagnostic:
    path = shown.get(failure.file, failure.file)
    plugin = f" with the '{failure.plugin}' plugin" if failure.plugin else ""
    message = f"cannot parse inventory source{plugin}: {failure.message}"
    return error(CODE_UNPARSEABLE, message, path, failure.line, failure.column)


def _exception_diag(exc: BaseException, default_path: str) -> Diagnostic:
    path, line, column = _exception_origin(exc)
    path = path or default_path
    message = _one_line(str(exc)) or type(exc).__name__
    return error(CODE_UNPARSEABLE, f"cannot load inventory: {message}", str(path), line, column)


def _ansible_hosts(manager: Any, variables: Any, internal: frozenset[str]) -> dict[str, Host]:
    hosts = {}
    for name in sorted(manager.hosts):
        host = manager.hosts[name]
        raw = variables.get_vars(host=host, include_hostvars=False, stage="all")
        plain = {
            _json_key(key, strict=False): _to_plain(value, strict=False)
            for key, value in raw.items()
            if key not in internal
        }
        groups = frozenset(str(group.name) for group in host.get_groups())
        hosts[str(name)] = Host(str(name), groups, plain)
    return hosts


def _other(value: Any, strict: bool) -> Any:
    """Ansible values without a plain JSON type: vault data as ansible-inventory prints it."""
    ciphertext = _vault_ciphertext(value)
    if ciphertext is not None:
        return {"__ansible_vault": ciphertext}
    if isinstance(value, str):
        return str.__str__(value)
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
