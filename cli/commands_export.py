"""`sealtrail export | anchor`: evidence bundles for auditors, and anchors of the latest heads."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sealtrail.cli.main import Context, cli
from sealtrail.cli.progress import bar, say
from sealtrail.printable import printable

DAY = click.DateTime(formats=["%Y-%m-%d"])


@cli.command("export")
@click.option("--from", "start", type=DAY, required=True, help="first dt= day (UTC, YYYY-MM-DD)")
@click.option("--to", "end", type=DAY, required=True, help="last dt= day, inclusive")
@click.option("--tenant", help="only objects holding this tenant's events (whole chain segments), plus extracts/")
@click.option("--chain", "chains", multiple=True, help="only this chain, e.g. p003 (repeatable)")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="bundle folder")
@click.option("--force", is_flag=True, help="replace the bundle in a non-empty --out")
@click.pass_obj
def export(ctx: Context, start, end, tenant: str | None, chains: tuple[str, ...], out: Path, force: bool) -> int:
    """Copy a date range of the trail into a verifiable evidence bundle; exit 1 if it does not verify.

    The bundle (data, digests, public keys, lock sidecars, verification report,
    MANIFEST.json with SHA-256 of every file) is checked offline with
    `sealtrail verify --path DIR`.
    """
    from sealtrail.evidence.export import export_bundle
    from sealtrail.sinks.s3 import S3Store

    store = S3Store(ctx.settings)
    with bar("copying, then verifying objects") as update:  # one live bar: rich allows one at a time
        result = export_bundle(store, ctx.settings, out, start.date(), end.date(), tenant=tenant,
                               chains=list(chains) or None, force=force, progress=update, verify_progress=update)
    m = result.manifest
    size = sum(f["size"] for f in m["files"])
    say(f"exported {len(m['files'])} files ({size / 1e6:.1f} MB) to {printable(out)}")
    for chain, info in m["chains"].items():
        say(f"  {printable(chain)}  seqs {info['first_seq']}..{info['last_seq']}  {info['objects']} objects, "
            f"{info['digests']} digests")
    for note in m["notes"]:  # they name the bucket's keys: anyone with write access chose them
        say(f"  note: {printable(note)}")
    if not m["verification"]["windowed"] and any(i["first_seq"] > 1 for i in m["chains"].values()):
        say("  note: this verifier checks chains from seq 1 only; the seqs before the window show as missing")
    report = result.report
    click.echo(f"{printable(out)}: {report.events} events in {report.objects} objects; "
               + "; ".join(report.verdict_lines())
               + ("" if report.ok else f"; {len(report.findings)} problems found (see verification.txt)"))
    return 0 if report.ok else 1


@cli.group()
def anchor() -> None:
    """Anchors: each chain's latest signed digest, kept outside the bucket (see verify --anchor)."""


@anchor.command("save")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="anchor file [stdout]")
@click.option("--to-postgres", is_flag=True, help="also append it to the sealtrail_anchors table [database_url]")
@click.pass_obj
def anchor_save(ctx: Context, out: Path | None, to_postgres: bool) -> None:
    """Record each chain's latest digest (key, SHA-256, signed head) as JSON."""
    from sealtrail.evidence.anchor import save_anchor, store_anchor
    from sealtrail.sinks.s3 import S3Store

    doc = save_anchor(S3Store(ctx.settings), ctx.settings)
    text = json.dumps(doc, indent=2) + "\n"
    if to_postgres:
        row = store_anchor(ctx.settings.database_url, doc)
        say(f"anchor {row} stored in PostgreSQL")
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        say(f"anchored {len(doc['chains'])} chains in {out}")


@anchor.command("latest")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="anchor file [stdout]")
@click.pass_obj
def anchor_latest(ctx: Context, out: Path | None) -> None:
    """The newest anchor stored in PostgreSQL for this bucket and prefix, as a file for verify --anchor."""
    from sealtrail.evidence.anchor import latest_anchor

    s = ctx.settings
    text = json.dumps(latest_anchor(s.database_url, s.s3.bucket, s.s3.prefix), indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
