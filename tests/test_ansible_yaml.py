"""The vars files the compiler writes, as every supported ansible-core series reads them.

The end-to-end check (a real ``ansible-playbook`` reading them back, on every series) is in
tests/e2e/test_drill.py; these are the fast checks of the scheme itself, and of the range
the package declares.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from slmops_bp import ansible_yaml

pytestmark = pytest.mark.drill  # cheap: CI runs these on every series with the drill

ROOT = Path(__file__).resolve().parents[1]
RETYPED = ["no", "yes", "on", "off", "true", "False", "1.10", "10", "0x1F", "017", "1_000",
           "~", "null", "", "2024-01-01", "12:30", ".inf", ".nan", "<<", "="]  # fmt: skip
TEMPLATES = ["{{ lookup('pipe', 'id') }}", "{% if true %}x{% endif %}", "{# c #}", "plain"]


def load_as_ansible(text: str) -> Any:
    from ansible.parsing.yaml.loader import AnsibleLoader

    return yaml.load(text, Loader=AnsibleLoader)


def plain(value: Any) -> Any:
    """Ansible's str / dict / list subclasses as the built-in types."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return str(value) if isinstance(value, str) else value


@pytest.mark.parametrize("word", RETYPED)
def test_a_string_a_plain_scalar_would_retype_is_never_tagged(word: str) -> None:
    """ansible-core 2.19+ re-resolve a tagged scalar as plain: ``!unsafe "no"`` is False."""
    assert not ansible_yaml.plain_is_str(word)
    assert ansible_yaml.unsafe_string(word) == ansible_yaml.quote(word)
    text = ansible_yaml.dump({"v": word, "l": [word], "m": {"k": word}})
    assert "!unsafe" not in text
    assert plain(load_as_ansible(text)) == {"v": word, "l": [word], "m": {"k": word}}


@pytest.mark.parametrize("text", TEMPLATES)
def test_a_string_that_could_hold_a_template_is_tagged_itself(text: str) -> None:
    assert ansible_yaml.unsafe_string(text) == "!unsafe " + ansible_yaml.quote(text)
    assert f'"v": !unsafe {ansible_yaml.quote(text)}\n' in ansible_yaml.dump({"v": text})


def test_no_container_is_tagged_and_nested_containers_load_whole() -> None:
    """Up to 2.18 a tagged container loaded with every nested mapping and list empty."""
    data = {"d": {"a": {"x": 1, "s": "{{ x }}"}, "l": [{"y": ["no", "z"]}, [], {}], "e": {}}}
    text = ansible_yaml.dump(data)
    assert not re.search(r"!unsafe\s*$", text, re.MULTILINE)
    assert plain(load_as_ansible(text)) == data


def test_tagged_strings_load_as_unsafe_on_this_series() -> None:
    loaded = load_as_ansible(ansible_yaml.dump({"d": {"t": "{{ x }}", "n": "no"}}))["d"]
    try:  # ansible-core 2.19+
        from ansible.template import is_trusted_as_template

        assert not is_trusted_as_template(loaded["t"])
    except ImportError:  # up to 2.18
        from ansible.utils.unsafe_proxy import AnsibleUnsafe

        assert isinstance(loaded["t"], AnsibleUnsafe)
    assert loaded["n"] == "no"


def test_without_unsafe_nothing_is_tagged() -> None:
    assert "!unsafe" not in ansible_yaml.dump({"a": {"b": "{{ x }}"}}, unsafe=False)


# ---------------------------------------------------------------- the supported range


def ci_series() -> list[str]:
    lines = (ROOT / ".ci" / "ansible-core").read_text().splitlines()
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]


def declared_range() -> SpecifierSet:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (spec,) = [d for d in meta["project"]["dependencies"] if d.startswith("ansible-core")]
    return SpecifierSet(spec.removeprefix("ansible-core"))


def test_pyproject_admits_exactly_the_series_ci_tests() -> None:
    series = ci_series()
    assert series == sorted(series, key=Version)
    spec = declared_range()
    for s in series:
        assert spec.contains(f"{s}.0") and spec.contains(f"{s}.99"), s
    oldest, newest = Version(series[0]), Version(series[-1])
    assert not spec.contains(f"{oldest.major}.{oldest.minor - 1}.99")
    assert not spec.contains(f"{newest.major}.{newest.minor + 1}.0")
    listed = {Version(s) for s in series}
    assert listed == {Version(f"2.{m}") for m in range(oldest.minor, newest.minor + 1)}


def test_the_collection_requires_the_oldest_supported_series() -> None:
    runtime = ROOT / "playbooks/collections/ansible_collections/slmops/bp/meta/runtime.yml"
    requires = yaml.safe_load(runtime.read_text())["requires_ansible"]
    assert SpecifierSet(requires) == SpecifierSet(f">={ci_series()[0]}.0")


def test_this_ansible_core_is_a_supported_series() -> None:
    from ansible.release import __version__

    assert declared_range().contains(__version__)
    assert ".".join(__version__.split(".")[:2]) in ci_series()
