#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: slmops-bp contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: bp_audit
short_description: Read back how a device enforces each deployment's privacy policy
version_added: "0.1.0"
description:
  - For every deployment named, reads what the device enforces, as the device reports it
    (never what was written), namely the unit's effective settings (C(systemctl show)), the exposure
    score (C(systemd-analyze security)), the deployment's nftables table and its allowed
    (address, port) pairs, the modes and owners of the deployment's directories and files,
    and the journald namespace configuration (retention).
  - Changes nothing (check mode is the same run); used by C(bp audit), which compares the
    read-back with the plan.
author: slmops-bp contributors
options:
  root:
    description: The device's C(bp_root).
    type: path
    required: true
  deployments:
    description: Deployment names to read back.
    type: list
    elements: str
    required: true
  service_users:
    description: The service account of each deployment (same order as O(deployments)), as the
      collection's C(bp_service_user) filter names it; echoed back as C(service_user).
    type: list
    elements: str
    default: []
  systemd_dir:
    description: Where the units and journald namespace configurations are installed.
    type: path
    default: /etc/systemd
"""

EXAMPLES = r"""
- name: Read back the enforcement of every deployment
  slmops.bp.bp_audit:
    root: /opt/slmops
    deployments: [assistant]
"""

RETURN = r"""
systemd:
  description: Whether the device runs systemd as its service manager (PID 1 is systemd).
  returned: always
  type: bool
deployments:
  description: Deployment name to its read-back; C(unit) (the unit file exists), C(show)
    (C(systemctl show) properties), C(exposure) (overall exposure level, a float, or null),
    C(nft) (C(table) present, C(rules) list of address/port), C(files) (path, type, mode as
    four octal digits, owner, group), C(journald) (key/values of the namespace's C([Journal])
    section, null when absent), C(privacy) (policy name and digest the state file records) and
    C(errors) (what could not be read), C(service_user) (from O(service_users)).
  returned: always
  type: dict
"""

import grp
import os
import pwd
import re
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.slmops.bp.plugins.module_utils.bp_contract import MODELS_DIR, POLICY_SUFFIX, STATE_DIR, STATE_SUFFIX
from ansible_collections.slmops.bp.plugins.module_utils.bp_files import read_json

SHOW_PROPERTIES = (
    "User", "Group", "ProtectSystem", "ProtectHome", "ReadWritePaths", "ReadOnlyPaths",
    "InaccessiblePaths", "PrivateNetwork", "IPAddressDeny", "IPAddressAllow",
    "RestrictAddressFamilies", "SystemCallFilter", "MemoryDenyWriteExecute", "NoNewPrivileges",
    "CapabilityBoundingSet", "UMask", "LogNamespace", "LogLevelMax", "Environment",
    "ActiveState", "SubState", "DropInPaths", "FragmentPath", "LoadState",
)
EXPOSURE = re.compile(r"Overall exposure level for \S+:\s*([0-9]+(?:\.[0-9]+)?)")
NFT_RULE = re.compile(
    r"^\s*(ip6?) daddr (\S+)(?: meta l4proto \{[^}]*\})?(?: th dport (\d+))? accept\s*$")
MAX_FILES = 200


def nft_table(deployment):
    return "bp_egress_%s" % deployment.replace("-", "_")


def show(module, systemctl, unit, errors):
    rc, out, err = module.run_command([systemctl, "show", unit, "--property", ",".join(SHOW_PROPERTIES)])
    if rc != 0:
        errors.append("systemctl show %s: %s" % (unit, (err or out).strip()[-300:]))
        return {}
    found = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key] = value
    return found


def exposure(module, analyze, unit, errors):
    if not analyze:
        errors.append("systemd-analyze is not installed")
        return None
    rc, out, err = module.run_command([analyze, "security", "--no-pager", unit])
    match = EXPOSURE.search(out or "")
    if match is None:
        errors.append("systemd-analyze security %s: %s" % (unit, (err or out).strip()[-300:]))
        return None
    return float(match.group(1))


def nft(module, nft_bin, deployment, errors):
    if not nft_bin:
        return {"table": False, "rules": [], "reject": False, "tool": False}
    table = nft_table(deployment)
    rc, out, err = module.run_command([nft_bin, "list", "table", "inet", table])
    if rc != 0:
        return {"table": False, "rules": [], "reject": False, "tool": True}
    rules = []
    for line in out.splitlines():
        match = NFT_RULE.match(line)
        if match:
            rules.append({"family": match.group(1), "address": match.group(2),
                          "port": int(match.group(3)) if match.group(3) else None})
    reject = any(line.strip().endswith("reject") and "counter" in line for line in out.splitlines())
    return {"table": True, "rules": rules, "reject": reject, "tool": True}


def describe(path):
    try:
        st = os.lstat(path)
    except OSError:
        return None
    kind = "dir" if stat.S_ISDIR(st.st_mode) else "link" if stat.S_ISLNK(st.st_mode) else "file"
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return {"path": path, "type": kind, "mode": "%04o" % stat.S_IMODE(st.st_mode),
            "owner": owner, "group": group}


def files(root, systemd_dir, deployment):
    """The deployment's directories and files (links are listed, not followed)."""
    found = []
    tops = [os.path.join(root, MODELS_DIR, deployment), os.path.join(root, "data", deployment)]
    for top in tops:
        if not os.path.isdir(top):
            continue
        for base, dirs, names in os.walk(top):
            dirs.sort()
            for name in [""] + sorted(names) + [d for d in dirs if os.path.islink(os.path.join(base, d))]:
                entry = describe(os.path.join(base, name) if name else base)
                if entry is not None and len(found) < MAX_FILES:
                    found.append(entry)
    extra = [
        os.path.join(root, STATE_DIR, deployment + STATE_SUFFIX),
        os.path.join(root, STATE_DIR, deployment + POLICY_SUFFIX),
        os.path.join(systemd_dir, "system", "bp-%s.service" % deployment),
        os.path.join(systemd_dir, "journald@bp-%s.conf" % deployment),
        os.path.join(systemd_dir, "bp-%s.nft" % deployment),
    ]
    for path in extra:
        entry = describe(path)
        if entry is not None:
            found.append(entry)
    return found


def journald(systemd_dir, deployment):
    path = os.path.join(systemd_dir, "journald@bp-%s.conf" % deployment)
    try:
        with open(path, "r") as handle:
            text = handle.read()
    except (IOError, OSError):
        return None
    section, found = None, {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith(";"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, sep, value = line.partition("=")
        if sep and section == "Journal":
            found[key.strip()] = value.strip()
    return found


def audit(module, root, systemd_dir, deployment):
    unit = "bp-%s.service" % deployment
    errors = []
    unit_path = os.path.join(systemd_dir, "system", unit)
    record = {"unit": os.path.exists(unit_path), "show": {}, "exposure": None,
              "nft": {"table": False, "rules": [], "reject": False, "tool": False},
              "files": files(root, systemd_dir, deployment),
              "journald": journald(systemd_dir, deployment), "errors": errors,
              "privacy": read_json(os.path.join(root, STATE_DIR, deployment + STATE_SUFFIX)).get("privacy")}
    systemctl = module.get_bin_path("systemctl")
    if record["unit"] and systemctl:
        record["show"] = show(module, systemctl, unit, errors)
        record["exposure"] = exposure(module, module.get_bin_path("systemd-analyze"), unit, errors)
    nft_bin = module.get_bin_path("nft", opt_dirs=["/usr/sbin", "/sbin"])
    record["nft"] = nft(module, nft_bin, deployment, errors)
    return record


def booted_systemd():
    return os.path.isdir("/run/systemd/system")


def main():
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "deployments": {"type": "list", "elements": "str", "required": True},
            "service_users": {"type": "list", "elements": "str", "default": []},
            "systemd_dir": {"type": "path", "default": "/etc/systemd"},
        },
        supports_check_mode=True,
    )
    params = module.params
    found = {}
    users = dict(zip(params["deployments"], params["service_users"]))
    for deployment in params["deployments"]:
        found[deployment] = audit(module, params["root"], params["systemd_dir"], deployment)
        found[deployment]["service_user"] = users.get(deployment)
    module.exit_json(changed=False, systemd=booted_systemd(), deployments=found)


if __name__ == "__main__":
    main()
