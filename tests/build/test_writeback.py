"""Write-back keeps the file: only the measured fields change (ruamel.yaml round trip)."""

from __future__ import annotations

import difflib
from pathlib import Path

from slmops_bp.build.writeback import Measured, split_documents, write_back

FILE = """\
# yaml-language-server: $schema=../schemas/blueprint.json
# A header comment that must stay.
apiVersion: slmops.bp/v1
kind: Runtime
metadata: {name: llama-cpp}
spec:
  engine: llama-cpp
  version: "0.3.36"
  formats: [gguf]
  install:
    pip_args: ["--find-links", "http://127.0.0.1:8642/wheels/",
               "--only-binary", "llama-cpp-python"]
---
apiVersion: slmops.bp/v1
kind: Model
metadata:
  name: tiny
spec:
  version: '1.0.0'   # single quotes stay single
  task: text-generation
  license: apache-2.0
  variants:
    # the hand-written one
    - name: plain
      format: gguf
      precision: q4_0
      artifact: {uri: "http://x.example/a.gguf", sha256: "<A>", size: 10B}
      memory: 64MiB
    - name: built  # built by bp build
      format: gguf
      precision: q8_0
      accelerators: [cpu]
      build:
        steps:
          - quantize: q8_0   # the method
    - name: rebuilt
      format: gguf
      precision: q4_0
      build:
        steps:
          - prune: 0.5
          - quantize: q4_0
        digest: sha256:<D>
        seal: sha256:<S>
      artifact:
        uri: http://x.example/old.gguf  # the old one
        sha256: <B>
        size: 9B
      memory: 60MiB  # measured
      quality: 0.5
      sparsity: 0.4
"""
for _mark, _char in (("<A>", "a"), ("<D>", "1"), ("<S>", "2"), ("<B>", "b")):
    FILE = FILE.replace(_mark, _char * 64)


def _measured(n: str) -> Measured:
    return Measured(
        uri=f"http://x.example/sha256/{n * 64}/tiny.gguf", sha256=n * 64, size=1234,
        memory="51MiB", quality=0.9038, sparsity=None, digest="sha256:" + "3" * 64,
        seal="sha256:" + "4" * 64,
    )  # fmt: skip


def test_split_documents_joins_back_to_the_file() -> None:
    parts = split_documents(FILE)
    assert len(parts) == 2 and "".join(parts) == FILE


def test_only_the_measured_fields_change(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(FILE)
    rebuilt = Measured(**{**_measured("c").__dict__, "sparsity": 0.5})
    assert write_back(path, {"tiny": {"built": _measured("d"), "rebuilt": rebuilt}})
    after = path.read_text()
    diff = [
        line
        for line in difflib.unified_diff(FILE.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    removed = sorted(line for line in diff if line.startswith("-"))
    added = sorted(line for line in diff if line.startswith("+"))
    # the Runtime document, comments, quoting and the plain variant are untouched
    assert after.split("---\n")[0] == FILE.split("---\n")[0]
    kept = (
        "# A header comment",
        "version: '1.0.0'   # single quotes stay single",
        "# the hand-written one",
        "- name: built  # built by bp build",
        "- quantize: q8_0   # the method",
        "tiny.gguf # the old one",
        "memory: 51MiB  # measured",
        'artifact: {uri: "http://x.example/a.gguf"',
    )
    for text in kept:
        assert text in after, text
    # the re-measured variant: values replaced in place
    assert removed == sorted(
        [
            "-        digest: sha256:" + "1" * 64,
            "-        seal: sha256:" + "2" * 64,
            "-        uri: http://x.example/old.gguf  # the old one",
            "-        sha256: " + "b" * 64,
            "-        size: 9B",
            "-      memory: 60MiB  # measured",
            "-      quality: 0.5",
            "-      sparsity: 0.4",
        ]
    )
    # the new variant: build record, artifact, memory and quality added, nothing else
    new_keys = {line.strip().lstrip("+").split(":")[0].strip() for line in added}
    assert new_keys == {"digest", "seal", "artifact", "uri", "sha256", "size", "memory",
                        "quality", "sparsity"}  # fmt: skip
    assert "+      quality: 0.9038" in added and "+      sparsity: 0.5" in added
    # a second write of the same values changes nothing
    rewritten = {"tiny": {"built": _measured("d"), "rebuilt": rebuilt}}
    assert not write_back(path, rewritten)
    assert path.read_text() == after
