"""`sealtrail doctor`: a preflight of the live deployment against the guarantees (sealtrail/cli/doctor.py)."""

from __future__ import annotations

import json

import click

from sealtrail.cli.main import Context, cli
from sealtrail.cli.progress import say

_MARK = {"pass": "pass", "warn": "WARN", "fail": "FAIL"}


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable report")
@click.option("--strict", is_flag=True, help="a warning fails the run too")
@click.option("--clock-topic", help="a topic with message.timestamp.type=LogAppendTime the doctor may write one "
                                    "record to: the broker's clock is read from its append time")
@click.pass_obj
def doctor(ctx: Context, as_json: bool, strict: bool, clock_topic: str | None) -> int:
    """Check topics, bucket, keys, clocks and anchors of the deployment the settings point at.

    Reads the settings in effect and asks the live services: the topics as
    `topics check` does, the bucket as `bucket init --check` does, plus a probe
    object (locked for a day under .sealtrail-probe/) that the credentials in use
    must fail to delete or unlock; the signing key, its published public key and
    its lock; this host's clock against S3's (and the broker's, with
    --clock-topic); and the newest anchor. Exits 0 when
    no check fails (1 with --strict when one warns), 1 when one fails.
    """
    from sealtrail.cli.doctor import Verdict, run, summary

    checks = list(run(ctx.settings, progress=None if as_json else say, clock_topic=clock_topic))
    totals = summary(checks)
    if as_json:
        click.echo(json.dumps({**totals, "checks": [c.as_json() for c in checks]}, indent=2))
    else:
        width = max(len(f"{c.area} {c.name}") for c in checks)
        for c in checks:
            click.echo(f"{_MARK[c.verdict.value]:<5} {f'{c.area} {c.name}':<{width}}  {c.detail}")
            if c.fix and c.verdict is not Verdict.PASS:
                click.echo(f"{'':<5} {'':<{width}}  fix: {c.fix}")
        click.echo(f"{totals['pass']} passed, {totals['warn']} warning(s), {totals['fail']} failed")
    failed = totals["fail"] or (strict and totals["warn"])
    return 1 if failed else 0
