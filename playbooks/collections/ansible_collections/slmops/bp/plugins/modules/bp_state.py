#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: slmops-bp contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: bp_state
short_description: Read what a device runs (every deployment's state and policy evidence)
version_added: "0.1.0"
description:
  - Reads C(<root>/state/<deployment>.json) and C(<root>/state/<deployment>.policy.json) for every
    deployment on the device, and where C(<root>/models/<deployment>/current) points.
  - Where the deployment runs as a systemd service (its unit is installed in
    C(/etc/systemd/system)), the service's state as C(systemctl show) reports it (C(service)).
  - Changes nothing; used by C(bp status).
author: slmops-bp contributors
options:
  root:
    description: The device's C(bp_root).
    type: path
    required: true
"""

EXAMPLES = r"""
- name: Read the device state
  slmops.bp.bp_state:
    root: /opt/slmops
"""

RETURN = r"""
deployments:
  description: Deployment name to its state, policy evidence, current release and service (C(systemctl
    show) properties ActiveState, SubState, MainPID, NRestarts, Result, UnitFileState, ExecMainStartTimestamp,
    User; null where the deployment runs no systemd unit).
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.slmops.bp.plugins.module_utils.bp_contract import (
    CURRENT_LINK,
    HIDDEN_PREFIX,
    MODELS_DIR,
    POLICY_SUFFIX,
    STATE_DIR,
    STATE_SUFFIX,
)
from ansible_collections.slmops.bp.plugins.module_utils.bp_files import read_json


SERVICE_PROPERTIES = ("ActiveState", "SubState", "MainPID", "NRestarts", "Result", "UnitFileState",
                      "ExecMainStartTimestamp", "User")


def read_service(module, deployment):
    """``systemctl show`` of the deployment's unit, or None where no unit of it is installed."""
    unit = "bp-%s.service" % deployment
    systemctl = module.get_bin_path("systemctl") if module else None
    if not systemctl or not os.path.exists(os.path.join("/etc/systemd/system", unit)):
        return None
    rc, out, err = module.run_command([systemctl, "show", unit, "--property", ",".join(SERVICE_PROPERTIES)])
    if rc != 0:
        return {"unit": unit, "error": (err or out).strip()[-500:]}
    found = {"unit": unit}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key] = value
    return found


def read_states(root, module=None):
    state_dir = os.path.join(root, STATE_DIR)
    found = {}
    if not os.path.isdir(state_dir):
        return found
    for name in sorted(os.listdir(state_dir)):
        if not name.endswith(STATE_SUFFIX) or name.endswith(POLICY_SUFFIX) or name.startswith(HIDDEN_PREFIX):
            continue
        deployment = name[: -len(".json")]
        link = os.path.join(root, MODELS_DIR, deployment, CURRENT_LINK)
        target = os.readlink(link) if os.path.islink(link) else None
        found[deployment] = {
            "state": read_json(os.path.join(state_dir, name)),
            "policy": read_json(os.path.join(state_dir, deployment + POLICY_SUFFIX)),
            "current": target,
            "current_exists": bool(target) and os.path.exists(link),
            "service": read_service(module, deployment),
        }
    return found


def main():
    module = AnsibleModule(argument_spec={"root": {"type": "path", "required": True}},
                           supports_check_mode=True)
    module.exit_json(changed=False, deployments=read_states(module.params["root"], module))


if __name__ == "__main__":
    main()
