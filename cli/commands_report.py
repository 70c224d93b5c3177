"""`sealtrail report`: the SOC 2 evidence report for a date range, as one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from sealtrail.cli.main import Context, cli
from sealtrail.cli.progress import bar, say
from sealtrail.errors import ConfigError


@cli.command()
@click.option("--from", "first", required=True, metavar="DATE", help="first day of the window (YYYY-MM-DD, UTC)")
@click.option("--to", "last", required=True, metavar="DATE", help="last day of the window, included (YYYY-MM-DD, UTC)")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="HTML file to write")
@click.option("--path", "bundle", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="report on an exported bundle folder instead of the bucket")
@click.option("--tenant", help="only this tenant's events (verification still covers the whole trail)")
@click.option("--key", "key_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="trust only this public key (PEM; repeatable) when verifying")
@click.pass_obj
def report(ctx: Context, first: str, last: str, out: Path, bundle: Path | None, tenant: str | None,
           key_files: tuple[Path, ...]) -> int:
    """Verify the trail and write the SOC 2 evidence report for --from..--to (exit 1 if verify found problems).

    Sections: events per day by category, failed logins, privilege escalations,
    administrative and configuration changes, access to the trail itself, the
    verification result, coverage and gaps per source, and the latest access
    review with what changed since the one before; each names the trust
    services criteria it supports. The page loads nothing from the network.
    """
    from sealtrail.evidence.report.build import build_report
    from sealtrail.evidence.report.facts import window_of
    from sealtrail.evidence.report.page import write_html

    window = window_of(first, last)
    if not out.parent.is_dir():
        raise ConfigError("--out", f"no such folder: {out.parent}")
    trusted = [path.read_bytes() for path in key_files] or None
    facts = build_report(ctx.settings, window, bundle=bundle, tenant=tenant, trusted_keys=trusted,
                         say=say, verify_progress=bar)
    size = write_html(facts, out)
    v = facts.verification
    click.echo(f"{out}: {facts.overview.total} events from {window.first} to {window.last}, "
               f"trail {'intact' if v.ok else f'{v.finding_total} findings'} ({size // 1024} KiB)")
    return 0 if v.ok else 1
