"""slmops_bp.load: strict YAML 1.2 with positions, every problem a BP1xx diagnostic."""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmops_bp.diagnostics import Diagnostic, Severity
from slmops_bp.load import MAX_FILE_BYTES, Document, compose, limits, load_files, load_text

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "loader"
MARKER = re.compile(r"#\s*(ERROR|WARNING):\s*(BP\d{3}(?:\s*,\s*BP\d{3})*)\s*$")


@pytest.fixture(params=["libyaml", "python"])
def composer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on libyaml's composer and on PyYAML's pure-Python one (the fallback)."""
    if request.param == "python":
        monkeypatch.setattr(compose, "_COMPOSER", compose._PyComposer)
    return str(request.param)


def load(text: str | bytes) -> tuple[list[Document], list[Diagnostic]]:
    return load_text(text, "bp.yaml")


def one(text: str | bytes) -> Document:
    docs, diags = load(text)
    assert diags == []
    assert len(docs) == 1
    return docs[0]


def found(text: str | bytes) -> list[tuple[str, int, int]]:
    """(code, line, column) of every diagnostic."""
    return [(d.code, d.line, d.column) for d in load(text)[1]]


def message(text: str | bytes) -> str:
    (diag,) = load(text)[1]
    return diag.message


# --- fixture files with inline markers ---------------------------------------


def _expected(path: Path) -> set[tuple[int, str, str]]:
    marks = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = MARKER.search(line)
        if match:
            for code in match.group(2).split(","):
                marks.add((number, match.group(1).lower(), code.strip()))
    return marks


@pytest.mark.parametrize(
    "path", sorted((FIXTURES / "invalid").glob("*.yaml")), ids=lambda p: p.stem
)
def test_invalid_fixture_reports_exactly_its_markers(path: Path, composer: str) -> None:
    docs, diags = load_files([path])
    assert {(d.line, str(d.severity), d.code) for d in diags} == _expected(path)
    assert all(d.path == str(path) for d in diags)
    if any(d.is_error for d in diags):
        assert docs == []


def test_valid_fixture_loads_clean(composer: str) -> None:
    docs, diags = load_files([FIXTURES / "valid"])
    assert diags == []
    assert [(d.index, d.line, d.column) for d in docs] == [(0, 2, 1), (1, 24, 1)]
    model, deployment = (d.data for d in docs)
    variant = model["spec"]["variants"][0]
    assert variant["artifact"]["uri"].endswith("?a=1&b=2")
    assert variant["sparsity"] == 0.0
    assert deployment["spec"]["rollout"]["stages"] == [1, "10%", "50%", "100%"]
    assert deployment["spec"]["rollout"]["health"]["prompt"] == "Reply with OK!"
    assert deployment["spec"]["debug"] == "off"
    assert deployment["spec"]["copy"] == {"threads": 4, "context": 4096}


# --- scalars: YAML 1.2 core schema --------------------------------------------

SCALARS = [
    ("no", "no"),
    ("off", "off"),
    ("yes", "yes"),
    ("on", "on"),
    ("y", "y"),
    ("true", True),
    ("True", True),
    ("TRUE", True),
    ("false", False),
    ("FALSE", False),
    ("tRUE", "tRUE"),
    ("~", None),
    ("null", None),
    ("Null", None),
    ("NULL", None),
    ("", None),
    ("nULL", "nULL"),
    ("1.10", 1.1),
    ("0x1F", 31),
    ("0o17", 15),
    ("0755", 755),
    ("-12", -12),
    ("+12", 12),
    ("1_000", "1_000"),
    ("0b101", "0b101"),
    ("-0x1F", "-0x1F"),
    ("1e3", 1000.0),
    ("-.5E-1", -0.05),
    ("1.", 1.0),
    (".5", 0.5),
    (".", "."),
    (".inf", math.inf),
    ("+.Inf", math.inf),
    ("-.INF", -math.inf),
    ("1:20", "1:20"),
    ("2024-01-01", "2024-01-01"),
    ("8GiB", "8GiB"),
    ("10%", "10%"),
    ("1" * 5000, "1" * 5000),  # past Python's int digit limit: left a string
]


@pytest.mark.parametrize(("text", "value"), SCALARS)
def test_plain_scalar_resolution(text: str, value: object, composer: str) -> None:
    doc = one(f"v: {text}\n")
    assert doc.data["v"] == value
    assert type(doc.data["v"]) is type(value)
    if text:
        assert doc.raw(("v",)) == text


@pytest.mark.parametrize("text", [".nan", ".NaN", ".NAN"])
def test_nan(text: str) -> None:
    assert math.isnan(one(f"v: {text}\n").data["v"])


@pytest.mark.parametrize(
    "text", ["'no'", '"1.10"', "'true'", "'~'", '""', "|\n  12\n", ">-\n  off\n"]
)
def test_quoted_and_block_scalars_are_strings(text: str) -> None:
    assert isinstance(one(f"v: {text}").data["v"], str)


def test_raw_keeps_the_text_as_written() -> None:
    doc = one("a: 1.10\nb: 'off'\nc: !!str 1.10\nd: &x  0x1F\ne: *x\nf: [1]\n")
    assert doc.data == {"a": 1.1, "b": "off", "c": "1.10", "d": 31, "e": 31, "f": [1]}
    assert doc.raw(("a",)) == "1.10"
    assert doc.raw(("b",)) == "'off'"
    assert doc.raw(("c",)) == "1.10"
    assert doc.raw(("d",)) == "0x1F"
    assert doc.raw(("e",)) == "0x1F"
    assert doc.raw(("f",)) is None
    assert doc.raw(("f", 0)) == "1"
    assert doc.raw(("missing",)) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("!!str 1.10", "1.10"),
        ("!!str off", "off"),
        ("!!str", ""),
        ("!!int '12'", 12),
        ("!!int 0x10", 16),
        ("!!float 1", 1.0),
        ("!!float '-.inf'", -math.inf),
        ("!!bool 'true'", True),
        ("!!null ''", None),
        ("!!null ~", None),
        ("!!map {a: 1}", {"a": 1}),
        ("!!seq [1]", [1]),
        ("!<tag:yaml.org,2002:str> 5", "5"),
    ],
)
def test_standard_tags_apply(text: str, value: object, composer: str) -> None:
    assert one(f"v: {text}\n").data["v"] == value


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("!!int ten", "tag '!!int' does not fit the value 'ten'"),
        ("!!int 1.5", "tag '!!int' does not fit the value '1.5'"),
        ("!!float 0x1F", "tag '!!float' does not fit the value '0x1F'"),
        ("!!bool yes", "tag '!!bool' does not fit the value 'yes'"),
        ("!!null 0", "tag '!!null' does not fit the value '0'"),
        ("!!map x", "tag '!!map' cannot be used on a scalar"),
        ("!!seq {a: 1}", "tag '!!seq' cannot be used on a mapping"),
        ("!!str [a]", "tag '!!str' cannot be used on a sequence"),
    ],
)
def test_standard_tags_that_do_not_fit(text: str, shown: str) -> None:
    assert found(f"a: 1\nv: {text}\n") == [("BP104", 2, 4)]
    assert message(f"a: 1\nv: {text}\n") == shown


# --- tags, merge keys, nothing executed -----------------------------------------


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system",
        "!!python/name:os.system",
        "!unsafe",
        "!custom",
        "!!binary",
        "!!timestamp",
        "!!set",
        "!!omap",
        "!",
        "!<tag:example.com,2000:x>",
    ],
)
def test_other_tags_are_rejected(tag: str, composer: str) -> None:
    text = f"kind: Model\nspec:\n  x: {tag} 1\n"
    assert found(text) == [("BP104", 3, 6)]
    shown = tag.removeprefix("!<").removesuffix(">") if tag.startswith("!<") else tag
    assert message(text).startswith(f"tag '{shown}' is not allowed (only standard YAML tags")


def test_python_tag_is_rejected_and_nothing_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[object] = []

    def system(*args: object) -> int:
        calls.append(args)
        return 0

    monkeypatch.setattr(os, "system", system)
    witness = tmp_path / "ran"
    text = f"a: !!python/object/apply:os.system ['touch {witness}']\n"
    assert found(text) == [("BP104", 1, 4)]
    docs, _ = load(f"!!python/object/apply:os.system ['touch {witness}']\n")
    assert docs == []
    assert calls == []
    assert not witness.exists()


def test_unsafe_tag_is_rejected() -> None:
    assert found('kind: Model\nprompt: !unsafe \'{{ lookup("pipe", "id") }}\'\n') == [
        ("BP104", 2, 9)
    ]


def test_a_tag_directive_cannot_redefine_standard_tags() -> None:
    text = "%TAG !! tag:example.com,2000:\n---\na: !!str 1\n"
    assert found(text) == [("BP104", 3, 4)]
    assert "'tag:example.com,2000:str' is not allowed" in message(text)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("a: ! 1\n", (1, 4)),
        ("a: ! 'x'\n", (1, 4)),
        ("a: &x ! 1\n", (1, 4)),
        ("a: !\n", (1, 4)),
        ("a: ! [1]\n", (1, 4)),
        ("a: !\n  b: 1\n", (1, 4)),
        ("! a: 1\n", (1, 1)),
    ],
)
def test_the_non_specific_tag_is_rejected(text: str, where: tuple[int, int], composer: str) -> None:
    assert found(text) == [("BP104", *where)]


def test_exclamation_marks_in_values_are_fine() -> None:
    doc = one("prompt: Hello! How are you?\nq: '!'\nr: [a!, b]\nurl: x&y\n")
    assert doc.data == {"prompt": "Hello! How are you?", "q": "!", "r": ["a!", "b"], "url": "x&y"}


def test_merge_key_is_rejected(composer: str) -> None:
    text = "base: &b {x: 1}\nspec:\n  <<: *b\n  y: 2\n"
    assert found(text) == [("BP104", 3, 3)]
    assert message(text) == "merge key '<<' is not supported; write the keys out explicitly"
    assert one("'<<': quoted is just a key\n").data == {"<<": "quoted is just a key"}


# --- keys -------------------------------------------------------------------------


def test_duplicate_key(composer: str) -> None:
    text = "kind: Model\nspec:\n  a: 1\n  b: 2\n  a: 3\n"
    assert found(text) == [("BP103", 5, 3)]
    assert message(text) == "duplicate key 'a' (first defined at line 3)"


def test_duplicate_key_quoted_and_plain_are_the_same_key() -> None:
    assert found("a: 1\n'a': 2\n") == [("BP103", 2, 1)]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("1: x", 'mapping key 1 is not a string (YAML reads an integer); quote it: "1"'),
        ("null: y", 'mapping key null is not a string (YAML reads null); quote it: "null"'),
        ("true: y", 'mapping key true is not a string (YAML reads a boolean); quote it: "true"'),
        ("1.5: y", 'mapping key 1.5 is not a string (YAML reads a number); quote it: "1.5"'),
        ("[a]: b", "mapping key is not a string (it is a sequence)"),
        ("? {a: 1}\n: b", "mapping key is not a string (it is a mapping)"),
        ("!!int 3: b", 'mapping key 3 is not a string (YAML reads an integer); quote it: "3"'),
    ],
)
def test_keys_must_be_strings(text: str, shown: str, composer: str) -> None:
    source = f"kind: Model\n{text}\n"
    column = 3 if text.startswith("?") else 1
    assert found(source) == [("BP110", 2, column)]
    assert message(source) == shown


def test_empty_key() -> None:
    assert found("a: 1\n? \n: y\n") == [("BP110", 2, 2)]
    assert found("a: 1\nb: {? : y}\n") == [("BP110", 2, 7)]
    assert message("? \n: y\n") == "mapping key is empty (YAML reads null); write a string key"


def test_string_keys_that_look_like_other_things() -> None:
    doc = one("on: 1\n'1': 2\n!!str 3: 4\n\"true\": 5\nno: 6\n")
    assert doc.data == {"on": 1, "1": 2, "3": 4, "true": 5, "no": 6}


# --- positions --------------------------------------------------------------------

POSITIONS = """\
apiVersion: slmops.bp/v1
kind: Model
spec:
  variants:
    - name: q4
      artifact:
        sha256: abc
    -   name: int8
        accelerators: [cpu,  cuda]
"""


def test_positions_of_values_and_keys(composer: str) -> None:
    doc = one(POSITIONS)
    sha = ("spec", "variants", 0, "artifact", "sha256")
    assert doc.pos(sha) == (7, 17)
    assert doc.pos(sha, key=True) == (7, 9)
    assert doc.pos(("spec",)) == (4, 3)
    assert doc.pos(("spec",), key=True) == (3, 1)
    assert doc.pos(("spec", "variants", 0)) == (5, 7)
    assert doc.pos(("spec", "variants", 1)) == (8, 9)
    assert doc.pos(("spec", "variants", 1), key=True) == (8, 9)
    assert doc.pos(("spec", "variants", 1, "accelerators", 1)) == (9, 30)
    assert doc.pos(["kind"]) == (2, 7)
    assert doc.pos(()) == (1, 1)


def test_missing_location_falls_back_to_the_deepest_ancestor_key() -> None:
    doc = one(POSITIONS)
    assert doc.pos(("spec", "variants", 0, "artifact", "size")) == (6, 7)
    assert doc.pos(("spec", "variants", 0, "artifact", "size"), key=True) == (6, 7)
    assert doc.pos(("spec", "variants", 0, "memory")) == (5, 7)
    assert doc.pos(("spec", "variants", 7, "name")) == (4, 3)
    assert doc.pos(("metadata", "name")) == (1, 1)
    assert doc.pos(("spec", "variants", 1, "accelerators", 5)) == (9, 9)


def test_a_document_built_by_hand_points_at_its_start() -> None:
    doc = Document("x.yaml", 0, {"a": 1}, 3, 1)
    assert doc.pos(("a",)) == (3, 1)
    assert doc.raw(("a",)) is None


def test_columns_count_characters_not_bytes() -> None:
    doc = one("naïve: 'é'\nx: {ünï: ✓}\n".encode())
    assert doc.pos(("naïve",)) == (1, 8)
    assert doc.pos(("x", "ünï")) == (2, 10)


def test_positions_inside_an_alias_point_at_the_anchor() -> None:
    doc = one("base: &b\n  threads: 4\ncopy: *b\n")
    assert doc.data["copy"] == {"threads": 4}
    assert doc.pos(("copy", "threads")) == (2, 12)
    assert doc.pos(("copy",), key=True) == (3, 1)


def test_aliases_expand_to_independent_copies() -> None:
    doc = one("a: &x {k: [1]}\nb: *x\n")
    doc.data["b"]["k"].append(2)
    assert doc.data["a"] == {"k": [1]}


# --- documents ---------------------------------------------------------------------


def test_multi_document_file(composer: str) -> None:
    docs, diags = load("# header\na: 1\n---\nb: 2\n--- # third\n\n  c: 3\n...\n")
    assert diags == []
    assert [(d.index, d.line, d.column, d.data) for d in docs] == [
        (0, 2, 1, {"a": 1}),
        (1, 4, 1, {"b": 2}),
        (2, 7, 3, {"c": 3}),
    ]
    assert docs[2].pos(("c",)) == (7, 6)
    assert all(d.path == "bp.yaml" for d in docs)


def test_an_error_drops_that_document_and_the_ones_after_it() -> None:
    docs, diags = load("a: 1\n---\nb: 1\nb: 2\n---\nc: !foo 1\n---\nd: 1\n")
    assert [d.data for d in docs] == [{"a": 1}]
    assert [(d.code, d.line) for d in diags] == [("BP103", 4), ("BP104", 6)]


def test_a_syntax_error_keeps_the_documents_before_it() -> None:
    docs, diags = load("a: 1\n---\nb: [1\n---\nc: 1\n")
    assert [d.data for d in docs] == [{"a": 1}]
    assert [d.code for d in diags] == ["BP101"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\nb\n", ("BP101", 3, 1, "could not find expected ':'")),
        ("a: 'x\n", ("BP101", 2, 1, "found unexpected end of stream")),
        ("a: [1, 2\n", ("BP101", 2, 1, "did not find expected ',' or ']'")),
        ("a:\n  - 1\n  b: 2\n", ("BP101", 3, 3, "did not find expected '-' indicator")),
        ("\ta: 1\n", ("BP101", 1, 1, "found character that cannot start any token")),
        ("a: *nope\n", ("BP101", 1, 4, "found undefined alias")),
        ("a: &x 1\nb: &x 2\n", ("BP101", 2, 4, "duplicate anchor (first defined at line 1)")),
        ("%YAML 2.0\n---\na: 1\n", ("BP101", 1, 1, "found incompatible YAML document")),
    ],
)
def test_syntax_errors(text: str, expected: tuple[str, int, int, str], composer: str) -> None:
    (diag,) = load(text)[1]
    assert (diag.code, diag.line, diag.column) == expected[:3]
    assert diag.severity is Severity.ERROR
    if composer == "libyaml":  # the pure-Python parser words some problems differently
        assert diag.message.startswith(expected[3])


def test_syntax_error_message_names_the_context() -> None:
    assert message("a: 1\nb\n") == (
        "could not find expected ':' (while scanning a simple key at line 2, column 1)"
    )


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "\ufeff"])
def test_empty_file_is_one_warning(text: str, composer: str) -> None:
    docs, diags = load(text)
    assert docs == []
    assert [(d.code, d.severity, d.line, d.column) for d in diags] == [
        ("BP107", Severity.WARNING, 1, 1)
    ]


def test_empty_documents_are_skipped_with_a_warning(composer: str) -> None:
    docs, diags = load("---\n---\n# nothing\n---\na: 1\n---\n")
    assert [(d.index, d.data) for d in docs] == [(2, {"a": 1})]
    assert [(d.code, d.severity, d.line) for d in diags] == [
        ("BP107", Severity.WARNING, 1),
        ("BP107", Severity.WARNING, 2),
        ("BP107", Severity.WARNING, 6),
    ]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("- a\n", "a sequence"),
        ("hello\n", "a string"),
        ("~\n", "null"),
        ("--- 3\n", "an integer"),
        ("'a: 1'\n", "a string"),
    ],
)
def test_document_must_be_a_mapping(text: str, kind: str) -> None:
    column = 5 if text.startswith("---") else 1
    assert found(text) == [("BP109", 1, column)]
    assert message(text).startswith(f"document is not a mapping (it is {kind})")


# --- encoding ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"a: 1\nb: caf\xe9\n", (2, 7)),
        (b"a: \xc3\xa9\xff\n", (1, 5)),
        (b"\xff", (1, 1)),
        (b"a: 1\r\nb: \x80\r\n", (2, 4)),
        (b"a: \xed\xa0\x80\n", (1, 4)),  # an encoded surrogate
        (b"a: \xc3\n", (1, 4)),  # truncated sequence
    ],
)
def test_invalid_utf8_points_at_the_first_bad_byte(data: bytes, where: tuple[int, int]) -> None:
    assert found(data) == [("BP102", *where)]
    assert message(data).startswith("file is not valid UTF-8: byte 0x")


def test_utf8_bom_is_accepted() -> None:
    doc = one(b"\xef\xbb\xbfa: 1\nb: x\n")
    assert doc.data == {"a": 1, "b": "x"}
    assert doc.pos(("a",)) == (1, 4)
    assert one("\ufeffa: 1\n").data == {"a": 1}


@pytest.mark.parametrize(
    ("data", "name"),
    [
        ("a: 1\n".encode("utf-16"), "UTF-16"),
        (b"\xfe\xff\x00a\x00:", "UTF-16 BE"),
        (b"\xff\xfe\x00\x00a\x00\x00\x00", "UTF-32 LE"),
        (b"\x00\x00\xfe\xff\x00\x00\x00a", "UTF-32 BE"),
    ],
)
def test_other_byte_order_marks_are_rejected(data: bytes, name: str) -> None:
    assert found(data) == [("BP102", 1, 1)]
    assert f"encoded as {name}" in message(data)


@pytest.mark.parametrize(
    ("text", "where", "code"),
    [
        ("a: b\x00\n", (1, 5), "BP101"),
        ("a: 1\nb: \x01\n", (2, 4), "BP101"),
        ("a: 1\r\nb: 2\r\n\x1b", (3, 1), "BP101"),
        ("a: \ufffe\n", (1, 4), "BP101"),
        ("a: \ud800\n", (1, 4), "BP102"),
    ],
)
def test_control_characters_are_rejected(text: str, where: tuple[int, int], code: str) -> None:
    assert found(text) == [(code, *where)]


def test_nul_suggests_utf16() -> None:
    assert (
        message(b"a\x00:\x00")
        == "control character U+0000 is not allowed in YAML (is the file UTF-16?)"
    )


# --- limits: aliases, depth, size ------------------------------------------------------

# Inputs that would expand exponentially or recurse without bound must end in a diagnostic at
# once; a run longer than this means the limit did not work (a hang), whatever the machine's load.
HANG_GUARD_S = 10.0

LAUGHS = "lol0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)
)


def test_billion_laughs_fails_fast(composer: str) -> None:
    # The expansion is refused before it happens: a hang guard, not a speed measurement (the
    # loader's speed is measured in bench/validate.py).
    start = time.perf_counter()
    docs, diags = load(LAUGHS)
    assert time.perf_counter() - start < HANG_GUARD_S
    assert docs == []
    assert [(d.code, d.line, d.column) for d in diags] == [("BP105", 5, 7)]
    assert "expand too much" in diags[0].message


def test_alias_uses_are_capped() -> None:
    uses = ", ".join(["*x"] * limits.MAX_ALIASES)
    assert one(f"a: &x 1\nb: [{uses}]\n").data["b"] == [1] * limits.MAX_ALIASES
    text = f"a: &x 1\nb: [{uses}, *x]\n"
    assert found(text) == [("BP105", 1, 4)]
    assert message(text) == "aliases/anchors expand too much: more than 100 alias uses"


@pytest.mark.slow
def test_many_values_without_aliases_are_capped() -> None:
    text = "a: [" + ", ".join(["1"] * limits.MAX_NODES) + "]\n"
    assert found(text) == [("BP105", 1, 5 + 3 * (limits.MAX_NODES - 2))]


@pytest.mark.parametrize("sep", [",", ", ", ",\n  "])
def test_aliases_are_counted_wherever_they_stand(sep: str) -> None:
    uses = sep.join(["*x"] * (limits.MAX_ALIASES + 1))
    assert [d.code for d in load(f"a: &x 1\nb: [c{sep}{uses}]\n")[1]] == ["BP105"]
    assert one('a: &x {k: 1}\nb: {"k":*x}\n').data["b"] == {"k": {"k": 1}}


def test_globs_and_query_strings_are_not_aliases() -> None:
    doc = one('src: ["https://x/*"]\nuri: https://a?b=1&c=2\nd: a*b\n')
    assert doc.data == {"src": ["https://x/*"], "uri": "https://a?b=1&c=2", "d": "a*b"}


@pytest.mark.parametrize("text", ["&a [*a]\n", "a: &a {b: *a}\n", "a: &a\n  - b: [*a]\n"])
def test_recursive_alias_is_rejected(text: str, composer: str) -> None:
    diags = load(text)[1]
    assert [d.code for d in diags] == ["BP105"]
    assert diags[0].message == "recursive alias: an anchor is used inside itself"


def _flow(depth: int) -> str:
    return "a: " + "[" * depth + "]" * depth + "\n"


def _block(depth: int) -> str:
    return "".join("  " * i + "k:\n" for i in range(depth)) + "  " * depth + "k: 1\n"


def test_64_levels_are_fine(composer: str) -> None:
    assert one(_flow(63)).pos(("a",) + (0,) * 62) == (1, 66)
    assert one(_block(63)).data["k"]["k"]["k"] is not None


def test_65_levels_are_too_deep(composer: str) -> None:
    assert found(_flow(64)) == [("BP106", 1, 67)]
    assert found(_block(64)) == [("BP106", 65, 129)]
    assert message(_flow(64)) == "nesting deeper than 64 levels"


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 100_000,
        "a: " + "[" * 100_000 + "]" * 100_000,
        "a: " + "{a: " * 100_000,
        "- " * 100_000 + "x\n",
        "".join(" " * i + "-\n" for i in range(3000)),
    ],
    ids=["open-flow", "closed-flow", "flow-mappings", "compact-block", "indented-block"],
)
def test_absurd_nesting_is_a_diagnostic_not_a_crash(text: str) -> None:
    start = time.perf_counter()
    docs, diags = load(text)
    assert time.perf_counter() - start < HANG_GUARD_S
    assert docs == []
    assert [d.code for d in diags] == ["BP106"]
    assert diags[0].line >= 1


@pytest.mark.slow
def test_absurd_nesting_on_the_python_composer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compose, "_COMPOSER", compose._PyComposer)
    assert found("a: " + "[" * 5000) == [("BP106", 1, 67)]


def test_depth_prescan_for_libyaml_without_its_own_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compose, "_NEEDS_DEPTH_PRESCAN", True)
    docs, diags = load("a: 1\n---\nb: " + "[" * 2000 + "]" * 2000 + "\n")
    assert [d.data for d in docs] == [{"a": 1}]
    assert [(d.code, d.line, d.column) for d in diags] == [("BP106", 3, 67)]
    assert one("a: [" + ", ".join(["x"] * 2000) + "]\n").data["a"][-1] == "x"


def test_file_larger_than_16_mib_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    docs, diags = load_files([big])
    assert docs == []
    assert [(d.code, d.line, d.column) for d in diags] == [("BP111", 1, 1)]
    assert "larger than 16 MiB" in diags[0].message
    assert found(b" " * (MAX_FILE_BYTES + 1)) == [("BP111", 1, 1)]


def test_file_of_exactly_16_mib_is_read(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_bytes(b"a: 1\n" + b"#" * (MAX_FILE_BYTES - 6) + b"\n")
    docs, diags = load_files([path])
    assert diags == []
    assert docs[0].data == {"a": 1}


# --- files and directories ------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A blueprint root with nested, hidden and non-YAML files; cwd is its parent."""
    root = tmp_path / "bp"
    files = {
        "b.yaml": "name: b\n",
        "a.yml": "name: a\n---\nname: a2\n",
        "sub/c.yaml": "name: c\n",
        "sub-d.yaml": "name: d\n",
        "sub/deeper/e.yaml": "name: e\n",
        ".hidden/f.yaml": "name: f\n",
        "sub/.g.yaml": "name: g\n",
        "notes.txt": "name: txt\n",
        "README.md": "# no\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    yield root


def test_directory_loads_yaml_recursively_in_path_order(tree: Path) -> None:
    docs, diags = load_files(["bp"])
    assert diags == []
    assert [(d.path, d.index, d.data["name"]) for d in docs] == [
        (os.path.join("bp", "a.yml"), 0, "a"),
        (os.path.join("bp", "a.yml"), 1, "a2"),
        (os.path.join("bp", "b.yaml"), 0, "b"),
        (os.path.join("bp", "sub", "c.yaml"), 0, "c"),
        (os.path.join("bp", "sub", "deeper", "e.yaml"), 0, "e"),
        (os.path.join("bp", "sub-d.yaml"), 0, "d"),
    ]


def test_given_files_load_whatever_their_name(tree: Path) -> None:
    docs, diags = load_files([Path("bp/notes.txt"), "bp/sub/.g.yaml", "bp/.hidden"])
    assert diags == []
    assert [(d.path, d.data["name"]) for d in docs] == [
        (os.path.join("bp", ".hidden", "f.yaml"), "f"),
        ("bp/notes.txt", "txt"),
        ("bp/sub/.g.yaml", "g"),
    ]


def test_each_file_is_loaded_once(tree: Path) -> None:
    docs, _ = load_files(["bp", "bp/b.yaml", "./bp/b.yaml", str(tree / "b.yaml")])
    assert [d.data["name"] for d in docs].count("b") == 1


def test_paths_stay_as_given(tree: Path) -> None:
    assert {d.path for d in load_files(["./bp/sub"])[0]} == {
        os.path.join("./bp/sub", "c.yaml"),
        os.path.join("./bp/sub", "deeper", "e.yaml"),
    }
    (absolute,) = load_files([tree / "b.yaml"])[0]
    assert absolute.path == str(tree / "b.yaml")


def test_missing_path_and_empty_directory(tree: Path) -> None:
    (tree / "empty" / ".git").mkdir(parents=True)
    (tree / "empty" / "x.json").write_text("{}", encoding="utf-8")
    docs, diags = load_files(["bp/nope.yaml", "bp/empty", "bp/b.yaml"])
    assert [d.data for d in docs] == [{"name": "b"}]
    assert [(d.path, d.code, d.line, d.column, d.message) for d in diags] == [
        ("bp/empty", "BP108", 0, 0, "directory contains no YAML files (*.yaml, *.yml)"),
        ("bp/nope.yaml", "BP108", 0, 0, "path does not exist"),
    ]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs file permissions")
def test_unreadable_file_and_directory(tree: Path) -> None:
    (tree / "b.yaml").chmod(0)
    (tree / "sub").chmod(0)
    try:
        docs, diags = load_files(["bp"])
    finally:
        (tree / "b.yaml").chmod(0o644)
        (tree / "sub").chmod(0o755)
    assert [d.data["name"] for d in docs] == ["a", "a2", "d"]
    assert {(d.path, d.code, d.message) for d in diags} == {
        (os.path.join("bp", "b.yaml"), "BP108", "cannot read file: Permission denied"),
        (os.path.join("bp", "sub"), "BP108", "cannot read directory: Permission denied"),
    }


def test_path_below_a_file_cannot_be_read(tree: Path) -> None:
    assert [(d.code, d.message) for d in load_files(["bp/b.yaml/x.yaml"])[1]] == [
        ("BP108", "cannot read file: Not a directory")
    ]


def test_unlistable_directory(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scandir = os.scandir

    def refuse(path: str) -> object:
        if os.path.basename(path) == "sub":
            raise PermissionError(13, "Permission denied", path)
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    docs, diags = load_files(["bp"])
    assert [d.data["name"] for d in docs] == ["a", "a2", "b", "d"]
    assert [(d.path, d.code, d.line, d.message) for d in diags] == [
        (os.path.join("bp", "sub"), "BP108", 0, "cannot read directory: Permission denied")
    ]


def test_no_paths_load_nothing() -> None:
    docs, diags = load_files([])
    assert (docs, diags) == ([], [])


def test_diagnostics_are_sorted_across_files(tree: Path) -> None:
    (tree / "b.yaml").write_text("x: 1\nx: 2\n", encoding="utf-8")
    (tree / "a.yml").write_text("y: !foo 1\n", encoding="utf-8")
    diags = load_files(["bp"])[1]
    assert [(d.path, d.code) for d in diags] == [
        (os.path.join("bp", "a.yml"), "BP104"),
        (os.path.join("bp", "b.yaml"), "BP103"),
    ]


@pytest.mark.slow
def test_loading_1000_files_is_as_fast_as_pyyaml_without_positions(tmp_path: Path) -> None:
    """About 0.25 s for 1000 files of 60 lines on an idle machine; compared, not timed."""
    body = (FIXTURES / "valid" / "fleet.yaml").read_text(encoding="utf-8")
    for i in range(1000):
        (tmp_path / f"f{i:04}.yaml").write_text(body.replace("phi-4-mini", f"m{i}"), "utf-8")
    paths = sorted(tmp_path.iterdir())

    def pyyaml() -> None:
        for path in paths:
            list(yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader))

    ours, theirs = [], []
    for _ in range(3):  # interleaved, so a busy machine slows both alike
        ours.append(_timed(lambda: load_files([tmp_path])))
        theirs.append(_timed(pyyaml))
    docs, diags = load_files([tmp_path])
    assert (len(docs), diags) == (2000, [])
    assert min(ours) < 2 * min(theirs)
    assert min(ours) < 5


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


# --- robustness ------------------------------------------------------------------------

VALID = (FIXTURES / "valid" / "fleet.yaml").read_text(encoding="utf-8")
PIECES = [*":-?[]{},#&*!|>'\"%@`\t\n\r ", "---", "...", "\x00", "\ufeff", "é", "<<", "!!", "0x"]


def _check_diagnostics(diags: list[Diagnostic]) -> None:
    for diag in diags:
        assert diag.code.startswith("BP1")
        assert diag.line >= 1
        assert diag.column >= 1
        assert diag.path == "bp.yaml"


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data: bytes) -> None:
    docs, diags = load(data)
    _check_diagnostics(diags)
    assert all(isinstance(d.data, dict) for d in docs)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_blueprints_never_raise(data: st.DataObject) -> None:
    text = VALID
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 3))
        piece = data.draw(st.sampled_from(PIECES) | st.text(max_size=3))
        text = text[:at] + piece + text[at + cut :]
    docs, diags = load(text)
    _check_diagnostics(diags)
    for doc in docs:
        assert isinstance(doc.data, dict)
        for key in doc.data:
            assert isinstance(key, str)
            assert doc.pos((key,))[0] >= 1


# --- special files -----------------------------------------------------------


def _special_files(tmp_path: Path) -> dict[str, Path]:
    import socket

    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock.yaml"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(sock_path))
    sock.close()  # the socket file stays
    link = tmp_path / "link.yaml"
    link.symlink_to(fifo)
    device = tmp_path / "device.yaml"
    device.symlink_to("/dev/zero")
    return {"pipe": fifo, "sock": sock_path, "link": link, "device": device}


@pytest.mark.parametrize(
    ("name", "kind"),
    [("pipe", "a FIFO"), ("sock", "a socket"), ("link", "a FIFO"), ("device", "a device")],
)
def test_special_files_are_refused_without_blocking(tmp_path: Path, name: str, kind: str) -> None:
    files = _special_files(tmp_path)
    started = time.monotonic()
    docs, diags = load_files([files[name]])
    assert time.monotonic() - started < 5
    assert docs == []
    assert [(d.code, d.path) for d in diags] == [("BP108", str(files[name]))]
    assert f"not a regular file (it is {kind}" in diags[0].message


def test_a_fifo_in_a_blueprint_directory_does_not_hang_validate(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "stuck.yaml")
    (tmp_path / "ok.yaml").write_text("a: 1\n", encoding="utf-8")
    started = time.monotonic()
    docs, diags = load_files([tmp_path])
    assert time.monotonic() - started < 5
    assert [d.data for d in docs] == [{"a": 1}]
    assert [(d.code, Path(d.path).name) for d in diags] == [("BP108", "stuck.yaml")]


def test_a_symlink_to_a_regular_file_is_read(tmp_path: Path) -> None:
    target = tmp_path / "real.txt"
    target.write_text("a: 1\n", encoding="utf-8")
    (tmp_path / "link.yaml").symlink_to(target)
    docs, diags = load_files([tmp_path / "link.yaml"])
    assert [d.data for d in docs] == [{"a": 1}] and diags == []
