"""Ansible inventory -> hosts, groups and effective host variables.

The answer is always what ``ansible-inventory -i SRC... --list`` prints: the same
hosts, the same (transitive) group membership and, per host, the same variables
as ``_meta.hostvars`` (group_vars/ and host_vars/ merged with Ansible's
precedence, magic variables removed), as plain JSON-able Python values. A string
Ansible never templates (``!unsafe``, ``__ansible_unsafe``) is an
:class:`~slmops_bp.ansible_yaml.Unsafe`, so that the rendered inventory keeps it inert.

Two readers produce it:

* the **fast path** (:mod:`.fast`) parses static INI and YAML inventories,
  directories of them and the ``group_vars/`` / ``host_vars/`` next to them
  itself, without importing ansible, by reproducing ansible-core's rules (the
  ``ini`` and ``yaml`` inventory plugins, ``InventoryData.reconcile_inventory``,
  the ``host_group_vars`` vars plugin and ``VariableManager.get_vars``);
* the **ansible path** (:mod:`.ansible_core`) runs ansible-core's own
  ``InventoryManager`` and ``VariableManager`` in a child process with a time
  limit (:mod:`.worker`), like ``ansible-inventory --list`` does.

The fast path gives up (:class:`~.model.Unsupported`) on anything it cannot
reproduce exactly -- an executable (dynamic) inventory, an inventory plugin
config, vault data, a host pattern it does not fully understand, an ansible.cfg
or ``ANSIBLE_*`` setting that changes the rules, a parse error -- and the whole
call then goes through ansible-core, which also produces the diagnostics for
broken sources. Where Ansible warns and goes on, so does bp (BP809).

Host vars are shared between hosts where Ansible's result is identical; treat
them as read-only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from slmops_bp.diagnostics import Diagnostic, error
from slmops_bp.inventory.fast import load_fast
from slmops_bp.inventory.model import (
    CODE_RANGE,
    CODE_UNPARSEABLE,
    Host,
    Inventory,
    LoaderKind,
    RangeTooLarge,
    Unsupported,
)
from slmops_bp.inventory.patterns import range_limit
from slmops_bp.inventory.worker import inventory_timeout, run_ansible_path

__all__ = ["Host", "Inventory", "LoaderKind", "load_inventory"]


def load_inventory(
    sources: Sequence[str], *, fast: bool = True
) -> tuple[Inventory | None, list[Diagnostic]]:
    """Load inventory sources the way ``ansible-inventory -i S1 -i S2 ... --list`` does.

    Returns ``(None, diagnostics)`` when a source is missing, nothing can be
    parsed (BP801), a host range is too large (BP810) or ansible-core does not
    finish in time (BP811); a source without hosts (BP802) and a source or key
    Ansible skips (BP809) are warnings.
    """
    limit = range_limit()
    timeout = inventory_timeout()
    given = [str(s) for s in sources]
    if not given:
        return None, [error(CODE_UNPARSEABLE, "no inventory source given")]
    resolved = [_unfrack(s) for s in given]
    missing = _missing_sources(given, resolved)
    if missing:
        return None, missing
    reason = "the fast path was disabled by the caller"
    if fast:
        try:
            return load_fast(given, resolved, limit)
        except RangeTooLarge as exc:
            shown = dict(zip(resolved, given, strict=True)).get(exc.path, exc.path)
            return None, [error(CODE_RANGE, str(exc), shown, exc.line)]
        except Unsupported as exc:
            reason = str(exc)
        except Exception as exc:  # never worse than ansible-core: fall back, say why
            reason = f"the fast path could not handle the input ({type(exc).__name__}: {exc})"
    inventory, diags = run_ansible_path(given, resolved, limit, timeout)
    if inventory is not None:
        inventory.fallback_reason = reason
    return inventory, diags


def _unfrack(source: str) -> str:
    """ansible.utils.path.unfrackpath(follow=False); host lists ('a,b') stay as they are.

    A path that exists is a path even with a comma in it (Ansible's host_list
    plugin declines it); it is made absolute like any other.
    """
    if "," in source and not os.path.exists(source):
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
