"""The ``bp`` command line: options → one ``commands.<verb>.run`` → exit status.

Imports are lazy: ``bp validate`` runs in pre-commit and must not pay for
ansible, jinja2 or rich.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from slmops_bp import __version__

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
DEFAULT_BLUEPRINTS = "blueprints"

_blueprints_option = click.option(
    "--blueprints",
    "blueprints",
    default=DEFAULT_BLUEPRINTS,
    show_default=True,
    metavar="DIR",
    help="Blueprint root directory.",
)
_inventory_option = click.option(
    "-i",
    "--inventory",
    "inventory",
    multiple=True,
    required=True,
    metavar="INVENTORY",
    help="Ansible inventory source (INI, YAML, directory, script); repeatable.",
)


def _format_option(*choices: str) -> Callable[[Any], Any]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default="text",
        show_default=True,
        help="Output format.",
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bp")
def cli() -> None:
    """slmops-bp: small language models on fleets of mixed edge hardware.

    Blueprints (YAML) → validate → plan against an Ansible inventory → render
    Ansible content → apply with staged rollouts and health checks.
    """


@cli.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@_blueprints_option
@_format_option("text", "json", "github")
def validate(paths: tuple[str, ...], blueprints: str, fmt: str) -> None:
    """Check blueprints: schema, references, fit, policy, rollout (no inventory).

    PATHs are files or directories (default: the blueprint root).
    """
    from slmops_bp.commands import validate as command

    sys.exit(command.run(list(paths) or [blueprints], fmt))


@cli.command()
@click.option(
    "-o",
    "--output",
    "output",
    default="schemas",
    show_default=True,
    metavar="DIR",
    help="Directory for the JSON Schemas.",
)
@click.option("--check", is_flag=True, help="Fail (exit 1) when the files in DIR are stale.")
def schema(output: str, check: bool) -> None:
    """Write the JSON Schemas of every kind (and of any document) into DIR."""
    from slmops_bp.commands import schema as command

    sys.exit(command.run(output, check))


def main() -> None:
    """Entry point: one top-level handler for environment failures (exit 2)."""
    from slmops_bp.diagnostics import EnvironmentFailure, UsageFailure

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        sys.stderr.write("bp: aborted\n")
        sys.exit(130)
    except (EnvironmentFailure, UsageFailure, OSError) as exc:
        sys.stderr.write(f"bp: error: {exc}\n")
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        sys.stderr.write("bp: interrupted\n")
        sys.exit(130)
    except Exception as exc:  # a bug: say so in one line, the traceback only on request
        if os.environ.get("BP_DEBUG"):
            raise
        sys.stderr.write(
            f"bp: internal error: {type(exc).__name__}: {exc} "
            "(set BP_DEBUG=1 for the traceback and please report it)\n"
        )
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
