#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: slmops-bp contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: bp_deploy
short_description: Switch a deployment to a staged release atomically, record it, prune, roll back
version_added: "0.1.0"
description:
  - With O(state=present) it applies the deployment's configuration files (systemd unit, journald
    namespace config; written atomically), writes the policy evidence
    C(<root>/state/<deployment>.policy.json), switches C(<root>/models/<deployment>/current) to
    C(<version>-<variant>) (a symlink created under a temporary name and renamed over the old one,
    then fsynced), writes C(<root>/state/<deployment>.json) atomically and prunes release
    directories beyond O(keep). With nothing to do it reports C(changed=false).
  - The switch is the last change it makes before the health check, so a run that is stopped
    earlier leaves the device on its old release.
  - Before it changes what the device runs (another release, or the configuration of the same
    release) it records what ran before in C(<root>/models/<deployment>/.bp-switch.json); the
    health check removes that record once the new release passed. A failed run rolls back with
    O(undo_switch) from that record only, so a run that switched nothing never touches C(current).
  - With O(state=rollback) it switches back to the newest kept earlier release (restoring that
    release's configuration files and policy evidence), records the abandoned one under
    C(rolled_back_from) and restarts the service when O(service_manager=systemd). With nothing to
    roll back to, C(current) is removed so it never points at a broken model, and the state records
    the health as not ok.
author: slmops-bp contributors
options:
  state:
    description: V(present) deploys, V(rollback) goes back to the previous kept release.
    type: str
    choices: [present, rollback]
    default: present
  root:
    description: The device's C(bp_root).
    type: path
    required: true
  deployment:
    description: Deployment name.
    type: str
    required: true
  model:
    description: Model name (O(state=present)).
    type: str
  version:
    description: Model version (O(state=present)).
    type: str
  variant:
    description: Variant name (O(state=present)).
    type: str
  filename:
    description: Artifact file name inside the release directory (O(state=present)).
    type: str
  sha256:
    description: The artifact's sha256 (O(state=present)); the staged file must carry it.
    type: str
  record:
    description:
      - Further facts to keep in the state file (runtime, privacy, params, labels, description, ...).
      - Stored as data, verbatim.
    type: dict
    default: {}
  policy:
    description: The effective privacy policy, written to C(<root>/state/<deployment>.policy.json).
    type: dict
  files:
    description:
      - Configuration files of this release (systemd unit, journald config), written atomically
        when their content differs and restored by a rollback.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      content:
        description: Full content.
        type: str
        required: true
      mode:
        description: File mode.
        type: str
        default: "0640"
  keep:
    description: Earlier releases kept for rollback.
    type: int
    default: 1
  owner:
    description: Service user owning the deployment's data directory.
    type: str
  group:
    description: Service group of the deployment's directories and files.
    type: str
  service_manager:
    description: V(systemd) restarts C(bp-<deployment>.service) after a change; V(none) never touches services.
    type: str
    choices: [systemd, none]
    default: systemd
  allow_downgrade:
    description:
      - With O(state=present), switch even when O(version) is older than the version the device
        runs now (same model). Without it such a switch is refused before anything changes.
    type: bool
    default: false
  expect_current:
    description:
      - For O(state=rollback) after a failed deploy, the release (C(<version>-<variant>)) the failed
        run switched to. When C(current) is something else (the run failed before switching),
        nothing is rolled back and C(changed=false).
    type: str
  undo_switch:
    description:
      - For O(state=rollback) in the rescue of a failed deploy. Undo only what the pending-switch
        record C(<root>/models/<deployment>/.bp-switch.json) says an unconfirmed run changed
        (written before the switch, removed once the release passed its health check), restoring
        exactly the release, configuration files, policy evidence and state that ran before.
        Without such a record naming the current release nothing is touched (C(changed=false)).
    type: bool
    default: false
  desired:
    description:
      - Digest of the resolved desired state of this deployment on this host, recorded in the
        state file so that M(slmops.bp.bp_probe) can tell a host that needs no work.
    type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: partial
    details: With O(state=present), the configuration files, the policy evidence, the state file and
      the target of C(current) are shown.
"""

EXAMPLES = r"""
- name: Switch to the new release
  slmops.bp.bp_deploy:
    root: /opt/slmops
    deployment: triage-assistant
    model: phi-4-mini
    version: "1.2.0"
    variant: int8-onnx
    filename: model.onnx
    sha256: 0f343b0931126a20f133d67c2b018a3b5e8a4a23d0f1e5d7e0b1b8d5b7c6e3f1
    keep: 2
    service_manager: none
  register: switch

- name: Roll back after a failed health check
  slmops.bp.bp_deploy:
    state: rollback
    root: /opt/slmops
    deployment: triage-assistant
    expect_current: 1.2.0-int8-onnx
"""

RETURN = r"""
switched:
  description: Whether C(current) was switched (or removed) in this run.
  returned: always
  type: bool
current:
  description: The release C(current) points to now (C(<version>-<variant>)), or null.
  returned: always
  type: str
needs_health:
  description: Whether the release needs a health check (new, changed, or last check not ok).
  returned: always
  type: bool
health_ok:
  description: The recorded health of the current release.
  returned: always
  type: bool
rolled_back:
  description: O(state=rollback) switched back to an earlier release.
  returned: always
  type: bool
release:
  description: The record of the release now current (model, version, variant, sha256, filename, runtime, ...).
  returned: always
  type: dict
previous:
  description: The kept earlier releases, newest first.
  returned: always
  type: list
  elements: dict
state_path:
  description: Path of the state file.
  returned: always
  type: str
"""

import os
import re
import shutil
import tempfile

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
    atomic_write,
    check_filename,
    check_name,
    check_release,
    dump_json,
    ensure_dir,
    fsync_dir,
    read_bytes,
    read_json,
    resolve_ids,
    utc_now,
    verify_file,
)

# The pending-switch record: written (atomically, fsynced) before a run changes what the device
# runs, removed once the new release passed its health check. While it exists and names the
# release `current` points at, that release is unconfirmed and `from` is what ran before.
PENDING = {"ok": False, "status": "pending", "checked_at": None, "latency_ms": None, "tokens_per_s": None}
HEALTH_KEYS = ("deployment", "model", "version", "variant", "sha256", "filename", "release", "runtime",
               "params", "port", "accelerator")


class Paths(object):
    def __init__(self, root, deployment):
        self.root = root
        self.models = os.path.join(root, MODELS_DIR)
        self.dep = os.path.join(self.models, deployment)
        self.current = os.path.join(self.dep, CURRENT_LINK)
        self.data = os.path.join(root, "data", deployment)
        self.state_dir = os.path.join(root, STATE_DIR)
        self.state = os.path.join(self.state_dir, deployment + STATE_SUFFIX)
        self.policy = os.path.join(self.state_dir, deployment + POLICY_SUFFIX)
        self.switch = os.path.join(self.dep, SWITCH_FILE)

    def release_dir(self, key):
        return os.path.join(self.dep, key)


def read_current(paths):
    try:
        target = os.readlink(paths.current)
    except OSError:
        return None
    return os.path.basename(target.rstrip("/"))


def switch_link(paths, key):
    """Point ``current`` at ``key`` atomically (new symlink under a temp name, renamed over)."""
    tmpdir = tempfile.mkdtemp(prefix=".current.bp-tmp-", dir=paths.dep)
    tmp = os.path.join(tmpdir, "current")
    try:
        os.symlink(key, tmp)
        os.replace(tmp, paths.current)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    fsync_dir(paths.dep)


def remove_link(paths):
    if os.path.islink(paths.current):
        os.unlink(paths.current)
        fsync_dir(paths.dep)


_VERSION_RE = re.compile(r"^v?([0-9]+(?:\.[0-9]+)*)(.*)$")


def version_key(version):
    """A sortable key for versions like ``1.10.0`` or ``2.0.0-rc1``; None when not comparable."""
    match = _VERSION_RE.match(str(version or ""))
    if not match:
        return None
    numbers = [int(n) for n in match.group(1).split(".")]
    while numbers and numbers[-1] == 0:
        numbers.pop()
    suffix = match.group(2).lstrip("-+._")
    # a release sorts after its pre-releases (1.2.0 > 1.2.0-rc1)
    return (numbers, 1 if not suffix else 0, re.findall(r"\d+|\D+", suffix))


def is_downgrade(old, new):
    old_key, new_key = version_key(old), version_key(new)
    if old_key is None or new_key is None:
        return False
    try:
        return new_key < old_key
    except TypeError:  # suffixes of different shapes
        return False


def release_key(version, variant):
    return check_release("%s-%s" % (version, variant), "release")


def add_diff(diffs, path, after):
    """Record a before/after pair for --diff (text files only)."""
    if diffs is None:
        return
    before = read_bytes(path)
    before_text = before.decode("utf-8", "replace") if before is not None else ""
    if before_text != after:
        diffs.append({"before_header": path, "after_header": path, "before": before_text, "after": after})


def write_files(files, uid, gid, check_mode, diffs=None):
    changed = False
    for item in files:
        path = item["path"]
        if not os.path.isabs(path):
            raise BpError("configuration file path %r must be absolute" % path)
        add_diff(diffs, path, item["content"])
        changed |= ensure_dir(os.path.dirname(path), 0o755 if path.startswith("/etc/") else 0o750,
                              check_mode=check_mode)
        changed |= atomic_write(path, item["content"].encode("utf-8"), int(item.get("mode") or "0640", 8),
                                -1, gid if not path.startswith("/etc/") else -1, check_mode)
    return changed


def policy_evidence(deployment, policy):
    return {"deployment": deployment, "name": policy.get("name"), "digest": policy.get("digest"),
            "policy": policy}


def snapshot(state):
    """The part of a state record that describes a release (kept in ``previous``)."""
    keep = dict((k, v) for k, v in state.items() if k not in ("previous", "rolled_back_from", "current"))
    return keep


def service_restart(module, unit, restart_journal=None, reload_units=False):
    systemctl = module.get_bin_path("systemctl", required=True)
    if reload_units:
        module.run_command([systemctl, "daemon-reload"], check_rc=True)
    if restart_journal:
        module.run_command([systemctl, "try-restart", restart_journal])
    module.run_command([systemctl, "enable", unit], check_rc=True)
    module.run_command([systemctl, "restart", unit], check_rc=True)


def service_ensure_running(module, unit):
    systemctl = module.get_bin_path("systemctl", required=True)
    rc, _out, _err = module.run_command([systemctl, "is-active", "--quiet", unit])
    if rc == 0:
        return False
    if not module.check_mode:
        module.run_command([systemctl, "enable", "--now", unit], check_rc=True)
    return True


def pending_switch(paths, cur):
    """The pending-switch record when it names the release ``current`` points at, else None."""
    record = read_json(paths.switch)
    if record and "to" in record and record.get("to") == cur:
        return record
    return None


def record_switch(paths, cur, key, state):
    """Write down, before anything changes, what the device runs now so that a failure of this
    run (or of an earlier run that never confirmed its release) can restore exactly that."""
    earlier = pending_switch(paths, cur) if cur else None
    confirmed = state.get("release") == cur and bool((state.get("health") or {}).get("ok"))
    if earlier is not None and not confirmed:
        # the release running now was never confirmed: going back means going back further
        record = dict(earlier, to=key, at=utc_now())
    else:
        info = read_json(os.path.join(paths.release_dir(cur), RELEASE_FILE)) if cur else {}
        record = {"from": cur, "to": key, "at": utc_now(), "state": state if cur else {},
                  "release_info": info, "policy": read_json(paths.policy) if cur else {}}
    if not os.path.isdir(paths.dep):
        os.makedirs(paths.dep, 0o750)
    atomic_write(paths.switch, dump_json(record), 0o640)
    fsync_dir(paths.dep)


def clear_switch(paths):
    if os.path.lexists(paths.switch):
        os.unlink(paths.switch)
        fsync_dir(paths.dep)


def prune(paths, keep_keys, check_mode):
    removed = []
    if not os.path.isdir(paths.dep):
        return removed
    for entry in sorted(os.listdir(paths.dep)):
        full = os.path.join(paths.dep, entry)
        if entry == "current" or entry.startswith(".") or entry in keep_keys:
            continue
        if os.path.isdir(full) and not os.path.islink(full):
            removed.append(entry)
            if not check_mode:
                shutil.rmtree(full)
    return removed


def present(module, p):
    deployment = check_name(p["deployment"], "deployment")
    for key in ("model", "version", "variant", "filename", "sha256"):
        if not p.get(key):
            raise BpError("%s is required with state=present" % key)
    key = release_key(p["version"], p["variant"])
    check_filename(p["filename"])
    sha = p["sha256"].lower()
    paths = Paths(p["root"], deployment)
    uid, gid = resolve_ids(p.get("owner"), p.get("group"))
    check = module.check_mode
    rdir = paths.release_dir(key)
    artifact = os.path.join(rdir, p["filename"])
    ok, actual, _ = verify_file(artifact, sha, check_mode=check)
    if not ok and not check:
        raise BpError("release %s is not staged: %s %s" % (
            key, artifact, "is missing" if actual is None else "has sha256 %s, expected %s" % (actual, sha)))

    state = read_json(paths.state)
    cur = read_current(paths)
    if (cur and cur != key and state.get("model") == p["model"] and not p["allow_downgrade"]
            and is_downgrade(state.get("version"), p["version"])):
        raise BpError("refusing to downgrade %s from %s to %s (bp apply --allow-downgrade allows it)"
                      % (p["model"], state.get("version"), p["version"]))
    release = dict(p["record"] or {})
    release.update(deployment=deployment, model=p["model"], version=p["version"], variant=p["variant"],
                   sha256=sha, filename=p["filename"], release=key)
    if p.get("desired"):
        release["desired"] = p["desired"]
    # what the health check depends on; other record fields (labels, uri, ...) are bookkeeping
    behaviour_changed = any(state.get(k) != release.get(k) for k in HEALTH_KEYS)
    files_differ = any(read_bytes(f["path"]) != f["content"].encode("utf-8") for f in p["files"])
    if not check and (cur != key or behaviour_changed or files_differ):
        record_switch(paths, cur, key, state)

    changed = False
    changed |= ensure_dir(paths.dep, 0o750, -1, gid, check)
    changed |= ensure_dir(paths.data, 0o750, uid, gid, check)
    changed |= ensure_dir(paths.state_dir, 0o750, check_mode=check)
    diffs = [] if getattr(module, "_diff", False) else None
    files_changed = write_files(p["files"], uid, gid, check, diffs)
    changed |= files_changed
    if p.get("policy") is not None:
        evidence = dump_json(policy_evidence(deployment, p["policy"]))
        add_diff(diffs, paths.policy, evidence.decode("utf-8"))
        changed |= atomic_write(paths.policy, evidence, 0o640, -1, gid, check)
    health = state.get("health") if isinstance(state.get("health"), dict) else dict(PENDING)
    health_ok = bool(health.get("ok")) and not behaviour_changed and not files_changed
    switching = cur != key

    # the release's own record, so a later rollback can restore its configuration
    if os.path.isdir(rdir):
        changed |= atomic_write(os.path.join(rdir, RELEASE_FILE),
                                dump_json({"release": release, "files": p["files"], "policy": p.get("policy")}),
                                0o640, -1, gid, check)

    previous = [e for e in state.get("previous") or [] if isinstance(e, dict)]
    if switching and cur and state.get("release", "%s-%s" % (state.get("version"), state.get("variant"))) == cur:
        previous.insert(0, dict(snapshot(state), release=cur))
    elif switching and cur:
        previous.insert(0, {"release": cur})
    seen, kept = set([key]), []
    for entry in previous:
        rkey = entry.get("release") or "%s-%s" % (entry.get("version"), entry.get("variant"))
        if rkey in seen or not os.path.isdir(paths.release_dir(rkey)):
            continue
        seen.add(rkey)
        kept.append(dict(entry, release=rkey))
    kept = kept[:max(p["keep"], 0)]

    new_state = dict(release)
    new_state.update(previous=kept, health=health if health_ok else dict(PENDING),
                     applied_at=state.get("applied_at") if not (switching or behaviour_changed) else utc_now())
    state_changed = new_state != dict((k, v) for k, v in state.items() if k != "rolled_back_from")
    if switching:
        changed = True
        if not check:
            switch_link(paths, key)
    if state_changed:
        changed = True
        add_diff(diffs, paths.state, dump_json(new_state).decode("utf-8"))
        if not check:
            atomic_write(paths.state, dump_json(new_state), 0o640, -1, gid)
    removed = prune(paths, set([key] + [e["release"] for e in kept]), check)
    changed |= bool(removed)
    if health_ok and not check:
        clear_switch(paths)  # nothing unconfirmed: the release runs healthy as recorded

    if p["service_manager"] == "systemd" and not check:
        unit = "bp-%s.service" % deployment
        if switching or files_changed or behaviour_changed:
            service_restart(module, unit, "systemd-journald@bp-%s.service" % deployment, files_changed)
        else:
            changed |= service_ensure_running(module, unit)
    result = {"changed": changed, "switched": switching, "current": key, "release": release,
              "needs_health": not health_ok, "health_ok": health_ok, "rolled_back": False,
              "previous": kept, "pruned": removed, "state_path": paths.state}
    if diffs is not None:
        if switching:
            diffs.append({"before_header": paths.current, "after_header": paths.current,
                          "before": "%s\n" % cur if cur else "", "after": "%s\n" % key})
        result["diff"] = diffs
    return result


def rollback(module, p):
    deployment = check_name(p["deployment"], "deployment")
    paths = Paths(p["root"], deployment)
    check = module.check_mode
    uid, gid = resolve_ids(p.get("owner"), p.get("group"))
    state = read_json(paths.state)
    cur = read_current(paths)
    result = {"changed": False, "switched": False, "current": cur, "rolled_back": False, "needs_health": False,
              "health_ok": bool((state.get("health") or {}).get("ok")), "release": snapshot(state),
              "previous": state.get("previous") or [], "state_path": paths.state}
    if p.get("undo_switch"):
        return undo(module, p, paths, state, cur, result)
    if p.get("expect_current") and cur != p["expect_current"]:
        result["msg"] = "current is %s, not %s: nothing to roll back" % (cur, p["expect_current"])
        return result

    target = None
    for entry in state.get("previous") or []:
        rkey = entry.get("release") if isinstance(entry, dict) else None
        if not rkey or rkey == cur:
            continue
        rdir = paths.release_dir(rkey)
        info = read_json(os.path.join(rdir, RELEASE_FILE))
        rel = info.get("release") or entry
        fname, sha = rel.get("filename"), rel.get("sha256")
        if fname and sha and verify_file(os.path.join(rdir, fname), sha, check_mode=check)[0]:
            target = (rkey, entry, info)
            break

    failed = dict(snapshot(state), release=cur, at=utc_now()) if cur else None
    if target is None and not p.get("expect_current"):
        raise BpError("no earlier release is kept on this device (current: %s); nothing to roll back to" % cur)
    result["changed"] = True
    if target is None:
        # nothing to go back to: never leave `current` pointing at a broken release
        new_state = dict(state)
        health = dict(state.get("health") or PENDING)
        health.update(ok=False, status="failed")
        new_state.update(health=health, current=None, rolled_back_from=failed)
        result.update(switched=cur is not None, current=None, health_ok=False,
                      msg="no earlier release kept; current removed")
        if not check:
            remove_link(paths)
            clear_switch(paths)
            if os.path.isdir(paths.state_dir):
                atomic_write(paths.state, dump_json(new_state), 0o640, -1, gid)
            if p["service_manager"] == "systemd":
                systemctl = module.get_bin_path("systemctl", required=True)
                module.run_command([systemctl, "stop", "bp-%s.service" % deployment])
        return result

    rkey, entry, info = target
    files = info.get("files") or []
    rest = [e for e in state.get("previous") or [] if isinstance(e, dict) and e.get("release") not in (rkey, cur)]
    new_state = dict(entry)
    new_state.update(info.get("release") or {})
    new_state.update(release=rkey, previous=rest, rolled_back_from=failed)
    if not isinstance(new_state.get("health"), dict):
        new_state["health"] = dict(PENDING)
    if not check:
        write_files(files, uid, gid, False)
        if info.get("policy") is not None:
            atomic_write(paths.policy, dump_json(policy_evidence(deployment, info["policy"])), 0o640, -1, gid)
        switch_link(paths, rkey)
        atomic_write(paths.state, dump_json(new_state), 0o640, -1, gid)
        clear_switch(paths)
        if p["service_manager"] == "systemd":
            service_restart(module, "bp-%s.service" % deployment, None, bool(files))
    result.update(switched=True, current=rkey, rolled_back=True, release=snapshot(new_state), previous=rest,
                  health_ok=bool(new_state["health"].get("ok")), needs_health=True,
                  msg="rolled back from %s to %s" % (cur, rkey))
    return result


def undo(module, p, paths, state, cur, result):
    """Undo what an unconfirmed run changed, as its pending-switch record says; nothing else.

    No record naming ``current``: this run switched nothing, the device keeps what it runs.
    A record ``from`` null (the first release on this device): ``current`` is removed, the state
    says failed. Otherwise the release, configuration files, policy evidence and state that ran
    before are restored (the same release when only its configuration had changed).
    """
    deployment = p["deployment"]
    check = module.check_mode
    _uid, gid = resolve_ids(p.get("owner"), p.get("group"))
    record = pending_switch(paths, cur) if cur else None
    if record is None:
        result["msg"] = "this run switched nothing; %s stays on %s" % (deployment, cur or "no release")
        return result
    failed = dict(snapshot(state), release=cur, at=utc_now())
    frm = record.get("from")
    old = dict(record.get("state") or {})
    info = record.get("release_info") or (read_json(os.path.join(paths.release_dir(frm), RELEASE_FILE))
                                          if frm else {})
    rel = old or info.get("release") or {}
    fname, sha = rel.get("filename"), rel.get("sha256")
    usable = bool(frm and fname and sha
                  and verify_file(os.path.join(paths.release_dir(frm), fname), sha, check_mode=check)[0])
    result["changed"] = True
    if not usable:
        # the first release on this device (or the earlier one is gone): never leave `current`
        # pointing at a release that failed
        new_state = dict(state)
        new_state.update(health=dict(state.get("health") or PENDING, ok=False, status="failed"),
                         current=None, rolled_back_from=failed)
        result.update(switched=True, current=None, health_ok=False,
                      msg="no earlier release to go back to; current removed")
        if not check:
            remove_link(paths)
            if os.path.isdir(paths.state_dir):
                atomic_write(paths.state, dump_json(new_state), 0o640, -1, gid)
            clear_switch(paths)
            if p["service_manager"] == "systemd":
                systemctl = module.get_bin_path("systemctl", required=True)
                module.run_command([systemctl, "stop", "bp-%s.service" % deployment])
        return result

    new_state = dict(old)
    new_state["previous"] = [e for e in old.get("previous") or []
                             if isinstance(e, dict) and e.get("release") not in (frm, cur)
                             and os.path.isdir(paths.release_dir(e.get("release") or ""))]
    new_state["rolled_back_from"] = failed
    if not isinstance(new_state.get("health"), dict):
        new_state["health"] = dict(PENDING)
    files = info.get("files") or []
    if not check:
        uid = resolve_ids(p.get("owner"), p.get("group"))[0]
        write_files(files, uid, gid, False)
        if record.get("policy"):
            atomic_write(paths.policy, dump_json(record["policy"]), 0o640, -1, gid)
        if info:
            atomic_write(os.path.join(paths.release_dir(frm), RELEASE_FILE), dump_json(info), 0o640, -1, gid)
        if frm != cur:
            switch_link(paths, frm)
        atomic_write(paths.state, dump_json(new_state), 0o640, -1, gid)
        clear_switch(paths)
        if p["service_manager"] == "systemd":
            service_restart(module, "bp-%s.service" % deployment, None, bool(files))
    result.update(switched=frm != cur, current=frm, rolled_back=True, release=snapshot(new_state),
                  previous=new_state["previous"], health_ok=bool(new_state["health"].get("ok")),
                  needs_health=True,
                  msg=("rolled back from %s to %s" % (cur, frm)) if frm != cur
                  else "restored the configuration %s ran with before" % frm)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="present", choices=["present", "rollback"]),
            root=dict(type="path", required=True),
            deployment=dict(type="str", required=True),
            model=dict(type="str"),
            version=dict(type="str"),
            variant=dict(type="str"),
            filename=dict(type="str"),
            sha256=dict(type="str"),
            record=dict(type="dict", default={}),
            policy=dict(type="dict"),
            files=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="path", required=True),
                content=dict(type="str", required=True),
                mode=dict(type="str", default="0640"),
            )),
            keep=dict(type="int", default=1),
            owner=dict(type="str"),
            group=dict(type="str"),
            service_manager=dict(type="str", default="systemd", choices=["systemd", "none"]),
            expect_current=dict(type="str"),
            undo_switch=dict(type="bool", default=False),
            desired=dict(type="str"),
            allow_downgrade=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    try:
        if module.params["state"] == "present":
            result = present(module, module.params)
        else:
            result = rollback(module, module.params)
    except BpError as exc:
        module.fail_json(msg="%s: %s" % (module.params["deployment"], exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg="%s: %s" % (module.params["deployment"], exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
