"""The typed overlay merge equals validating the deep merge of the documents.

The reference below is the merge the compiler used to do on the documents' raw
data (deep merge, then validate the result, each error located in the layer
that wrote it); the typed merge must give the same spec and the same
diagnostics, at the same positions, without reading any document's data.
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from slmops_bp.blueprint import Entry, parse_documents
from slmops_bp.diagnostics import Diagnostic
from slmops_bp.load import Document, Loc, load_text
from slmops_bp.model import DeploymentSpec, OverlaySpec
from slmops_bp.model_errors import map_error_details
from slmops_bp.overlays import SET, effective_spec, fixed_fields, has_path, merge, settable

DEPLOYMENT = """\
apiVersion: slmops.bp/v1
kind: Deployment
metadata: {name: triage}
spec:
  model: phi
  deviceClasses: [jetson]
  privacy: strict
  variants: {prefer: quality, allow: [q4, q8]}
  runtime:
    port: 8080
    params: {threads: 4, context: 4096}
  rollout:
    stages: [1, 100%]
    health: {timeout: 30s}
"""


def overlay_text(name: str, written: dict[str, Any]) -> str:
    return (
        f"---\napiVersion: slmops.bp/v1\nkind: Overlay\nmetadata: {{name: {name}}}\n"
        "spec:\n  deployment: triage\n  hosts: {groups: [site]}\n"
        f"  set:\n    {json.dumps(written)}\n"
    )


def entries(*sets: dict[str, Any]) -> tuple[Entry[DeploymentSpec], list[Entry[OverlaySpec]]]:
    text = DEPLOYMENT + "".join(overlay_text(f"o{i}", s) for i, s in enumerate(sets))
    docs, diags = load_text(text, "bp.yaml")
    bset, schema = parse_documents(docs)
    assert not diags and not schema, [d.format() for d in diags + schema]
    return bset.deployments["triage"], [bset.overlays[f"o{i}"] for i in range(len(sets))]


# ---------------------------------------------------------------- the reference: raw merge


def raw_effective_spec(
    dep: Entry[DeploymentSpec], overlays: Sequence[Entry[OverlaySpec]]
) -> tuple[DeploymentSpec | None, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    merged: Any = copy.deepcopy(dep.doc.data["spec"])
    layers = []
    for overlay in overlays:
        diags += fixed_fields(overlay)
        layers.append(settable(overlay))
        merged = merge(merged, layers[-1])
    if not layers:
        return dep.spec, diags
    try:
        return DeploymentSpec.model_validate(merged), diags
    except ValidationError as exc:
        by_origin: dict[int, list[ErrorDetails]] = defaultdict(list)
        for err in exc.errors(include_url=False):
            by_origin[_origin(_existing(merged, err["loc"]), layers)].append(err)
    for index, errors in sorted(by_origin.items()):
        if index < 0:
            diags += map_error_details(errors, dep.doc, DeploymentSpec, ("spec",))
        else:
            diags += map_error_details(errors, overlays[index].doc, DeploymentSpec, SET)
    return None, diags


def _existing(data: Any, loc: Sequence[str | int]) -> Loc:
    out: list[str | int] = []
    node = data
    for step in loc:
        if has_path(node, (step,)):
            node = node[step]
            out.append(step)
        elif isinstance(node, dict):
            break
    return tuple(out)


def _origin(path: Loc, layers: Sequence[dict[str, Any]]) -> int:
    if not path:
        return -1
    return next((i for i in range(len(layers) - 1, -1, -1) if has_path(layers[i], path)), -1)


def same_as_raw_merge(*sets: dict[str, Any]) -> tuple[DeploymentSpec | None, list[str]]:
    dep, overlays = entries(*sets)
    spec, diags = effective_spec(dep, overlays)
    want_spec, want_diags = raw_effective_spec(dep, overlays)
    assert [d.format() for d in diags] == [d.format() for d in want_diags]
    assert spec == want_spec
    if spec is not None and want_spec is not None:
        assert spec.model_dump(mode="json") == want_spec.model_dump(mode="json")
    return spec, [d.format() for d in diags]


# ---------------------------------------------------------------- generated overlays

NAMES = st.sampled_from(["q4", "q8", "small-gguf", "Bad_Name", ""])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 70000), st.sampled_from([0.5, "8080", "x", "30s"])
)
HEALTH = st.fixed_dictionaries(
    {},
    optional={
        "timeout": st.sampled_from(["10s", "0s", "2m", "soon", 5, -1, None]),
        "prompt": st.sampled_from(["Say OK.", "", 7, None]),
        "min_tokens_per_s": st.sampled_from([1.5, 0, -2, "fast", None]),
        "retries": st.integers(0, 3),
    },
)
PARAMS = st.dictionaries(
    st.sampled_from(["threads", "context", "batch", "mode"]),
    st.one_of(SCALARS, st.lists(st.integers(), max_size=2), st.just({"deep": 1})),
    max_size=3,
)
MAPPINGS = st.fixed_dictionaries(
    {},
    optional={
        "priority": st.one_of(st.integers(-5, 5), st.sampled_from(["high", None, 1.5])),
        "keep": st.one_of(st.integers(-2, 102), st.sampled_from([True, "2", None])),
        "privacy": st.one_of(NAMES, st.just(3)),
        "model": st.just("other"),
        "variants": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "prefer": st.sampled_from(["quality", "size", "measured", "fast", None]),
                    "allow": st.one_of(st.none(), st.lists(NAMES, max_size=3), st.just("q4")),
                    "deny": st.just(["q4"]),
                },
            ),
            SCALARS,
        ),
        "runtime": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "port": st.one_of(st.integers(-1, 70000), st.sampled_from(["8080", None])),
                    "params": st.one_of(PARAMS, SCALARS),
                },
            ),
            SCALARS,
        ),
        "rollout": st.fixed_dictionaries(
            {}, optional={"health": st.one_of(HEALTH, SCALARS), "stages": st.just(["100%"])}
        ),
        "replicas": st.one_of(SCALARS, st.just({"count": 2})),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MAPPINGS, min_size=1, max_size=3))
def test_typed_merge_equals_the_raw_merge_on_generated_overlays(sets: list[dict[str, Any]]) -> None:
    same_as_raw_merge(*sets)


CASES: list[tuple[str, list[dict[str, Any]], bool]] = [
    ("nested mapping merges", [{"runtime": {"params": {"threads": 2}}}], True),
    ("list replaces", [{"variants": {"allow": ["q4"]}}], True),
    ("later value wins", [{"keep": 2}, {"keep": 3}], True),
    ("invalid value replaced later", [{"runtime": {"port": "x"}}, {"runtime": {"port": 9}}], True),
    (
        "invalid scalar for a mapping, then a mapping",
        [{"runtime": 5}, {"runtime": {"port": 9}}],
        True,
    ),
    ("invalid value kept", [{"runtime": {"port": "x"}}, {"runtime": {"params": {}}}], False),
    ("unknown key", [{"runtime": {"bogus": 1}}], False),
    ("errors in two layers", [{"keep": -1}, {"privacy": "Bad_Name"}], False),
    ("null for a mapping", [{"variants": None}], False),
    ("health per host", [{"rollout": {"health": {"timeout": "5s"}}}], True),
    ("mapping where a scalar goes", [{"runtime": {"params": {"threads": {"n": 1}}}}], False),
    ("fixed fields left out", [{"model": "x", "rollout": {"stages": ["100%"]}}], True),
]


@pytest.mark.parametrize(
    ("sets", "valid"), [(s, v) for _, s, v in CASES], ids=[c[0] for c in CASES]
)
def test_typed_merge_equals_the_raw_merge_on_known_cases(
    sets: list[dict[str, Any]], valid: bool
) -> None:
    spec, diags = same_as_raw_merge(*sets)
    assert (spec is not None) == valid, diags


def test_merged_values_are_typed_and_the_deployment_is_untouched() -> None:
    dep, overlays = entries(
        {"runtime": {"params": {"threads": 2}}}, {"rollout": {"health": {"timeout": "5s"}}}
    )
    before = dep.spec.model_dump()
    spec, diags = effective_spec(dep, overlays)
    assert spec is not None and not diags
    assert spec.runtime.params == {"threads": 2, "context": 4096}
    assert spec.runtime.port == 8080
    assert spec.rollout.health.timeout == 5.0
    assert [str(s) for s in spec.rollout.stages] == [str(s) for s in dep.spec.rollout.stages]
    assert dep.spec.model_dump() == before


# ---------------------------------------------------------------- no raw data


class SealedDocument(Document):
    """A document whose raw data may not be read (the model stage is over)."""

    def __getattribute__(self, name: str) -> Any:
        if name == "data":
            raise AssertionError("Document.data read after the model stage")
        return super().__getattribute__(name)


def sealed(entry: Entry[Any]) -> Entry[Any]:
    doc = copy.copy(entry.doc)
    object.__setattr__(doc, "__class__", SealedDocument)
    return replace(entry, doc=doc)


@pytest.mark.parametrize(
    "sets",
    [
        [{"runtime": {"params": {"threads": 2}}}, {"keep": 3}],
        [{"runtime": {"port": "x", "bogus": 1}}, {"model": "other", "rollout": {"stages": [1]}}],
        [{"rollout": {"health": {"timeout": "0s"}}}, {"variants": {"allow": ["Bad_Name"]}}],
    ],
)
def test_effective_spec_never_reads_document_data(sets: list[dict[str, Any]]) -> None:
    dep, overlays = entries(*sets)
    want_spec, want_diags = raw_effective_spec(dep, overlays)
    sealed_dep, sealed_overlays = sealed(dep), [sealed(o) for o in overlays]
    with pytest.raises(AssertionError, match=r"Document\.data"):
        _ = sealed_dep.doc.data
    spec, diags = effective_spec(sealed_dep, sealed_overlays)
    assert spec == want_spec
    assert [d.format() for d in diags] == [d.format() for d in want_diags]
    assert all(d.path == "bp.yaml" and d.line > 1 for d in diags)


def test_every_model_a_set_merges_into_has_defaults() -> None:
    """A mapping merged onto a replaced slot starts from defaults: each nested model has them."""
    from slmops_bp.overlay_merge import _default, _nested

    seen: list[type[Any]] = []
    todo: list[type[Any]] = [DeploymentSpec]
    while todo:
        model = todo.pop()
        for name in model.model_fields:
            nested = _nested(model, name)
            if nested is not None and nested not in seen:
                assert _default(nested) is not None
                seen.append(nested)
                todo.append(nested)
    assert {m.__name__ for m in seen} >= {"VariantPolicy", "RuntimeSettings", "Rollout", "Health"}
