"""Fixtures for the Ansible content tests: tiny real ONNX models and a local model server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # also under --import-mode=importlib

import content_helpers as helpers
from support.model_server import ModelServer


@pytest.fixture(scope="session")
def model_server() -> Iterator[ModelServer]:
    server = ModelServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def float_model() -> bytes:
    pytest.importorskip("onnx")
    return helpers.onnx_float_model()


@pytest.fixture(scope="session")
def int64_model() -> bytes:
    pytest.importorskip("onnx")
    return helpers.onnx_int64_model()
