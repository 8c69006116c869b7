"""Strict YAML 1.2 loading with source positions.

libyaml's composer gives the node graph with marks; the values are built here
(YAML 1.2 core schema, never PyYAML's constructor), so ``no``/``off`` stay
strings, only standard tags pass, and every value's position is kept for
later diagnostics.  User mistakes become BP1xx diagnostics, never exceptions.

The stages, each a module, in the order a file goes through them:

- ``files``: which files (directories walked, hidden names skipped), each read
  safely (regular files only, size limit);
- ``text``: encoding (UTF-8) and characters YAML refuses;
- ``compose``: libyaml's composer, document by document; syntax and depth problems;
- ``build``: plain values from the node graph (YAML 1.2 core schema, tags,
  duplicate keys, alias limits), recording every value's :class:`Position`;
- ``document``: :class:`Document`, what every later stage receives;
- ``limits``: the limits on size, depth, values and aliases.
"""

from __future__ import annotations

from slmops_bp.load.document import Document, Loc, Position
from slmops_bp.load.files import load_files
from slmops_bp.load.limits import MAX_ALIASES, MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from slmops_bp.load.text import load_text

__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "Document",
    "Loc",
    "Position",
    "load_files",
    "load_text",
]
