# -*- coding: utf-8 -*-
# Copyright: slmops-bp contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""What a runtime's install spec means, in one place: bp_runtime provisions by it and bp_probe
compares a device's runtime marker with it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import platform

from ansible_collections.slmops.bp.plugins.module_utils.bp_contract import RUNTIME_MARKER
from ansible_collections.slmops.bp.plugins.module_utils.bp_files import BpError

MARKER = RUNTIME_MARKER
RECIPE = 1  # bump to re-provision every runtime after a change of recipe
PY_ENGINES = ("onnxruntime", "litert")
ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def default_pip(engine, version):
    if engine == "onnxruntime":
        return ["onnxruntime==%s" % version, "numpy"]
    if engine == "litert":
        return ["ai-edge-litert==%s" % version, "numpy"]
    if engine == "llama-cpp":
        return ["llama-cpp-python[server]==%s" % version]
    return []


def plan(engine, version, install):
    """Normalise the install spec into (kind, spec)."""
    install = dict(install or {})
    if install.get("archive") or engine == "ollama":
        archive = dict(install.get("archive") or {})
        if not archive.get("url"):
            if engine != "ollama":
                raise BpError("install.archive.url is required for an archive install")
            arch = ARCH.get(platform.machine().lower())
            if not arch:
                raise BpError("no default ollama build for %s; give install.archive.url" % platform.machine())
            base = "https://github.com/ollama/ollama/releases/download/v%s/" % version
            archive["url"] = base + "ollama-linux-%s.tgz" % arch
            archive.setdefault("checksum_url", base + "sha256sum.txt")
        if not archive.get("sha256") and not archive.get("checksum_url"):
            raise BpError("install.archive needs sha256 (or checksum_url) so the download can be verified")
        return "archive", {"archive": archive, "packages": list(install.get("packages") or [])}
    if install.get("packages") and not install.get("pip") and engine not in PY_ENGINES:
        return "packages", {"packages": list(install["packages"])}
    pip = install.get("pip")
    if pip is None:
        pip = default_pip(engine, version)
    extra = install.get("extra_index_url") or []
    if isinstance(extra, str):
        extra = [extra]
    return "venv", {
        "pip": [str(p) for p in pip],
        "pip_args": [str(a) for a in (install.get("pip_args") or [])],
        "index_url": install.get("index_url"),
        "extra_index_url": [str(x) for x in extra],
        "system_site_packages": bool(install.get("system_site_packages", False)),
        "python": install.get("python"),
        "packages": list(install.get("packages") or []),
    }


def digest_of(engine, version, kind, spec):
    canon = json.dumps({"engine": engine, "version": version, "kind": kind, "spec": spec, "recipe": RECIPE},
                       sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()
