"""The `stagesync` command: `stagesync [--config PATH] COMMAND`, on click.

One module per group of commands (`checks`, `history`, `views`, `delivery`, `privacy`, `running`, `webhooks`), each command's
options beside it; `common` holds what they share, `output` what they print, and `runs` the little
logic the old CLI held, until it moves to the services. Command bodies only call and print. Errors are mapped to exit codes here and nowhere else (docs/cli.md):
0 success, 1 user error (one message on stderr, no traceback), 2 usage error (click), 130 interrupted.
"""

from __future__ import annotations

import sys
from typing import Sequence

import click

from connector.cli import checks, delivery, history, privacy, running, views, webhooks
from connector.cli.common import Invocation
from connector.errors import StagesyncError

LONG_RUNNING = {"serve", "worker", "sync"}  # these log at INFO by default; the rest at WARNING


class StagesyncGroup(click.Group):
    """Runs the chosen command and turns what it raises into an exit code: the one edge where
    a StagesyncError becomes `stagesync: message` on stderr and exit 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order added below (as in docs/cli.md), not sorted

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except StagesyncError as exc:
            click.echo(f"stagesync: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("stagesync: interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            ctx.exit(0)


def _print_version(ctx: click.Context, _param, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        number = version("stagesync")
    except PackageNotFoundError:  # run from a source tree that was never installed
        number = "unknown (not installed)"
    click.echo(f"stagesync {number}")
    ctx.exit(0)


@click.group("stagesync", cls=StagesyncGroup, context_settings={"help_option_names": ["-h", "--help"]},
             help="Customer lifecycle stages from shop orders.", options_metavar="[--config PATH]")
@click.option("--config", metavar="PATH", help="configuration file (default $STAGESYNC_CONFIG, else ./stagesync.toml)")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="print the installed version and exit")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    from connector.logs import configure

    ctx.obj = Invocation(config)
    configure("INFO" if ctx.invoked_subcommand in LONG_RUNNING else "WARNING")


for command in (running.serve_command, delivery.worker_command, delivery.sync_command, history.recompute_command,
                history.import_command, history.backfill_command, history.poll_command, views.stages_command,
                views.explain_command, views.export_command, views.predict_command, webhooks.webhooks_group,
                delivery.deadletters_command, privacy.requests_command, checks.check_config,
                running.demo_command):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> int:
    """The console entry point; returns the exit code (tests call it with an argument list)."""
    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="stagesync",
                        standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("stagesync: interrupted", err=True)
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
