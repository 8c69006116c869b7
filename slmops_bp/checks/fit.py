"""BP4xx: does each deployment fit the hardware of its device classes (SPEC §3.3)?"""

from __future__ import annotations

from collections.abc import Iterable

from slmops_bp.checks.context import Context, Target
from slmops_bp.coresidency import no_candidate_message
from slmops_bp.diagnostics import Diagnostic, Severity, did_you_mean
from slmops_bp.model import DeploymentSpec
from slmops_bp.overlays import SET

KNOWN_PARAMS: dict[str, frozenset[str]] = {
    "onnxruntime": frozenset(
        ["threads", "intra_op_threads", "inter_op_threads", "graph_optimization", "execution_mode"]
    ),
    "llama-cpp": frozenset(
        [
            "threads",
            "context",
            "n_gpu_layers",
            "batch",
            "temperature",
            "top_p",
            "top_k",
            "mlock",
            "mmap",
        ]
    ),
    "ollama": frozenset(
        ["num_ctx", "num_thread", "num_gpu", "temperature", "keep_alive", "top_p", "top_k"]
    ),
    "litert": frozenset({"threads", "delegate"}),
}
"""Runtime params each engine understands; ``custom`` engines take anything."""


def no_candidate(target: Target, ctx: Context) -> Iterable[Diagnostic]:
    """BP401: on a class, no variant is a candidate; says per variant why."""
    out = []
    for index, cls_name, _ in ctx.classes(target.spec):
        found = ctx.static(target, cls_name)
        if found is not None and not found[0]:
            message = no_candidate_message(cls_name, target.spec.model, found[1])
            out.append(target.diag("BP401", message, ("deviceClasses", index)))
    return out


def no_room(target: Target, ctx: Context) -> Iterable[Diagnostic]:
    """BP402: deployments sharing a class do not fit together, even with their smallest."""
    if target.overlay is not None:
        return _no_room_with_overlay(target, ctx)
    out = []
    for index, cls_name, _ in ctx.classes(target.spec):
        problem = ctx.room_problems(cls_name).get(target.name)
        if problem is not None:
            out.append(target.diag("BP402", problem.message, ("deviceClasses", index)))
    return out


def _no_room_with_overlay(target: Target, ctx: Context) -> list[Diagnostic]:
    overlay = target.overlay
    if overlay is None or not _changes_fit(target.spec, target.dep.spec):
        return []
    out = []
    for index, cls_name, _ in ctx.classes(target.spec):
        base = ctx.room_problems(cls_name)
        for name, problem in ctx.room_problems_with(target, cls_name).items():
            if name == target.name:
                out.append(target.diag("BP402", problem.message, ("deviceClasses", index)))
            elif name not in base:
                message = f"with overlay '{overlay.name}': {problem.message}"
                out.append(overlay.diag("BP402", message, SET, key=True))
    return out


def _changes_fit(spec: DeploymentSpec, base: DeploymentSpec) -> bool:
    """Does an overlay change what decides room (not ``prefer``: it only orders)?"""
    mine = (spec.priority, spec.variants.allow, spec.keep, spec.privacy)
    return mine != (base.priority, base.variants.allow, base.keep, base.privacy)


def unknown_params(target: Target, ctx: Context) -> Iterable[Diagnostic]:
    """BP410 (warning): a runtime param the chosen engine does not know."""
    params = target.spec.runtime.params
    if not params:
        return []
    engines: dict[str, dict[str, list[str]]] = {}  # engine → runtime → classes
    for _, cls_name, _ in ctx.classes(target.spec):
        found = ctx.static(target, cls_name)
        if found is None or not found[0]:
            continue
        runtime = found[0][0].runtime
        engine = ctx.runtimes[runtime].engine
        if engine in KNOWN_PARAMS:
            engines.setdefault(engine, {}).setdefault(runtime, []).append(cls_name)
    out = []
    for param in params:
        missing = [e for e in engines if param not in KNOWN_PARAMS[e]]
        if not missing:
            continue
        where = "; ".join(
            f"runtime '{rt}' on {', '.join(classes)}"
            for e in missing
            for rt, classes in engines[e].items()
        )
        message = (
            f"runtime param '{param}' is not known to engine {', '.join(missing)} ({where})"
            f"{did_you_mean(param, KNOWN_PARAMS[missing[0]])}; it is passed on as written"
        )
        loc = ("runtime", "params", param)
        out.append(target.diag("BP410", message, loc, key=True, severity=Severity.WARNING))
    return out
