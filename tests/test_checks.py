"""Cross-document rules: registry, overlays held to the same rules, speed, documented codes."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from slmops_bp.blueprint import BlueprintSet, parse_documents
from slmops_bp.checks import CHECKS, DEPLOYMENT_CHECKS, run_checks
from slmops_bp.diagnostics import Diagnostic
from slmops_bp.load import load_text

ROOT = Path(__file__).resolve().parent.parent
BASE = (ROOT / "tests" / "fixtures" / "base" / "fleet.yaml").read_text(encoding="utf-8")
SHA = "ab" * 32


def doc(kind: str, name: str, spec: str) -> str:
    body = textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ")
    return (
        f"---\napiVersion: slmops.bp/v1\nkind: {kind}\nmetadata: {{name: {name}}}\nspec:\n{body}\n"
    )


def check(*texts: str) -> tuple[BlueprintSet, list[Diagnostic]]:
    docs, diags = load_text(BASE + "".join(texts), "bp.yaml")
    bset, schema = parse_documents(docs)
    assert not diags and not schema, [d.format() for d in diags + schema]
    return bset, run_checks(bset)


def codes(diags: list[Diagnostic]) -> list[str]:
    return sorted(d.code for d in diags)


def test_base_fleet_is_clean() -> None:
    assert check()[1] == []


def test_registry_ids_are_kebab_case_and_unique() -> None:
    ids = list(CHECKS) + list(DEPLOYMENT_CHECKS)
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", i) for i in ids)


# ---------------------------------------------------------------- overlays


def test_overlay_that_takes_room_from_another_deployment_is_reported_at_the_overlay() -> None:
    # big-chat (priority 0) gets no room on rpi next to triage (priority 10); an overlay
    # raising big-chat's priority serves it first and pushes triage out instead
    big = doc(
        "Model",
        "big",
        f"""
        version: "1"
        task: text-generation
        license: mit
        variants:
          - name: q4
            format: gguf
            precision: q4_k_m
            artifact: {{uri: "https://models.example.com/big/q4.gguf", sha256: "{SHA}", size: 1GB}}
            memory: 4.5GiB
        """,
    )
    dep = doc("Deployment", "big-chat", "model: big\ndeviceClasses: [rpi]\nprivacy: strict\n")
    ov = doc(
        "Overlay",
        "big-first",
        "deployment: big-chat\nhosts: {groups: [site_a]}\nset:\n  priority: 50\n",
    )
    _, diags = check(big, dep)
    assert codes(diags) == ["BP402"]  # big-chat (priority 0) has no room next to triage
    assert "'big-chat' does not fit" in diags[0].message
    _, diags = check(big, dep, ov)
    moved = [d for d in diags if "with overlay 'big-first'" in d.message]
    assert [d.code for d in moved] == ["BP402"]
    assert "deployment 'triage' does not fit" in moved[0].message


def test_an_overlay_does_not_repeat_its_deployments_findings() -> None:
    dep = doc(
        "Deployment",
        "odd",
        "model: minilm\ndeviceClasses: [rpi]\nprivacy: strict\nrollout: {stages: [50%]}\n",
    )
    ov = doc("Overlay", "tweak", "deployment: odd\nhosts: {groups: [x]}\nset: {keep: 2}\n")
    _, diags = check(dep, ov)
    assert codes(diags) == ["BP703"]


def test_an_overlay_cannot_fix_or_hide_the_deployments_rollout() -> None:
    dep = doc(
        "Deployment",
        "odd",
        "model: minilm\ndeviceClasses: [rpi]\nprivacy: strict\nrollout: {stages: [50%]}\n",
    )
    ov = doc(
        "Overlay",
        "fix",
        "deployment: odd\nhosts: {groups: [x]}\nset: {rollout: {stages: [10%, 100%]}}\n",
    )
    _, diags = check(dep, ov)
    assert codes(diags) == ["BP605", "BP703"]  # the overlay's stages are refused, not applied
    assert not any("with overlay" in d.message for d in diags)


def test_custom_engines_take_any_param() -> None:
    rt = doc(
        "Runtime",
        "mine",
        "engine: custom\nversion: '1'\nformats: [gguf]\nrole: my_ns.my_coll.my_role\n",
    )
    cls = doc(
        "DeviceClass",
        "custom-box",
        "arch: x86_64\nmemory: 8GiB\nstorage: 64GiB\nruntimes: [mine]\nencrypted_storage: true\n",
    )
    dep = doc(
        "Deployment",
        "custom-chat",
        "model: phi\ndeviceClasses: [custom-box]\nprivacy: strict\n"
        "runtime: {params: {whatever: 1}}\n",
    )
    assert check(rt, cls, dep)[1] == []


def test_checks_are_deterministic() -> None:
    ov = doc("Overlay", "o", "deployment: triage\nhosts: {groups: [x]}\nset: {keep: -1}\n")
    bset, first = check(ov)
    assert first == run_checks(bset)
    assert codes(first) == ["BP204"]


# ---------------------------------------------------------------- speed


def fleet(classes: int = 50, models: int = 200, deployments: int = 500, overlays: int = 247) -> str:
    parts = [
        doc("Runtime", "gguf-rt", "engine: llama-cpp\nversion: '1'\nformats: [gguf]\n"
            "accelerators: [cpu, cuda]\n"),
        doc("Runtime", "onnx-rt", "engine: onnxruntime\nversion: '1'\nformats: [onnx]\n"),
        doc("PrivacyPolicy", "p", "residency: device\nlicenses: [mit]\n"),
    ]  # fmt: skip
    for i in range(classes):
        parts.append(doc("DeviceClass", f"c{i}", f"""
            match: {{groups: [g{i}]}}
            arch: x86_64
            memory: {8 * (1 + i % 4)}GiB
            storage: 512GiB
            accelerators: [{{type: cuda, memory: 8GiB}}]
            runtimes: [gguf-rt, onnx-rt]
            """))  # fmt: skip
    for i in range(models):
        variants = "".join(
            f"  - {{name: v{j}, format: {fmt}, precision: int8, memory: {j + 1}GiB,"
            f" quality: 0.{9 - j}, accelerators: [cpu, cuda],"
            f" artifact: {{uri: 'https://m/{i}/{j}', sha256: '{SHA}', size: 1GB}}}}\n"
            for j, fmt in enumerate(("gguf", "onnx", "gguf"))
        )
        parts.append(
            doc("Model", f"m{i}", f"version: '1'\ntask: t\nlicense: mit\nvariants:\n{variants}")
        )
    for i in range(deployments):
        parts.append(doc("Deployment", f"d{i}", f"""
            priority: {i % 5}
            model: m{i % models}
            deviceClasses: [c{i % classes}, c{(i * 7 + 1) % classes}]
            privacy: p
            runtime: {{params: {{threads: 2}}}}
            rollout: {{stages: [1, 10%, 100%]}}
            """))  # fmt: skip
    for i in range(overlays):
        change = ("runtime: {params: {threads: 1}}", "keep: 2", "variants: {prefer: size}")[i % 3]
        parts.append(doc("Overlay", f"o{i}", f"deployment: d{i % deployments}\n"
                         f"hosts: {{groups: [s{i}]}}\nset: {{{change}}}\n"))  # fmt: skip
    return "".join(parts)


@pytest.mark.slow
def test_a_thousand_documents_are_checked() -> None:
    # Every check runs to the end on a large, interlinked fleet whose only faults are classes
    # with more co-resident deployments than accelerator memory; how fast is measured by
    # bench/validate.py (ratios in one run), not asserted here.
    docs, diags = load_text(fleet(), "fleet.yaml")
    bset, schema = parse_documents(docs)
    assert len(docs) == 1000 and not diags and not schema
    found = run_checks(bset)
    assert found and {d.code for d in found} == {"BP402"}
    assert all(d.path == "fleet.yaml" and d.line > 0 for d in found)


# ---------------------------------------------------------------- documentation

CODE = re.compile(r"\bBP\d{3}\b")
MODULES = [
    "load",
    "blueprint.py",
    "model_errors.py",
    "selection.py",
    "coresidency.py",
    "overlays.py",
    "policy.py",
    "plan.py",
    "checks",
    "measured.py",
    "render",
]


def test_every_code_is_documented() -> None:
    docs = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^### (BP\d{3})\b", docs, flags=re.M))
    used: set[str] = set()
    for name in MODULES:
        path = ROOT / "slmops_bp" / name
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            used |= set(CODE.findall(file.read_text(encoding="utf-8")))
    for fixture in (ROOT / "tests" / "fixtures").rglob("*.yaml"):
        used |= set(CODE.findall(fixture.read_text(encoding="utf-8")))
    assert sorted(used - documented) == []
