# -*- coding: utf-8 -*-
# Copyright: slmops-bp contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Small file-system helpers shared by the slmops.bp modules (stdlib only).

Every write is atomic: a temporary file in the destination directory, fsync,
os.replace, fsync of the directory. Nothing here reads blueprint values as
templates; they are plain data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import grp
import hashlib
import json
import os
import pwd
import re
import stat
import tempfile

from ansible_collections.slmops.bp.plugins.module_utils.bp_contract import NAME_MAX, NAME_PATTERN

NAME_RE = re.compile(NAME_PATTERN)
# <version>-<variant>: versions may carry dots, pluses and dashes; no path separators.
RELEASE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
CHUNK = 1024 * 1024
SIDECAR_SUFFIX = ".sha256"


class BpError(Exception):
    """A failure with a message meant for the user."""


def check_name(value, what):
    if not isinstance(value, str) or not NAME_RE.match(value) or len(value) > NAME_MAX:
        raise BpError("%s %r is not a valid name (%s, at most %d chars)" % (what, value, NAME_PATTERN, NAME_MAX))
    return value


def check_release(value, what):
    if not isinstance(value, str) or not RELEASE_RE.match(value) or value in (".", ".."):
        raise BpError("%s %r may only hold letters, digits, '.', '_', '+' and '-'" % (what, value))
    return value


def check_filename(value):
    if (not isinstance(value, str) or not value or "/" in value or "\0" in value
            or value in (".", "..") or value.startswith(".")):
        raise BpError("artifact filename %r must be a plain file name (no '/', not hidden)" % (value,))
    return value


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def resolve_ids(owner=None, group=None):
    """Names (or None) -> (uid, gid), -1 meaning 'leave as is'."""
    uid = gid = -1
    if owner:
        try:
            uid = pwd.getpwnam(owner).pw_uid
        except KeyError:
            raise BpError("user %r does not exist on this device" % (owner,))
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise BpError("group %r does not exist on this device" % (group,))
    return uid, gid


def fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fix_attrs(path, mode, uid=-1, gid=-1, check_mode=False, follow=True):
    """Set mode/owner when they differ; returns True when something changed (or would)."""
    st = os.stat(path) if follow else os.lstat(path)
    changed = False
    if mode is not None and stat.S_IMODE(st.st_mode) != mode:
        changed = True
        if not check_mode:
            os.chmod(path, mode)
    if (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid):
        changed = True
        if not check_mode:
            os.chown(path, uid, gid)
    return changed


def ensure_dir(path, mode, uid=-1, gid=-1, check_mode=False, parent_mode=0o711):
    """Create ``path`` (and missing parents with ``parent_mode``); fix mode/owner. Returns changed."""
    if os.path.isdir(path):
        return fix_attrs(path, mode, uid, gid, check_mode)
    if os.path.lexists(path):
        raise BpError("%s exists and is not a directory" % path)
    if check_mode:
        return True
    parent = os.path.dirname(path.rstrip("/"))
    if parent and not os.path.isdir(parent):
        ensure_dir(parent, parent_mode, check_mode=False, parent_mode=parent_mode)
    try:
        os.mkdir(path, mode)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
    fix_attrs(path, mode, uid, gid)
    fsync_dir(parent or ".")
    return True


def read_bytes(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def atomic_write(path, data, mode=0o640, uid=-1, gid=-1, check_mode=False):
    """Write ``data`` (bytes) to ``path`` atomically unless it already holds it. Returns changed."""
    if read_bytes(path) == data and not os.path.islink(path):
        return fix_attrs(path, mode, uid, gid, check_mode)
    if check_mode:
        return True
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".bp-tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if uid != -1 or gid != -1:
            os.chown(tmp, uid, gid)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)
    return True


def dump_json(obj):
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def read_json(path):
    """The JSON object at ``path``; {} when missing or unreadable (a corrupt file is treated as absent)."""
    data = read_bytes(path)
    if data is None:
        return {}
    try:
        value = json.loads(data.decode("utf-8"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            block = handle.read(CHUNK)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def sidecar_path(path):
    return path + SIDECAR_SUFFIX


def _stat_key(st):
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino, "dev": st.st_dev}


def write_sidecar(path, sha256, uid=-1, gid=-1):
    """Remember that ``path`` (as it is now: size, mtime, inode) has ``sha256``."""
    record = dict(_stat_key(os.stat(path)), sha256=sha256)
    atomic_write(sidecar_path(path), dump_json(record), 0o640, uid, gid)


def cached_sha256(path):
    """The sha256 recorded for ``path`` if the sidecar still describes the file, else None."""
    record = read_json(sidecar_path(path))
    try:
        st = os.stat(path)
    except OSError:
        return None
    if record and all(record.get(k) == v for k, v in _stat_key(st).items()):
        sha = record.get("sha256")
        return sha if isinstance(sha, str) else None
    return None


def verify_file(path, expected, uid=-1, gid=-1, check_mode=False):
    """(ok, actual_sha256, hashed) for a regular file; refreshes the sidecar after a full hash."""
    if not os.path.isfile(path) or os.path.islink(path):
        return False, None, False
    cached = cached_sha256(path)
    if cached is not None:
        return cached == expected, cached, False
    actual = sha256_file(path)
    if actual == expected and not check_mode:
        write_sidecar(path, actual, uid, gid)
    return actual == expected, actual, True


def remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


_ERROR_RE = re.compile(r"(error|exception|fatal|failed|cannot|could not|not found|no such|denied|invalid)",
                       re.IGNORECASE)
_NOISE_RE = re.compile(r"^\s*(warning|\[notice\]|notice:|deprecat|hint:)", re.IGNORECASE)


def error_line(text, limit=500):
    """The line of a command's output that says what went wrong: the last line that reads like an
    error (pip's ``ERROR: No matching distribution ...``), else the last line that is not a warning
    or notice, else the last line. Warnings printed after the error never hide it."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return ""
    meaningful = [line for line in lines if not _NOISE_RE.match(line)]
    errors = [line for line in meaningful if _ERROR_RE.search(line)]
    picked = (errors or meaningful or lines)[-1]
    return picked[:limit]
