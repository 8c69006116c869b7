"""`bp build` on the tiny references: real artifacts, real measurements, ordered as physics says.

The ONNX and GGUF references are the ones `bp init` ships (made by scripts/make_tiny_*.py).
Every number comes from the built file or from running it: sizes and digests from the
store, memory from the engine's health check (owned memory, no library pages), quality from
the outputs on the eval set against the reference's, sparsity from the weights.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from slmops_bp.cli import cli
from slmops_bp.commands.init import eval_sets
from slmops_bp.quantities import parse_size

pytest.importorskip("llama_cpp", reason="GGUF measuring needs llama-cpp-python (scripts/test)")
pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[2] / "slmops_bp" / "data"

MODELS = """\
# models built from their references; comments stay where they are
apiVersion: slmops.bp/v1
kind: Model
metadata: {name: lm}
spec:
  version: "1.0.0"
  task: text-generation
  license: mit
  source: {path: ref/lm.onnx, format: onnx}
  eval: {inputs: eval/lm.jsonl, metric: next-token-agreement}
  variants:
    - name: fp32
      format: onnx
      precision: fp32
      build:
        steps: []                 # the reference itself, measured
    - name: int8
      format: onnx
      precision: int8
      build:
        steps:
          - quantize: int8-dynamic
    - name: int8-static
      format: onnx
      precision: int8
      build:
        steps:
          - quantize: int8-static
    - name: fp16
      format: onnx
      precision: fp16
      build:
        steps:
          - quantize: fp16
    - name: pruned
      format: onnx
      precision: fp32
      build:
        steps:
          - prune: 0.5
    - name: pruned-int8           # a chain: from another variant
      format: onnx
      precision: int8
      build:
        from: pruned
        steps:
          - quantize: int8-dynamic
---
apiVersion: slmops.bp/v1
kind: Model
metadata: {name: llama}
spec:
  version: "1.0.0"
  task: text-generation
  license: mit
  source: {path: ref/llama.gguf, format: gguf}
  eval: {inputs: eval/llama.jsonl, metric: kl}
  variants:
    - name: q8
      format: gguf
      precision: q8_0
      build:
        steps:
          - quantize: q8_0
    - name: q4
      format: gguf
      precision: q4_0
      build:
        steps:
          - quantize: q4_0
    - name: pruned-q8
      format: gguf
      precision: q8_0
      build:
        steps:
          - prune: 0.5
          - quantize: q8_0
"""


@dataclass
class Built:
    root: Path
    before: str
    after: str
    first: dict[str, Any]

    @property
    def models(self) -> Path:
        return self.root / "blueprints" / "models.yaml"

    def build(self, *args: str) -> tuple[int, dict[str, Any], str]:
        argv = ["build", "--blueprints", str(self.root / "blueprints"), "--store",
                str(self.root / ".bp" / "store"), "--format", "json", *args]  # fmt: skip
        result = CliRunner().invoke(cli, argv)
        out = json.loads(result.stdout) if result.stdout.strip() else {}
        return result.exit_code, out, result.stderr

    def row(self, model: str, variant: str) -> dict[str, Any]:
        rows = self.first["built"]
        return next(r for r in rows if (r["model"], r["variant"]) == (model, variant))

    def validate(self) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["validate", str(self.root / "blueprints")])
        return result.exit_code, result.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("build")
    (root / "blueprints" / "ref").mkdir(parents=True)
    (root / "blueprints" / "eval").mkdir()
    shutil.copy(DATA / "tiny-lm-fp32.onnx", root / "blueprints" / "ref" / "lm.onnx")
    shutil.copy(DATA / "tiny-llama-f32.gguf", root / "blueprints" / "ref" / "llama.gguf")
    evals = eval_sets()
    (root / "blueprints" / "eval" / "lm.jsonl").write_text(evals["eval/tiny-lm.jsonl"])
    (root / "blueprints" / "eval" / "llama.jsonl").write_text(evals["eval/tiny-llama.jsonl"])
    (root / "blueprints" / "models.yaml").write_text(MODELS)
    state = Built(root, MODELS, "", {})
    code, out, err = state.build("-j", "2", "--base-uri", "http://127.0.0.1:9/store")
    assert code == 0, err
    state.first = out
    state.after = state.models.read_text()
    return state


def test_every_recipe_was_built_and_written_back(built: Built) -> None:
    names = {(r["model"], r["variant"]) for r in built.first["built"]}
    assert names == {("lm", v) for v in ("fp32", "int8", "int8-static", "fp16", "pruned",
                                         "pruned-int8")} | {("llama", v) for v in
                                                            ("q8", "q4", "pruned-q8")}  # fmt: skip
    assert built.first["written"] == [str(built.models)]
    code, out = built.validate()
    assert code == 0 and "BP35" not in out, out


def test_artifacts_are_the_stored_files(built: Built) -> None:
    store = built.root / ".bp" / "store"
    for row in built.first["built"]:
        suffix = ".onnx" if row["model"] == "lm" else ".gguf"
        path = store / "sha256" / row["sha256"] / f"{row['model']}-{row['variant']}{suffix}"
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        assert len(data) == row["size"]
        assert row["uri"] == f"http://127.0.0.1:9/store/sha256/{row['sha256']}/{path.name}"
    # the reference measured as a variant is the reference, byte for byte
    ref = (built.root / "blueprints" / "ref" / "lm.onnx").read_bytes()
    assert built.row("lm", "fp32")["sha256"] == hashlib.sha256(ref).hexdigest()


def test_sizes_are_ordered_as_precision_says(built: Built) -> None:
    size = {(r["model"], r["variant"]): r["size"] for r in built.first["built"]}
    assert size["lm", "int8"] < size["lm", "fp16"] < size["lm", "fp32"]
    assert size["lm", "int8-static"] < size["lm", "fp32"]
    assert size["llama", "q4"] < size["llama", "q8"]
    assert size["llama", "q8"] < (built.root / "blueprints" / "ref" / "llama.gguf").stat().st_size


def test_quality_is_ordered_as_precision_says(built: Built) -> None:
    q = {(r["model"], r["variant"]): r["quality"] for r in built.first["built"]}
    assert q["lm", "fp32"] == 1.0  # the reference agrees with itself
    assert 0 < q["lm", "int8"] <= 1.0 and 0 < q["lm", "fp16"] <= 1.0
    assert q["lm", "fp16"] >= q["lm", "int8"]
    assert q["llama", "q8"] >= q["llama", "q4"]
    assert q["llama", "q8"] > q["llama", "q4"]  # KL tells them apart on the tiny model
    assert q["lm", "pruned"] < q["lm", "fp32"]  # half the weights gone costs agreement


def test_pruning_half_gives_half_zeros(built: Built) -> None:
    for key in (("lm", "pruned"), ("lm", "pruned-int8"), ("llama", "pruned-q8")):
        sparsity = built.row(*key)["sparsity"]
        assert sparsity == pytest.approx(0.5, abs=0.02), key
    assert built.row("lm", "int8")["sparsity"] is None  # no prune step, nothing claimed


def test_memory_is_what_the_engines_health_check_measures(built: Built) -> None:
    for row in built.first["built"]:
        memory = parse_size(row["memory"])
        assert row["rss_bytes"] <= memory < row["rss_bytes"] + 1024**2
        assert 10 * 1024**2 < memory < 1024**3, row  # an engine process, not a guess
        assert row["tokens_per_s"] > 0 and row["latency_ms"] > 0


def test_write_back_adds_only_measured_fields(built: Built) -> None:
    import difflib

    lines = difflib.unified_diff(
        built.before.splitlines(), built.after.splitlines(), lineterm="", n=0
    )
    changed = [x for x in lines if x[:1] in "+-" and not x.startswith(("+++", "---"))]
    assert changed and all(line.startswith("+") for line in changed), changed
    keys = {line[1:].strip().split(":")[0] for line in changed}
    assert keys == {"digest", "seal", "artifact", "uri", "sha256", "size", "memory", "quality",
                    "sparsity"}  # fmt: skip
    assert "# the reference itself, measured" in built.after
    assert "# a chain: from another variant" in built.after


def test_second_build_rebuilds_nothing(built: Built) -> None:
    code, out, err = built.build()
    assert code == 0, err
    assert out["built"] == [] and out["written"] == []
    assert len(out["up_to_date"]) == 9
    assert built.models.read_text() == built.after


def test_validate_flags_hand_edits_and_stale_builds(built: Built) -> None:
    try:
        built.models.write_text(built.after.replace("quality: 1.0", "quality: 0.99", 1))
        code, out = built.validate()
        assert code == 1 and "BP353" in out, out
        eval_file = built.root / "blueprints" / "eval" / "lm.jsonl"
        original = eval_file.read_text()
        built.models.write_text(built.after)
        eval_file.write_text(original + '{"tokens": [1, 2, 3, 4]}\n')
        code, out = built.validate()
        assert code == 1 and out.count("BP354") == 6, out  # every lm variant, no llama one
        # a new eval set: measured again, but no recipe runs again (the store has them)
        code, again, err = built.build()
        assert code == 0, err
        assert {r["variant"] for r in again["built"]} == {
            "fp32", "int8", "int8-static", "fp16", "pruned", "pruned-int8"
        }
        assert all(r["steps_run"] == 0 for r in again["built"])
        assert built.validate()[0] == 0
    finally:
        eval_file.write_text(original)
        built.models.write_text(built.after)
