"""``bp init [DIR]``: a new blueprint repository with a simulated local fleet.

The fleet is three inventory hosts on this machine (``ansible_connection:
local``), each with its own ``bp_root``, ``bp_facts`` for its hardware and
``bp_service_manager: none``.  Two deployments: ``assistant``, a tiny real ONNX
language model on ONNX Runtime (``fleet.yaml``), and ``chat``, a tiny llama-architecture
GGUF on llama.cpp (``chat.yaml``); ``bp serve`` publishes both on 127.0.0.1, with the
llama-cpp-python wheel the devices install (built once by ``python -m
slmops_bp.llama_wheel``, copied here when it is in the cache).  ``bp apply`` then works.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from importlib import resources
from pathlib import Path

from slmops_bp import llama_wheel
from slmops_bp.diagnostics import UsageFailure

DEFAULT_PORT = 8642
ONNXRUNTIME_DEFAULT = "1.20.1"
MODELS = {
    "fp32-onnx": ("tiny-lm-fp32.onnx", "fp32", "1.0", "768MiB"),
    "small-onnx": ("tiny-lm-small.onnx", "fp32", "0.8", "256MiB"),
}
GGUF = "tiny-lm-q4_0.gguf"

BLUEPRINTS = """\
# yaml-language-server: $schema=../schemas/blueprint.json
# A simulated fleet on this machine: edit it, then
#   bp validate && bp plan -i inventory/hosts.yml && bp apply -i inventory/hosts.yml
apiVersion: slmops.bp/v1
kind: DeviceClass
metadata:
  name: sim-arm-4g
  description: Simulated 4 GiB ARM board (CPU only).
spec:
  match: {{groups: [arm_boards]}}
  arch: aarch64
  memory: 4GiB
  reserve: 512MiB
  storage: 16GiB
  runtimes: [onnxruntime, llama-cpp]
---
apiVersion: slmops.bp/v1
kind: DeviceClass
metadata:
  name: sim-x86-16g
  description: Simulated 16 GiB x86 box.
spec:
  match: {{groups: [x86_boxes]}}
  arch: x86_64
  memory: 16GiB
  storage: 64GiB
  runtimes: [onnxruntime, llama-cpp]
  encrypted_storage: true
---
apiVersion: slmops.bp/v1
kind: Runtime
metadata:
  name: onnxruntime
spec:
  engine: onnxruntime
  version: "{ort_version}"
  formats: [onnx]
  accelerators: [cpu]
  telemetry: none
---
apiVersion: slmops.bp/v1
kind: Runtime
metadata:
  name: llama-cpp
  description: llama.cpp through llama-cpp-python, installed from the wheel `bp serve` publishes.
spec:
  engine: llama-cpp
  version: "{llama_version}"
  formats: [gguf]
  accelerators: [cpu]
  telemetry: none
  install:
    pip: ["llama-cpp-python[server]=={llama_version}"]
    # the wheel built once on the controller; never compiled on a device
    pip_args: ["--find-links", "http://127.0.0.1:{port}/wheels/",
               "--only-binary", "llama-cpp-python"]
---
apiVersion: slmops.bp/v1
kind: Model
metadata:
  name: tiny-lm
  description: A tiny ONNX language model (token ids in, logits out).
spec:
  version: "1.0.0"
  task: text-generation
  license: apache-2.0
  variants:
{variants}
---
apiVersion: slmops.bp/v1
kind: PrivacyPolicy
metadata:
  name: local-only
spec:
  residency: device
  telemetry: none
  egress:
    default: deny
    allow: ["127.0.0.1:{port}"]
  logging: {{prompts: false, outputs: false, retention: 7d}}
  encryption_at_rest: preferred
  model_sources: ["http://127.0.0.1:{port}/*"]
  licenses: [apache-2.0, mit]
---
apiVersion: slmops.bp/v1
kind: Deployment
metadata:
  name: assistant
  description: The tiny assistant on every simulated device.
spec:
  model: tiny-lm
  deviceClasses: [sim-arm-4g, sim-x86-16g]
  privacy: local-only
  variants: {{prefer: quality}}
  runtime:
    params: {{threads: 1}}
  rollout:
    stages: [1, 100%]
    max_failures: 0
    health:
      prompt: "Reply with OK."
      timeout: 60s
      min_tokens_per_s: 1
    on_failure: rollback
  keep: 2
"""

CHAT = """\
# yaml-language-server: $schema=../schemas/blueprint.json
# A tiny llama-architecture model (random weights, 2 layers, a small vocabulary) in GGUF,
# served by llama.cpp on every simulated device next to the ONNX assistant.
apiVersion: slmops.bp/v1
kind: Model
metadata:
  name: tiny-llama
  description: A tiny llama-architecture GGUF (Q4_0) that llama.cpp loads and generates from.
spec:
  version: "1.0.0"
  task: text-generation
  license: apache-2.0
  variants:
    - name: q4-gguf
      format: gguf
      precision: q4_0
      artifact:
        uri: http://127.0.0.1:{port}/tiny-llama/1.0.0/{file}
        sha256: {sha256}
        size: {size}B
      memory: 256MiB
      accelerators: [cpu]
      quality: 1.0
---
apiVersion: slmops.bp/v1
kind: Deployment
metadata:
  name: chat
  description: The tiny chat model on llama.cpp on every simulated device.
spec:
  model: tiny-llama
  deviceClasses: [sim-arm-4g, sim-x86-16g]
  privacy: local-only
  runtime:
    params: {{threads: 1, context: 256}}
  rollout:
    stages: [1, 100%]
    max_failures: 0
    health:
      prompt: "Reply with OK."
      timeout: 120s
      min_tokens_per_s: 5
    on_failure: rollback
  keep: 2
"""

VARIANT = """\
    - name: {name}
      format: onnx
      precision: {precision}
      artifact:
        uri: http://127.0.0.1:{port}/tiny-lm/1.0.0/{file}
        sha256: {sha256}
        size: {size}B
      memory: {memory}
      accelerators: [cpu]
      quality: {quality}"""

INVENTORY = """\
# A simulated fleet: every host is this machine, each with its own bp_root.
all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{python}"
    bp_service_manager: none
  children:
    arm_boards:
      hosts:
        sim-arm-01:
          bp_root: "{root}/.fleet/sim-arm-01"
          bp_facts: {{arch: aarch64, memory: 4GiB, storage_free: 12GiB}}
        sim-arm-02:
          bp_root: "{root}/.fleet/sim-arm-02"
          bp_facts: {{arch: aarch64, memory: 4GiB, storage_free: 12GiB}}
    x86_boxes:
      hosts:
        sim-x86-01:
          bp_root: "{root}/.fleet/sim-x86-01"
          bp_facts: {{arch: x86_64, memory: 16GiB, storage_free: 40GiB}}
"""

README = """\
# A slmops-bp blueprint repository (simulated fleet)

    python -m slmops_bp.llama_wheel --into artifacts/wheels   # once: the llama.cpp wheel
    bp serve artifacts --port {port} &     # publish the model files on 127.0.0.1
    bp validate                             # check the blueprints
    bp plan -i inventory/hosts.yml          # who gets what, and why
    bp apply -i inventory/hosts.yml         # staged rollout with health checks
    bp status -i inventory/hosts.yml        # what runs where, drift, health

Devices live under `.fleet/<host>/` (their `bp_root`). `blueprints/fleet.yaml` deploys a
tiny ONNX model on ONNX Runtime (`assistant`), `blueprints/chat.yaml` a tiny GGUF on llama.cpp
(`chat`); the devices install llama.cpp from `artifacts/wheels/`.
"""


def onnxruntime_version() -> str:
    """The onnxruntime version pip can install fastest here (already cached), else a default."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("onnxruntime")
    except PackageNotFoundError:
        return ONNXRUNTIME_DEFAULT


def run(directory: str, port: int, force: bool) -> int:
    root = Path(directory).absolute()
    if root.exists() and any(root.iterdir()) and not force:
        raise UsageFailure(f"{root} is not empty (use --force to write into it anyway)")
    data = resources.files("slmops_bp") / "data"
    artifacts = root / "artifacts" / "tiny-lm" / "1.0.0"
    artifacts.mkdir(parents=True, exist_ok=True)
    variants = []
    for name, (file, precision, quality, memory) in MODELS.items():
        blob = (data / file).read_bytes()
        (artifacts / file).write_bytes(blob)
        variants.append(
            VARIANT.format(
                name=name,
                precision=precision,
                port=port,
                file=file,
                sha256=hashlib.sha256(blob).hexdigest(),
                size=len(blob),
                memory=memory,
                quality=quality,
            )
        )
    gguf = (data / GGUF).read_bytes()
    gguf_dir = root / "artifacts" / "tiny-llama" / "1.0.0"
    gguf_dir.mkdir(parents=True, exist_ok=True)
    (gguf_dir / GGUF).write_bytes(gguf)
    wheel = llama_wheel.find_wheel()
    if wheel is not None:
        (root / "artifacts" / "wheels").mkdir(parents=True, exist_ok=True)
        shutil.copy2(wheel, root / "artifacts" / "wheels" / wheel.name)
    files = {
        "blueprints/fleet.yaml": BLUEPRINTS.format(
            ort_version=onnxruntime_version(),
            llama_version=llama_wheel.VERSION,
            variants="\n".join(variants),
            port=port,
        ),
        "blueprints/chat.yaml": CHAT.format(
            port=port, file=GGUF, sha256=hashlib.sha256(gguf).hexdigest(), size=len(gguf)
        ),
        "inventory/hosts.yml": INVENTORY.format(python=sys.executable, root=root),
        "README.md": README.format(port=port),
        ".gitignore": ".bp/\n.fleet/\n",
    }
    from slmops_bp import schema

    files["blueprints/fleet.yaml"] = schema.with_modelines(
        files["blueprints/fleet.yaml"], f"../schemas/{schema.ANY_DOCUMENT}"
    )
    files[".vscode/settings.json"] = json.dumps(schema.editor_settings(), indent=2) + "\n"

    schema.write(root / "schemas")
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    sys.stderr.write(
        f"created {root}: blueprints/, inventory/hosts.yml (3 simulated hosts), artifacts/\n"
        f"next: cd {directory} && (bp serve artifacts --port {port} &) "
        "&& bp apply -i inventory/hosts.yml\n"
    )
    if wheel is None:
        sys.stderr.write(
            f"note: no {llama_wheel.PACKAGE} {llama_wheel.VERSION} wheel is built yet; the chat "
            "deployment installs llama.cpp from artifacts/wheels/, so first run\n"
            f"  python -m slmops_bp.llama_wheel --into {directory}/artifacts/wheels\n"
        )
    return 0
