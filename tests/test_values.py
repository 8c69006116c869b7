"""Values that reach a device: refused at compile time, handed over resolved (slmops_bp.values)."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from click.testing import CliRunner

from slmops_bp import quantities as q
from slmops_bp.blueprint import parse_documents
from slmops_bp.cli import cli
from slmops_bp.diagnostics import Diagnostic, error, shown
from slmops_bp.load import load_text
from slmops_bp.policy import egress_allows, egress_entries
from slmops_bp.values import EgressEntry, ValueProblem, artifact_file, check_segment, parse_egress

ROOT = Path(__file__).resolve().parent.parent
FILTERS = ROOT / "playbooks/collections/ansible_collections/slmops/bp/plugins/filter/bp.py"
SHA = "d4" * 32


def _filters() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bp_filters_under_test", FILTERS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _schema(text: str) -> list[Diagnostic]:
    docs, diags = load_text(text, "bp.yaml")
    assert not diags
    _, found = parse_documents(docs)
    return found


# ---------------------------------------------------------------- artifact file names


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("https://h.example.com/models/m.onnx", "m.onnx"),
        ("https://h.example.com/m.onnx?x=a/../../PWNED", "m.onnx"),
        ("https://h.example.com/m.onnx?x=/PWNED", "m.onnx"),
        ("https://h.example.com/m.onnx#frag/../../x", "m.onnx"),
        ("http://h.example.com:8080/dir/model%20v2.gguf", "model v2.gguf"),
        ("file:///srv/models/m.gguf", "m.gguf"),
        ("file://localhost/srv/models/m.gguf", "m.gguf"),
    ],
)
def test_the_file_name_comes_from_the_uri_path(uri: str, name: str) -> None:
    assert artifact_file(uri) == name


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("http:///a.onnx", "has no host"),
        ("https://:443/a.onnx", "has no host"),
        ("http://h:99999/a", "invalid port"),
        ("http://h:0/a", "invalid port"),
        ("http://h:/a", "invalid port"),
        ("http://h/m/..", "ends in '..'"),
        ("http://h/m/.", "ends in '.'"),
        ("http://h/m/", "must end in a file name"),
        ("http://h", "must end in a file name"),
        ("http://h/m/.bp-release.json", "reserves hidden"),
        ("http://h/m/%2e%2e", "ends in '..'"),
        ("http://h/m/..%2F..%2Fx", "path separator"),
        ("http://h/m/a%00b", "control character"),
        ("http://h/m/a%ffb", "not UTF-8"),
        ("file://server/srv/a.onnx", "names a host"),
        ("ftp://h/a.onnx", "use https://"),
        ("http://h/" + "a" * 300, "longer than 255 bytes"),
    ],
)
def test_uris_that_cannot_work_on_a_device_are_refused(uri: str, why: str) -> None:
    with pytest.raises(ValueProblem, match=why.replace(".", r"\.")):
        artifact_file(uri)


def test_the_rendered_file_name_ignores_query_and_fragment(tmp_path: Path) -> None:
    bp = tmp_path / "bp"
    shutil.copytree(ROOT / "blueprints", bp)
    models = bp / "models.yaml"
    text = models.read_text(encoding="utf-8")
    uri = "https://models.internal.example.com/phi-4-mini/1.2.0/phi-4-mini-q4_k_m.gguf"
    assert uri in text
    models.write_text(text.replace(uri, uri + "?x=a/../PWNED#f/../../y"), encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["render", "-i", str(ROOT / "inventory" / "example.ini"), "--blueprints", str(bp),
         "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = yaml.safe_load((out / "project/vars/bp.yml").read_text().replace("!unsafe", ""))
    artifacts = [c["artifact"] for d in data["bp_deployments"].values() for c in d.values()]
    q4 = [a for a in artifacts if "q4_k_m" in a["uri"]]
    assert q4, artifacts
    assert {a["filename"] for a in q4} == {"phi-4-mini-q4_k_m.gguf"}
    assert all("PWNED" not in a["filename"] and "/" not in a["filename"] for a in artifacts)


# ---------------------------------------------------------------- versions


@pytest.mark.parametrize("version", ["1.20.1", "b4000", "2.0.0+cu121", "1.0_rc-1", "v1"])
def test_safe_versions(version: str) -> None:
    assert check_segment(version) == version


@pytest.mark.parametrize(
    "version",
    [
        "../../../tmp/x",
        "1.20.1; touch /tmp/x",
        "..",
        ".hidden",
        "a/b",
        "1..2",
        "",
        "1 2",
        "x" * 200,
    ],
)
def test_versions_that_are_not_a_path_segment_are_refused(version: str) -> None:
    with pytest.raises(ValueProblem, match="not safe as a directory name"):
        check_segment(version)


# ---------------------------------------------------------------- sizes, durations, numbers


def test_sizes_are_whole_bytes_above_zero_and_bounded() -> None:
    assert q.parse_size("3.2GiB") == round(3.2 * 1024**3)
    assert q.parse_size("2.4GB") == 2_400_000_000
    assert q.parse_size("1B") == 1
    assert q.parse_size("1024TiB") == q.MAX_SIZE
    for text, why in [
        ("0B", "is zero"),
        ("0.0GiB", "is zero"),
        ("0.5B", "fraction of a byte"),
        ("1.5B", "fraction of a byte"),
        ("0.0001KB", "fraction of a byte"),
        ("99999999999999999999999999TB", "more than a device can have"),
        ("1025TiB", "more than a device can have"),
    ]:
        with pytest.raises(q.QuantityError, match=why):
            q.parse_size(text)
    assert q.parse_size_or_zero("0B") == 0


def test_durations_are_bounded() -> None:
    assert q.parse_timeout("1d") == 86400
    assert q.parse_duration("36500d") == q.MAX_DURATION
    with pytest.raises(q.QuantityError, match="at most 1d"):
        q.parse_timeout("99999999999999999999d")
    with pytest.raises(q.QuantityError, match="at most 1d"):
        q.parse_timeout("25h")
    with pytest.raises(q.QuantityError, match="at most 36500d"):
        q.parse_duration("9" * 400 + "d")


def test_a_huge_value_is_cut_in_the_message() -> None:
    with pytest.raises(q.QuantityError) as caught:
        q.parse_size("9" * 100_000 + "TB")
    assert len(str(caught.value)) < 300


# ---------------------------------------------------------------- egress entries


@pytest.mark.parametrize(
    ("entry", "parsed"),
    [
        ("models.example.com", EgressEntry("models.example.com", None, None)),
        ("Models.Example.COM:443", EgressEntry("models.example.com", None, 443)),
        ("*.example.com", EgressEntry("*.example.com", None, None)),
        ("10.1.2.3", EgressEntry(None, "10.1.2.3", None)),
        ("10.1.2.3:8080", EgressEntry(None, "10.1.2.3", 8080)),
        ("10.1.2.3/8", EgressEntry(None, "10.0.0.0/8", None)),
        ("fd00::1", EgressEntry(None, "fd00::1", None)),
        ("[fd00::1]:8443", EgressEntry(None, "fd00::1", 8443)),
        ("fd00::/8", EgressEntry(None, "fd00::/8", None)),
        ("localhost", EgressEntry("localhost", None, None)),
    ],
)
def test_egress_entries_parse(entry: str, parsed: EgressEntry) -> None:
    assert parse_egress(entry) == parsed


@pytest.mark.parametrize(
    "entry",
    [
        "-j ACCEPT",
        "{{ lookup('pipe', 'id') }}",
        "https://models.internal.example.com",
        "models.example.com:0",
        "models.example.com:65536",
        "models.example.com:https",
        "10.0.0.0/33",
        "10.0.0.0/8:443",
        "a..b",
        "-bad.example.com",
        "[fd00::1",
        "[nothost]:1",
        " host",
        "",
        "h:1:2",
    ],
)
def test_egress_entries_that_are_not_a_host_address_or_cidr_are_refused(entry: str) -> None:
    with pytest.raises(ValueProblem, match="invalid egress entry"):
        parse_egress(entry)


def test_a_url_as_egress_entry_says_what_to_write() -> None:
    with pytest.raises(
        ValueProblem, match=re.escape("write 'models.internal.example.com:443', not a URL")
    ):
        parse_egress("https://models.internal.example.com")


def test_egress_matching_by_address_and_network() -> None:
    assert egress_allows("http://10.1.2.3:8080/m.onnx", ["10.0.0.0/8"])
    assert egress_allows("http://10.1.2.3:8080/m.onnx", ["10.1.2.3:8080"])
    assert not egress_allows("http://10.1.2.3/m.onnx", ["10.1.2.3:8080"])
    assert egress_allows("https://[fd00::1]/m.onnx", ["[fd00::1]:443"])
    assert not egress_allows("https://11.0.0.1/m.onnx", ["10.0.0.0/8"])


def test_the_device_allow_list_is_what_the_compiler_decided() -> None:
    """The collection's filter parses nothing: it reads the compiler's resolved entries."""
    allow = [
        "10.1.2.3",
        "10.9.0.0/16",
        "[fd00::1]:8443",
        "192.168.7.7:443",
        "localhost:8080",
        "*.internal.example",
    ]
    entries = egress_entries(allow)
    assert entries == [parse_egress(e).as_dict() for e in allow]
    device = _filters().bp_egress_ips(entries)
    decided = sorted(str(e["address"]) for e in entries if e["address"])
    assert device["ips"] == decided == ["10.1.2.3", "10.9.0.0/16", "192.168.7.7", "fd00::1"]
    assert device["unresolved"] == ["*.internal.example"]


def test_the_filter_refuses_raw_strings() -> None:
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="not a resolved egress entry"):
        _filters().bp_egress_ips(["https://models.internal.example.com"])


def test_rendered_egress_is_resolved(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["render", "-i", str(ROOT / "inventory" / "example.ini"), "--blueprints",
         str(ROOT / "blueprints"), "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = yaml.safe_load((out / "project/vars/bp.yml").read_text().replace("!unsafe", ""))
    allows = [
        c["privacy"]["egress"]["allow"] for d in data["bp_deployments"].values() for c in d.values()
    ]
    assert {"host": "models.internal.example.com", "address": None, "port": 443} in [
        e for allow in allows for e in allow
    ]


# ---------------------------------------------------------------- through bp validate


MODEL = """\
apiVersion: slmops.bp/v1
kind: Model
metadata: {{name: m}}
spec:
  version: "{version}"
  task: text-generation
  license: "{license}"
  variants:
    - name: v1
      format: onnx
      precision: int8
      artifact: {{uri: "{uri}", sha256: {sha}, size: {size}}}
      memory: 1GiB
"""


def model(**values: str) -> str:
    fields = {"version": "1.0.0", "license": "mit", "uri": "https://h/m.onnx", "size": "1GB"}
    return MODEL.format(sha=SHA, **{**fields, **values})


@pytest.mark.parametrize(
    ("values", "code", "line"),
    [
        ({"version": "../../../tmp/x"}, "BP210", 5),
        ({"uri": "http:///a.onnx"}, "BP211", 12),
        ({"uri": "http://h:99999/a"}, "BP211", 12),
        ({"size": "0.5B"}, "BP206", 12),
        ({"license": "mit\\a"}, "BP205", 7),
    ],
)
def test_validate_refuses_at_the_line(values: dict[str, str], code: str, line: int) -> None:
    found = _schema(model(**values))
    assert [(d.code, d.line) for d in found] == [(code, line)]


def test_bel_in_a_license_is_shown_escaped() -> None:
    found = _schema(model(license="mit\\a"))
    assert "\a" not in found[0].message and "'mit\\x07'" in found[0].message
    assert "U+0007" in found[0].message


def test_bidi_name_is_escaped_and_the_code_point_filled_in() -> None:
    text = model().replace("{name: m}", '{name: "a\\u202eb"}')
    found = _schema(text)
    assert [d.code for d in found] == ["BP205"]
    assert "U+202E" in found[0].message and "{code" not in found[0].message
    assert "\u202e" not in found[0].message and "\\u202e" in found[0].message


def test_a_huge_name_is_truncated() -> None:
    text = model().replace("{name: m}", "{name: " + "x" * 10_000_000 + "}")
    found = _schema(text)
    assert [d.code for d in found] == ["BP205"]
    assert len(found[0].message) < 400 and "(10000000 characters)" in found[0].message


def test_a_nested_param_is_one_diagnostic() -> None:
    text = """\
apiVersion: slmops.bp/v1
kind: Deployment
metadata: {name: d}
spec:
  model: m
  deviceClasses: [c]
  privacy: p
  runtime:
    params: {threads: {count: 4}, batch: [1], ok: 1}
"""
    found = _schema(text)
    assert [(d.code, d.line) for d in found] == [("BP203", 9), ("BP203", 9)]
    assert (
        "expected a string, an integer, a number or a boolean (true or false), got a mapping"
        in (found[0].message + found[1].message)
    )


def test_an_infinite_param_is_one_non_finite_diagnostic() -> None:
    text = """\
apiVersion: slmops.bp/v1
kind: Deployment
metadata: {name: d}
spec:
  model: m
  deviceClasses: [c]
  privacy: p
  runtime:
    params: {temperature: .inf}
  rollout:
    health: {min_tokens_per_s: .nan}
"""
    found = _schema(text)
    assert [(d.code, d.line) for d in found] == [("BP212", 9), ("BP212", 11)]


def test_every_diagnostic_escapes_and_cuts_its_message() -> None:
    diag = error("BP999", "x\x1b[31m\u202e" + "y" * 5000, "a\nb.yaml", 1, 1)
    assert "\x1b" not in diag.message and "\\x1b" in diag.message and "\\u202e" in diag.message
    assert len(diag.message) < 2100 and diag.path == "a\\x0ab.yaml"
    assert shown("a'b") == "'a\\'b'"


def test_validate_cli_on_a_fifo_is_a_diagnostic(tmp_path: Path) -> None:
    import os

    bp = tmp_path / "bp"
    shutil.copytree(ROOT / "blueprints", bp)
    os.mkfifo(bp / "stuck.yaml")
    result = CliRunner().invoke(cli, ["validate", "--blueprints", str(bp)])
    assert result.exit_code == 1, result.output
    assert "stuck.yaml:0:0: error BP108 not a regular file (it is a FIFO" in result.output
