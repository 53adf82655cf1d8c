"""`cortex run`: a workflow template run at once, with parameters (create, then execute)."""

from __future__ import annotations

import click

from cortex.cli.common import friendly, gateway
from cortex.cli.workflows import (
    create_workflow,
    follow_option,
    params_from,
    start,
    started,
    with_params,
)


@click.command()
@click.argument("template")
@with_params
@click.option("--name", help="A label for the workflow it creates.")
@follow_option
@friendly
def run(
    template: str,
    param_items: tuple[str, ...],
    params_file: str | None,
    name: str | None,
    follow: bool,
) -> None:
    """Create a workflow from TEMPLATE and execute it at once.

    TEMPLATE is a registered workflow template, `name` (its latest version) or `name@version`.
    The parameters are --params-file with each --param over it. Prints the
    execution's id, or with --follow shows its steps live, then the outcome and the result
    (the last step's output). With --follow the exit status is 0 if the execution succeeded and
    1 if it failed or was cancelled, with the error.

    \b
    cortex run review --param text="Ship it on Friday." --follow
    """
    client = gateway()
    params = params_from(client, lambda: template, params_file, param_items)
    workflow = create_workflow(client, template, params, name)
    started(client, start(client, workflow["id"], {}), follow)
