"""``bp validate`` never crashes, whatever a user does to a blueprint file.

The example fleet is mutated at random — keys deleted or duplicated, values of
the wrong type, maps turned into scalars, random bytes and control characters,
truncation, broken indentation, YAML tags, anchors and aliases — and
``bp validate --format json`` must still answer with exit status 0 or 1, a
JSON list of diagnostics, and a position for every one of them.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmops_bp.cli import cli

pytestmark = pytest.mark.slow  # hypothesis: hundreds of generated blueprint sets

ROOT = Path(__file__).resolve().parent.parent
FLEET = {p.name: p.read_bytes() for p in sorted((ROOT / "blueprints").glob("*.yaml"))}
CODE = re.compile(r"^BP\d{3}$")
UNPOSITIONED = {"BP108"}  # a file that cannot be read at all has no line

Draw = Callable[[st.SearchStrategy[Any]], Any]
Mutation = Callable[[Draw, bytes], bytes]

SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large]

NASTY_TEXT = [
    "\x00",
    "\t",
    "\r",
    "\x1b[31m",
    "\ufeff",
    "\u202e",
    "\u2066",
    "\x85",
    "\u2028",
    "\ud800",
    "é",
    "{{ lookup('pipe', 'id') }}",
    "'",
    '"',
    "\\",
    ": ",
    " #",
    "&a ",
    "*a",
    "!!python/object:os.system ",
    "!custom ",
    "<<: ",
    "%YAML 1.1\n",
    "\n---\n",
    "\n...\n",
    "? ",
    "- ",
    "|",
    ">-",
    "[",
    "{",
    "`",
    "@",
]
VALUES = [
    "42",
    "-1",
    "0",
    "1.10",
    "1e400",
    ".nan",
    "0x1F",
    "99999999999999999999999999",
    "true",
    "off",
    "yes",
    "null",
    "~",
    '""',
    "[]",
    "{}",
    "[1, 2]",
    "{a: 1}",
    "'8'",
    "8GiB",
    "10%",
    "-5%",
    "250%",
    "0s",
    "!!str 8",
    "!!binary aGVsbG8=",
    "!!timestamp 2024-01-01",
    "2024-01-01",
    "&anchor x",
    "*nowhere",
    '"\\u202e"',
    '"\\x00"',
]
KEY_VALUE = re.compile(rb"^(\s*(?:- )?[A-Za-z_][\w.-]*:)[ \t]+\S.*$")
KEY_ONLY = re.compile(rb"^(\s*(?:- )?[A-Za-z_][\w.-]*:)\s*$")


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _pick(draw: Draw, lines: list[bytes], pattern: re.Pattern[bytes] | None = None) -> int | None:
    candidates = [i for i, line in enumerate(lines) if pattern is None or pattern.match(line)]
    return draw(st.sampled_from(candidates)) if candidates else None


# ---------------------------------------------------------------- text mutations


def delete_line(draw: Draw, data: bytes) -> bytes:
    lines = _lines(data)
    i = _pick(draw, lines, KEY_VALUE) if draw(st.booleans()) else _pick(draw, lines)
    if i is not None:
        del lines[i]
    return b"\n".join(lines)


def duplicate_key(draw: Draw, data: bytes) -> bytes:
    lines = _lines(data)
    i = _pick(draw, lines, KEY_VALUE)
    if i is not None:
        lines.insert(i + 1, lines[i].replace(b"- ", b"  ", 1))
    return b"\n".join(lines)


def retype_value(draw: Draw, data: bytes) -> bytes:
    lines = _lines(data)
    i = _pick(draw, lines, KEY_VALUE)
    if i is not None:
        match = KEY_VALUE.match(lines[i])
        assert match is not None
        lines[i] = match.group(1) + b" " + draw(st.sampled_from(VALUES)).encode()
    return b"\n".join(lines)


def map_to_scalar(draw: Draw, data: bytes) -> bytes:
    lines = _lines(data)
    i = _pick(draw, lines, KEY_ONLY)
    if i is not None:
        lines[i] = lines[i].rstrip() + b" " + draw(st.sampled_from(VALUES)).encode()
        if draw(st.booleans()):  # and drop the block that belonged to it
            indent = len(lines[i]) - len(lines[i].lstrip())
            j = i + 1
            while j < len(lines) and (len(lines[j]) - len(lines[j].lstrip())) > indent:
                del lines[j]
    return b"\n".join(lines)


def inject(draw: Draw, data: bytes) -> bytes:
    at = draw(st.integers(0, len(data)))
    if draw(st.booleans()):
        junk: bytes = draw(st.binary(min_size=1, max_size=12))
    else:
        text = draw(st.sampled_from(NASTY_TEXT))
        junk = text.encode("utf-8", "surrogatepass")
    return data[:at] + junk + data[at:]


def truncate(draw: Draw, data: bytes) -> bytes:
    return data[: draw(st.integers(0, len(data)))]


def reindent(draw: Draw, data: bytes) -> bytes:
    lines = _lines(data)
    i = _pick(draw, lines, re.compile(rb"^\s*\S"))
    if i is not None:
        body = lines[i].lstrip()
        indent = draw(st.sampled_from([b"", b" ", b"   ", b"     ", b"\t", b"  \t", b" " * 12]))
        lines[i] = indent + body
    return b"\n".join(lines)


def yaml_feature(draw: Draw, data: bytes) -> bytes:
    """Anchors, aliases, merge keys, tags, an alias bomb, odd documents."""
    snippets = [
        b"---\n",
        b"---\n...\n",
        b"--- 42\n",
        b"--- [a, b]\n",
        b"--- !!python/object/apply:os.system [id]\n",
        b"x: &a [1, 2]\ny: *a\n",
        b"base: &b {arch: aarch64}\nmerged:\n  <<: *b\n",
        b"a: &a [x, x, x, x, x, x, x, x, x]\n"
        b"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        b"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
        b"f: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
        b"deep: " + b"[" * 300 + b"]" * 300 + b"\n",
        b"? [complex, key]\n: value\n",
        b"%TAG !e! tag:example.com,2000:\n---\nk: !e!thing v\n",
        b"k: !!set {a, b}\n",
        b"k: !!omap [a: 1]\n",
    ]
    lines = _lines(data)
    at = draw(st.integers(0, len(lines)))
    lines.insert(at, draw(st.sampled_from(snippets)).rstrip(b"\n"))
    return b"\n".join(lines)


# Values that are well-typed but wrong, or right at an edge: they reach the
# cross-document checks (references, fit, co-residency, policy, overlays, rollout).
SEMANTIC: dict[str, list[str]] = {
    "memory": ["0B", "1B", "999TiB", "0.5GiB", "16 GiB"],
    "reserve": ["0B", "16GiB", "8GiB"],
    "storage": ["1KB", "0B", "4GB"],
    "size": ["0B", "900GB", "1B"],
    "stages": ["[]", "[0]", "[0%]", "[100%, 10%]", "[1, 2]", "[50%]", "[1, 100%, 100%]"],
    "max_failures": ["100%", "0", "1000", "0%"],
    "keep": ["0", "100", "101"],
    "priority": ["-1", "99999999999999999999", "0"],
    "model": ["nope", "minilm-embed", "phi-4-mini"],
    "deviceClasses": ["[]", "[gateway-2g]", "[rpi5-8g, rpi5-8g]", "[nope]"],
    "runtimes": ["[nope]", "[litert, litert]", "[ollama]", "[]"],
    "privacy": ["nope", "standard", "hipaa-eu", "hipaa-strict"],
    "deployment": ["nope", "doc-search-embed", "shift-summarizer"],
    "allow": ["[]", "[nope]", '["*"]', '["[::1]:443"]', '[":"]', '["h:notaport"]', "[q4-gguf]"],
    "model_sources": ['["["]', '["**"]', '[""]', "[]", '["https://elsewhere.example.com/*"]'],
    "licenses": ["[]", "[gpl-3.0]", "[MIT]"],
    "license": ["proprietary", "MIT", ""],
    "uri": [
        "ftp://models.internal.example.com/x",
        "https://evil.example.com/x.gguf",
        "file:///tmp/x.onnx",
        "https://models.internal.example.com:8443/x.onnx",
        "https://models.internal.example.com/",
    ],
    "quality": ["0", "1.5", "0.0001", "1"],
    "sparsity": ["1.0", "0.99", "-0.1"],
    "accelerators": ["[]", "[cpu]", "[cuda, cuda]", "[edgetpu]", "[{type: cuda}]"],
    "encrypted_storage": ["false", "true"],
    "encryption_at_rest": ["required", "none"],
    "telemetry": ["on", "full", "none", "opt-out"],
    "residency": ["region", "device"],
    "formats": ["[gguf]", "[onnx, onnx]", "[tflite]"],
    "prefer": ["size", "quality"],
    "timeout": ["0s", "0ms", "1w", "100000d"],
    "retention": ["0s", "3650d", "1ms"],
    "min_tokens_per_s": ["0.001", "1e9"],
    "port": ["1", "65535", "8090"],
    "set": [
        "{}",
        "null",
        "[]",
        "{model: minilm-embed}",
        "{deviceClasses: [gateway-2g]}",
        "{privacy: standard}",
        "{privacy: nope}",
        "{rollout: {stages: [50%, 10%]}}",
        "{runtime: 5}",
        "{variants: {allow: [nope]}}",
        "{variants: {prefer: size}, keep: 50}",
        "{unknown: 1}",
        "{hosts: {groups: [clinics]}}",
        "{priority: high}",
        "{rollout: {health: {timeout: 0s}}}",
        "{runtime: {params: {threads: [1]}}}",
        "{spec: {model: x}}",
    ],
    "hosts": ["{}", "{groups: []}", "{groups: [clinics]}", "{hostvars: {hw: [x]}}", "null"],
    "groups": ["[]", "[rpi, rpi]", "['bad group']", "[gateways]"],
    "name": ["rpi5-8g", "phi-4-mini", "triage-assistant", "q4-gguf", "x" * 64],
}


def semantic(draw: Draw, data: bytes) -> bytes:
    lines = _lines(data)
    keys = "|".join(SEMANTIC)
    i = _pick(draw, lines, re.compile(rb"^\s*(?:- )?(" + keys.encode() + rb"):"))
    if i is None:
        return data
    match = re.match(rb"^(\s*(?:- )?)([A-Za-z_]+):", lines[i])
    assert match is not None
    key = match.group(2).decode()
    value = draw(st.sampled_from(SEMANTIC[key])).encode()
    indent = len(match.group(1))
    lines[i] = match.group(0) + b" " + value
    j = i + 1  # drop the block that belonged to the key
    while j < len(lines) and lines[j].strip() and len(lines[j]) - len(lines[j].lstrip()) > indent:
        del lines[j]
    return b"\n".join(lines)


def duplicate_document(draw: Draw, data: bytes) -> bytes:
    """Append a copy of one of the fleet's documents (duplicate names, conflicts)."""
    source = FLEET[draw(st.sampled_from(sorted(FLEET)))].split(b"\n---\n")
    document: bytes = draw(st.sampled_from(source[1:]))
    return data + b"\n---\n" + document


TEXT_MUTATIONS: list[Mutation] = [
    delete_line,
    duplicate_key,
    retype_value,
    map_to_scalar,
    inject,
    truncate,
    reindent,
    yaml_feature,
    duplicate_document,
]


# ---------------------------------------------------------------- structural mutations


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


def _retype(draw: Draw, value: Any) -> Any:
    if isinstance(value, bool):
        return draw(st.sampled_from(["off", "yes", 1, None]))
    if isinstance(value, int | float):
        return draw(st.sampled_from([[value], str(value), -value, True, 10**30, float("nan")]))
    if isinstance(value, str):
        return draw(
            st.sampled_from(
                [8, 1.1, True, [value], {value: value}, "", value * 40, value + "\u202e"]
            )
        )
    if isinstance(value, dict):
        return draw(st.sampled_from(["scalar", 0, [], list(value), None]))
    if isinstance(value, list):
        return draw(st.sampled_from(["scalar", {}, 3, [[*value]], None]))
    return draw(st.sampled_from(["x", 1, {}]))


def structural(draw: Draw, data: bytes) -> bytes:
    try:
        docs = list(yaml.safe_load_all(data))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return inject(draw, data)
    if not docs:
        return data
    d = draw(st.integers(0, len(docs) - 1))
    paths = _paths(docs[d])
    path = draw(st.sampled_from(paths))
    action = draw(st.sampled_from(["delete", "retype", "retype", "unknown-key", "rename-key"]))
    if not path:
        docs[d] = _retype(draw, docs[d])
    else:
        parent = docs[d]
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        if action == "delete":
            del parent[last]
        elif action == "unknown-key" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["quantisation", "Name", "spec", "1", "labels"]))] = 1
        elif action == "rename-key" and isinstance(parent, dict):
            parent[str(last).upper()] = parent.pop(last)
        else:
            parent[last] = _retype(draw, parent[last])
    text = yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True, explicit_start=True)
    return text.encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------- the property


def _check_validate(changed: dict[str, bytes]) -> None:
    """``bp validate`` on the example fleet with ``changed`` files replaced or added."""
    with tempfile.TemporaryDirectory(prefix="bp-prop-") as tmp:
        root = Path(tmp) / "blueprints"
        root.mkdir()
        for name, data in {**FLEET, **changed}.items():
            (root / name).write_bytes(data)
        result = CliRunner().invoke(cli, ["validate", "--format", "json", str(root)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError("bp validate raised") from result.exception
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    diags = json.loads(result.stdout)
    assert isinstance(diags, list)
    for d in diags:
        assert set(d) >= {"path", "line", "column", "severity", "code", "message"}, d
        assert isinstance(d["path"], str) and d["path"], d
        assert CODE.match(d["code"]), d
        assert d["severity"] in ("error", "warning", "info"), d
        assert isinstance(d["line"], int) and isinstance(d["column"], int), d
        if d["code"] not in UNPOSITIONED:
            assert d["line"] >= 1, d
        assert d["column"] >= 0, d
        assert d["message"], d
    errors = [d for d in diags if d["severity"] == "error"]
    assert (result.exit_code == 1) == bool(errors), (result.exit_code, diags)


@st.composite
def mutated_fleet(draw: Draw, mutations: list[Mutation]) -> dict[str, bytes]:
    """Only the files that changed: a failing example stays short enough to read."""
    files = dict(FLEET)
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(sorted(files)))
        mutation = draw(st.sampled_from(mutations))
        files[name] = mutation(draw, files[name])
    return {name: data for name, data in files.items() if data != FLEET[name]}


@settings(max_examples=70, deadline=None, suppress_health_check=SUPPRESS)
@given(mutated_fleet(TEXT_MUTATIONS))
def test_text_mutations_never_crash(files: dict[str, bytes]) -> None:
    _check_validate(files)


@settings(max_examples=50, deadline=None, suppress_health_check=SUPPRESS)
@given(mutated_fleet([semantic, semantic, semantic, duplicate_document]))
def test_semantic_mutations_never_crash(files: dict[str, bytes]) -> None:
    _check_validate(files)


@settings(max_examples=30, deadline=None, suppress_health_check=SUPPRESS)
@given(mutated_fleet([structural]))
def test_structural_mutations_never_crash(files: dict[str, bytes]) -> None:
    _check_validate(files)


def test_unmutated_fleet_passes_the_same_checks() -> None:
    _check_validate({})


@pytest.mark.parametrize("kind", ["[]", "{a: 1}", "[DeviceClass]", "null", "42", "true"])
def test_kind_of_the_wrong_type_is_a_diagnostic(kind: str) -> None:
    """Found by the property test: an unhashable ``kind`` crashed the header check."""
    document = f"apiVersion: slmops.bp/v1\nkind: {kind}\nmetadata: {{name: x}}\nspec: {{}}\n"
    _check_validate({"extra.yaml": document.encode()})
