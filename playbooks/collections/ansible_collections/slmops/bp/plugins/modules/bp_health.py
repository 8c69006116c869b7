#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: slmops-bp contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: bp_health
short_description: One real inference in the provisioned runtime, with latency and tokens per second
version_added: "0.1.0"
description:
  - Runs a one-shot inference of the deployed model with the provisioned engine and reports
    RV(latency_ms) and RV(tokens_per_s). It fails when the model cannot be loaded or run, when no
    answer comes within O(timeout), or when RV(tokens_per_s) is below O(min_tokens_per_s).
  - C(onnxruntime) runs the runtime's python on an embedded script (no file is copied) that loads
    the model and feeds every input a tensor built from its declared type and shape (dynamic
    dimensions = 1; integer inputs token ids C(arange % 100), floats zeros, booleans false,
    strings the prompt); one warm-up step, then timed steps.
  - C(litert) does the same with the LiteRT interpreter; C(llama-cpp) generates 8 tokens with
    C(llama-cli) (archive installs) or C(llama_cpp) (pip installs); C(ollama) creates the model from
    the deployed file and runs the prompt (starting a private C(ollama serve) on a free loopback
    port when no service runs); C(custom) runs C(<runtime_dir>/bin/health --model FILE --prompt TEXT).
  - With O(service_manager=systemd) and O(port), the running service is asked too, once the one-shot
    inference passed - C(GET /healthz) and C(POST /v1/infer) with the prompt (C(bp-serve) of C(onnxruntime)
    and C(litert)), C(GET /v1/models) and C(POST /v1/completions) for 8 tokens (C(llama-cpp)) on
    C(127.0.0.1:port), retried until O(timeout) while it starts; the check fails when it never answers
    (RV(detail.service) says what it answered). For C(llama-cpp) the service's own generation rate
    (completion tokens it reports over the request's time) is RV(tokens_per_s), gated by
    O(min_tokens_per_s); the one-shot rate stays in RV(detail.check_tokens_per_s).
  - "tokens_per_s: tokens produced per second. Engines that generate text count their generated
    tokens; for ONNX Runtime and LiteRT one inference step counts as one token, so it is
    1000 / median step latency in milliseconds."
  - With O(state_path) the result is written into that state file's C(health) (atomically), when
    the file still describes O(release).
  - RV(rss_bytes) is the memory of the engine - of the service's main process when
    O(service_manager=systemd) runs one (C(bp-<name>.service)), else of the engine process the check
    itself ran - written into the health record too. It is the peak of the memory the process owns
    (anonymous plus shared, C(RssAnon + RssShmem)) plus the size of the model file when the engine
    maps it (llama.cpp maps GGUF); pages of shared libraries do not count, as their number depends on
    the page cache. C(bp build) records a variant's C(memory) with the same measure; C(llama-cli) is
    sampled with it while it runs. C(ollama) and C(custom) report the peak resident memory of the
    largest process the check ran instead (libraries included).
author: slmops-bp contributors
options:
  engine:
    description: Engine kind.
    type: str
    required: true
    choices: [onnxruntime, llama-cpp, ollama, litert, custom]
  runtime_dir:
    description: The provisioned runtime directory.
    type: path
    required: true
  model:
    description: The deployed artifact.
    type: path
    required: true
  prompt:
    description: Prompt for engines that take text (data, never templated).
    type: str
    default: "Reply with OK."
  timeout:
    description: Seconds the whole check may take.
    type: int
    default: 60
  min_tokens_per_s:
    description: Fail below this rate; no performance gate when omitted.
    type: float
  params:
    description: Engine parameters (C(threads), C(context) are used).
    type: dict
    default: {}
  port:
    description: Port of the running service (ollama with O(service_manager=systemd)).
    type: int
  service_manager:
    description: Whether a service runs the engine (V(systemd)) or not (V(none)).
    type: str
    choices: [systemd, none]
    default: none
  data_dir:
    description: The deployment's writable data directory (ollama keeps its model store there).
    type: path
  name:
    description: Deployment name (ollama model tag).
    type: str
    default: bp-model
  state_path:
    description: State file whose C(health) gets the result.
    type: path
  release:
    description: The release (C(<version>-<variant>)) that O(state_path) must describe to be updated.
    type: str
  confirm:
    description:
      - A pending-switch record (written by M(slmops.bp.bp_deploy) before it switched) to remove once
        the check passed and O(state_path) describes O(release); the release is then confirmed, and a
        later failure no longer rolls it back.
    type: path
attributes:
  check_mode:
    support: full
    details: In check mode nothing runs and nothing is written.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Check the new release with one real inference
  slmops.bp.bp_health:
    engine: onnxruntime
    runtime_dir: /opt/slmops/runtimes/onnxruntime-1.20.1
    model: /opt/slmops/models/triage-assistant/1.2.0-int8-onnx/model.onnx
    prompt: Reply with OK.
    timeout: 60
    min_tokens_per_s: 2
    state_path: /opt/slmops/state/triage-assistant.json
    release: 1.2.0-int8-onnx
"""

RETURN = r"""
ok:
  description: Whether the check passed.
  returned: always
  type: bool
latency_ms:
  description: Median latency of one inference step (or of the whole generation for text engines), in ms.
  returned: when the model ran
  type: float
tokens_per_s:
  description: Tokens produced per second (one inference step = one token for ONNX Runtime and LiteRT).
  returned: when the model ran
  type: float
rss_bytes:
  description: Memory of the engine in bytes (the service's main process, else the check's engine); see the description.
  returned: when it could be read
  type: int
rss_source:
  description: Where RV(rss_bytes) comes from, V(service) or V(check).
  returned: when RV(rss_bytes) is returned
  type: str
deployment:
  description: The deployment checked (O(name)).
  returned: always
  type: str
release:
  description: The release checked (O(release)), when given.
  returned: always
  type: str
checked_at:
  description: UTC time of the check.
  returned: always
  type: str
health:
  description: The health record as written to the state file.
  returned: always
  type: dict
"""

import json
import os
import re
import resource
import socket
import subprocess
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.slmops.bp.plugins.module_utils.bp_contract import ENGINES
from ansible_collections.slmops.bp.plugins.module_utils.bp_files import (
    atomic_write,
    dump_json,
    error_line,
    read_json,
    utc_now,
)
from ansible_collections.slmops.bp.plugins.module_utils.bp_scripts import HEALTH_SCRIPTS, RESIDENT

QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_OFFLINE": "1",
    "OLLAMA_NO_ANALYTICS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}
TPS_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?) tokens per second")
OLLAMA_RATE_RE = re.compile(r"eval rate:\s+([0-9]+(?:\.[0-9]+)?) tokens/s")
LLAMA_ERROR_RES = (re.compile(r"\berror\b", re.IGNORECASE), re.compile(r"failed to load", re.IGNORECASE))
# The health scripts' memory measure, defined once (bp_scripts.RESIDENT), for a running service.
RESIDENT_NS = {"__name__": "bp_resident"}
exec(compile(RESIDENT, "bp_resident", "exec"), RESIDENT_NS)


class Check(object):
    def __init__(self, params):
        self.p = params
        self.deadline = time.monotonic() + max(1, params["timeout"])
        self.engine_bytes = None
        self.env = dict(os.environ)
        self.env.update(QUIET_ENV)
        threads = (params["params"] or {}).get("threads")
        if threads:
            self.env["OMP_NUM_THREADS"] = str(threads)

    def remaining(self):
        return max(0.5, self.deadline - time.monotonic())

    def run(self, cmd, env=None, engine=False):
        """(rc, stdout, stderr) of ``cmd``. ``engine``: the program is the engine itself
        (llama-cli), whose memory is sampled while it runs into ``self.engine_bytes``, measured as
        the health scripts measure their own (bp_scripts.RESIDENT)."""
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or self.env,
                                    stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise RuntimeError("cannot run %s: %s" % (cmd[0], exc))
        deadline = time.monotonic() + self.remaining()
        while True:
            try:
                out, err = proc.communicate(timeout=0.01 if engine else max(0.01, deadline - time.monotonic()))
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    proc.kill()
                    proc.communicate()
                    raise RuntimeError("no answer within %ss" % self.p["timeout"])
                if engine:
                    now = RESIDENT_NS["engine_bytes"](self.p["model"], proc.pid)
                    if now:
                        self.engine_bytes = max(self.engine_bytes or 0, now)
        return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def script(self, engine):
        python = os.path.join(self.p["runtime_dir"], "bin", "python")
        cfg = {"model": self.p["model"], "prompt": self.p["prompt"], "budget": self.remaining(),
               "threads": (self.p["params"] or {}).get("threads"),
               "context": (self.p["params"] or {}).get("context")}
        rc, out, err = self.run([python, "-c", HEALTH_SCRIPTS[engine], json.dumps(cfg)])
        for line in reversed(out.strip().splitlines()):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict):
                if engine == "llama-cpp" and not data.get("ok"):
                    reason = llama_log_error(err)
                    if reason:
                        data["error"] = "%s (llama.cpp: %s)" % (data.get("error"), reason)
                return data
        return {"ok": False, "error": "no result (rc=%d): %s" % (rc, tail(err or out))}

    def llama_cli(self, cli):
        params = self.p["params"] or {}
        cmd = [cli, "-m", self.p["model"], "-p", self.p["prompt"], "-n", "8", "--temp", "0", "-no-cnv",
               "--no-display-prompt"]
        if params.get("threads"):
            cmd += ["-t", str(params["threads"])]
        started = time.monotonic()
        rc, out, err = self.run(cmd, engine=True)
        elapsed = time.monotonic() - started
        if rc != 0:
            return {"ok": False, "error": "llama-cli failed (rc=%d): %s" % (rc, tail(err))}
        rates = [float(m) for line in err.splitlines() if "eval time" in line and "prompt" not in line
                 for m in TPS_RE.findall(line)]
        result = {"ok": bool(out.strip()), "latency_ms": round(elapsed * 1000.0, 3),
                  "tokens_per_s": rates[-1] if rates else round(8 / max(elapsed, 1e-6), 3),
                  "error": None if out.strip() else "no text generated"}
        if self.engine_bytes:
            result["rss_bytes"] = self.engine_bytes
        return result

    def ollama(self):
        binary = os.path.join(self.p["runtime_dir"], "bin", "ollama")
        env = dict(self.env)
        server = None
        if self.p["service_manager"] == "systemd" and self.p.get("port"):
            env["OLLAMA_HOST"] = "127.0.0.1:%d" % self.p["port"]
        else:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            sock.close()
            env["OLLAMA_HOST"] = "127.0.0.1:%d" % port
            env["OLLAMA_MODELS"] = os.path.join(self.p.get("data_dir") or tempfile.gettempdir(), "ollama")
            server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            while True:
                if self.run([binary, "list"], env)[0] == 0:
                    break
                if time.monotonic() > self.deadline - 1:
                    return {"ok": False, "error": "ollama did not come up"}
                time.sleep(0.5)
            tag = "bp-%s:current" % self.p["name"]
            with tempfile.NamedTemporaryFile("w", suffix=".Modelfile", delete=False) as handle:
                handle.write("FROM %s\n" % self.p["model"])
                modelfile = handle.name
            try:
                rc, out, err = self.run([binary, "create", tag, "-f", modelfile], env)
            finally:
                os.unlink(modelfile)
            if rc != 0:
                return {"ok": False, "error": "ollama create failed: %s" % tail(err or out)}
            started = time.monotonic()
            rc, out, err = self.run([binary, "run", tag, self.p["prompt"], "--verbose"], env)
            elapsed = time.monotonic() - started
            if rc != 0 or not out.strip():
                return {"ok": False, "error": "ollama run failed: %s" % tail(err or out)}
            rates = [float(m) for m in OLLAMA_RATE_RE.findall(err)]
            return {"ok": True, "latency_ms": round(elapsed * 1000.0, 3),
                    "tokens_per_s": rates[-1] if rates else None}
        finally:
            if server is not None:
                server.terminate()
                try:
                    server.wait(10)
                except subprocess.TimeoutExpired:
                    server.kill()

    def custom(self):
        tool = os.path.join(self.p["runtime_dir"], "bin", "health")
        started = time.monotonic()
        rc, out, err = self.run([tool, "--model", self.p["model"], "--prompt", self.p["prompt"]])
        elapsed = time.monotonic() - started
        result = {"ok": rc == 0, "latency_ms": round(elapsed * 1000.0, 3), "tokens_per_s": None,
                  "error": None if rc == 0 else "health tool failed (rc=%d): %s" % (rc, tail(err or out))}
        for line in reversed(out.strip().splitlines()):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict):
                result.update((k, data[k]) for k in ("latency_ms", "tokens_per_s", "tokens") if k in data)
                break
        return result

    def execute(self):
        engine = self.p["engine"]
        if not os.path.isfile(self.p["model"]):
            return {"ok": False, "error": "model file %s is missing" % self.p["model"]}
        try:
            if engine in ("onnxruntime", "litert"):
                return self.script(engine)
            if engine == "llama-cpp":
                cli = os.path.join(self.p["runtime_dir"], "bin", "llama-cli")
                return self.llama_cli(cli) if os.path.exists(cli) else self.script(engine)
            if engine == "ollama":
                return self.ollama()
            return self.custom()
        except RuntimeError as exc:
            return {"ok": False, "error": str(exc)}


SERVICE_PATHS = {"onnxruntime": ("/healthz", "/v1/infer"), "litert": ("/healthz", "/v1/infer"),
                 "llama-cpp": ("/v1/models", "/v1/completions")}
SERVICE_TOKENS = 8  # tokens a generating service is asked for


def ask_service(params, deadline):
    """The running service answers on 127.0.0.1:port (retried while it starts)."""
    probe, infer = SERVICE_PATHS[params["engine"]]
    generates = params["engine"] == "llama-cpp"
    base = "http://127.0.0.1:%d" % params["port"]
    last = "no answer"
    started = time.monotonic()
    while True:
        try:
            open_url(base + probe, timeout=5, use_proxy=False).read()
            request = {"prompt": params["prompt"]}
            if generates:
                request.update(max_tokens=SERVICE_TOKENS, temperature=0)
            asked = time.monotonic()
            answer = open_url(base + infer, data=json.dumps(request).encode("utf-8"), method="POST",
                              use_proxy=False, headers={"Content-Type": "application/json"},
                              timeout=max(1.0, deadline - time.monotonic()))
            data = json.loads(answer.read().decode("utf-8") or "{}")
            took = time.monotonic() - asked
            result = {"ok": True, "url": base + infer,
                      "latency_ms": round((time.monotonic() - started) * 1000.0, 3)}
            if not generates:
                if not data.get("outputs"):
                    return {"ok": False, "url": base + infer, "error": "no outputs: %s" % str(data)[:300]}
                return result
            tokens = (data.get("usage") or {}).get("completion_tokens")
            if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens <= 0:
                return {"ok": False, "url": base + infer, "error": "no tokens generated: %s" % str(data)[:300]}
            # llama-cpp-python counts the answer re-tokenized, which can exceed what it generated
            tokens = min(tokens, SERVICE_TOKENS)
            result.update(tokens=tokens, latency_ms=round(took * 1000.0, 3),
                          tokens_per_s=round(tokens / max(took, 1e-6), 3))
            return result
        except Exception as exc:  # connection refused while it starts, HTTP errors, bad JSON
            last = "%s: %s" % (type(exc).__name__, exc)
        if time.monotonic() > deadline - 0.5:
            return {"ok": False, "url": base + probe, "error": last}
        time.sleep(0.5)


def llama_log_error(log):
    """Why llama.cpp did not load a model, from its own log: its last error line, else its
    last "failed to load" line, else None."""
    lines = log.strip().splitlines()
    for pattern in LLAMA_ERROR_RES:
        for line in reversed(lines):
            if pattern.search(line):
                return line.strip()[:500]
    return None


def tail(text):
    """What went wrong, in one line: the command's last error line, not the warnings around it."""
    return error_line(text, 2000)


def service_rss(name, service_manager, model):
    """The memory of the main process of ``bp-<name>.service`` (process_memory); None when
    none runs."""
    if service_manager != "systemd":
        return None
    try:
        proc = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", "bp-%s.service" % name],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10)
        pid = int(proc.stdout.decode("ascii", "replace").strip() or 0)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return process_memory(pid, model) if pid > 0 else None


def process_memory(pid, model):
    """The memory of a running engine process in bytes, measured as the health scripts measure
    their own (bp_scripts.RESIDENT: owned memory at its peak plus the model file when mapped);
    None when it cannot be read."""
    return RESIDENT_NS["engine_bytes"](model, pid)


def children_peak_rss():
    """Peak resident bytes of the largest process this module started and waited for (the engine
    of a one-shot check); None when it started none.  Linux reports ru_maxrss in KiB."""
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return int(peak) * 1024 if peak > 0 else None


def measure_rss(name, service_manager, model, reported=None):
    """(bytes, source) of the engine's memory, or (None, None): the running service's main
    process; else what the check measured of its engine (the health scripts, llama-cli); else the
    largest child's peak RSS (ollama, custom: the library pages count there)."""
    rss = service_rss(name, service_manager, model)
    if rss:
        return rss, "service"
    if isinstance(reported, int) and not isinstance(reported, bool) and reported > 0:
        return reported, "check"
    rss = children_peak_rss()
    return (rss, "check") if rss else (None, None)


def judge(raw, min_tps):
    health = {
        "ok": bool(raw.get("ok")),
        "status": "ok" if raw.get("ok") else "failed",
        "checked_at": utc_now(),
        "latency_ms": raw.get("latency_ms"),
        "tokens_per_s": raw.get("tokens_per_s"),
        "rss_bytes": raw.get("rss_bytes"),
        "error": raw.get("error"),
    }
    tps = raw.get("tokens_per_s")
    if health["ok"] and min_tps is not None:
        if tps is None or float(tps) < float(min_tps):
            health.update(ok=False, status="too_slow",
                          error="%s tokens/s is below the minimum of %s" % (tps, min_tps))
    return health


def record(state_path, release, health):
    """Write ``health`` into the state file when it still describes ``release``."""
    state = read_json(state_path)
    if not state or (release and state.get("release") != release):
        return False
    state["health"] = health
    st = os.stat(state_path)
    return atomic_write(state_path, dump_json(state), 0o640, st.st_uid, st.st_gid)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            engine=dict(type="str", required=True, choices=list(ENGINES)),
            runtime_dir=dict(type="path", required=True),
            model=dict(type="path", required=True),
            prompt=dict(type="str", default="Reply with OK."),
            timeout=dict(type="int", default=60),
            min_tokens_per_s=dict(type="float"),
            params=dict(type="dict", default={}),
            port=dict(type="int"),
            service_manager=dict(type="str", default="none", choices=["systemd", "none"]),
            data_dir=dict(type="path"),
            name=dict(type="str", default="bp-model"),
            state_path=dict(type="path"),
            release=dict(type="str"),
            confirm=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    if module.check_mode:
        module.exit_json(changed=False, ok=True, skipped=True, checked_at=utc_now(), health={},
                         msg="check mode: no inference run")
    started = time.monotonic()
    check = Check(module.params)
    raw = check.execute()
    params = module.params
    if (raw.get("ok") and params["service_manager"] == "systemd" and params.get("port")
            and params["engine"] in SERVICE_PATHS):
        service = ask_service(params, check.deadline)
        raw["service"] = service
        if service.get("tokens_per_s") is not None:  # what the running service delivers
            raw["check_tokens_per_s"] = raw.get("tokens_per_s")
            raw["tokens_per_s"] = service["tokens_per_s"]
        if not service["ok"]:
            raw["ok"] = False
            raw["error"] = "the running service bp-%s.service did not answer on %s: %s" % (
                params["name"], service.get("url"), service.get("error"))
    health = judge(raw, module.params["min_tokens_per_s"])
    rss, rss_source = measure_rss(module.params["name"], module.params["service_manager"],
                                  module.params["model"], raw.get("rss_bytes"))
    if rss:
        health["rss_bytes"] = rss
    changed = False
    if module.params.get("state_path"):
        changed = record(module.params["state_path"], module.params.get("release"), health)
        if changed and health["ok"] and module.params.get("confirm") and os.path.exists(module.params["confirm"]):
            os.unlink(module.params["confirm"])
    result = dict(changed=changed, ok=health["ok"], latency_ms=health["latency_ms"],
                  tokens_per_s=health["tokens_per_s"], checked_at=health["checked_at"], health=health,
                  elapsed_s=round(time.monotonic() - started, 3),
                  deployment=module.params["name"], release=module.params.get("release") or "",
                  detail=dict((k, v) for k, v in raw.items() if k not in ("ok", "error")))
    if rss:
        result.update(rss_bytes=rss, rss_source=rss_source)
    if not health["ok"]:
        module.fail_json(msg="health check failed for %s: %s" % (module.params["model"], health["error"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
