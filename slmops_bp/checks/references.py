"""BP3xx: every name a document uses exists, of the right kind (SPEC §3.2).

References to a document that failed schema validation are not reported again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from slmops_bp.blueprint import Entry
from slmops_bp.checks.context import Context, Target
from slmops_bp.diagnostics import Diagnostic, Severity, did_you_mean
from slmops_bp.load import Loc
from slmops_bp.model import KINDS, DeviceClassSpec

ARTICLE = {k: "an" if k[0] in "AEIOU" else "a" for k in KINDS}


def unknown_name(ctx: Context, kind: str, name: str, what: str) -> str | None:
    """The BP302 message for a reference to ``name`` of ``kind``, or None when it exists."""
    if ctx.known(kind, name):
        return None
    other = next((k for k in KINDS if k != kind and name in ctx.bset.table(kind=k)), None)
    if other is not None:
        return f"{what} '{name}' is {ARTICLE[other]} {other}, not {ARTICLE[kind]} {kind}"
    hint = did_you_mean(name, ctx.bset.table(kind))
    return f"{what}: no {kind} named '{name}'{hint}"


# ---------------------------------------------------------------- whole set


def duplicate_names(ctx: Context) -> Iterable[Diagnostic]:
    """BP301: a document reuses the name of an earlier one of its kind (the first is kept)."""
    out = []
    for entry in ctx.bset.duplicates:
        first = ctx.bset.table(entry.kind)[entry.name]
        message = f"duplicate {entry.kind} name '{entry.name}' (first defined at {first.where})"
        out.append(entry.diag("BP301", message))
    return out


# ---------------------------------------------------------------- per deployment


def model_reference(target: Target, ctx: Context) -> Iterable[Diagnostic]:
    message = unknown_name(ctx, "Model", target.spec.model, "model")
    return [target.diag("BP302", message, ("model",))] if message else []


def class_references(target: Target, ctx: Context) -> Iterable[Diagnostic]:
    out = []
    for index, name in enumerate(target.spec.deviceClasses):
        message = unknown_name(ctx, "DeviceClass", name, "device class")
        if message:
            out.append(target.diag("BP302", message, ("deviceClasses", index)))
    return out


def privacy_reference(target: Target, ctx: Context) -> Iterable[Diagnostic]:
    message = unknown_name(ctx, "PrivacyPolicy", target.spec.privacy, "privacy policy")
    return [target.diag("BP302", message, ("privacy",))] if message else []


def allowed_variants(target: Target, ctx: Context) -> Iterable[Diagnostic]:
    """``variants.allow`` names only variants the model has."""
    model = ctx.bset.models.get(target.spec.model)
    allow = target.spec.variants.allow
    if model is None or allow is None:
        return []
    names = [v.name for v in model.spec.variants]
    return [
        target.diag(
            "BP302",
            f"variants.allow: model '{target.spec.model}' has no variant '{name}'"
            f"{did_you_mean(name, names)}; it has {', '.join(names)}",
            ("variants", "allow", index),
        )
        for index, name in enumerate(allow)
        if name not in names
    ]


def repeated_entries(target: Target, ctx: Context) -> Iterable[Diagnostic]:
    """BP304 (warning): a name listed twice in deviceClasses or variants.allow."""
    out = list(_repeats(target.spec.deviceClasses, ("deviceClasses",), target))
    out += _repeats(target.spec.variants.allow or [], ("variants", "allow"), target)
    return out


def _repeats(names: Sequence[str], loc: Loc, target: Target) -> Iterable[Diagnostic]:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            yield target.diag(
                "BP304",
                f"'{name}' is listed twice in {'.'.join(map(str, loc))}",
                (*loc, index),
                severity=Severity.WARNING,
            )
        seen.add(name)


# ---------------------------------------------------------------- other documents


def class_runtimes(ctx: Context) -> Iterable[Diagnostic]:
    """A device class lists only Runtimes that exist (BP302), each once (BP304)."""
    out: list[Diagnostic] = []
    for entry in ctx.bset.device_classes.values():
        seen: set[str] = set()
        for index, name in enumerate(entry.spec.runtimes):
            loc = ("spec", "runtimes", index)
            message = unknown_name(ctx, "Runtime", name, "runtime")
            if message:
                out.append(entry.diag("BP302", message, loc))
            elif name in seen:
                out.append(_twice(entry, name, loc))
            seen.add(name)
    return out


def _twice(entry: Entry[DeviceClassSpec], name: str, loc: Loc) -> Diagnostic:
    return entry.diag(
        "BP304", f"'{name}' is listed twice in runtimes", loc, severity=Severity.WARNING
    )


def overlay_deployments(ctx: Context) -> Iterable[Diagnostic]:
    out = []
    for entry in ctx.bset.overlays.values():
        message = unknown_name(ctx, "Deployment", entry.spec.deployment, "deployment")
        if message:
            out.append(entry.diag("BP302", message, ("spec", "deployment")))
    return out


def duplicate_variants(ctx: Context) -> Iterable[Diagnostic]:
    """BP303: variant names are unique within a model (overlays and the plan name them)."""
    out = []
    for entry in ctx.bset.models.values():
        first: dict[str, int] = {}
        for index, variant in enumerate(entry.spec.variants):
            if variant.name in first:
                line, _ = entry.doc.pos(("spec", "variants", first[variant.name], "name"))
                out.append(
                    entry.diag(
                        "BP303",
                        f"model '{entry.name}' has two variants named '{variant.name}' "
                        f"(first at line {line})",
                        ("spec", "variants", index, "name"),
                    )
                )
            else:
                first[variant.name] = index
    return out
