"""``docs/cli.md``: the command-line reference, generated from the click commands.

Regenerate with ``python -m slmops_bp.reference`` (it writes this page too); a
test fails when the page differs from the commands' own help.
"""

from __future__ import annotations

import inspect

import click

from slmops_bp.cli import cli

WIDTH = 100
INTRO = """\
# Command-line reference

Generated from `bp`'s own help (`python -m slmops_bp.reference`); `bp COMMAND --help`
prints the same. What the commands do together: [walkthrough](walkthrough.md); what
their diagnostics mean: [diagnostics](diagnostics.md).
"""


def _context(command: click.Command, name: str, parent: click.Context | None) -> click.Context:
    return click.Context(
        command,
        info_name=name,
        parent=parent,
        terminal_width=WIDTH,
        max_content_width=WIDTH,
        help_option_names=["-h", "--help"],
    )


def _usage(command: click.Command, ctx: click.Context) -> str:
    return command.get_usage(ctx).removeprefix("Usage: ")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _section(name: str, command: click.Command, root: click.Context) -> list[str]:
    ctx = _context(command, name, root)
    lines = [f"## `bp {name}`", "", "```console", f"$ {_usage(command, ctx)}", "```", ""]
    help_text = inspect.cleandoc(command.help or "").replace("\b\n", "")
    if help_text:
        lines += [help_text, ""]
    rows = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is not None and record[1]:
            rows.append(f"| `{_cell(record[0])}` | {_cell(record[1])} |")
    if rows:
        lines += ["| option | meaning |", "|---|---|", *rows, ""]
    if command.epilog:
        lines += [inspect.cleandoc(command.epilog).replace("\b\n", ""), ""]
    return lines


def render() -> str:
    root = _context(cli, "bp", None)
    lines = [INTRO]
    group_help = inspect.cleandoc(cli.help or "").replace("\b\n", "")
    lines += ["```console", f"$ {_usage(cli, root)}", "```", "", group_help, ""]
    lines += [f"- [`bp {n}`](#bp-{n})" for n in sorted(cli.commands)] + [""]
    for name in sorted(cli.commands):
        lines += _section(name, cli.commands[name], root)
    return "\n".join(lines).rstrip("\n") + "\n"
