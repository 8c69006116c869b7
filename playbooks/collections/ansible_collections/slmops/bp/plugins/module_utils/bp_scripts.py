# -*- coding: utf-8 -*-
# Copyright: slmops-bp contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Python programs that run inside a provisioned runtime (never in the module's own interpreter).

They are handed to the runtime's python with ``-c`` (health checks) or written
into ``<runtime>/bin/bp-serve`` (the service of the python-based engines), so
no file has to be copied to the device for them. Each health script reads one
JSON argument and prints one JSON line: ``{"ok": true, "latency_ms": ..,
"tokens_per_s": .., ...}`` or ``{"ok": false, "error": ".."}``.

tokens_per_s: the number of tokens produced per second. For engines without a
tokenizer of their own (ONNX Runtime, LiteRT) one inference step counts as one
token, so it is 1000 / median step latency in ms.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Shared by the ONNX Runtime health check and bp-serve: one tensor per input,
# built from its declared type and shape (dynamic dimensions = 1; integers get
# token ids 0..99, floats zeros, booleans false, strings the prompt).
_ORT_FEEDS = r'''
import numpy as np

_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16,
    "tensor(int8)": np.int8, "tensor(uint64)": np.uint64, "tensor(uint32)": np.uint32,
    "tensor(uint16)": np.uint16, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_,
}


def ort_feeds(session, prompt):
    feeds = {}
    for inp in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in (inp.shape or [])]
        count = int(np.prod(shape)) if shape else 1
        if inp.type == "tensor(string)":
            feeds[inp.name] = np.array([prompt] * count, dtype=object).reshape(shape)
            continue
        dtype = _ORT_TYPES.get(inp.type)
        if dtype is None:
            raise ValueError("input %r has a type the health check cannot feed: %s" % (inp.name, inp.type))
        if np.issubdtype(dtype, np.integer):
            feeds[inp.name] = (np.arange(count) % 100).astype(dtype).reshape(shape)
        else:
            feeds[inp.name] = np.zeros(shape, dtype=dtype)
    return feeds
'''

# The engine's memory, in every health result as rss_bytes (bp build measures a variant's
# memory with these same scripts, and bp_health measures a running service with RESIDENT):
# the peak of its anonymous and shared memory (RssAnon + RssShmem), plus the size of the
# model file when the engine maps it (llama.cpp mmaps GGUF). Shared-library pages are left
# out: how many of them a process maps depends on how hot the files are in the page cache.
RESIDENT = r'''
import os
import threading


def proc_status(pid="self", proc="/proc"):
    """The kB fields of /proc/PID/status in bytes; {} when it cannot be read."""
    fields = {}
    try:
        with open("%s/%s/status" % (proc, pid)) as status:
            for line in status:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    fields[parts[0].rstrip(":")] = int(parts[1]) * 1024
    except (OSError, ValueError):
        return {}
    return fields


def owned_bytes(fields):
    """Memory a process holds whatever the page cache: anonymous plus shared (tmpfs, shm)."""
    return fields.get("RssAnon", 0) + fields.get("RssShmem", 0)


def mapped_model_bytes(model, pid="self", proc="/proc"):
    """The size of the model file when the process maps it (matched by device and inode), else 0."""
    try:
        st = os.stat(model)
        want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
        with open("%s/%s/maps" % (proc, pid)) as maps:
            for line in maps:
                parts = line.split(None, 5)
                if len(parts) < 5 or parts[4] == "0":
                    continue
                major, minor = parts[3].split(":")
                if (int(major, 16), int(minor, 16), int(parts[4])) == want:
                    return st.st_size
    except (OSError, ValueError):
        pass
    return 0


def engine_bytes(model, pid="self", peak=0, proc="/proc"):
    """The engine's memory in bytes, None when the process cannot be read: the largest of
    ``peak`` (owned memory sampled earlier), its owned memory now and VmHWM - RssFile (file
    pages only grow while an engine runs, so when the peak RSS was reached it owned at least
    that much), plus the model file when the engine maps it (llama.cpp maps GGUF)."""
    fields = proc_status(pid, proc)
    if not fields:
        return None
    bound = fields.get("VmHWM", 0) - fields.get("RssFile", 0)
    return max(peak, owned_bytes(fields), bound) + mapped_model_bytes(model, pid, proc)


class MemoryPeak(object):
    """Samples this process's owned memory while the engine loads and runs (the kernel keeps
    no high-water mark of anonymous memory); stop() gives engine_bytes with that peak."""

    def __init__(self, interval=0.01):
        self.peak = owned_bytes(proc_status())
        self.vm_hwm = None
        self.interval = interval
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bp-memory")
        self.thread.daemon = True
        self.thread.start()

    def _run(self):
        while not self.done.wait(self.interval):
            self.peak = max(self.peak, owned_bytes(proc_status()))

    def stop(self, model):
        self.done.set()
        self.thread.join()
        self.vm_hwm = proc_status().get("VmHWM")
        return engine_bytes(model, peak=self.peak)
'''

_TIMED = r'''
import time


def timed_runs(step, budget):
    """One warm-up step, then timed steps until 5 ran or a share of the budget is spent."""
    step()
    latencies = []
    started = time.perf_counter()
    while len(latencies) < 5:
        t0 = time.perf_counter()
        step()
        latencies.append((time.perf_counter() - t0) * 1000.0)
        if time.perf_counter() - started > min(2.0, budget / 4.0):
            break
    latencies.sort()
    median = latencies[len(latencies) // 2]
    return median, len(latencies)
'''

HEALTH_ONNXRUNTIME = RESIDENT + _ORT_FEEDS + _TIMED + r'''
import json
import sys


def main():
    cfg = json.loads(sys.argv[1])
    memory = MemoryPeak()
    try:
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if cfg.get("threads"):
            options.intra_op_num_threads = int(cfg["threads"])
        t0 = time.perf_counter()
        session = ort.InferenceSession(cfg["model"], sess_options=options, providers=["CPUExecutionProvider"])
        load_ms = (time.perf_counter() - t0) * 1000.0
        feeds = ort_feeds(session, cfg.get("prompt", ""))
        outputs = [o.name for o in session.get_outputs()]
        median, runs = timed_runs(lambda: session.run(outputs, feeds), float(cfg.get("budget", 60)))
        rss_bytes = memory.stop(cfg["model"])
    except Exception as exc:  # any load or run failure is the answer
        print(json.dumps({"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}))
        return 1
    print(json.dumps({
        "ok": True, "latency_ms": round(median, 3), "tokens_per_s": round(1000.0 / max(median, 1e-6), 3),
        "tokens": runs, "runs": runs, "load_ms": round(load_ms, 3), "engine_version": ort.__version__,
        "inputs": sorted(feeds), "outputs": outputs, "rss_bytes": rss_bytes,
        "peak_rss_bytes": memory.vm_hwm,
    }))
    return 0


sys.exit(main())
'''

HEALTH_LITERT = RESIDENT + _TIMED + r'''
import json
import sys


def main():
    cfg = json.loads(sys.argv[1])
    memory = MemoryPeak()
    try:
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter
        kwargs = {"model_path": cfg["model"]}
        if cfg.get("threads"):
            kwargs["num_threads"] = int(cfg["threads"])
        t0 = time.perf_counter()
        interp = Interpreter(**kwargs)
        for detail in interp.get_input_details():
            signature = list(detail.get("shape_signature", detail["shape"]))
            if any(d < 0 for d in signature):
                interp.resize_tensor_input(detail["index"], [d if d > 0 else 1 for d in signature])
        interp.allocate_tensors()
        load_ms = (time.perf_counter() - t0) * 1000.0
        for detail in interp.get_input_details():
            shape, dtype = list(detail["shape"]), detail["dtype"]
            count = int(np.prod(shape)) if shape else 1
            if np.issubdtype(dtype, np.integer):
                value = (np.arange(count) % 100).astype(dtype).reshape(shape)
            else:
                value = np.zeros(shape, dtype=dtype)
            interp.set_tensor(detail["index"], value)
        median, runs = timed_runs(interp.invoke, float(cfg.get("budget", 60)))
        rss_bytes = memory.stop(cfg["model"])
    except Exception as exc:
        print(json.dumps({"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}))
        return 1
    print(json.dumps({"ok": True, "latency_ms": round(median, 3),
                      "tokens_per_s": round(1000.0 / max(median, 1e-6), 3), "tokens": runs, "runs": runs,
                      "load_ms": round(load_ms, 3), "rss_bytes": rss_bytes,
                      "peak_rss_bytes": memory.vm_hwm}))
    return 0


sys.exit(main())
'''

# llama.cpp through llama-cpp-python: load the GGUF, tokenize the prompt, generate
# GEN_TOKENS tokens greedily, going on past an end-of-text token (a fixed count, so the
# rate is comparable between runs). latency_ms is the whole generation (prompt included),
# first_token_ms the time to the first token, tokens_per_s the decode rate after it.
# verbose: llama.cpp's own log goes to stderr, where the module finds the reason of a
# failed load.
HEALTH_LLAMA_CPP_PYTHON = RESIDENT + r'''
import json
import sys
import time

GEN_TOKENS = 8


def main():
    cfg = json.loads(sys.argv[1])
    memory = MemoryPeak()
    try:
        from llama_cpp import Llama
        kwargs = {"model_path": cfg["model"], "verbose": True, "n_ctx": int(cfg.get("context") or 512)}
        if cfg.get("threads"):
            kwargs["n_threads"] = int(cfg["threads"])
            kwargs["n_threads_batch"] = int(cfg["threads"])
        t0 = time.perf_counter()
        llm = Llama(**kwargs)
        load_ms = (time.perf_counter() - t0) * 1000.0

        prompt = llm.tokenize(cfg.get("prompt", "").encode("utf-8"), add_bos=True)
        generated = []
        t0 = time.perf_counter()
        first = None
        for token in llm.generate(prompt, temp=0.0, top_k=1):
            if first is None:
                first = time.perf_counter()
            generated.append(int(token))
            if len(generated) >= GEN_TOKENS:
                break
        end = time.perf_counter()
        rss_bytes = memory.stop(cfg["model"])
        text = llm.detokenize(generated).decode("utf-8", "replace")
    except Exception as exc:  # any load or run failure is the answer
        print(json.dumps({"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}))
        return 1
    tokens = len(generated)
    if tokens >= 2:
        rate = (tokens - 1) / max(end - first, 1e-6)
    else:
        rate = tokens / max(end - t0, 1e-6)
    print(json.dumps({
        "ok": tokens > 0, "latency_ms": round((end - t0) * 1000.0, 3),
        "first_token_ms": round(((first or end) - t0) * 1000.0, 3), "tokens_per_s": round(rate, 3),
        "tokens": tokens, "prompt_tokens": len(prompt), "load_ms": round(load_ms, 3),
        "text_chars": len(text), "n_vocab": llm.n_vocab(),
        "engine_version": __import__("llama_cpp").__version__,
        "rss_bytes": rss_bytes, "peak_rss_bytes": memory.vm_hwm,
        "error": None if tokens else "no tokens generated",
    }))
    return 0 if tokens else 1


sys.exit(main())
'''

HEALTH_SCRIPTS = {
    "onnxruntime": HEALTH_ONNXRUNTIME,
    "litert": HEALTH_LITERT,
    "llama-cpp": HEALTH_LLAMA_CPP_PYTHON,
}

# The long-running service of the python-based engines (onnxruntime, litert):
# GET /healthz, POST /v1/infer {"inputs": {name: nested list}} -> {"outputs": {...}}.
# Bound to the address given (127.0.0.1 by default). It never logs request
# bodies unless --log-prompts / --log-outputs are given.
SERVE = r'''
import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
''' + _ORT_FEEDS + r'''


def load(engine, model, threads):
    if engine == "onnxruntime":
        import onnxruntime as ort
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        return lambda feeds: dict(zip(names, session.run(names, feeds))), session
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=model, num_threads=threads or None)
    interp.allocate_tensors()
    runner = interp.get_signature_runner()
    return lambda feeds: runner(**feeds), None


def main():
    parser = argparse.ArgumentParser(prog="bp-serve")
    parser.add_argument("--engine", choices=["onnxruntime", "litert"], required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--log-prompts", action="store_true")
    parser.add_argument("--log-outputs", action="store_true")
    parser.add_argument("--param", action="append", default=[])
    args = parser.parse_args()
    run, session = load(args.engine, args.model, args.threads)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *values):
            sys.stderr.write("%s %s\n" % (self.command, self.path))

        def _send(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/healthz":
                self._send(200, {"status": "ok", "engine": args.engine})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self):
            if self.path != "/v1/infer":
                self._send(404, {"error": "not found"})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if args.log_prompts:
                    sys.stderr.write("prompt: %s\n" % json.dumps(body)[:4096])
                if session is not None and not body.get("inputs"):
                    feeds = ort_feeds(session, body.get("prompt", ""))
                else:
                    feeds = {k: np.array(v) for k, v in body.get("inputs", {}).items()}
                result = {k: np.asarray(v).tolist() for k, v in run(feeds).items()}
                if args.log_outputs:
                    sys.stderr.write("output: %s\n" % json.dumps(result)[:4096])
                self._send(200, {"outputs": result})
            except Exception as exc:
                self._send(400, {"error": "%s: %s" % (type(exc).__name__, exc)})

    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
'''
