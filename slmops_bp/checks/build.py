"""Build recipes (``bp build``): methods, chains, inputs, and measurements that still hold.

Every rule reads the recipe only; none runs a quantizer.  The stale-build rule hashes the
reference and the eval inputs (or takes the reference's declared ``sha256``).
"""

from __future__ import annotations

from collections.abc import Iterable

from slmops_bp.blueprint import Entry
from slmops_bp.build import recipe
from slmops_bp.checks.context import Context
from slmops_bp.diagnostics import Diagnostic, Severity
from slmops_bp.model import ModelSpec, Variant
from slmops_bp.model_build import BUILD_FROM_SOURCE

MEASURED = ("artifact", "memory", "quality", "sparsity")
RECIPE_ERRORS = ("BP350", "BP351", "BP352", "BP356", "BP357")
"""Recipes ``bp build`` cannot run (BP353-BP355 are what a build fixes)."""


def _models(ctx: Context) -> Iterable[Entry[ModelSpec]]:
    return ctx.bset.models.values()


def methods(ctx: Context) -> Iterable[Diagnostic]:
    """BP350: a quantization method the variant's format has no quantizer for."""
    out = []
    for entry in _models(ctx):
        for i, variant in enumerate(entry.spec.variants):
            if variant.build is None:
                continue
            known = recipe.METHODS.get(variant.format)
            for j, step in enumerate(variant.build.steps):
                if step.quantize is None:
                    continue
                if known is None:
                    msg = (
                        f"variant '{variant.name}': bp build has no quantizer for format "
                        f"'{variant.format}' (it builds {', '.join(sorted(recipe.METHODS))})"
                    )
                elif step.quantize not in known:
                    msg = (
                        f"variant '{variant.name}': unknown quantization method "
                        f"'{step.quantize}' for format '{variant.format}'; "
                        f"expected one of: {', '.join(known)}"
                    )
                else:
                    continue
                loc = ("spec", "variants", i, "build", "steps", j, "quantize")
                out.append(entry.diag("BP350", msg, loc))
    return out


def chains(ctx: Context) -> Iterable[Diagnostic]:
    """BP351 (a cycle), BP352 (an input that does not exist), BP356 (format differs)."""
    out = []
    for entry in _models(ctx):
        spec = entry.spec
        variants = recipe.by_name(spec)
        inputs = recipe.Inputs.of(spec, entry.doc.path)
        for i, variant in enumerate(spec.variants):
            if variant.build is None:
                continue
            base = variant.build.from_
            loc = ("spec", "variants", i, "build")
            if base == BUILD_FROM_SOURCE:
                if spec.source is None:
                    out.append(
                        entry.diag(
                            "BP352",
                            f"variant '{variant.name}' is built from the model's source, but "
                            "the model has no 'source' (its reference artifact)",
                            loc,
                            key=True,
                        )
                    )
                elif variant.format != spec.source.format:
                    out.append(
                        entry.diag(
                            "BP356",
                            f"variant '{variant.name}' is '{variant.format}' but its source is "
                            f"'{spec.source.format}'; bp build does not convert formats",
                            ("spec", "variants", i, "format"),
                        )
                    )
                continue
            parent = variants.get(base)
            if parent is None or parent.build is None:
                why = "no such variant" if parent is None else "it has no build recipe"
                out.append(
                    entry.diag(
                        "BP352",
                        f"variant '{variant.name}' is built from '{base}': {why} "
                        f"(build from '{BUILD_FROM_SOURCE}' or from a variant with a recipe)",
                        (*loc, "from"),
                    )
                )
                continue
            try:
                recipe.chain(spec, variant)
            except recipe.CycleError as exc:
                out.append(
                    entry.diag(
                        "BP351",
                        f"variant '{variant.name}': build recipes form a cycle ({exc})",
                        (*loc, "from"),
                    )
                )
                continue
            except KeyError:
                continue  # reported at the variant whose 'from' is wrong
            if variant.format != parent.format:
                out.append(
                    entry.diag(
                        "BP356",
                        f"variant '{variant.name}' is '{variant.format}' but '{base}' it is "
                        f"built from is '{parent.format}'; bp build does not convert formats",
                        ("spec", "variants", i, "format"),
                    )
                )
        if any(v.build for v in spec.variants):
            out += _files(entry, inputs)
    return out


def _files(entry: Entry[ModelSpec], inputs: recipe.Inputs) -> list[Diagnostic]:
    out = []
    spec = entry.spec
    if spec.source is not None and inputs.source is not None and not inputs.source.is_file():
        out.append(
            entry.diag(
                "BP352",
                f"model '{entry.name}': source {spec.source.path} does not exist "
                f"(looked for {inputs.source})",
                ("spec", "source", "path"),
            )
        )
    if spec.eval is None:
        out.append(
            entry.diag(
                "BP357",
                f"model '{entry.name}' has build recipes but no 'eval' set: bp build measures "
                "quality against the reference on it",
                ("spec", "variants"),
                key=True,
            )
        )
    elif inputs.eval is not None and not inputs.eval.is_file():
        out.append(
            entry.diag(
                "BP352",
                f"model '{entry.name}': eval inputs {spec.eval.inputs} do not exist "
                f"(looked for {inputs.eval})",
                ("spec", "eval", "inputs"),
            )
        )
    elif spec.eval.metric not in recipe.METRICS.get(spec.task, ()):
        fits = recipe.METRICS.get(spec.task)
        hint = f"use {' or '.join(fits)}" if fits else "bp build measures no other task yet"
        out.append(
            entry.diag(
                "BP357",
                f"model '{entry.name}': metric '{spec.eval.metric}' does not fit task "
                f"'{spec.task}'; {hint}",
                ("spec", "eval", "metric"),
            )
        )
    return out


def _sound(spec: ModelSpec, variant: Variant) -> bool:
    """The recipe resolves, its methods exist, its format is its base's (else reported)."""
    try:
        names = recipe.chain(spec, variant).names
    except (recipe.CycleError, KeyError):
        return False
    variants = recipe.by_name(spec)
    for name in names:
        v = variants[name]
        known = recipe.METHODS.get(v.format, ())
        if v.build is None or any(s.quantize not in (None, *known) for s in v.build.steps):
            return False
        base = v.build.from_
        base_format = spec.source.format if base == BUILD_FROM_SOURCE and spec.source else None
        if base != BUILD_FROM_SOURCE:
            base_format = variants[base].format
        if base_format != v.format:
            return False
    return True


def measurements(ctx: Context) -> Iterable[Diagnostic]:
    """BP353 (measured values written by hand), BP354 (stale build), BP355 (not built yet)."""
    out = []
    for entry in _models(ctx):
        spec = entry.spec
        inputs = recipe.Inputs.of(spec, entry.doc.path)
        for i, variant in enumerate(spec.variants):
            build = variant.build
            if build is None:
                continue
            loc = ("spec", "variants", i)
            written = [f for f in MEASURED if getattr(variant, f) is not None]
            if build.digest is None or build.seal is None:
                if written:
                    out.append(
                        entry.diag(
                            "BP353",
                            f"variant '{variant.name}' has a build recipe but a hand-written "
                            f"'{written[0]}'; remove it: bp build measures and writes it",
                            (*loc, written[0]),
                            key=True,
                        )
                    )
                elif _sound(spec, variant) and recipe.expected_digest(spec, variant, inputs):
                    out.append(
                        entry.diag(
                            "BP355",
                            f"variant '{variant.name}' is not built yet: run `bp build` (until "
                            "then it is no candidate for a deployment)",
                            (*loc, "build"),
                            key=True,
                            severity=Severity.WARNING,
                        )
                    )
                continue
            if recipe.variant_seal(variant) != build.seal:
                changed = "quality" if variant.quality is not None else "artifact"
                out.append(
                    entry.diag(
                        "BP353",
                        f"variant '{variant.name}': its measured values were edited by hand "
                        "(they no longer match build.seal); run `bp build` to measure again",
                        (*loc, changed),
                        key=True,
                    )
                )
                continue
            if not _sound(spec, variant):
                continue
            expected = recipe.expected_digest(spec, variant, inputs)
            if expected is not None and expected != build.digest:
                out.append(
                    entry.diag(
                        "BP354",
                        f"variant '{variant.name}' is a stale build: its recipe, source or eval "
                        "set changed since it was measured; run `bp build`",
                        (*loc, "build", "digest"),
                    )
                )
    return out
