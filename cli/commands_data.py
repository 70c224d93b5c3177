"""`sealtrail verify | query | demo`: the auditor's side, and the whole pipeline at once."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sealtrail.cli.main import Context, cli
from sealtrail.cli.progress import bar, say
from sealtrail.printable import printable


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="the report as JSON")
@click.option("--path", "bundle", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="verify an exported bundle folder instead of the bucket (its MANIFEST.json first)")
@click.option("--key", "key_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="trust only this public key (PEM; repeatable) instead of the keys stored with the trail")
@click.option("--anchor", "anchor_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="also check that each chain still reaches the head saved by `sealtrail anchor save`")
@click.option("--new", "only_new", is_flag=True,
              help="with --anchor: verify only what was sealed after the anchored heads (a daily run); "
                   "each chain is anchored on the anchored digest, and the cost stays flat as the trail ages")
@click.option("--from", "since", type=click.DateTime(["%Y-%m-%d"]),
              help="first day (dt= partition, UTC) to verify; anchored on the signed checkpoint before it")
@click.option("--to", "until", type=click.DateTime(["%Y-%m-%d"]), help="last day to verify (inclusive)")
@click.option("--chain", "chains", multiple=True, metavar="pNNN", help="only this chain (repeatable)")
@click.option("--tenant", help="also count this tenant's events among those verified (chains are shared)")
@click.pass_obj
def verify(ctx: Context, as_json: bool, bundle: Path | None, key_files: tuple[Path, ...],
           anchor_file: Path | None, only_new: bool, since, until, chains: tuple[str, ...], tenant: str | None
           ) -> int:
    """Recompute every chain from the stored Parquet; exit 0 intact and complete, 1 tampered or gapped, 2 error.

    \b
    intact: what is there is as sealed (no findings but missing pieces)
    complete: nothing is missing (no input offset, object, tail or row gone)

    Keys stored in the bucket prove only that the trail is consistent with
    them; an auditor pins the keys they were given with --key. A window
    (--from/--to) verifies the objects of those days: its first object must
    continue the signed checkpoint before it (kept in the digests, which
    outlive the data), so it also works after lifecycle rules expired the
    older data. A daily run verifies only what is new: `verify --anchor
    yesterday.json --new`, then `anchor save --out today.json`; a full run
    now and then checks everything again.
    """
    import re

    from sealtrail.evidence.check import verify_evidence

    if since and until and since > until:
        raise click.BadParameter("--from is after --to", param_hint="--from")
    bad = [c for c in chains if not re.fullmatch(r"p\d{3}", c)]
    if bad:
        raise click.BadParameter(f"{bad[0]!r} is not a chain id like p003", param_hint="--chain")
    if only_new and anchor_file is None:
        raise click.UsageError("--new needs --anchor: the heads an earlier run verified")
    if only_new and (since or until or bundle is not None):
        raise click.UsageError("--new continues from the anchor; it does not combine with --from, --to or --path")
    anchor = None
    if anchor_file is not None:
        from sealtrail.evidence.anchor import read_anchor

        anchor = read_anchor(anchor_file)
    with bar("verifying objects") as update:
        report = verify_evidence(
            ctx.settings, bundle=bundle, trusted_keys=[path.read_bytes() for path in key_files] or None,
            anchor=anchor, only_new=only_new, since=since.date().isoformat() if since else None,
            until=until.date().isoformat() if until else None, chains=list(chains) or None, tenant=tenant,
            progress=update).report
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        click.echo(report.text(), nl=False)
    return 0 if report.intact and report.complete else 1


@cli.command()
@click.option("--actor", help="actor id")
@click.option("--action", help="action, e.g. auth.login_failed")
@click.option("--resource", help="resource as TYPE:ID or TYPE")
@click.option("--tenant")
@click.option("--category", type=click.Choice(["auth", "change", "security", "admin", "access"]))
@click.option("--since", help="occurred at or after (ISO 8601)")
@click.option("--until", help="occurred before (ISO 8601)")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option("--outcome", type=click.Choice(["success", "failure", "unknown"]))
@click.option("--ip", help="actor IP address")
@click.option("--order", default="occurred_at", show_default=True,
              help="column to sort by; -column for newest first (ties: chain, seq)")
@click.option("--count-by", "count_by", help="count matching events per value of these columns, e.g. actor_ip "
              "or actor_id,action (most first)")
@click.option("--sql", help="raw SQL over the views `events` and `trail` (no file, network or extension access)")
@click.option("--unsafe-sql", "unsafe_sql", is_flag=True,
              help="with --sql: the whole of DuckDB, local files and extensions included (trusted SQL only)")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--path", "bundle", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="query an exported bundle folder instead of the bucket")
@click.pass_obj
def query(ctx: Context, actor, action, resource, tenant, category, since, until, limit, offset, outcome, ip, order,
          count_by, sql, unsafe_sql, fmt, bundle) -> None:
    """Search the trail in the bucket (DuckDB over the Parquet, in place).

    \b
    Who changed record X:          --category change --resource invoice:inv-42
    What actor Y did in a window:   --actor alice --since 2026-10-01 --until 2026-11-01
    Failed logins by IP:            --action auth.login_failed --count-by actor_ip
    Privilege escalations, newest:  --action security.privilege_escalation --order -occurred_at
    """
    from sealtrail.evidence.query import count_events, open_events, query_events, render, run_sql

    if unsafe_sql and not sql:
        raise click.UsageError("--unsafe-sql goes with --sql")
    if bundle is not None:  # rows only from what verifies: a folder is anyone's until checked
        from sealtrail.evidence.check import verify_evidence

        with bar("verifying the bundle") as update:
            checked = verify_evidence(ctx.settings, bundle=bundle, progress=update)
        r = checked.report
        if not (r.intact and r.complete) or r.unverified:
            say(f"note: the bundle is {'; '.join(r.verdict_lines())}, {len(r.findings)} findings; rows come only "
                f"from the {len(checked.trusted)} of {len(r.verified) + len(r.unverified)} objects verified "
                "unchanged (`sealtrail verify --path` names the rest)")
        con = open_events(checked.settings, checked.store, only=checked.trusted,
                          unsafe_sql=unsafe_sql)
    else:
        con = open_events(ctx.settings, unsafe_sql=unsafe_sql)
    resource_type, _, resource_id = (resource or "").partition(":")
    if sql:
        rows = run_sql(con, sql)
    elif count_by:
        rows = count_events(
            con, [c.strip() for c in count_by.split(",") if c.strip()], since=since, until=until, limit=limit,
            actor_id=actor, action=action, resource_type=resource_type or None, resource_id=resource_id or None,
            tenant=tenant, category=category, outcome=outcome, actor_ip=ip,
        )
    else:
        rows = query_events(
            con, actor=actor, action=action, resource_type=resource_type or None, resource_id=resource_id or None,
            tenant=tenant, category=category, since=since, until=until, limit=limit, offset=offset,
            order=order, outcome=outcome, actor_ip=ip,
        )
    click.echo(render(rows, fmt))


@cli.command()
@click.option("--events", "count", type=click.IntRange(1), default=5000, show_default=True)
@click.pass_obj
def demo(ctx: Context, count: int) -> int:
    """Run the whole pipeline on the embedded stack and print a summary."""
    from sealtrail.stack.demo import run_demo

    result = run_demo(ctx.settings.home, count, say, bar)
    v = result.verify
    click.echo("")
    click.echo("sealtrail demo")
    click.echo(f"  published           {result.emitted} events (+{result.malformed} malformed -> audit.dlq)")
    click.echo(f"  sealed in S3        {result.stored_after - result.stored_before} new records (every input: "
               f"events and rejected rows), {result.stored_after} in the trail")
    click.echo(f"  objects             {v['objects']} locked Parquet objects")
    verdicts = f"intact: {'yes' if v['intact'] else 'no'}, complete: {'yes' if v['complete'] else 'no'}"
    click.echo(f"  chains verified     {len(v['chains'])}, {verdicts}"
               + ("" if v["ok"] else f" ({len(v['findings'])} findings)"))
    click.echo("  timings             " + ", ".join(f"{k} {s:.1f}s" for k, s in result.seconds.items()))
    click.echo("  top failed-login sources:")
    for row in result.query_rows:
        click.echo(f"    {printable(row['actor_ip']):<16} {row['failed_logins']:>6} failed logins on "
                   f"{row['accounts']} accounts")
    return 0 if v["ok"] else 1


@cli.group()
def athena() -> None:
    """Athena (Trino/Hive) tables over the bucket."""


@athena.command("ddl")
@click.option("--chains", type=click.IntRange(1), default=None, help="chains to project [partitions of audit.events]")
@click.option("--since", default="2026-01-01", show_default=True, help="first dt of the date projection")
@click.pass_obj
def athena_ddl(ctx: Context, chains: int | None, since: str) -> None:
    """Print CREATE EXTERNAL TABLE statements (events and digests) with partition projection."""
    from sealtrail.sinks.athena import digests_ddl, events_ddl

    s = ctx.settings
    n = chains or s.kafka.partitions
    click.echo(events_ddl(s.s3.bucket, s.s3.prefix, n, since=since) + ";\n")
    click.echo(digests_ddl(s.s3.bucket, s.s3.prefix, n) + ";")
