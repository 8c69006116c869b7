"""scripts/make_tiny_gguf.py as a module (the tests make their GGUF files with it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_tiny_gguf.py"


def maker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_tiny_gguf", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
