"""The engine's memory, as the health check and `bp build` measure it (``bp_scripts.RESIDENT``).

Owned memory (RssAnon + RssShmem) at its peak, plus the model file's size when the engine
maps it; shared-library and other file pages are left out, because how many of them a
process maps depends on the page cache. Checked on made-up /proc files and on real
processes that allocate, map and read known amounts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from content_helpers import import_collection_module

scripts = import_collection_module("plugins.module_utils.bp_scripts")
bp_health = import_collection_module("plugins.modules.bp_health")
MiB = 2**20


def resident() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "bp_resident"}
    exec(compile(scripts.RESIDENT, "bp-resident", "exec"), namespace)
    return namespace


R = resident()


def fake_proc(root: Path, pid: int, status: dict[str, int], maps: list[str]) -> Path:
    """A /proc with one process: ``status`` in kB, ``maps`` lines as the kernel writes them."""
    d = root / str(pid)
    d.mkdir(parents=True)
    lines = ["Name:\tpython3", "State:\tS (sleeping)"]
    lines += [f"{key}:\t{value:8d} kB" for key, value in status.items()]
    (d / "status").write_text("\n".join(lines) + "\n")
    (d / "maps").write_text("".join(line + "\n" for line in maps))
    return root


def maps_line(path: Path, start: int = 0x7F0000000000) -> str:
    st = path.stat()
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
    return f"{start:x}-{start + 0x1000:x} r--s 00000000 {dev} {st.st_ino}    {path}"


def test_owned_memory_is_anonymous_plus_shared(tmp_path: Path) -> None:
    status = {"VmHWM": 90_000, "VmRSS": 80_000, "RssAnon": 30_000, "RssFile": 49_000,
              "RssShmem": 1_000}  # fmt: skip
    proc = fake_proc(tmp_path, 42, status, [])
    fields = R["proc_status"](42, str(proc))
    assert fields["RssAnon"] == 30_000 * 1024 and fields["VmHWM"] == 90_000 * 1024
    assert R["owned_bytes"](fields) == 31_000 * 1024
    # at VmHWM the process owned at least 90000 - 49000 kB: more than now, so that counts
    assert R["engine_bytes"](str(tmp_path / "none.gguf"), 42, 0, str(proc)) == 41_000 * 1024
    # a sampled peak above both wins
    assert R["engine_bytes"]("/nonexistent", 42, 50_000 * 1024, str(proc)) == 50_000 * 1024


def test_library_pages_do_not_count_the_mapped_model_does(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"\0" * 12345)
    library = tmp_path / "libengine.so"
    library.write_bytes(b"\0" * 4096)
    status = {"VmHWM": 20_000, "RssAnon": 10_000, "RssFile": 10_000, "RssShmem": 0}
    anon = "7f0000100000-7f0000200000 rw-p 00000000 00:00 0 "
    proc = fake_proc(tmp_path / "proc", 7, status, [anon, maps_line(library), maps_line(model)])
    assert R["mapped_model_bytes"](str(model), 7, str(proc)) == 12345  # its size, once
    assert R["mapped_model_bytes"](str(library.with_name("other")), 7, str(proc)) == 0
    assert R["engine_bytes"](str(model), 7, 0, str(proc)) == 10_000 * 1024 + 12345
    # the same model read (not mapped) is in the anonymous memory already
    proc2 = fake_proc(tmp_path / "proc2", 7, status, [anon, maps_line(library)])
    assert R["engine_bytes"](str(model), 7, 0, str(proc2)) == 10_000 * 1024


def test_unreadable_process_gives_none(tmp_path: Path) -> None:
    assert R["proc_status"](99, str(tmp_path)) == {}
    assert R["engine_bytes"]("/nonexistent", 99, 0, str(tmp_path)) is None
    assert R["mapped_model_bytes"]("/nonexistent", 99, str(tmp_path)) == 0


# A real process: measures itself with the health scripts' code while it allocates, maps and
# reads known amounts; prints {"base": owned bytes before, "engine": what stop() reports, ...}.
PROGRAM = r"""
import json, mmap, sys
cfg = json.loads(sys.argv[1])
memory = MemoryPeak()
base = owned_bytes(proc_status())
held = None
if cfg.get("transient"):
    block = b"\x01" * cfg["transient"]   # written, so resident; freed again before stop()
    del block
if cfg.get("held"):
    held = b"\x02" * cfg["held"]
if cfg.get("map"):
    with open(cfg["map"], "rb") as f:
        view = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    total = sum(view[i] for i in range(0, len(view), mmap.PAGESIZE))  # every page resident
if cfg.get("read"):
    with open(cfg["read"], "rb") as f:
        data = f.read()
engine = memory.stop(cfg["model"])
print(json.dumps({"base": base, "engine": engine, "hwm": memory.vm_hwm}))
"""


def run(**cfg: Any) -> dict[str, int]:
    cfg.setdefault("model", "/nonexistent/model")
    proc = subprocess.run(
        [sys.executable, "-c", scripts.RESIDENT + PROGRAM, json.dumps(cfg)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return dict(json.loads(proc.stdout))


@pytest.mark.parametrize("kind", ["held", "transient"])
def test_a_process_that_allocates_64mib_measures_64mib_more(kind: str) -> None:
    size = 64 * MiB
    quiet = run()
    result = run(**{kind: size})
    grown = result["engine"] - result["base"]
    assert abs(grown - size) <= 0.03 * size, (kind, grown / MiB)
    assert abs(quiet["engine"] - quiet["base"]) <= 0.03 * size


def test_file_pages_the_process_maps_are_not_its_memory_unless_they_are_the_model(
    tmp_path: Path,
) -> None:
    data = tmp_path / "weights.bin"
    data.write_bytes(os.urandom(16 * MiB))
    quiet = run()
    # a mapped file that is not the model (like a library): VmHWM grows by it, the measure not
    other = run(map=str(data))
    assert other["hwm"] - quiet["hwm"] >= 15 * MiB
    assert abs(other["engine"] - quiet["engine"]) <= 1 * MiB
    # the model mapped (llama.cpp and GGUF): its size counts
    mapped = run(map=str(data), model=str(data))
    assert abs(mapped["engine"] - quiet["engine"] - 16 * MiB) <= 1 * MiB
    # the model read into the process (ONNX Runtime): its copy is owned memory
    read = run(read=str(data), model=str(data))
    assert abs(read["engine"] - quiet["engine"] - 16 * MiB) <= 1 * MiB


def test_a_running_service_is_measured_the_same_way(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(os.urandom(8 * MiB))
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import mmap, sys\n"
         "f = open(sys.argv[1], 'rb'); m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)\n"
         "held = b'\\x03' * (48 * 2**20)\n"
         "print('ready', flush=True); sys.stdin.read()\n", str(model)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        measured = bp_health.process_memory(child.pid, str(model))
        fields = R["proc_status"](child.pid)
        assert measured == R["engine_bytes"](str(model), child.pid)
        assert measured >= 48 * MiB + 8 * MiB
        assert measured - R["owned_bytes"](fields) == 8 * MiB  # the model file, by its size
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)
    assert bp_health.process_memory(child.pid, str(model)) is None  # gone


def test_one_definition_for_build_device_and_service() -> None:
    from slmops_bp.build import evaluate

    # bp build runs the collection's own health scripts (no copy of them), every one of which
    # measures with RESIDENT, and bp_health measures a running service with the same code
    assert evaluate._health_scripts() == scripts.HEALTH_SCRIPTS
    for engine, script in scripts.HEALTH_SCRIPTS.items():
        assert script.startswith(scripts.RESIDENT), engine
        assert '"rss_bytes": rss_bytes' in script and "memory.stop(cfg[\"model\"])" in script
    assert bp_health.RESIDENT_NS["engine_bytes"].__code__.co_filename == "bp_resident"


LLAMA_CLI = r"""#!{python}
import mmap, sys, time
model = sys.argv[sys.argv.index("-m") + 1]
with open(model, "rb") as f:
    weights = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
cache = b"\x04" * (40 * 2**20)   # what llama.cpp allocates: KV cache, compute buffers
time.sleep(0.5)
print("OK")
sys.stderr.write("llama_perf_context_print:        eval time =  70.00 ms /  7 runs   "
                 "(10.00 ms per token, 100.00 tokens per second)\n")
"""


def test_llama_cli_is_sampled_with_the_same_measure(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    (runtime / "bin").mkdir(parents=True)
    cli = runtime / "bin" / "llama-cli"
    cli.write_text(LLAMA_CLI.replace("{python}", sys.executable))
    cli.chmod(0o755)
    model = tmp_path / "model.gguf"
    model.write_bytes(os.urandom(8 * MiB))
    params = {
        "engine": "llama-cpp", "runtime_dir": str(runtime), "model": str(model),
        "prompt": "hi", "timeout": 60, "min_tokens_per_s": None, "params": {},
        "port": None, "service_manager": "none", "data_dir": None, "name": "dep",
        "state_path": None, "release": None,
    }  # fmt: skip
    raw = bp_health.Check(params).execute()
    assert raw["ok"] and raw["tokens_per_s"] == 100.0, raw
    # a Python interpreter (about 10 MiB owned) + 40 MiB allocated + the 8 MiB model mapped
    assert 48 * MiB < raw["rss_bytes"] < 64 * MiB, raw["rss_bytes"] / MiB
    assert bp_health.measure_rss("dep", "none", str(model), raw["rss_bytes"]) == (
        raw["rss_bytes"], "check",
    )  # fmt: skip


def test_a_sampled_engine_that_never_answers_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    (runtime / "bin").mkdir(parents=True)
    cli = runtime / "bin" / "llama-cli"
    cli.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n")
    cli.chmod(0o755)
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    params = {
        "engine": "llama-cpp", "runtime_dir": str(runtime), "model": str(model),
        "prompt": "hi", "timeout": 1, "min_tokens_per_s": None, "params": {},
        "port": None, "service_manager": "none", "data_dir": None, "name": "dep",
        "state_path": None, "release": None,
    }  # fmt: skip
    check = bp_health.Check(params)
    raw = check.execute()
    assert raw == {"ok": False, "error": "no answer within 1s"}
    assert time.monotonic() - (check.deadline - 1) < 10
