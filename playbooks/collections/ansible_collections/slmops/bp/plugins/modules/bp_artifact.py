#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: slmops-bp contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: bp_artifact
short_description: Stage a model artifact, verified against its sha256, atomically
version_added: "0.1.0"
description:
  - Downloads (C(https://), C(http://)) or copies (C(file://), absolute paths) an artifact into
    O(dest), streaming into a temporary file in the same directory with a byte cap, and renames
    it into place only after its sha256 matched and the data was fsynced.
  - A file already at O(dest) with the right sha256 is kept (no download, C(changed=false)). The
    verification is cached in a C(<dest>.sha256) sidecar keyed by size, mtime and inode, so a run
    with nothing to do does not hash the artifact again.
  - A failed, mismatching or interrupted download leaves nothing behind and fails with a message
    naming the expected and the actual sha256.
author: slmops-bp contributors
options:
  dest:
    description: Final path of the artifact on the device.
    type: path
    required: true
  uri:
    description:
      - Where to get the artifact. C(https://), C(http://), C(file://) or an absolute path on the
        managed node (the controller-delivery case, after M(ansible.builtin.copy) placed it there).
      - Required with O(state=present).
    type: str
  sha256:
    description: Expected sha256 (64 hex digits).
    type: str
    required: true
  size:
    description: Byte cap; a download that grows past it is aborted.
    type: int
    required: true
  state:
    description:
      - V(present) stages the artifact.
      - V(verified) only reports in RV(present) whether O(dest) already holds it and prepares its
        directory (so a copy delivered by the controller can land next to it); never fetches.
    type: str
    choices: [present, verified]
    default: present
  timeout:
    description: Seconds to wait for the server on connect and on each read.
    type: int
    default: 30
  retries:
    description: How many more times a download that failed for a transient reason is tried.
    type: int
    default: 3
  retry_delay:
    description: Seconds to wait before the first retry (grows linearly).
    type: float
    default: 2.0
  validate_certs:
    description: Verify TLS certificates.
    type: bool
    default: true
  mode:
    description: Mode of the artifact file.
    type: str
    default: "0640"
  dir_mode:
    description: Mode of the directory holding it (created when missing).
    type: str
    default: "0750"
  owner:
    description: Owner of the file and its directory (unchanged when omitted).
    type: str
  group:
    description: Group of the file and its directory (unchanged when omitted).
    type: str
  remove_src:
    description: For a local O(uri), remove the source once the artifact is in place.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
notes:
  - Only the Python standard library and ansible-core module utilities are used on the device.
"""

EXAMPLES = r"""
- name: Stage the model file on the device
  slmops.bp.bp_artifact:
    uri: https://models.example.com/phi-4-mini/1.2.0/model.onnx
    sha256: 0f343b0931126a20f133d67c2b018a3b5e8a4a23d0f1e5d7e0b1b8d5b7c6e3f1
    size: 2400000000
    dest: /opt/slmops/models/triage-assistant/1.2.0-int8-onnx/model.onnx
    group: bp-triage-assistant

- name: Is it already there?
  slmops.bp.bp_artifact:
    dest: /opt/slmops/models/triage-assistant/1.2.0-int8-onnx/model.onnx
    sha256: 0f343b0931126a20f133d67c2b018a3b5e8a4a23d0f1e5d7e0b1b8d5b7c6e3f1
    size: 2400000000
    state: verified
  register: staged
"""

RETURN = r"""
present:
  description: Whether O(dest) holds the artifact with the expected sha256 (after the task).
  returned: always
  type: bool
fetched:
  description: Whether the artifact was downloaded or copied in this run.
  returned: always
  type: bool
sha256:
  description: The sha256 of the staged artifact.
  returned: when present
  type: str
size:
  description: Size in bytes of the staged artifact.
  returned: when present
  type: int
attempts:
  description: Download attempts made.
  returned: when fetched
  type: int
dest:
  description: The artifact path.
  returned: always
  type: str
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.slmops.bp.plugins.module_utils.bp_fetch import (
    clean_stale_temps,
    fetch,
    install,
    source_path,
)
from ansible_collections.slmops.bp.plugins.module_utils.bp_files import (
    BpError,
    check_filename,
    ensure_dir,
    fix_attrs,
    read_json,
    remove_quietly,
    resolve_ids,
    sha256_file,
    sidecar_path,
    verify_file,
    write_sidecar,
)

SHA_RE = re.compile(r"^[0-9a-f]{64}$")


def stage(params, check_mode):
    """Do the work; returns the result dict. Raises BpError for the user's mistakes and failures."""
    dest = os.path.abspath(params["dest"])
    directory, filename = os.path.split(dest)
    check_filename(filename)
    sha = (params["sha256"] or "").strip().lower()
    if not SHA_RE.match(sha):
        raise BpError("sha256 %r is not 64 hex digits" % params["sha256"])
    uid, gid = resolve_ids(params.get("owner"), params.get("group"))
    mode = int(params["mode"], 8)
    dir_mode = int(params["dir_mode"], 8)
    result = {"changed": False, "dest": dest, "fetched": False, "present": False}

    if params["state"] == "verified":
        # the directory is prepared, so that a copy from the controller can land next to its place
        result["changed"] = ensure_dir(directory, dir_mode, uid, gid, check_mode)
        ok, actual, _ = verify_file(dest, sha, uid, gid, check_mode)
        result.update(present=ok)
        if ok:
            result.update(sha256=actual, size=os.path.getsize(dest))
        return result

    if not params.get("uri"):
        raise BpError("uri is required with state=present")
    result["changed"] = ensure_dir(directory, dir_mode, uid, gid, check_mode)
    local = source_path(params["uri"])
    ok, actual, _ = verify_file(dest, sha, uid, gid, check_mode)
    if ok:
        result["changed"] |= fix_attrs(dest, mode, uid, gid, check_mode)
        if params["remove_src"] and local and os.path.abspath(local) != dest and os.path.exists(local):
            result["changed"] = True
            if not check_mode:
                remove_quietly(local)
        result.update(present=True, sha256=sha, size=os.path.getsize(dest))
        return result

    refuse_to_replace_the_running_artifact(dest, sha)
    result["changed"] = True
    if check_mode:
        result["msg"] = "would fetch %s" % params["uri"]
        return result

    clean_stale_temps(directory, filename)
    if local and params["remove_src"] and os.path.dirname(os.path.abspath(local)) == directory:
        # controller delivery: the file was copied next to its final place; verify and rename
        if not os.path.isfile(local):
            raise BpError("artifact source %s does not exist" % local)
        got = sha256_file(local)
        if got != sha:
            remove_quietly(local)
            raise BpError("sha256 mismatch for %s: expected %s, got %s; the copy was discarded" % (local, sha, got))
        size = os.path.getsize(local)
        if size > params["size"]:
            remove_quietly(local)
            raise BpError("artifact is %d bytes, above its size cap of %d bytes" % (size, params["size"]))
        fix_attrs(local, mode, uid, gid)
        install(local, dest)
        attempts = 1
    else:
        tmp, size, attempts = fetch(
            params["uri"], directory, filename, sha, params["size"],
            timeout=params["timeout"], retries=params["retries"], delay=params["retry_delay"],
            validate_certs=params["validate_certs"], mode=mode, uid=uid, gid=gid,
        )
        install(tmp, dest)
        if params["remove_src"] and local:
            remove_quietly(local)
    write_sidecar(dest, sha, uid, gid)
    result.update(present=True, fetched=True, sha256=sha, size=size, attempts=attempts)
    return result


def refuse_to_replace_the_running_artifact(dest, sha):
    """A release that runs keeps its bytes: another artifact under the same release id would change
    the running model before any switch (and outlive a rollback). A file of the running release that
    no longer matches the sha256 it was staged with (damaged, tampered) is repaired as usual."""
    release_dir = os.path.dirname(dest)
    current = os.path.join(os.path.dirname(release_dir), "current")
    if not os.path.exists(dest) or os.path.realpath(current) != os.path.realpath(release_dir):
        return
    staged = read_json(sidecar_path(dest)).get("sha256")
    if isinstance(staged, str) and SHA_RE.match(staged) and staged != sha:
        raise BpError(
            "release %s runs artifact sha256 %s; the plan gives sha256 %s for the same release: give the "
            "new artifact a new version (the running model was left as it is)"
            % (os.path.basename(release_dir), staged, sha)
        )


def drop_empty_release_dir(dest, check_mode):
    """A failed staging leaves no empty release directory behind."""
    if check_mode:
        return
    try:
        os.rmdir(os.path.dirname(os.path.abspath(dest)))
    except OSError:
        pass  # not empty (an earlier good file, a controller copy) or already gone


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            uri=dict(type="str"),
            sha256=dict(type="str", required=True),
            size=dict(type="int", required=True),
            state=dict(type="str", default="present", choices=["present", "verified"]),
            timeout=dict(type="int", default=30),
            retries=dict(type="int", default=3),
            retry_delay=dict(type="float", default=2.0),
            validate_certs=dict(type="bool", default=True),
            mode=dict(type="str", default="0640"),
            dir_mode=dict(type="str", default="0750"),
            owner=dict(type="str"),
            group=dict(type="str"),
            remove_src=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    try:
        result = stage(module.params, module.check_mode)
    except BpError as exc:
        drop_empty_release_dir(module.params["dest"], module.check_mode)
        module.fail_json(msg=str(exc), dest=module.params["dest"], present=False)
    except (IOError, OSError) as exc:
        drop_empty_release_dir(module.params["dest"], module.check_mode)
        module.fail_json(msg="staging %s failed: %s" % (module.params["dest"], exc), present=False)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
