#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: slmops-bp contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: bp_runtime
short_description: Provision an inference engine once per version
version_added: "0.1.0"
description:
  - Provisions the engine into C(<root>/runtimes/<name>-<version>/) and records what it did in
    C(.bp-runtime.json) (engine, version, digest of the install spec). When that marker matches,
    the module does nothing (C(changed=false)), so a runtime is installed once per version.
  - C(onnxruntime), C(litert) and C(llama-cpp) (pip flavour) get a real virtual environment
    (C(python3 -m venv)) with O(install.pip) installed by pip, honouring O(install.pip_args),
    O(install.index_url) and pip's own environment and configuration files.
  - C(ollama) and C(llama-cpp) (archive flavour) unpack a release archive verified by its sha256
    and link the engine's executables into C(bin/).
  - With O(install.packages) (installed by the caller with M(ansible.builtin.package)), the
    engine's executables are found on C(PATH) and linked into C(bin/).
  - The python-based engines also get C(bin/bp-serve), the small HTTP service the systemd unit runs.
author: slmops-bp contributors
options:
  root:
    description: The device's C(bp_root).
    type: path
    required: true
  name:
    description: Runtime name (the blueprint's Runtime C(metadata.name)).
    type: str
    required: true
  engine:
    description: Engine kind.
    type: str
    required: true
    choices: [onnxruntime, llama-cpp, ollama, litert]
  version:
    description: Engine version.
    type: str
    required: true
  install:
    description:
      - Engine-specific install spec, all keys optional.
      - C(pip) (list) packages; default C(onnxruntime==<version>) + C(numpy), C(ai-edge-litert==<version>)
        + C(numpy), C(llama-cpp-python[server]==<version>).
      - C(pip_args) (list) extra arguments for C(pip install), e.g. C(["--no-index", "--find-links", "/srv/wheels"]).
      - C(index_url) / C(extra_index_url) (str / list) package indexes.
      - C(system_site_packages) (bool) create the venv with C(--system-site-packages), so packages the
        device's python already has are visible (pip then skips what is already satisfied).
      - C(python) (str) interpreter that creates the venv; default the module's own python.
      - C(archive) (dict) C(url), C(sha256) (or C(checksum_url), a C(sha256sum.txt)), C(size) cap in bytes,
        C(filename) the file name the compiler resolved from the URL path.
      - C(packages) (list) distribution packages (installed by the calling role), recorded in the digest.
    type: dict
    default: {}
  timeout:
    description: Seconds allowed for each download / pip run.
    type: int
    default: 1800
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Provision ONNX Runtime 1.20.1
  slmops.bp.bp_runtime:
    root: /opt/slmops
    name: onnxruntime
    engine: onnxruntime
    version: "1.20.1"
    install:
      pip_args: ["--no-index", "--find-links", "/srv/wheels"]

- name: Provision Ollama from its release archive
  slmops.bp.bp_runtime:
    root: /opt/slmops
    name: ollama
    engine: ollama
    version: "0.5.7"
    install:
      archive:
        url: https://downloads.example.com/ollama-linux-arm64.tgz
        sha256: 5e8f1c4d5b9b7b62e0a1c0f4a8c1f0d7a1b2c3d4e5f60718293a4b5c6d7e8f90
"""

RETURN = r"""
path:
  description: The runtime directory.
  returned: always
  type: str
python:
  description: The runtime's python (venv flavours), else null.
  returned: always
  type: str
kind:
  description: How it was provisioned, C(venv), C(archive) or C(packages).
  returned: always
  type: str
digest:
  description: sha256 of the canonical install spec, as recorded in the marker.
  returned: always
  type: str
engine_version:
  description: The version the engine reports after installation, when it can tell.
  returned: when provisioned in this run
  type: str
"""

import os
import shutil
import stat
import sys
import tarfile
import zipfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.slmops.bp.plugins.module_utils.bp_contract import PROVISIONED_ENGINES, RUNTIMES_DIR
from ansible_collections.slmops.bp.plugins.module_utils.bp_fetch import fetch
from ansible_collections.slmops.bp.plugins.module_utils.bp_files import (
    BpError,
    atomic_write,
    check_name,
    check_release,
    dump_json,
    ensure_dir,
    error_line,
    read_bytes,
    read_json,
    remove_quietly,
    utc_now,
)
from ansible_collections.slmops.bp.plugins.module_utils.bp_runtime_spec import (
    MARKER,
    PY_ENGINES,
    digest_of,
    plan,
)
from ansible_collections.slmops.bp.plugins.module_utils.bp_scripts import SERVE

IMPORT_CHECK = {
    "onnxruntime": "import onnxruntime as m; print(m.__version__)",
    "litert": "import ai_edge_litert as m; print(getattr(m, '__version__', ''))",
    "llama-cpp": "import llama_cpp as m; print(m.__version__)",
}
EXECUTABLES = {"ollama": ["ollama"], "llama-cpp": ["llama-cli", "llama-server"]}


def run(module, cmd, timeout, what, cwd=None):
    # run_command has no timeout of its own; `timeout` bounds the child when coreutils has it
    prefix = []
    timeout_bin = module.get_bin_path("timeout")
    if timeout_bin and timeout:
        prefix = [timeout_bin, "--kill-after=10", str(timeout)]
    rc, out, err = module.run_command(prefix + cmd, cwd=cwd, environ_update={"PIP_NO_INPUT": "1"})
    if rc != 0:
        # the command's own last error line, not the warnings it printed around it
        raise BpError("%s failed (rc=%d): %s" % (what, rc, error_line(err) or error_line(out)))
    return out


def build_venv(module, dest, engine, spec, timeout):
    python = spec.get("python") or sys.executable
    cmd = [python, "-m", "venv"]
    if spec["system_site_packages"]:
        cmd.append("--system-site-packages")
    run(module, cmd + [dest], timeout, "creating the venv with %s" % python)
    venv_python = os.path.join(dest, "bin", "python")
    if spec["pip"]:
        pip = [venv_python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
        if spec["index_url"]:
            pip += ["--index-url", spec["index_url"]]
        for url in spec["extra_index_url"]:
            pip += ["--extra-index-url", url]
        run(module, pip + spec["pip_args"] + spec["pip"], timeout, "pip install %s" % " ".join(spec["pip"]))
    check = IMPORT_CHECK.get(engine)
    version = ""
    if check:
        version = run(module, [venv_python, "-c", check], 300, "importing the %s engine" % engine).strip()
    return venv_python, version


def _safe_member(name, dest):
    target = os.path.realpath(os.path.join(dest, name))
    return target == os.path.realpath(dest) or target.startswith(os.path.realpath(dest) + os.sep)


def unpack(archive, dest):
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not _safe_member(info.filename, dest):
                    raise BpError("archive member %r escapes the runtime directory" % info.filename)
            zf.extractall(dest)
            for info in zf.infolist():
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    os.chmod(os.path.join(dest, info.filename), mode)
        return
    try:
        tf = tarfile.open(archive)
    except tarfile.TarError as exc:
        raise BpError("runtime archive is neither zip nor tar: %s" % exc)
    with tf:
        members = []
        for member in tf.getmembers():
            if member.isdev() or not _safe_member(member.name, dest):
                raise BpError("archive member %r is unsafe" % member.name)
            if (member.issym() or member.islnk()) and not _safe_member(
                    os.path.join(os.path.dirname(member.name), member.linkname), dest):
                raise BpError("archive link %r points outside the runtime directory" % member.name)
            members.append(member)
        tf.extractall(dest, members=members)


def checksum_from(url, filename, timeout):
    try:
        text = open_url(url, timeout=timeout, follow_redirects="safe").read(1024 * 1024).decode("utf-8", "replace")
    except Exception as exc:
        raise BpError("cannot read checksum list %s: %s" % (url, exc))
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[-1].lstrip("*").lstrip("./") == filename:
            return parts[0].lower()
    raise BpError("checksum list %s has no entry for %s" % (url, filename))


def link_executables(engine, dest, search_path=None):
    bindir = os.path.join(dest, "bin")
    if not os.path.isdir(bindir):
        os.makedirs(bindir, 0o755)
    found = []
    for exe in EXECUTABLES.get(engine, []):
        link = os.path.join(bindir, exe)
        if os.path.isfile(link) and not os.path.islink(link):
            found.append(exe)
            continue
        target = None
        if search_path is None:
            for base, _dirs, files in os.walk(dest):
                if exe in files and base != bindir:
                    target = os.path.join(base, exe)
                    break
        else:
            target = shutil.which(exe, path=search_path)
        if target:
            remove_quietly(link)
            os.symlink(target, link)
            os.chmod(target, os.stat(target).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            found.append(exe)
    if not found:
        raise BpError("none of %s found for engine %s" % (", ".join(EXECUTABLES.get(engine, [])), engine))
    return found


def build_archive(module, dest, engine, spec, timeout):
    archive = spec["archive"]
    filename = archive.get("filename") or os.path.basename(archive["url"].split("?", 1)[0]) or "runtime-archive"
    sha = (archive.get("sha256") or "").lower() or checksum_from(archive["checksum_url"], filename, 60)
    os.makedirs(dest, 0o755)
    tmp, _size, _ = fetch(archive["url"], dest, filename, sha, int(archive.get("size") or 8 * 1024 ** 3),
                          timeout=min(timeout, 120), mode=0o600)
    try:
        unpack(tmp, dest)
    finally:
        remove_quietly(tmp)
    link_executables(engine, dest)
    return None, ""


def provision(module, params):
    root = params["root"]
    name = check_name(params["name"], "runtime name")
    version = check_release(params["version"], "runtime version")
    engine = params["engine"]
    kind, spec = plan(engine, version, params["install"])
    digest = digest_of(engine, version, kind, spec)
    runtimes = os.path.join(root, RUNTIMES_DIR)
    dest = os.path.join(runtimes, "%s-%s" % (name, version))
    venv_python = os.path.join(dest, "bin", "python") if kind == "venv" else None
    result = {"changed": False, "path": dest, "python": venv_python, "kind": kind, "digest": digest}

    marker = read_json(os.path.join(dest, MARKER))
    current = (marker.get("digest") == digest and marker.get("engine") == engine
               and (venv_python is None or os.path.exists(venv_python)))
    if not current:
        result["changed"] = True
        if module.check_mode:
            result["msg"] = "would provision %s %s (%s)" % (engine, version, kind)
            return result
        ensure_dir(runtimes, 0o755, parent_mode=0o711)
        if os.path.lexists(dest):
            shutil.rmtree(dest) if os.path.isdir(dest) and not os.path.islink(dest) else os.unlink(dest)
        try:
            if kind == "venv":
                _python, engine_version = build_venv(module, dest, engine, spec, params["timeout"])
            elif kind == "archive":
                _python, engine_version = build_archive(module, dest, engine, spec, params["timeout"])
            else:
                os.makedirs(dest, 0o755)
                link_executables(engine, dest, search_path=os.environ.get("PATH", os.defpath))
                engine_version = ""
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        result["engine_version"] = engine_version
        if engine_version and version not in engine_version and engine_version not in version:
            module.warn("%s reports version %s, the blueprint asks for %s" % (engine, engine_version, version))
    if engine in PY_ENGINES and kind == "venv":
        serve = os.path.join(dest, "bin", "bp-serve")
        # run by the unit as `<runtime>/bin/python <runtime>/bin/bp-serve`; no absolute path inside
        text = ("#!/usr/bin/env python3\n" + SERVE).encode("utf-8")
        if read_bytes(serve) != text:
            result["changed"] = True
            if not module.check_mode:
                atomic_write(serve, text, 0o755)
    if not current and not module.check_mode:
        record = {"engine": engine, "name": name, "version": version, "kind": kind, "digest": digest,
                  "installed_at": utc_now(), "engine_version": result.get("engine_version", ""),
                  "install": spec}
        atomic_write(os.path.join(dest, MARKER), dump_json(record), 0o644)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            name=dict(type="str", required=True),
            engine=dict(type="str", required=True, choices=list(PROVISIONED_ENGINES)),
            version=dict(type="str", required=True),
            install=dict(type="dict", default={}),
            timeout=dict(type="int", default=1800),
        ),
        supports_check_mode=True,
    )
    old_umask = os.umask(0o022)
    try:
        result = provision(module, module.params)
    except BpError as exc:
        module.fail_json(msg="runtime %s %s: %s" % (module.params["name"], module.params["version"], exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg="runtime %s %s: %s" % (module.params["name"], module.params["version"], exc))
    finally:
        os.umask(old_umask)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
