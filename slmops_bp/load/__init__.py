"""Strict YAML 1.2 loading with source positions.

libyaml's composer gives the node graph with marks; the values are built here
(YAML 1.2 core schema, never PyYAML's constructor), so ``no``/``off`` stay
strings, only standard tags pass, and every value's position is kept for
later diagnostics.  User mistakes become BP1xx diagnostics, never exceptions.
"""

from slmops_bp.load.document import Document, Loc
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
    "load_files",
    "load_text",
]
