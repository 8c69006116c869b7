#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: slmops-bp contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: bp_probe
short_description: Tell, in one cheap look, which deployments of a device need work
version_added: "0.1.0"
description:
  - Compares what the device runs with the resolved desired state of every deployment the plan
    gives it (all at once, so a run with nothing to do costs one module execution per host) and
    returns, per deployment, whether the deploy has work to do and why.
  - A deployment needs no work when its state file records the planned release with the same
    desired-state digest (release, artifact sha256, runtime and install spec, policy, parameters,
    the unit and configuration templates, the device paths) and a passed health check; C(current)
    points at that release; its artifact is present with a fresh sha256 sidecar carrying the
    planned sha256; the runtime's marker records the planned engine, version and install digest;
    the configuration files and the policy evidence on the device are those the release was
    applied with; no switch is pending confirmation; and with O(service_manager=systemd) the
    unit is active.
  - Reads only; never changes anything. Also reports the facts the preflight check needs
    (architecture, total memory), so no fact gathering is needed.
author: slmops-bp contributors
options:
  root:
    description: The device's C(bp_root).
    type: path
    required: true
  service_manager:
    description: V(systemd) also checks that each deployment's unit is active.
    type: str
    choices: [systemd, none]
    default: systemd
  deployments:
    description:
      - The desired state per deployment, as the C(slmops.bp.bp_probe_spec) filter resolves it.
      - Keys C(deployment), C(release), C(filename), C(sha256), C(desired), C(runtime_dir) and
        C(runtime) (C(name), C(engine), C(version), C(install)).
    type: list
    elements: dict
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Which deployments need work
  slmops.bp.bp_probe:
    root: /opt/slmops
    service_manager: none
    deployments: "{{ bp_assign | slmops.bp.bp_probe_spec(bp_deployments, '/opt/slmops') }}"
  register: probe
"""

RETURN = r"""
deployments:
  description: Deployment name to C(work) (bool), C(reasons) (list of str) and C(desired).
  returned: always
  type: dict
facts:
  description: C(architecture) and C(memtotal_mb) of the device.
  returned: always
  type: dict
"""

import os
import platform

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.slmops.bp.plugins.module_utils.bp_contract import (
    CURRENT_LINK,
    MODELS_DIR,
    POLICY_SUFFIX,
    RELEASE_FILE,
    STATE_DIR,
    STATE_SUFFIX,
    SWITCH_FILE,
)
from ansible_collections.slmops.bp.plugins.module_utils.bp_files import (
    BpError,
    cached_sha256,
    read_bytes,
    read_json,
)
from ansible_collections.slmops.bp.plugins.module_utils.bp_runtime_spec import (
    MARKER,
    PY_ENGINES,
    digest_of,
    plan,
)
from ansible_collections.slmops.bp.plugins.module_utils.bp_scripts import SERVE



def memtotal_mb():
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except (IOError, OSError, ValueError, IndexError):
        pass
    return 0


def runtime_reasons(spec):
    runtime = spec.get("runtime") or {}
    engine = runtime.get("engine")
    rdir = spec["runtime_dir"]
    if engine == "custom":
        # provisioned by the blueprint's own role: its two entry points are what bp relies on
        missing = [n for n in ("serve", "health") if not os.path.exists(os.path.join(rdir, "bin", n))]
        return ["runtime %s lacks bin/%s" % (rdir, n) for n in missing]
    marker = read_json(os.path.join(rdir, MARKER))
    if not marker:
        return ["runtime %s is not provisioned" % rdir]
    try:
        kind, install = plan(engine, str(runtime.get("version")), runtime.get("install") or {})
    except BpError as exc:
        return ["runtime install spec: %s" % exc]
    if marker.get("engine") != engine or marker.get("digest") != digest_of(engine, str(runtime.get("version")),
                                                                           kind, install):
        return ["runtime %s was provisioned from another install spec" % rdir]
    if kind == "venv" and not os.path.exists(os.path.join(rdir, "bin", "python")):
        return ["runtime %s has no python" % rdir]
    if engine in PY_ENGINES and kind == "venv":
        if read_bytes(os.path.join(rdir, "bin", "bp-serve")) != ("#!/usr/bin/env python3\n" + SERVE).encode("utf-8"):
            return ["runtime %s has an outdated bp-serve" % rdir]
    return []


def deployment_reasons(module, root, spec, service_manager):
    name = spec["deployment"]
    key = spec["release"]
    dep = os.path.join(root, MODELS_DIR, name)
    state = read_json(os.path.join(root, STATE_DIR, name + STATE_SUFFIX))
    if not state:
        return ["not deployed"]
    if state.get("release") != key:
        return ["runs %s, the plan says %s" % (state.get("release"), key)]
    if state.get("desired") != spec["desired"]:
        return ["the desired state of %s changed" % key]
    health = state.get("health") if isinstance(state.get("health"), dict) else {}
    if not health.get("ok"):
        return ["its last health check did not pass"]
    try:
        target = os.path.basename(os.readlink(os.path.join(dep, CURRENT_LINK)).rstrip("/"))
    except OSError:
        target = None
    if target != key:
        return ["current points at %s, not %s" % (target, key)]
    pending = read_json(os.path.join(dep, SWITCH_FILE))
    if pending and pending.get("to") == key:
        return ["the switch to %s is not confirmed" % key]
    artifact = os.path.join(dep, key, spec["filename"])
    if not os.path.isfile(artifact):
        return ["artifact %s is missing" % artifact]
    if cached_sha256(artifact) != str(spec["sha256"]).lower():
        return ["artifact %s is not verified as %s" % (artifact, spec["sha256"])]
    reasons = runtime_reasons(spec)
    info = read_json(os.path.join(dep, key, RELEASE_FILE))
    if not info:
        reasons.append("release %s has no record" % key)
    for item in info.get("files") or []:
        if not isinstance(item, dict) or read_bytes(item.get("path") or "") != (item.get("content") or "").encode("utf-8"):
            reasons.append("configuration file %s differs" % (item.get("path") if isinstance(item, dict) else item))
    evidence = read_json(os.path.join(root, STATE_DIR, name + POLICY_SUFFIX))
    if (info.get("policy") or {}).get("digest") != evidence.get("digest"):
        reasons.append("the policy evidence differs")
    if service_manager == "systemd" and not reasons:
        systemctl = module.get_bin_path("systemctl")
        rc = module.run_command([systemctl, "is-active", "--quiet", "bp-%s.service" % name])[0] if systemctl else 1
        if rc != 0:
            reasons.append("bp-%s.service is not active" % name)
    return reasons


def probe(module, params):
    found = {}
    for spec in params["deployments"]:
        for key in ("deployment", "release", "filename", "sha256", "desired", "runtime_dir"):
            if not spec.get(key):
                raise BpError("deployment spec lacks %s" % key)
        reasons = deployment_reasons(module, params["root"], spec, params["service_manager"])
        found[spec["deployment"]] = {"work": bool(reasons), "reasons": reasons, "desired": spec["desired"]}
    return {"changed": False, "deployments": found,
            "facts": {"architecture": platform.machine(), "memtotal_mb": memtotal_mb()}}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            service_manager=dict(type="str", default="systemd", choices=["systemd", "none"]),
            deployments=dict(type="list", elements="dict", default=[]),
        ),
        supports_check_mode=True,
    )
    try:
        result = probe(module, module.params)
    except BpError as exc:
        module.fail_json(msg="probe: %s" % exc)
    except (IOError, OSError) as exc:
        module.fail_json(msg="probe: %s" % exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
