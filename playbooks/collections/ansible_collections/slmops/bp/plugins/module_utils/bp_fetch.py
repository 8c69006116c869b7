# -*- coding: utf-8 -*-
# Copyright: slmops-bp contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Fetch one artifact into a directory: streamed, byte-capped, sha256-verified, atomic.

Used by bp_artifact (models) and bp_runtime (engine archives). The temporary
file lives next to the destination (same file system, so the final rename is
atomic) and is removed on every failure path.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import hashlib
import os
import socket
import tempfile
import time

from ansible.module_utils.six.moves.http_client import HTTPException
from ansible.module_utils.six.moves.urllib.parse import unquote, urlparse
from ansible.module_utils.urls import open_url

from ansible_collections.slmops.bp.plugins.module_utils.bp_files import (
    CHUNK,
    BpError,
    fsync_dir,
    remove_quietly,
)

TMP_MARK = ".bp-tmp-"


class TransientError(Exception):
    """A failure worth retrying (network trouble, a short read)."""


def source_path(uri):
    """A local path for file:// URIs and plain paths, or None for http(s)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        return None
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise BpError("file URI %r names a remote host; use a local path" % uri)
        return unquote(parsed.path)
    if parsed.scheme == "" and uri.startswith("/"):
        return uri
    raise BpError("unsupported artifact URI %r: use https://, http://, file:// or an absolute path" % uri)


def describe(uri):
    """The URI without credentials, for messages."""
    parsed = urlparse(uri)
    if parsed.username or parsed.password:
        netloc = parsed.hostname or ""
        if parsed.port:
            netloc += ":%d" % parsed.port
        return parsed._replace(netloc=netloc).geturl()
    return uri


def clean_stale_temps(directory, filename):
    for path in glob.glob(os.path.join(glob.escape(directory), "." + glob.escape(filename) + TMP_MARK + "*")):
        remove_quietly(path)


def free_bytes(directory):
    try:
        st = os.statvfs(directory)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _copy_stream(reader, writer, digest, cap, expected_len):
    total = 0
    while True:
        block = reader.read(CHUNK)
        if not block:
            break
        total += len(block)
        if total > cap:
            raise BpError("artifact is larger than its size cap of %d bytes; download aborted" % cap)
        digest.update(block)
        writer.write(block)
    if expected_len is not None and total != expected_len:
        raise TransientError("connection closed after %d of %d bytes" % (total, expected_len))
    return total


def _open(uri, timeout, validate_certs):
    local = source_path(uri)
    if local is not None:
        try:
            return open(local, "rb"), os.path.getsize(local)
        except (IOError, OSError) as exc:
            raise BpError("cannot read artifact source %s: %s" % (local, exc))
    try:
        resp = open_url(
            uri,
            timeout=timeout,
            validate_certs=validate_certs,
            headers={"Accept-Encoding": "identity", "User-Agent": "slmops-bp"},
            follow_redirects="safe",
            decompress=False,
        )
    except Exception as exc:  # urllib/http.client/ssl raise many kinds
        code = getattr(exc, "code", None)
        if code is not None and 400 <= int(code) < 500 and int(code) not in (408, 429):
            raise BpError("download of %s failed: HTTP %s" % (describe(uri), code))
        raise TransientError("download of %s failed: %s" % (describe(uri), exc))
    length = resp.headers.get("Content-Length")
    encoding = resp.headers.get("Content-Encoding")
    expected = int(length) if length and length.isdigit() and not encoding else None
    return resp, expected


def fetch(uri, directory, filename, sha256, cap, timeout=30, retries=3, delay=2.0,
          validate_certs=True, mode=0o640, uid=-1, gid=-1):
    """Download ``uri`` to a temp file in ``directory``; verify; return (tmp_path, size, attempts).

    The caller renames the temp file into place. On any failure nothing is left
    behind and BpError says why (expected vs actual sha256 on a mismatch).
    """
    attempts = 0
    last = None
    while attempts <= retries:
        attempts += 1
        fd, tmp = tempfile.mkstemp(prefix="." + filename + TMP_MARK, dir=directory)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as writer:
                reader, expected_len = _open(uri, timeout, validate_certs)
                try:
                    if cap is not None and expected_len is not None and expected_len > cap:
                        raise BpError("artifact is %d bytes, above its size cap of %d bytes; not downloaded"
                                      % (expected_len, cap))
                    free = free_bytes(directory)
                    if expected_len is not None and free is not None and free < expected_len:
                        raise BpError("not enough free space in %s: %d bytes free, artifact is %d bytes"
                                      % (directory, free, expected_len))
                    size = _copy_stream(reader, writer, digest, cap if cap is not None else float("inf"),
                                        expected_len)
                except (socket.timeout, socket.error, IOError, HTTPException) as exc:
                    raise TransientError("download of %s interrupted: %s" % (describe(uri), exc))
                finally:
                    reader.close()
                writer.flush()
                os.fsync(writer.fileno())
            actual = digest.hexdigest()
            if actual != sha256:
                raise BpError(
                    "sha256 mismatch for %s: expected %s, got %s (%d bytes); the download was discarded"
                    % (describe(uri), sha256, actual, size)
                )
            os.chmod(tmp, mode)
            if uid != -1 or gid != -1:
                os.chown(tmp, uid, gid)
            return tmp, size, attempts
        except TransientError as exc:
            remove_quietly(tmp)
            last = exc
            if attempts <= retries:
                time.sleep(delay * attempts)
        except BaseException:
            remove_quietly(tmp)
            raise
    raise BpError("%s (gave up after %d attempts)" % (last, attempts))


def install(tmp, dest):
    """Rename a verified temp file into place and make it durable."""
    os.replace(tmp, dest)
    fsync_dir(os.path.dirname(dest) or ".")
