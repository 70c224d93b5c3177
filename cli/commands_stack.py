"""`sealtrail up | down | status | schema`: the embedded stack and the published schema."""

from __future__ import annotations

import json

import click

from sealtrail.cli.main import Context, cli
from sealtrail.cli.progress import say


@cli.command()
@click.pass_obj
def up(ctx: Context) -> None:
    """Start the embedded broker, S3 server (Object Lock) and PostgreSQL on loopback."""
    from sealtrail import stack

    state = stack.start(ctx.settings, progress=say)
    say(f"[green]embedded stack up[/] in {ctx.settings.home}")
    status = stack.status(ctx.settings)
    click.echo(json.dumps(status.as_json() if status else {"home": str(ctx.settings.home)}, indent=2, default=str))
    del state


@cli.command()
@click.pass_obj
def down(ctx: Context) -> None:
    """Stop the embedded stack (its data stays in the home folder)."""
    from sealtrail import stack

    stack.stop(ctx.settings, progress=say)
    say("embedded stack stopped")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable endpoints and credentials")
@click.pass_obj
def status(ctx: Context, as_json: bool) -> int:
    """Show whether the embedded stack runs, and where."""
    from sealtrail import stack

    current = stack.status(ctx.settings)
    if current is None:
        if as_json:
            click.echo(json.dumps({"running": False, "home": str(ctx.settings.home)}))
        else:
            say(f"no embedded stack in {ctx.settings.home} (start one with `sealtrail up`)")
        return 3
    doc = current.as_json()
    if as_json:
        click.echo(json.dumps(doc, indent=2, default=str))
    else:
        for key, value in doc.items():
            click.echo(f"{key:16} {value}")
    return 0 if current.up else 3


@cli.command()
def schema() -> None:
    """Print the JSON Schema of an audit event (for producers in any language)."""
    from sealtrail.event import event_json_schema

    click.echo(json.dumps(event_json_schema(), indent=2))
