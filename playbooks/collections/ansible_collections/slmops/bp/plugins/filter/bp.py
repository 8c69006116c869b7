# -*- coding: utf-8 -*-
# Copyright: slmops-bp contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Controller-side filters of the slmops.bp collection (pure functions, no templating of data)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re
import socket
import threading

try:
    from ansible_collections.slmops.bp.plugins.module_utils.bp_contract import EGRESS_WILDCARD
except ImportError:  # loaded by file path, outside Ansible: bp render renders the units with it
    import importlib.util

    _CONTRACT = importlib.util.spec_from_file_location(
        "bp_contract", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "module_utils", "bp_contract.py"))
    _contract = importlib.util.module_from_spec(_CONTRACT)
    _CONTRACT.loader.exec_module(_contract)
    EGRESS_WILDCARD = _contract.EGRESS_WILDCARD



def _filter_error(message):
    """``AnsibleFilterError(message)``; ansible.errors is imported only when a filter fails, so
    that ``bp render``, which loads these filters by file path to render the units, does not
    pay for importing Ansible."""
    from ansible.errors import AnsibleFilterError

    return AnsibleFilterError(message)


_ARCH = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "armv8": "aarch64", "armhf": "armv7l",
         "riscv64gc": "riscv64"}
_RESOLVED = {}
_RESOLVE_SECONDS = 2.0


def bp_arch(value):
    """Normalise an architecture name (``arm64`` -> ``aarch64``, ``amd64`` -> ``x86_64``)."""
    text = str(value).strip().lower()
    return _ARCH.get(text, text)


def _c_escape(text):
    out = []
    for char in str(text):
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append("\\x%02x" % ord(char))
        else:
            out.append(char)
    return "".join(out)


def bp_systemd_arg(value):
    """One ``ExecStart=`` word: double-quoted, C-escaped, ``%`` and ``$`` doubled (no expansion)."""
    return '"%s"' % _c_escape(value).replace("%", "%%").replace("$", "$$")


def bp_systemd_env(name, value):
    """One quoted ``Environment=`` assignment: ``"NAME=value"`` with ``%`` doubled and C escapes."""
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(name)):
        raise _filter_error("bp_systemd_env: %r is not a valid environment variable name" % (name,))
    return '"%s=%s"' % (name, _c_escape(value).replace("%", "%%"))


def bp_oneline(value):
    """Text for a unit's comment or Description=: one line, control characters blanked, ``%`` doubled."""
    return re.sub(r"[\x00-\x1f\x7f]", " ", str(value)).replace("%", "%%")


def bp_env_name(value):
    """A parameter key as an environment variable suffix (``top-k`` -> ``TOP_K``)."""
    return re.sub(r"[^A-Za-z0-9]", "_", str(value)).upper()


def _resolve(names):
    pending = [n for n in names if n not in _RESOLVED]
    results = {}

    def worker(name):
        try:
            infos = socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)
            results[name] = sorted(set(info[4][0] for info in infos))
        except (socket.error, UnicodeError):
            results[name] = []

    threads = [threading.Thread(target=worker, args=(n,)) for n in pending]
    for thread in threads:
        thread.daemon = True
        thread.start()
    for thread in threads:
        thread.join(_RESOLVE_SECONDS)
    for name in pending:
        _RESOLVED[name] = results.get(name, [])
    return dict((n, _RESOLVED[n]) for n in names)


def bp_egress_ips(allow):
    """Resolved egress entries -> ``{ips: [...], rules: [...], unresolved: [...]}``.

    ``allow`` is what the compiler decided: each entry ``{host, address, port}`` with either
    a DNS name (maybe ``*.domain``) or an address / CIDR network; nothing is parsed here.
    Names are resolved on the controller when the content runs (at most 2 s in all); systemd's
    ``IPAddressAllow=`` takes addresses only (``ips``); ``rules`` keep the port of each entry
    (``{family: ip | ip6, address, port}``, port null for any) for the nftables ruleset; a glob
    cannot be resolved (it is listed as unresolved).
    """
    ips, names, unresolved, pairs = set(), [], [], []
    for entry in allow or []:
        if not isinstance(entry, dict) or not (entry.get("address") or entry.get("host")):
            raise _filter_error("bp_egress_ips: %r is not a resolved egress entry" % (entry,))
        if entry.get("address"):
            ips.add(str(entry["address"]))
            pairs.append((str(entry["address"]), entry.get("port")))
        elif entry["host"] == "localhost":
            continue
        elif entry["host"].startswith(EGRESS_WILDCARD):
            unresolved.append(entry["host"])
        else:
            names.append(entry["host"])
            pairs.append((entry["host"], entry.get("port")))
    resolved = _resolve(sorted(set(names)))
    for name, addrs in sorted(resolved.items()):
        if addrs:
            ips.update(addrs)
        else:
            unresolved.append(name)
    rules = set()
    for target, port in pairs:
        for address in resolved.get(target, [target]):
            family = "ip6" if ":" in address else "ip"
            rules.add((family, address, int(port) if port else 0))
    return {"ips": sorted(ips), "unresolved": sorted(set(unresolved)),
            "rules": [{"family": f, "address": a, "port": p or None} for f, a, p in sorted(rules)]}


def bp_service_user(deployment):
    """The service account of a deployment: ``bp-<name>``, shortened with a hash past 32 chars."""
    name = "bp-%s" % deployment
    if len(name) <= 32:
        return name
    return "bp-%s-%s" % (deployment[:20].rstrip("-"), hashlib.sha256(deployment.encode("utf-8")).hexdigest()[:8])


def bp_stage_gate(batch, hosts_all, stages, max_failures):
    """Decide whether the batch that just ran stays within ``max_failures``.

    ``batch``: the hosts still active in the batch (``ansible_play_batch``); ``hosts_all``:
    ``ansible_play_hosts_all``; ``stages``: the rollout stage of each of ``hosts_all`` (same
    order). The batch is every host of the stages present in ``batch``; its failures are those
    hosts no longer active (failed or unreachable).
    """
    stage_of = dict(zip(hosts_all, stages))  # same length: stages are extracted from hosts_all
    active = set(batch)
    batch_stages = sorted(set(stage_of[h] for h in batch if h in stage_of))
    members = [h for h in hosts_all if stage_of.get(h) in batch_stages]
    failed = [h for h in members if h not in active]
    total = len(members)
    if isinstance(max_failures, str) and max_failures.strip().endswith("%"):
        pct = float(max_failures.strip()[:-1])
        halt = total > 0 and len(failed) * 100.0 > pct * total
    else:
        try:
            halt = len(failed) > int(max_failures)
        except (TypeError, ValueError):
            raise _filter_error("bp_stage_gate: max_failures %r is neither a count nor a percentage"
                                     % (max_failures,))
    stage = ",".join(str(s) for s in batch_stages) or "?"
    message = "stage %s halted: %d of %d hosts failed (max_failures %s)" % (stage, len(failed), total, max_failures)
    return {"halt": halt, "stage": batch_stages[0] if len(batch_stages) == 1 else batch_stages,
            "failed": len(failed), "failed_hosts": failed, "total": total,
            "max_failures": max_failures, "message": message if halt else ""}


def _probe_answers(result):
    """The probe's per-deployment answers in a registered result, or None if it gave none."""
    answers = result.get("deployments") if isinstance(result, dict) else None
    if not isinstance(answers, dict) or result.get("failed") or result.get("unreachable"):
        return None
    return answers


def _host_vars(hostvars, host, names):
    """The values of ``names`` in one host's vars (None where unset). ``hostvars[host]``
    builds all of the host's variables, so it is read once per host."""
    try:
        host_vars = hostvars[host]
        return [host_vars[name] if name in host_vars else None for name in names]
    except KeyError:
        return [None for _ in names]


def _stages_needing_work(hosts, hostvars, deployment):
    """Each host's rollout stage of the deployment, and the stages that need work: a probed
    host of the stage differs from the plan (``work``) or gave no answer (the probe failed
    or the host was unreachable). Hosts the probe play did not run on (``--limit``) have no
    registered answer and decide nothing."""
    stages, need, probed = [], set(), []
    for host in hosts:
        assign, result = _host_vars(hostvars, host, ("bp_assign", "deploy_probe_run"))
        stage = ((assign or {}).get(deployment) or {}).get("stage")
        stages.append(stage)
        probed.append(result is not None)
        if result is None:
            continue
        answer = (_probe_answers(result) or {}).get(deployment)
        if not isinstance(answer, dict) or answer.get("work", True):
            need.add(stage)
    return stages, need, probed


def bp_work_pattern(hosts, hostvars, group, deployment):
    """Host pattern of a deployment's staged play after the run's up-front probe.

    ``hosts``: the deployment's inventory group ``group`` (``groups[group]``, in stage order).
    The pattern selects, by position in the group, every host of each rollout stage that
    needs work (see ``_stages_needing_work``), so a stage's batch and its gate are the same as
    without the up-front probe (its hosts that gave no answer are tried again there), and a
    stage whose hosts all run the plan has no batch. No stage: a pattern that matches no host.
    """
    stages, need, _ = _stages_needing_work(hosts, hostvars, deployment)
    ranges, start = [], None
    for index, stage in enumerate(list(stages) + [None]):
        inside = index < len(stages) and stage in need
        if inside and start is None:
            start = index
        elif not inside and start is not None:
            ranges.append("%s[%d:%d]" % (group, start, index - 1))
            start = None
    return ":".join(ranges) if ranges else "%s:!%s" % (group, group)


def bp_work_serial(hosts, hostvars, deployment):
    """``serial`` of a deployment's staged play after the run's up-front probe: per rollout
    stage that needs work, in stage order, how many of its hosts the probe play ran on."""
    stages, need, probed = _stages_needing_work(hosts, hostvars, deployment)
    counts = {}
    for stage, seen in zip(stages, probed):
        if seen and stage in need:
            counts[stage] = counts.get(stage, 0) + 1
    return [counts[s] for s in sorted(counts)]


_CONTENT_DIGEST = []


def _content_digest():
    """Digest of the deploy role's templates and derived values: what the configuration files and
    the state record of a release are made from, besides the plan's data."""
    if not _CONTENT_DIGEST:
        role = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "roles", "deploy")
        digest = hashlib.sha256()
        for sub in ("defaults", "templates"):
            base = os.path.join(role, sub)
            for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
                digest.update(("%s/%s\0" % (sub, name)).encode("utf-8"))
                with open(os.path.join(base, name), "rb") as handle:
                    digest.update(handle.read())
        _CONTENT_DIGEST.append(digest.hexdigest())
    return _CONTENT_DIGEST[0]


def _plain(value):
    """Plan data as plain JSON types (the vars arrive as Ansible's own str/dict/list subclasses)."""
    if isinstance(value, dict):
        return dict((str(k), _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return value
    return str(value)


def bp_probe_spec(assign, deployments, root, service_manager="systemd"):
    """The resolved desired state of every deployment a host has, for slmops.bp.bp_probe.

    ``assign``: the host's ``bp_assign`` (deployment -> {combo, stage}); ``deployments``:
    ``bp_deployments``; ``root``: the host's bp_root. ``desired`` digests everything the deploy
    of that host applies: the resolved deployment (release, artifact, runtime and install spec,
    policy, parameters, health settings, keep), the device paths, the service manager, the
    unit file bp render wrote for it and the deploy role's templates.
    """
    specs = []
    for name in sorted(assign or {}):
        try:
            combo = _plain(deployments[name][assign[name]["combo"]])
        except (KeyError, TypeError):
            raise _filter_error("bp_probe_spec: no resolved data for deployment %r" % (name,))
        runtime = combo.get("runtime") or {}
        unit = (assign[name] or {}).get("unit")  # content-addressed: its name digests its text
        canon = json.dumps({"d": combo, "root": str(root), "service_manager": str(service_manager),
                            "content": _content_digest(), "unit": None if unit is None else str(unit)},
                           sort_keys=True, separators=(",", ":"))
        specs.append({
            "deployment": name,
            "release": "%s-%s" % (combo.get("version"), combo.get("variant")),
            "filename": (combo.get("artifact") or {}).get("filename"),
            "sha256": (combo.get("artifact") or {}).get("sha256"),
            "desired": "sha256:" + hashlib.sha256(canon.encode("utf-8")).hexdigest(),
            "runtime_dir": "%s/runtimes/%s-%s" % (root, runtime.get("name"), runtime.get("version")),
            "runtime": {"name": runtime.get("name"), "engine": runtime.get("engine"),
                        "version": runtime.get("version"), "install": runtime.get("install") or {}},
        })
    return specs


class FilterModule(object):
    def filters(self):
        return {
            "bp_arch": bp_arch,
            "bp_systemd_arg": bp_systemd_arg,
            "bp_systemd_env": bp_systemd_env,
            "bp_env_name": bp_env_name,
            "bp_oneline": bp_oneline,
            "bp_egress_ips": bp_egress_ips,
            "bp_service_user": bp_service_user,
            "bp_stage_gate": bp_stage_gate,
            "bp_probe_spec": bp_probe_spec,
            "bp_work_pattern": bp_work_pattern,
            "bp_work_serial": bp_work_serial,
        }
