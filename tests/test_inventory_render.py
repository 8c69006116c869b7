"""``!unsafe`` in the user's inventory stays inert end to end: through either reader,
into the rendered inventory, and as real Ansible reads that rendered inventory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from slmops_bp.cli import cli

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

UNSAFE_INVENTORY = """\
all:
  children:
    rpi:
      hosts:
        rpi-lab-01:
          ansible_ssh_common_args: !unsafe '-o ProxyCommand="ssh -W %h:%p {{ literally }}"'
          bp_note: !unsafe "{{ lookup('pipe', 'touch MARKER') }}"
          bp_list: !unsafe ['{{ a }}', plain]
          bp_plain: "{{ 40 + 2 }}"
"""


@pytest.mark.integration
@pytest.mark.parametrize("reader", ["fast", "ansible"])
def test_unsafe_inventory_values_stay_inert_in_the_rendered_inventory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    for name in list(os.environ):
        if name.startswith("ANSIBLE_"):
            monkeypatch.delenv(name)
    if reader == "ansible":  # a setting the fast path leaves to ansible-core
        monkeypatch.setenv("ANSIBLE_HASH_BEHAVIOUR", "replace")
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "MARKER"
    source = tmp_path / "unsafe.yml"
    source.write_text(UNSAFE_INVENTORY.replace("MARKER", str(marker)), encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["render", "-i", str(ROOT / "inventory" / "example.ini"), "-i", str(source),
         "--blueprints", str(ROOT / "blueprints"), "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    text = (out / "inventory" / "host_vars" / "rpi-lab-01.yml").read_text(encoding="utf-8")
    assert f"\"bp_note\": !unsafe \"{{{{ lookup('pipe', 'touch {marker}') }}}}\"" in text
    assert '"bp_plain": "{{ 40 + 2 }}"' in text  # was not unsafe: stays a template

    listed = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(out / "inventory"), "--list"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    host_vars = json.loads(listed.stdout)["_meta"]["hostvars"]["rpi-lab-01"]
    assert host_vars["bp_note"] == {
        "__ansible_unsafe": f"{{{{ lookup('pipe', 'touch {marker}') }}}}"
    }
    assert host_vars["bp_list"] == [{"__ansible_unsafe": "{{ a }}"}, {"__ansible_unsafe": "plain"}]
    assert host_vars["ansible_ssh_common_args"] == {
        "__ansible_unsafe": '-o ProxyCommand="ssh -W %h:%p {{ literally }}"'
    }

    expectations: list[tuple[str, object]] = [
        ("bp_note", f"{{{{ lookup('pipe', 'touch {marker}') }}}}"),
        ("ansible_ssh_common_args", '-o ProxyCommand="ssh -W %h:%p {{ literally }}"'),
        ("bp_plain", 42),  # templated, as before
    ]
    for var, expected in expectations:
        shown = subprocess.run(
            [str(BIN / "ansible"), "-i", str(out / "inventory"), "rpi-lab-01",
             "-m", "debug", "-a", f"msg={{{{ {var} }}}}"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert json.dumps(expected) in shown.stdout, shown.stdout
    assert not marker.exists()  # the lookup never ran


def test_unsafe_strings_are_tagged_per_scalar_unless_the_tag_would_change_their_type() -> None:
    from slmops_bp import ansible_yaml
    from slmops_bp.ansible_yaml import Unsafe

    text = ansible_yaml.dump(
        {
            "template": Unsafe("{{ x }}"),
            "looks_bool": Unsafe("no"),  # ansible-core 2.19 would read !unsafe "no" as False
            "looks_int": Unsafe("0x1F"),
            "nested": {"list": [Unsafe("{% raw %}"), "plain"]},
        },
        unsafe=False,
    )
    assert '"template": !unsafe "{{ x }}"' in text
    assert '"looks_bool": "no"' in text and '"looks_int": "0x1F"' in text
    assert '- !unsafe "{% raw %}"' in text and '- "plain"' in text
