"""The inventory as ``ansible-inventory --list`` shows it, and the fast path's model of it.

:class:`Host` and :class:`Inventory` are the public result. ``_Model`` reproduces
``ansible.inventory.data`` / ``group`` / ``host`` (groups, membership,
``reconcile_inventory``, depths) for the fast path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

LoaderKind = Literal["fast", "ansible"]

CODE_UNPARSEABLE = "BP801"
CODE_NO_HOSTS = "BP802"
CODE_SKIPPED = "BP809"
CODE_RANGE = "BP810"
CODE_TIMEOUT = "BP811"


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

    def reader_line(self) -> str:
        """One line for people: which reader produced this inventory, and why."""
        if self.loader == "fast":
            return "inventory: read by bp's own INI/YAML reader (static sources)"
        return f"inventory: read by ansible-core, because {self.fallback_reason}"


class Unsupported(Exception):
    """The fast path cannot reproduce Ansible exactly here; use ansible-core."""


class RangeTooLarge(Exception):
    """A host range expands to more hosts than bp accepts (Ansible would hang on it)."""

    def __init__(self, pattern: str, count: int, limit: int) -> None:
        super().__init__(
            f"host pattern {pattern!r} expands to {count} hosts, more than the limit of {limit}"
            " (set BP_INVENTORY_MAX_RANGE to raise it)"
        )
        self.pattern = pattern
        self.path = ""
        self.line = 0


# ansible.constants.INTERNAL_STATIC_VARS (what ansible-inventory strips from hostvars)
INTERNAL_VARS = frozenset(
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


def group_members(groups: Iterable[str], hosts: dict[str, Host]) -> dict[str, list[str]]:
    members: dict[str, list[str]] = {name: [] for name in sorted(groups)}
    for host in hosts.values():  # already sorted by name
        for group in host.groups:
            members.setdefault(group, []).append(host.name)
    return members


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


class Model:
    def __init__(self) -> None:
        self.groups: dict[str, _Group] = {"all": _Group("all"), "ungrouped": _Group("ungrouped")}
        self.hosts: dict[str, _HostRecord] = {}
        self.touched: set[str] = set()
        self.source = ""  # the file being parsed (for warnings)
        # (file, line, column, message): what Ansible warns about and goes on
        self.warnings: list[tuple[str, int, int, str]] = []
        self.add_child("all", "ungrouped")

    def warn(self, message: str, line: int = 0, column: int = 0) -> None:
        self.warnings.append((self.source, line, column, message))

    def add_group(self, name: object) -> str:
        if not isinstance(name, str) or not _SAFE_GROUP.fullmatch(name):
            raise Unsupported(f"group name {name!r}")
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
            raise Unsupported(f"group {child!r} as child of {parent!r}")
        if child in self.groups:
            self._add_child_group(self.groups[parent], self.groups[child])
        elif child in self.hosts:
            self.add_host(child, parent, None)
        else:
            raise Unsupported(f"unknown child {child!r} of {parent!r}")

    def _add_child_group(self, parent: _Group, child: _Group) -> None:
        if child.name == parent.name or child.name in self.ancestors(parent.name):
            raise Unsupported(f"group loop through {child.name!r}")
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
            raise Unsupported(f"variable name {key!r}")
        if key == "ansible_group_priority":
            self.groups[group].priority = int(value)
        else:
            self.groups[group].vars[key] = value

    def set_host_var(self, host: str, key: object, value: Any) -> None:
        if not isinstance(key, str):
            raise Unsupported(f"variable name {key!r}")
        self.hosts[host].vars[key] = value

    def reconcile(self) -> None:
        """InventoryData.reconcile_inventory: orphans under 'all', 'ungrouped' fixed up."""
        for group in list(self.groups.values()):
            if group.name != "all" and not group.parents:
                self.add_child("all", group.name)
        for name in sorted(self.groups.keys() & self.hosts.keys()):
            self.warn(f"Found both group and host with same name: {name}")
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
