"""`sealtrail topics init | check`: the four Kafka topics as the trail's guarantees need them (sealtrail/topics.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sealtrail.cli.main import Context, cli
from sealtrail.cli.progress import say, write_or_print

if TYPE_CHECKING:
    from sealtrail.topics import TopicsReport

_MARK = {"loss": "LOSES DATA", "advice": "advice"}


@cli.group()
def topics() -> None:
    """Kafka topics: partitions, replication, min.insync.replicas, retention, cleanup policy, compression."""


@topics.command("init")
@click.option("--alter", is_flag=True, help="also set the configs of existing topics that fall short (never weakens "
                                            "one), and add partitions to audit.chained if it has fewer than audit.events")
@click.option("--json", "as_json", is_flag=True, help="machine-readable report")
@click.pass_obj
def topics_init(ctx: Context, alter: bool, as_json: bool) -> int:
    """Create the missing topics with the configs the guarantees need; report existing ones that differ.

    Existing topics are changed only with --alter. Exits 0 when nothing would
    lose data afterwards, 1 when something still would, 2 on an error.
    """
    from sealtrail.topics import init

    report = init(ctx.settings, alter=alter, progress=say)
    _show(report, as_json, hint=not alter)
    return 0 if report.ok else 1


@topics.command("check")
@click.option("--json", "as_json", is_flag=True, help="machine-readable report")
@click.pass_obj
def topics_check(ctx: Context, as_json: bool) -> int:
    """Report, per topic, how it differs from what the guarantees need; change nothing.

    Exits 0 when nothing would lose data (advice may remain), 1 when something
    would (the stream and the sink refuse to start then), 2 on an error.
    Configs the broker does not describe are listed as not checked.
    """
    from sealtrail.topics import check

    report = check(ctx.settings)
    _show(report, as_json, hint=True)
    return 0 if report.ok else 1


@topics.command("terraform")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write here (deploy/terraform/modules/sealtrail-topics/generated.tf.json) instead of printing")
@click.pass_obj
def topics_terraform(ctx: Context, out: Path | None) -> None:
    """Print the topics Terraform module's generated locals: names, partitions, replicas and configs.

    From the Kafka settings in effect (kafka.*), the same spec `topics check` holds a cluster to. Run it
    again when they change, with the settings of the cluster the module manages.
    """
    from sealtrail.sinks.terraform import topics_file
    from sealtrail.topics import topic_specs

    text = topics_file(topic_specs(ctx.settings))
    write_or_print(text, out)


def _show(report: TopicsReport, as_json: bool, hint: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
        return
    for spec in report.specs:
        found = report.described.get(spec.name)
        problems, unchecked = report.for_topic(spec.name)
        if found is None:
            shape = "missing"
        else:
            shape = f"{found.partitions} partition(s), {found.replication_factor} replica(s)"
            if spec.name in report.created:
                shape += ", created"
            if report.altered.get(spec.name):
                shape += f", set {', '.join(report.altered[spec.name])}"
        verdict = "ok" if not problems else ", ".join(
            f"{n} {label}" for label, n in (("losing data", sum(p.severity.value == "loss" for p in problems)),
                                             ("advice", sum(p.severity.value == "advice" for p in problems))) if n)
        click.echo(f"{spec.name} ({spec.role.value}): {shape}: {verdict}")
        for p in problems:
            click.echo(f"  {_MARK[p.severity.value]:<10} {p.key}: {p.message}")
            click.echo(f"  {'':<10} fix: {p.fix}")
        if unchecked:
            which = "any config" if len(unchecked) == len(spec.rules) else ", ".join(unchecked)
            click.echo(f"  {'unchecked':<10} the broker does not describe {which}")
    for note in report.notes:
        click.echo(f"note: {note}")
    if report.losses:
        click.echo(f"{len(report.losses)} problem(s) would lose data: the stream and the sink refuse to start"
                   + ("; `sealtrail topics init --alter` fixes what configs can fix" if hint else ""))
    elif report.advice:
        click.echo(f"nothing would lose data; {len(report.advice)} piece(s) of advice")
    else:
        click.echo("nothing would lose data")
