"""Overlays: local adaptations of a deployment, deep-merged within guardrails (SPEC §2).

An overlay's ``set`` is merged onto the deployment's typed ``DeploymentSpec``
(mappings merge key by key, lists and scalars replace), broadest overlay first:
each value a ``set`` writes is validated against the field it lands on
(:mod:`slmops_bp.overlay_merge`), so the result is what validating the deep
merge of the documents would give, without reading raw document data.  Errors
point into the overlay that wrote the offending value, at the loader's position.

Guardrails: ``set`` may not change ``model``, ``deviceClasses`` or ``hosts``
(BP601); of ``rollout`` it may set ``health`` only, the rest is the deployment's
(BP605); ``set.privacy`` must be at least as strict as the deployment's policy
(BP602); two overlays may not set the same field for the same hosts unless one's
hosts are a strict subset of the other's (BP603).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from pydantic_core import ErrorDetails

from slmops_bp.blueprint import Entry
from slmops_bp.diagnostics import Diagnostic
from slmops_bp.load import Document, Loc, Position
from slmops_bp.model import DeploymentSpec, HostMatch, OverlaySpec, PrivacyPolicySpec
from slmops_bp.model_errors import map_error_details
from slmops_bp.overlay_merge import Node, Patch, apply, build, problems_of, typed_patch
from slmops_bp.policy import weaker_fields

FIXED = {
    "model": "change the deployment itself, or write another deployment",
    "deviceClasses": "change the deployment itself, or write another deployment",
    "hosts": "the overlay's own 'hosts' chooses where it applies",
}
"""Fields of a deployment that an overlay may not change, and what to do instead."""

ROLLOUT_PER_HOST = ("health",)
"""What of ``rollout`` an overlay may set: stages, max_failures, on_failure are per deployment."""

SET = ("spec", "set")


def written_set(overlay: Entry[OverlaySpec]) -> dict[str, Any]:
    """The overlay's ``set`` as written, from its typed spec (the loader's positions match)."""
    return overlay.spec.set


def merge(base: Any, top: Any) -> Any:
    """Deep merge: mappings merge recursively, everything else in ``top`` replaces."""
    if isinstance(base, dict) and isinstance(top, dict):
        out = dict(base)
        for key, value in top.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return top


def leaf_paths(data: Any, prefix: Loc = ()) -> list[Loc]:
    """Paths of the values a ``set`` writes: mappings recurse, lists and scalars are leaves."""
    if not isinstance(data, dict):
        return [prefix]
    out: list[Loc] = []
    for key, value in data.items():
        out.extend(leaf_paths(value, (*prefix, key)))
    return out


def fixed_fields(overlay: Entry[OverlaySpec]) -> list[Diagnostic]:
    """BP601: ``set`` names a field only the deployment decides; BP605: the same in ``rollout``."""
    out = [
        overlay.diag(
            "BP601",
            f"an overlay may not change '{key}' of deployment '{overlay.spec.deployment}': "
            f"{FIXED[key]}",
            (*SET, key),
            key=True,
        )
        for key in written_set(overlay)
        if key in FIXED
    ]
    rollout = written_set(overlay).get("rollout", {})
    where = (*SET, "rollout")
    if not isinstance(rollout, dict):
        out.append(overlay.diag("BP605", _ROLLOUT_MESSAGE.format(what="'rollout'"), where))
        return out
    out += [
        overlay.diag(
            "BP605", _ROLLOUT_MESSAGE.format(what=f"'rollout.{key}'"), (*where, key), key=True
        )
        for key in rollout
        if key not in ROLLOUT_PER_HOST
    ]
    return out


_ROLLOUT_MESSAGE = (
    "an overlay may not set {what}: stages, max_failures and on_failure are the "
    "deployment's alone (one rollout per deployment); an overlay may set 'rollout.health' "
    "for its hosts"
)


def settable(overlay: Entry[OverlaySpec]) -> dict[str, Any]:
    """The part of the overlay's ``set`` that applies (BP601/BP605 fields left out)."""
    layer = {k: v for k, v in written_set(overlay).items() if k not in FIXED}
    rollout = layer.get("rollout")
    if "rollout" in layer:
        kept = (
            {k: v for k, v in rollout.items() if k in ROLLOUT_PER_HOST}
            if isinstance(rollout, dict)
            else {}
        )
        if kept:
            layer["rollout"] = kept
        else:
            del layer["rollout"]
    return layer


def effective_spec(
    dep: Entry[DeploymentSpec], overlays: Sequence[Entry[OverlaySpec]]
) -> tuple[DeploymentSpec | None, list[Diagnostic]]:
    """The deployment's spec with ``overlays`` applied in order (broadest first).

    Merges typed values: the deployment's ``DeploymentSpec`` and each overlay's
    :class:`TypedSet` (:mod:`slmops_bp.overlay_merge`); no document data is read.
    Fields an overlay may not change are reported (BP601) and left out; a value
    that does not validate is reported in the overlay that wrote it, at the
    loader's position, unless a later overlay replaces it.  ``None`` when some
    written value is invalid.
    """
    diags: list[Diagnostic] = []
    root = Node(dep.spec)
    typed = [typed_set(overlay) for overlay in overlays]
    for index, overlay in enumerate(overlays):
        diags += fixed_fields(overlay)
        apply(root, typed[index].patch, index)
    if not overlays:
        return dep.spec, diags
    problems = problems_of(root)
    if not problems:
        spec = build(root)
        assert isinstance(spec, DeploymentSpec)
        return spec, diags
    by_origin: dict[int, list[ErrorDetails]] = defaultdict(list)
    for problem in problems:
        by_origin[problem.origin].extend(problem.errors)
    for index, errors in sorted(by_origin.items()):
        diags += map_error_details(errors, typed[index].view, DeploymentSpec, SET)
    return None, diags


@dataclass(frozen=True)
class TypedSet:
    """An overlay's ``set`` as a typed partial ``DeploymentSpec``, with where it was written."""

    patch: Patch
    """What the overlay may set (BP601/BP605 fields left out), validated field by field."""
    view: Document
    """The ``set`` as written at the loader's positions (under ``spec.set``), for diagnostics."""


def typed_set(overlay: Entry[OverlaySpec]) -> TypedSet:
    doc = overlay.doc
    positions: dict[Loc, Position] = {
        loc: pos for loc, pos in doc.positions.items() if loc[:2] == SET or SET[: len(loc)] == loc
    }
    view = Document(
        doc.path,
        doc.index,
        {"spec": {"set": overlay.spec.set}},
        doc.line,
        doc.column,
        positions=positions,
        source=doc.source,
    )
    return TypedSet(typed_patch(DeploymentSpec, settable(overlay)), view)


def _holds(node: Any, step: str | int) -> bool:
    if isinstance(node, dict):
        return step in node
    return isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)


def has_path(data: Any, path: Loc) -> bool:
    """Does ``path`` lead to a value in ``data``?"""
    node = data
    for step in path:
        if not _holds(node, step):
            return False
        node = node[step]
    return True


# ---------------------------------------------------------------- privacy guardrail


def privacy_guardrail(
    overlay: Entry[OverlaySpec],
    dep: Entry[DeploymentSpec],
    policies: Mapping[str, Entry[PrivacyPolicySpec]],
) -> list[Diagnostic]:
    """BP602: ``set.privacy`` names a policy weaker than the deployment's on some field."""
    name = written_set(overlay).get("privacy")
    if not isinstance(name, str) or name not in policies or dep.spec.privacy not in policies:
        return []
    weaker = weaker_fields(policies[name].spec, policies[dep.spec.privacy].spec)
    if not weaker:
        return []
    return [
        overlay.diag(
            "BP602",
            f"policy '{name}' is weaker than '{dep.spec.privacy}', the policy of deployment "
            f"'{dep.name}': {'; '.join(str(w) for w in weaker)}; an overlay may only make "
            "the policy stricter",
            (*SET, "privacy"),
        )
    ]


# ---------------------------------------------------------------- conflicts

HostSet = Set[str] | None
"""The hosts an overlay applies to (from the inventory), or None to compare selectors."""


def overlay_conflicts(items: Sequence[tuple[Entry[OverlaySpec], HostSet]]) -> list[Diagnostic]:
    """BP603: overlays of one deployment that set the same field for the same hosts.

    With host sets (``bp plan``): an error when the sets intersect and neither is
    a strict subset of the other (the narrower one wins).  Without (``None``,
    ``bp validate``): an error when the ``hosts`` selectors are identical.
    The diagnostic is at the later overlay's key, naming the earlier one.
    """
    by_dep: dict[str, list[tuple[Entry[OverlaySpec], HostSet]]] = defaultdict(list)
    for item in items:
        by_dep[item[0].spec.deployment].append(item)
    out: list[Diagnostic] = []
    for group in by_dep.values():
        written = [_written(entry) for entry, _ in group]
        for j in range(1, len(group)):
            for i in range(j):
                clash = _clash(group[i], group[j])
                if clash:
                    out += _conflict(group[i][0], group[j][0], written[i], written[j], clash)
    return out


def _written(overlay: Entry[OverlaySpec]) -> tuple[set[Loc], set[Loc]]:
    """(leaves, every node on the way to a leaf) of the overlay's ``set``."""
    leaves = set(leaf_paths(settable(overlay)))
    nodes = {leaf[:n] for leaf in leaves for n in range(1, len(leaf) + 1)}
    return leaves, nodes


def _clash(a: tuple[Entry[OverlaySpec], HostSet], b: tuple[Entry[OverlaySpec], HostSet]) -> str:
    """Why ``a`` and ``b`` apply to the same hosts with neither narrower, or ''."""
    (ea, hosts_a), (eb, hosts_b) = a, b
    if hosts_a is None or hosts_b is None:
        same = selector_key(ea.spec.hosts) == selector_key(eb.spec.hosts)
        return "identical 'hosts' selectors" if same else ""
    common = hosts_a & hosts_b
    if not common or hosts_a < hosts_b or hosts_b < hosts_a:
        return ""
    shown = sorted(common)
    more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
    return f"{len(shown)} host(s) in both: {', '.join(shown[:3])}{more}"


def selector_key(match: HostMatch | None) -> object:
    """Equal for selectors that pick the same hosts on their face (order-insensitive)."""
    if match is None:
        return None
    return frozenset(match.groups), tuple(sorted((k, repr(v)) for k, v in match.hostvars.items()))


def _conflict(
    first: Entry[OverlaySpec],
    second: Entry[OverlaySpec],
    written_first: tuple[set[Loc], set[Loc]],
    written_second: tuple[set[Loc], set[Loc]],
    clash: str,
) -> list[Diagnostic]:
    (leaves_a, nodes_a), (leaves_b, nodes_b) = written_first, written_second
    paths = {p for p in leaves_a if p in nodes_b} | {p for p in leaves_b if p in nodes_a}
    return [
        second.diag(
            "BP603",
            f"overlays '{first.name}' ({first.where}) and '{second.name}' both set "
            f"{_dotted(path)} for the same hosts ({clash}); set it in one of them, or make "
            "one's hosts a strict subset of the other's (the narrower wins)",
            (*SET, *path),
            key=True,
        )
        for path in sorted(paths, key=_dotted)
    ]


def _dotted(path: Loc) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text
