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


EXIT_CODES_HELP = """\b
Exit status:
  0    success (warnings allowed)
  1    findings, failed or rolled-back hosts, a halted rollout, or a refusal
       (another apply holds the lock, a downgrade, a plan that differs from bp.lock)
  2    usage or environment error (bad option, missing tool, unusable path)
  130  interrupted (SIGINT / SIGTERM): the run was stopped with every process it
       started, and recorded in the history as interrupted"""


class BpGroup(click.Group):
    """Turns environment failures into one line on stderr and exit status 2, refusals into 1."""

    def invoke(self, ctx: click.Context) -> Any:
        from slmops_bp.diagnostics import EnvironmentFailure, Refused, UsageFailure

        try:
            return super().invoke(ctx)
        except (EnvironmentFailure, UsageFailure) as exc:
            click.echo(f"bp: error: {exc}", err=True)
            ctx.exit(EXIT_USAGE)
        except Refused as exc:
            click.echo(f"bp: error: {exc}", err=True)
            ctx.exit(EXIT_FINDINGS)


@click.group(
    cls=BpGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES_HELP,
)
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


_lock_option = click.option(
    "--lock-file",
    "lock_path",
    default="bp.lock",
    show_default=True,
    metavar="FILE",
    help="The lock file.",
)


_state_option = click.option(
    "--state-dir",
    "state_dir",
    default=".bp",
    show_default=True,
    metavar="DIR",
    help="Where bp keeps run dirs, the apply lock and the history database.",
)


_measured_option = click.option(
    "--history-db",
    "history_db",
    metavar="FILE",
    help="History whose device measurements the plan reads (default $BP_HISTORY_DB, else "
    "STATE_DIR/history.sqlite).",
)


@cli.command()
@_inventory_option
@_blueprints_option
@_format_option("text", "json")
@click.option("--locked", is_flag=True, help="Fail when the plan differs from the lock file.")
@_lock_option
@_state_option
@_measured_option
def plan(
    inventory: tuple[str, ...],
    blueprints: str,
    fmt: str,
    locked: bool,
    lock_path: str,
    state_dir: str,
    history_db: str | None,
) -> None:
    """Which host gets which deployment, variant, runtime, policy and delivery."""
    from slmops_bp.commands import plan as command

    sys.exit(command.run(blueprints, inventory, fmt, locked, lock_path, state_dir, history_db))


@cli.command()
@click.argument("host")
@_inventory_option
@_blueprints_option
@_format_option("text", "json")
@_state_option
@_measured_option
def explain(
    host: str,
    inventory: tuple[str, ...],
    blueprints: str,
    fmt: str,
    state_dir: str,
    history_db: str | None,
) -> None:
    """Why HOST gets what it gets: its class, every candidate variant, the overlays."""
    from slmops_bp.commands import explain as command

    sys.exit(command.run(host, blueprints, inventory, fmt, state_dir, history_db))


@cli.command(name="diff")
@_inventory_option
@_blueprints_option
@click.option(
    "--against", "against", default="HEAD", show_default=True, metavar="REV",
    help="The git revision to compare with (read from git objects, no checkout).",
)  # fmt: skip
@click.option(
    "--head", "head", metavar="REV",
    help="Compare with this revision instead of the working tree.",
)  # fmt: skip
@_format_option("text", "json", "markdown", "github")
@click.option(
    "--exit-code", "exit_code", is_flag=True,
    help="Exit 3 when hosts move (0: nothing moves; 1 and 2 keep their meaning).",
)  # fmt: skip
def diff_command(
    inventory: tuple[str, ...],
    blueprints: str,
    against: str,
    head: str | None,
    fmt: str,
    exit_code: bool,
) -> None:
    """Which hosts a change moves: the plan of the working tree against that of REV.

    Per host and deployment: added, removed or changed (variant, version, runtime,
    accelerator, policy, delivery, overlays), and the stage it moves in.  Both sides are
    planned against the same inventory.  markdown is for a pull-request comment, github
    annotates the blueprint lines whose change moves hosts.
    """
    from slmops_bp.commands import diff as command

    opts = command.Options(blueprints, inventory, against, head, fmt, exit_code)
    sys.exit(command.run(opts))


@cli.command()
@_inventory_option
@_blueprints_option
@_lock_option
def lock(inventory: tuple[str, ...], blueprints: str, lock_path: str) -> None:
    """Record the planned variant, sha256, runtime and policy digest in bp.lock."""
    from slmops_bp.commands import lock as command

    sys.exit(command.run(blueprints, inventory, lock_path))


@cli.command()
@_inventory_option
@_blueprints_option
@click.option(
    "-o", "--output", "output", required=True, metavar="DIR", help="A fresh directory to create."
)
@click.option("--pull", is_flag=True, help="Write a layout for ansible-pull instead.")
@click.option(
    "--collection-from",
    "collection",
    type=click.Choice(["bundle", "galaxy"]),
    default="bundle",
    show_default=True,
    help="bundle: copy the slmops.bp collection into the project; galaxy: use the one "
    "installed with ansible-galaxy (writes project/collections/requirements.yml).",
)
def render(
    inventory: tuple[str, ...], blueprints: str, output: str, pull: bool, collection: str
) -> None:
    """Write an ansible-runner private data dir (project/, inventory/, env/).

    Each distinct systemd unit goes to project/units/ (units/ with --pull); when
    systemd-analyze is installed every unit is verified and scored (one line per unit,
    units/scores.json), and a strict policy's unit above exposure 2.0 is an error."""
    from slmops_bp.commands import render as command

    sys.exit(command.run(blueprints, inventory, output, pull, collection))


@cli.command()
@_inventory_option
@_blueprints_option
@click.option("-l", "--limit", "limit", metavar="PATTERN", help="Ansible host pattern.")
@click.option("--check", is_flag=True, help="Ansible check mode: report, change nothing.")
@click.option("--diff", is_flag=True, help="Show Ansible diffs of changed files.")
@click.option("--locked", is_flag=True, help="Refuse a plan that differs from the lock file.")
@_lock_option
@click.option(
    "--allow-downgrade", is_flag=True, help="Allow installing an older version than a device runs."
)
@_format_option("text", "json")
@_state_option
@click.option("--history-db", "history_db", metavar="FILE", help="Audit log (SQLite) path.")
def apply(
    inventory: tuple[str, ...],
    blueprints: str,
    limit: str | None,
    check: bool,
    diff: bool,
    locked: bool,
    lock_path: str,
    allow_downgrade: bool,
    fmt: str,
    state_dir: str,
    history_db: str | None,
) -> None:
    """Check, plan, render and run a staged rollout with health checks and rollback."""
    from slmops_bp.commands import apply as command

    opts = command.Options(
        blueprints, inventory, limit, check, diff, locked, lock_path, allow_downgrade, fmt,
        state_dir, history_db,
    )  # fmt: skip
    sys.exit(command.run(opts))


@cli.command()
@_format_option("text", "json")
@_state_option
@click.option("--history-db", "history_db", metavar="FILE", help="Audit log (SQLite) path.")
@click.option("-n", "--last", "last", default=20, show_default=True, help="How many runs.")
@click.option(
    "--metrics", is_flag=True,
    help="The measurements the devices made instead (health, latency, tokens/s, memory).",
)  # fmt: skip
def history(fmt: str, state_dir: str, history_db: str | None, last: int, metrics: bool) -> None:
    """The local audit log of every apply: when, revision, plan, per-host outcome."""
    from slmops_bp.commands import history as command

    if metrics:
        sys.exit(command.run_metrics(fmt, state_dir, history_db, last))
    sys.exit(command.run(fmt, state_dir, history_db, last))


@cli.command()
@click.argument("directory", default="slmops-fleet", metavar="[DIR]")
@click.option("--port", default=8642, show_default=True, help="Port of the local artifact server.")
@click.option("--force", is_flag=True, help="Write into a non-empty DIR.")
def init(directory: str, port: int, force: bool) -> None:
    """A new blueprint repo with examples and a simulated local fleet."""
    from slmops_bp.commands import init as command

    sys.exit(command.run(directory, port, force))


@cli.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@_blueprints_option
@click.option(
    "--store",
    default=".bp/store",
    show_default=True,
    metavar="DIR",
    help="Content-addressed artifact store (bp serve DIR publishes it).",
)
@click.option(
    "--base-uri",
    "base_uri",
    metavar="URI",
    help="Where the store is published (artifact URIs); default: its file:// URI.",
)
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Parallel builds (default: cores).")
@click.option("--force", is_flag=True, help="Rebuild and measure every recipe again.")
@click.option("--dry-run", is_flag=True, help="Only say what would be built.")
@_format_option("text", "json")
def build(
    paths: tuple[str, ...],
    blueprints: str,
    store: str,
    base_uri: str | None,
    jobs: int | None,
    force: bool,
    dry_run: bool,
    fmt: str,
) -> None:
    """Make variants from their build recipes, measure them, write the numbers back.

    Only recipes whose inputs (source, recipe, eval set) changed are run.
    """
    from slmops_bp.commands import build as command

    sys.exit(command.run(list(paths) or [blueprints], store, base_uri, jobs, force, dry_run, fmt))


@cli.command()
@click.argument("directory", default="artifacts", metavar="[DIR]")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8642, show_default=True, help="Port to listen on.")
@click.option("--quiet", is_flag=True, help="Do not log requests.")
def serve(directory: str, host: str, port: int, quiet: bool) -> None:
    """Serve artifact files over HTTP (for a simulated fleet on this machine)."""
    from slmops_bp.commands import serve as command

    sys.exit(command.run(directory, host, port, quiet))


@cli.command()
@_inventory_option
@_blueprints_option
@click.option("-l", "--limit", "limit", metavar="PATTERN", help="Ansible host pattern.")
@_format_option("text", "json", "prometheus")
@click.option(
    "-o", "--output", "output", metavar="FILE",
    help="Write the json/prometheus output atomically to FILE (node_exporter textfile collector).",
)  # fmt: skip
@_state_option
@click.option(
    "--history-db", "history_db", metavar="FILE",
    help="Where the measurements read from the devices are kept (SQLite).",
)  # fmt: skip
def status(inventory: tuple[str, ...], blueprints: str, limit: str | None, fmt: str,
           output: str | None, state_dir: str, history_db: str | None) -> None:  # fmt: skip
    """What each device runs now (read from the device), its health, and drift from the plan."""
    from slmops_bp.commands import status as command

    sys.exit(command.run(blueprints, inventory, fmt, limit, state_dir, output, history_db))


@cli.command()
@_inventory_option
@_blueprints_option
@click.option("-l", "--limit", "limit", metavar="PATTERN", help="Ansible host pattern.")
@_format_option("text", "json", "html")
@click.option("-o", "--output", "output", metavar="FILE", help="Write the report to FILE.")
@_state_option
def audit(inventory: tuple[str, ...], blueprints: str, limit: str | None, fmt: str,
          output: str | None, state_dir: str) -> None:  # fmt: skip
    """Evidence, read back from each device, that it enforces its privacy policies (1: drift)."""
    from slmops_bp.commands import audit as command

    sys.exit(command.run(blueprints, inventory, fmt, limit, state_dir, output))


@cli.command()
@click.argument("deployment")
@_inventory_option
@_blueprints_option
@click.option("-l", "--limit", "limit", metavar="PATTERN", help="Ansible host pattern.")
@_format_option("text", "json")
@_state_option
@click.option("--history-db", "history_db", metavar="FILE", help="Audit log (SQLite) path.")
def rollback(deployment: str, inventory: tuple[str, ...], blueprints: str, limit: str | None,
             fmt: str, state_dir: str, history_db: str | None) -> None:  # fmt: skip
    """Switch DEPLOYMENT back to the previous version kept on the devices, and check health."""
    from slmops_bp.commands import rollback as command

    sys.exit(command.run(deployment, blueprints, inventory, limit, fmt, state_dir, history_db))


def main() -> None:
    """Entry point: one top-level handler; the exit status follows ``EXIT_CODES_HELP``."""
    sys.exit(_main())


def _main() -> int:
    from slmops_bp.diagnostics import EnvironmentFailure, Refused, UsageFailure
    from slmops_bp.interrupt import EXIT_INTERRUPTED, Interrupted, install

    install()  # SIGINT / SIGTERM → 130, with the run and its children stopped first
    try:
        # standalone_mode=False: click returns ctx.exit()'s code instead of exiting
        rv = cli.main(standalone_mode=False)
    except SystemExit as exc:  # a command's sys.exit(code)
        return _code(exc.code)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except click.exceptions.Abort as exc:  # click's wrapper of KeyboardInterrupt
        cause = exc.__context__
        name = f" ({cause})" if isinstance(cause, Interrupted) else ""
        sys.stderr.write(f"bp: interrupted{name}\n")
        return EXIT_INTERRUPTED
    except Refused as exc:
        sys.stderr.write(f"bp: error: {exc}\n")
        return EXIT_FINDINGS
    except (EnvironmentFailure, UsageFailure, OSError) as exc:
        sys.stderr.write(f"bp: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        name = f" ({exc})" if isinstance(exc, Interrupted) else ""
        sys.stderr.write(f"bp: interrupted{name}\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: say so in one line, the traceback only on request
        if os.environ.get("BP_DEBUG"):
            raise
        sys.stderr.write(
            f"bp: internal error: {type(exc).__name__}: {exc} "
            "(set BP_DEBUG=1 for the traceback and please report it)\n"
        )
        return EXIT_USAGE
    return _code(rv)


def _code(value: object) -> int:
    """An exit status from a command's return or ``sys.exit`` value (None means success)."""
    if value is None:
        return EXIT_OK
    if isinstance(value, int):
        return value
    sys.stderr.write(f"bp: error: {value}\n")
    return EXIT_USAGE


if __name__ == "__main__":
    main()
