"""`stagesync check-config`."""

from __future__ import annotations

import click

from connector.cli.common import Invocation, command, pass_invocation
from connector.errors import ConfigError


@command("check-config", "validate the configuration; exit 1 with every problem listed (weak secrets: a warning)")
@click.option("--offline", is_flag=True, help="do not try to connect to the database")
@pass_invocation
def check_config(invocation: Invocation, offline: bool) -> int:
    from connector.cli.runs import config_problems, secret_warnings

    settings = invocation.settings()
    problems = config_problems(settings)
    if not offline:
        from connector.storage.engine import reachability_problem

        if (problem := reachability_problem(settings.database_url)) is not None:
            problems.append(f"database_url: {problem}")
    if problems:
        raise ConfigError(problems)
    for warning in secret_warnings(settings):  # printed, but the configuration still passes
        click.echo(f"stagesync: warning: {warning}", err=True)
    click.echo(f"{settings.source}: OK, {len(settings.shops)} shop(s): {', '.join(sorted(settings.shops)) or '-'}")
    return 0
