"""ansible.cfg and ``ANSIBLE_*`` settings that would change Ansible's inventory rules:
the fast path steps aside when any is set."""

from __future__ import annotations

import configparser
import importlib.util
import os
import re
from collections.abc import Iterator
from functools import cache

from slmops_bp.inventory.model import Unsupported

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
    "ANSIBLE_INVENTORY_UNPARSED_FAILED",
    "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED",
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
    "inventory": frozenset(
        {
            "enable_plugins",
            "ignore_extensions",
            "ignore_patterns",
            "unparsed_is_failed",
            "any_unparsed_is_failed",
        }
    ),
    "inventory_plugin_yaml": frozenset({"yaml_valid_extensions"}),
    "vars_host_group_vars": frozenset({"stage"}),
}

_VARS_PLUGIN_DIRS = ("~/.ansible/plugins/vars", "/usr/share/ansible/plugins/vars")


def check_fast_config() -> None:
    for name in _CONFIG_ENV:
        if name in os.environ:
            raise Unsupported(f"environment variable {name} is set")
    for path in _config_files():
        _check_config_file(path)
    for directory in _VARS_PLUGIN_DIRS:
        full = os.path.expanduser(directory)
        if os.path.isdir(full) and os.listdir(full):
            raise Unsupported(f"vars plugins in {full}")


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
        raise Unsupported(f"cannot read {path}: {exc}") from exc
    for section, keys in _CONFIG_KEYS.items():
        if parser.has_section(section):
            found = keys.intersection(parser.options(section))
            if found:
                raise Unsupported(f"{path} sets [{section}] {sorted(found)[0]}")


_REJECT_EXTS = (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst")
_IGNORE_DEFAULT = re.compile(r"^INVENTORY_IGNORE_EXTS:\n(?:[ \t].*\n)*?[ \t]+default: (.*)$", re.M)


@cache
def inventory_ignore_extensions() -> tuple[str, ...]:
    """INVENTORY_IGNORE_EXTS of the installed ansible-core, read from its config
    definitions without importing it (ansible-core < 2.19 also ignores ``.ini``
    files in an inventory directory, newer ones read them)."""
    extra: tuple[str, ...] = (".orig", ".cfg", ".retry")
    spec = importlib.util.find_spec("ansible")
    for location in (spec.submodule_search_locations or []) if spec else []:
        try:
            with open(os.path.join(location, "config", "base.yml"), encoding="utf-8") as handle:
                match = _IGNORE_DEFAULT.search(handle.read())
        except OSError:
            continue
        if match:
            extra = tuple(re.findall(r"['\"]([.~][^'\"]*)['\"]", match.group(1)))
        break
    return _REJECT_EXTS + extra
