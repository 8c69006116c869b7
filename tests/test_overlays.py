"""Overlays: deep merge, effective spec, guardrails, conflicts; policy strictness (BP602)."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from slmops_bp.blueprint import BlueprintSet, Entry, parse_documents
from slmops_bp.load import load_text
from slmops_bp.model import OverlaySpec, PrivacyPolicySpec
from slmops_bp.overlays import (
    effective_spec,
    leaf_paths,
    merge,
    overlay_conflicts,
    privacy_guardrail,
)
from slmops_bp.policy import is_at_least_as_strict, policy_digest, weaker_fields

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
"""


def overlay(name: str, body: str, hosts: str = "{groups: [site_a]}") -> str:
    return (
        f"---\napiVersion: slmops.bp/v1\nkind: Overlay\nmetadata: {{name: {name}}}\n"
        f"spec:\n  deployment: triage\n  hosts: {hosts}\n  set:\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
    )


def blueprints(*texts: str) -> BlueprintSet:
    docs, diags = load_text("".join(texts), "bp.yaml")
    bset, schema = parse_documents(docs)
    assert not diags and not schema, [d.format() for d in diags + schema]
    return bset


# ---------------------------------------------------------------- merge


def test_merge_mappings_recursively_lists_and_scalars_replace() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": "x", "e": {"f": 1}}
    top = {"a": {"c": [3], "g": True}, "d": None, "e": 5}
    assert merge(base, top) == {"a": {"b": 1, "c": [3], "g": True}, "d": None, "e": 5}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": "x", "e": {"f": 1}}  # untouched


def test_leaf_paths() -> None:
    data = {"runtime": {"params": {"threads": 2}}, "variants": {"allow": ["q4"]}, "keep": 0}
    assert sorted(leaf_paths(data), key=str) == sorted(
        [("runtime", "params", "threads"), ("variants", "allow"), ("keep",)], key=str
    )
    assert leaf_paths({"runtime": {}}) == []


# ---------------------------------------------------------------- effective spec


def test_effective_spec_applies_overlays_in_order() -> None:
    bset = blueprints(
        DEPLOYMENT,
        overlay("wide", "runtime: {params: {threads: 2}}\nvariants: {allow: [q4]}\n"),
        overlay("narrow", "runtime: {params: {threads: 1}}\nkeep: 3\n"),
    )
    dep = bset.deployments["triage"]
    spec, diags = effective_spec(dep, [bset.overlays["wide"], bset.overlays["narrow"]])
    assert not diags and spec is not None
    assert spec.runtime.params == {"threads": 1, "context": 4096}
    assert spec.runtime.port == 8080
    assert spec.variants.allow == ["q4"] and spec.variants.prefer == "quality"
    assert spec.keep == 3
    assert dep.spec.keep == 1  # the deployment itself is unchanged


def test_effective_spec_without_overlays_is_the_deployment() -> None:
    bset = blueprints(DEPLOYMENT)
    spec, diags = effective_spec(bset.deployments["triage"], [])
    assert spec is bset.deployments["triage"].spec and not diags


def test_null_resets_a_field_to_its_default() -> None:
    bset = blueprints(DEPLOYMENT, overlay("any", "variants: {allow: null}\n"))
    spec, _ = effective_spec(bset.deployments["triage"], [bset.overlays["any"]])
    assert spec is not None and spec.variants.allow is None


def test_fixed_fields_are_reported_and_ignored() -> None:
    bset = blueprints(DEPLOYMENT, overlay("sneaky", "model: other\nkeep: 2\n"))
    spec, diags = effective_spec(bset.deployments["triage"], [bset.overlays["sneaky"]])
    assert spec is not None and spec.model == "phi" and spec.keep == 2
    assert [(d.code, d.line, d.column) for d in diags] == [("BP601", 22, 5)]


def test_rollout_is_per_deployment_but_health_is_per_host() -> None:
    body = (
        "rollout:\n  stages: [100%]\n  max_failures: 50%\n  on_failure: halt\n"
        "  health: {timeout: 2m, min_tokens_per_s: 3}\n"
    )
    bset = blueprints(DEPLOYMENT, overlay("site", body))
    spec, diags = effective_spec(bset.deployments["triage"], [bset.overlays["site"]])
    assert sorted((d.code, d.line, d.column) for d in diags) == [
        ("BP605", 23, 7),
        ("BP605", 24, 7),
        ("BP605", 25, 7),
    ]
    assert all("the deployment's alone" in d.message for d in diags)
    assert spec is not None
    base = bset.deployments["triage"].spec.rollout
    assert spec.rollout.stages == base.stages and spec.rollout.max_failures == base.max_failures
    assert spec.rollout.on_failure == base.on_failure
    assert spec.rollout.health.timeout == 120.0 and spec.rollout.health.min_tokens_per_s == 3


@pytest.mark.parametrize("value", ["null", "[1]", "fast"])
def test_rollout_that_is_not_a_mapping_is_refused(value: str) -> None:
    bset = blueprints(DEPLOYMENT, overlay("site", f"rollout: {value}\nkeep: 2\n"))
    spec, diags = effective_spec(bset.deployments["triage"], [bset.overlays["site"]])
    assert [(d.code, d.line) for d in diags] == [("BP605", 22)]
    assert spec is not None and spec.keep == 2
    assert spec.rollout == bset.deployments["triage"].spec.rollout


def test_errors_point_into_the_overlay_that_wrote_the_value() -> None:
    bset = blueprints(
        DEPLOYMENT,
        overlay("first", "rollout: {health: {timeout: 30s}}\n"),
        overlay("second", "runtime:\n  params: {threads: [1]}\n  prot: 1\n"),
    )
    dep = bset.deployments["triage"]
    spec, diags = effective_spec(dep, [bset.overlays["first"], bset.overlays["second"]])
    assert spec is None
    found = sorted((d.code, d.line, d.message) for d in diags)
    assert [(code, line) for code, line, _ in found] == [("BP201", 33), ("BP203", 32)]
    assert "did you mean 'port'" in found[0][2]
    assert found[1][2].startswith("spec.set.runtime.params.threads:")


# ---------------------------------------------------------------- conflicts


def two_overlays(
    hosts_a: str, hosts_b: str, body_b: str = "runtime: {params: {threads: 1}}\n"
) -> tuple[Entry[OverlaySpec], Entry[OverlaySpec]]:
    bset = blueprints(
        DEPLOYMENT,
        overlay("a", "runtime: {params: {threads: 2}}\n", hosts_a),
        overlay("b", body_b, hosts_b),
    )
    return bset.overlays["a"], bset.overlays["b"]


@pytest.mark.parametrize(
    ("hosts_a", "hosts_b", "conflict"),
    [
        ({"h1", "h2"}, {"h2", "h3"}, True),  # overlap, neither narrower
        ({"h1", "h2"}, {"h1", "h2"}, True),  # identical: neither strictly narrower
        ({"h1", "h2"}, {"h1"}, False),  # b narrower: b wins
        ({"h1"}, {"h1", "h2"}, False),  # a narrower: a wins
        ({"h1"}, {"h2"}, False),  # disjoint
    ],
)
def test_conflicts_with_host_sets(hosts_a: set[str], hosts_b: set[str], conflict: bool) -> None:
    a, b = two_overlays("{groups: [x]}", "{groups: [y]}")
    diags = overlay_conflicts([(a, frozenset(hosts_a)), (b, frozenset(hosts_b))])
    assert [d.code for d in diags] == (["BP603"] if conflict else [])
    if conflict:
        assert diags[0].path == "bp.yaml" and "'a'" in diags[0].message
        assert "runtime.params.threads" in diags[0].message


def test_conflicts_without_inventory_compare_selectors() -> None:
    a, b = two_overlays("{groups: [x, y]}", "{groups: [y, x]}")
    assert [d.code for d in overlay_conflicts([(a, None), (b, None)])] == ["BP603"]
    a, b = two_overlays("{groups: [x]}", "{groups: [x], hostvars: {lab: true}}")
    assert overlay_conflicts([(a, None), (b, None)]) == []


def test_different_fields_do_not_conflict() -> None:
    a, b = two_overlays("{groups: [x]}", "{groups: [x]}", "runtime: {params: {context: 1}}\n")
    assert overlay_conflicts([(a, None), (b, None)]) == []


def test_a_whole_mapping_conflicts_with_a_field_inside_it() -> None:
    a, b = two_overlays("{groups: [x]}", "{groups: [x]}", "runtime: null\n")
    (diag,) = overlay_conflicts([(a, None), (b, None)])
    assert "both set runtime " in diag.message


# ---------------------------------------------------------------- policy strictness


def pol(**extra: Any) -> PrivacyPolicySpec:
    return PrivacyPolicySpec.model_validate({"residency": "device", **extra})


def fields(a: PrivacyPolicySpec, b: PrivacyPolicySpec) -> list[str]:
    return [w.field for w in weaker_fields(a, b)]


def test_same_policy_is_at_least_as_strict() -> None:
    assert is_at_least_as_strict(pol(), pol())
    assert fields(pol(), pol()) == []


@pytest.mark.parametrize(
    ("weaker", "stricter", "field"),
    [
        ({"residency": "site"}, {"residency": "device"}, "residency"),
        ({"residency": "region"}, {"residency": "site"}, "residency"),
        ({"telemetry": "aggregate"}, {"telemetry": "none"}, "telemetry"),
        ({"telemetry": "full"}, {"telemetry": "aggregate"}, "telemetry"),
        ({"egress": {"default": "allow"}}, {"egress": {"default": "deny"}}, "egress.default"),
        ({"egress": {"allow": ["a", "b"]}}, {"egress": {"allow": ["a"]}}, "egress.allow"),
        ({"egress": {"allow": ["a"]}}, {"egress": {"allow": ["a:443"]}}, "egress.allow"),
        ({"logging": {"prompts": True}}, {}, "logging.prompts"),
        ({"logging": {"outputs": True}}, {}, "logging.outputs"),
        (
            {"logging": {"prompts": True, "retention": "30d"}},
            {"logging": {"prompts": True, "retention": "7d"}},
            "logging.retention",
        ),
        (
            {"logging": {"prompts": True}},
            {"logging": {"prompts": True, "retention": "7d"}},
            "logging.retention",
        ),
        (
            {"encryption_at_rest": "preferred"},
            {"encryption_at_rest": "required"},
            "encryption_at_rest",
        ),
        ({"encryption_at_rest": "none"}, {"encryption_at_rest": "preferred"}, "encryption_at_rest"),
        ({}, {"model_sources": ["https://a/*"]}, "model_sources"),
        ({"model_sources": ["https://*"]}, {"model_sources": ["https://a/*"]}, "model_sources"),
        ({}, {"licenses": ["mit"]}, "licenses"),
        ({"licenses": ["mit", "gpl-3.0"]}, {"licenses": ["mit"]}, "licenses"),
    ],
)
def test_weaker_on_one_field(weaker: dict[str, Any], stricter: dict[str, Any], field: str) -> None:
    assert fields(pol(**weaker), pol(**stricter)) == [field]
    assert fields(pol(**stricter), pol(**weaker)) == []
    assert not is_at_least_as_strict(pol(**weaker), pol(**stricter))


def test_strictness_details() -> None:
    # narrower globs, fewer licenses (any case), covered egress entries are stricter
    narrow = pol(model_sources=["https://a/models/*"], licenses=["MIT"],
                 egress={"allow": ["a:443"]})  # fmt: skip
    wide = pol(
        model_sources=["https://a/*"], licenses=["mit", "apache-2.0"], egress={"allow": ["a"]}
    )
    assert is_at_least_as_strict(narrow, wide)
    # retention does not matter when nothing is logged
    assert is_at_least_as_strict(pol(), pol(logging={"retention": "1d"}))
    # egress.allow does not matter when the reference allows everything
    assert is_at_least_as_strict(pol(egress={"allow": ["x"]}), pol(egress={"default": "allow"}))


def test_weaker_fields_show_both_values() -> None:
    (w,) = weaker_fields(pol(residency="region"), pol())
    assert str(w) == "residency region (weaker than device)"


def test_policy_digest_is_canonical() -> None:
    a = pol(licenses=["mit"], telemetry="none")
    b = PrivacyPolicySpec.model_validate({"licenses": ["mit"], "residency": "device"})
    assert policy_digest(a) == policy_digest(b)
    assert policy_digest(a).startswith("sha256:") and len(policy_digest(a)) == 71
    assert policy_digest(a) != policy_digest(pol(licenses=["apache-2.0"]))


def test_privacy_guardrail() -> None:
    policies = """\
---
apiVersion: slmops.bp/v1
kind: PrivacyPolicy
metadata: {name: strict}
spec: {residency: device, licenses: [mit]}
---
apiVersion: slmops.bp/v1
kind: PrivacyPolicy
metadata: {name: loose}
spec: {residency: region}
---
apiVersion: slmops.bp/v1
kind: PrivacyPolicy
metadata: {name: stricter}
spec: {residency: device, licenses: [mit], encryption_at_rest: required}
"""
    bset = blueprints(
        DEPLOYMENT,
        policies,
        overlay("loosen", "privacy: loose\n"),
        overlay("tighten", "privacy: stricter\n"),
    )
    dep = bset.deployments["triage"]
    (diag,) = privacy_guardrail(bset.overlays["loosen"], dep, bset.policies)
    assert diag.code == "BP602"
    assert "residency region (weaker than device)" in diag.message
    assert "licenses [] (any) (weaker than [mit])" in diag.message
    assert privacy_guardrail(bset.overlays["tighten"], dep, bset.policies) == []
