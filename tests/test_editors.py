"""What editors show: yaml-language-server itself, driven headless over its protocol.

yaml-language-server (the engine of VS Code's YAML extension and of most editors)
applies a ``# yaml-language-server: $schema=`` modeline only to the document whose
header holds it, and ``yaml.schemas`` settings to every document of a matching file.
The example fleet carries the modeline in every document and ``bp init`` writes the
``yaml.schemas`` mapping, so an error in any document is underlined at its line, and
hovering a field shows its description.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.lsp import LanguageServer
from support.node_tools import node_tools

from slmops_bp.descriptions import DESCRIPTIONS

pytestmark = pytest.mark.slow  # node: a JSON Schema language server and ajv

ROOT = Path(__file__).resolve().parent.parent
FLEET = sorted((ROOT / "blueprints").glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../schemas/blueprint.json"


def _server(root: Path, settings: dict[str, Any]) -> LanguageServer:
    exe = node_tools() / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
    yaml_settings = {"validate": True, "hover": True, "schemaStore": {"enable": False}}
    yaml_settings.update(settings)
    return LanguageServer(["node", str(exe), "--stdio"], root, {"yaml": yaml_settings})


@pytest.fixture(scope="module")
def plain_server() -> Iterator[LanguageServer]:
    """A server with no schema settings: only modelines give documents a schema."""
    server = _server(ROOT, {"schemas": {}})
    yield server
    server.close()


def _lines_with(text: str, needle: str) -> list[int]:
    """0-based numbers of the lines that contain ``needle``."""
    return [i for i, line in enumerate(text.splitlines()) if needle in line]


def _error_lines(diagnostics: list[dict[str, Any]]) -> list[int]:
    return sorted({d["range"]["start"]["line"] for d in diagnostics})


def _plain(markdown: str) -> str:
    return re.sub(r"\\([\\`*_{}\[\]()#+\-.!|])", r"\1", markdown)


def test_a_modeline_above_the_first_document_misses_the_second(
    plain_server: LanguageServer, tmp_path: Path
) -> None:
    # the form this repository used to recommend: one modeline, on line 1 of the file
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "blueprint.json").write_text(
        (ROOT / "schemas" / "blueprint.json").read_text(encoding="utf-8"), encoding="utf-8"
    )
    runtime = (
        "apiVersion: slmops.bp/v1\nkind: Runtime\nmetadata: {{name: {name}}}\n"
        'spec:\n  engine: {engine}\n  version: "1"\n  formats: [onnx]\n'
    )
    first = runtime.format(name="a", engine="y")
    second = runtime.format(name="b", engine="x")
    top_only = f"{MODELINE}\n---\n{first}---\n{second}"
    uri = plain_server.open(tmp_path / "blueprints" / "top-only.yaml", top_only)
    diagnostics = plain_server.wait_diagnostics(uri, at_least=1, settle=3)
    assert _error_lines(diagnostics) == _lines_with(top_only, "engine: y")
    per_document = f"---\n{MODELINE}\n{first}---\n{MODELINE}\n{second}"
    uri = plain_server.open(tmp_path / "blueprints" / "per-document.yaml", per_document)
    assert _error_lines(plain_server.wait_diagnostics(uri, at_least=2)) == (
        _lines_with(per_document, "engine: y") + _lines_with(per_document, "engine: x")
    )


@pytest.mark.parametrize("path", FLEET, ids=[p.name for p in FLEET])
def test_every_document_of_the_example_fleet_is_checked(
    plain_server: LanguageServer, path: Path
) -> None:
    # an unknown field in the spec of every document: each one is underlined
    text = re.sub(r"(?m)^spec:\n", "spec:\n  bogus_field: 1\n", path.read_text(encoding="utf-8"))
    expected = _lines_with(text, "bogus_field")
    assert len(expected) == text.count("\napiVersion:") >= 2
    uri = plain_server.open(path, text)
    diagnostics = plain_server.wait_diagnostics(uri, at_least=len(expected))
    assert _error_lines(diagnostics) == expected, diagnostics
    assert all("bogus_field" in d["message"] for d in diagnostics)


@pytest.fixture(scope="module")
def init_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("init") / "repo"
    bp = Path(sys.executable).with_name("bp")
    subprocess.run([str(bp), "init", str(repo)], check=True, capture_output=True, timeout=120)
    return repo


def test_bp_init_settings_check_every_document_without_any_modeline(
    init_repo: Path,
) -> None:
    vscode = json.loads((init_repo / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    settings = {k.removeprefix("yaml."): v for k, v in vscode.items() if k.startswith("yaml.")}
    server = _server(init_repo, settings)
    try:
        fleet = init_repo / "blueprints" / "fleet.yaml"
        text = re.sub(r"(?m)^# yaml-language-server:.*\n", "", fleet.read_text(encoding="utf-8"))
        # the second document (a DeviceClass) and the last one (the Deployment) go wrong
        text = text.replace("  arch: x86_64\n", "  arch: x86\n").replace(
            "  keep: 2\n", "  keep: two\n"
        )
        expected = sorted(_lines_with(text, "  arch: x86") + _lines_with(text, "keep: two"))
        assert text.count("\n---\n") >= 5 and len(expected) == 2
        uri = server.open(fleet, text)
        diagnostics = server.wait_diagnostics(uri, at_least=len(expected))
        assert _error_lines(diagnostics) == expected, diagnostics
        # hover in the last document shows what the field means
        (keep,) = _lines_with(text, "keep: two")
        hover = _plain(server.hover(uri, keep, 3))
        assert DESCRIPTIONS["DeploymentSpec"]["keep"] in hover
    finally:
        server.close()


def test_hover_shows_the_description_of_fields_in_any_document(
    plain_server: LanguageServer,
) -> None:
    path = ROOT / "blueprints" / "device-classes.yaml"
    text = path.read_text(encoding="utf-8")
    uri = plain_server.open(path, text)
    plain_server.wait_diagnostics(uri)
    storage = _lines_with(text, "  storage:")
    assert len(storage) >= 2
    for line in (storage[0], storage[-1]):  # first and last document
        assert DESCRIPTIONS["DeviceClassSpec"]["storage"] in _plain(
            plain_server.hover(uri, line, 4)
        )
    specs = [i for i, line in enumerate(text.splitlines()) if line == "spec:"]
    for line in (specs[0], specs[-1]):  # hover on `spec:` says what the document is
        assert DESCRIPTIONS["DeviceClass"][""] in _plain(plain_server.hover(uri, line, 2))
