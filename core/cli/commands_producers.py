"""`sealtrail cdc ...` and `sealtrail spool ...`: PostgreSQL change capture and the producer's spool."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import click

from sealtrail.cli.main import Context, cli
from sealtrail.cli.progress import say


@cli.group()
def cdc() -> None:
    """PostgreSQL change capture: triggers into an append-only audit table, relayed to Kafka."""


def _database(ctx: Context, database: str | None) -> str | None:
    return database or ctx.settings.database_url


@cdc.command("install")
@click.option("--database", help="PostgreSQL URL [SEALTRAIL_DATABASE_URL; the embedded stack's]")
@click.option("--table", "tables", multiple=True, required=True, help="table to capture (repeatable; schema.table)")
@click.option("--schema", help="schema for the audit table and functions [cdc.schema_name: sealtrail]")
@click.pass_obj
def cdc_install(ctx: Context, database: str | None, tables: tuple[str, ...], schema: str | None) -> None:
    """Install (or repair) capture: audit table, triggers on each --table, and DDL event triggers."""
    from sealtrail.producers.cdc.install import install

    report = install(_database(ctx, database), list(tables), schema or ctx.settings.cdc.schema_name)
    for table in report.tables:
        keys = ", ".join(table.key_columns) or "none (rows identified by audit id)"
        say(f"capturing {table.identity} (key: {keys})")
    say(f"audit table {report.schema}.audit_log, owned by {report.owner}: UPDATE/DELETE/TRUNCATE refused for others")
    say("triggers ENABLE ALWAYS (session_replication_role=replica does not silence them); DDL event triggers on")


@cdc.command("run")
@click.option("--database", help="PostgreSQL URL [SEALTRAIL_DATABASE_URL; the embedded stack's]")
@click.option("--once", is_flag=True, help="relay what is there now, then exit")
@click.pass_obj
def cdc_run(ctx: Context, database: str | None, once: bool) -> None:
    """Relay captured rows to audit.events (at least once; the position is durable in the database)."""
    from sealtrail.producers.cdc.relay import Relay

    relay = Relay(ctx.settings, _database(ctx, database))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    relay.open()
    say(f"cdc relay {ctx.settings.cdc.relay!r}: {relay.source} -> {ctx.settings.kafka.topics.events}")
    try:
        sent = relay.run(stop, once=once)
    finally:
        relay.close()
        relay.client.close()
    say(f"cdc relay stopped: {sent} rows relayed")


@cdc.command("status")
@click.option("--database", help="PostgreSQL URL [SEALTRAIL_DATABASE_URL; the embedded stack's]")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def cdc_status(ctx: Context, database: str | None, as_json: bool) -> None:
    """Audited tables, whether their triggers are ENABLE ALWAYS, and each relay's position."""
    from sealtrail.producers.cdc.status import capture_status

    report = capture_status(_database(ctx, database), ctx.settings.cdc.schema_name)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    for t in report["tables"]:
        click.echo(f"{t['identity']:<40} triggers {t['triggers']}")
    for r in report["relays"]:
        click.echo(f"relay {r['relay']}: {r['rows_total']} rows relayed, {r['pending']} pending, updated {r['updated_at']}")
    click.echo(f"event triggers: {report['event_triggers']}")


@cli.group()
def spool() -> None:
    """The producer's local spool (events kept while Kafka was unreachable)."""


@spool.command("status")
@click.option("--path", type=click.Path(path_type=Path), help="spool folder [spool.path; $HOME/spool]")
@click.pass_obj
def spool_status(ctx: Context, path: Path | None) -> None:
    """Events waiting in each slot, and whether a live process holds it."""
    from sealtrail.producers.spool import status

    folder = path or ctx.settings.spool_dir
    slots = status(folder)
    if not slots:
        click.echo(f"{folder}: no spool")
    for s in slots:
        click.echo(f"{s.path}: {s.events} events, {s.bytes} bytes, {'held by a live process' if s.held else 'free'}")


@spool.command("drain")
@click.option("--path", type=click.Path(path_type=Path), help="spool folder [spool.path; $HOME/spool]")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=300, show_default=True)
@click.pass_obj
def spool_drain(ctx: Context, path: Path | None, timeout_s: float) -> int:
    """Replay every free slot to Kafka now; exit 1 if events remain after --timeout seconds."""
    from sealtrail.producers.client import AuditClient
    from sealtrail.producers.spool import status

    settings = ctx.settings
    if path is not None:
        settings = settings.model_copy(update={"spool": settings.spool.model_copy(update={"path": path})})
    client = AuditClient(settings, spool=True)
    try:
        drained = client.drain(timeout_s)
        deadline_left = [s for s in status(settings.spool_dir) if s.events and not s.held]
    finally:
        client.close()
    left = sum(s.events for s in status(settings.spool_dir))
    say(f"spool {settings.spool_dir}: {'drained' if drained and not deadline_left else f'{left} events left'}")
    return 0 if drained and not deadline_left else 1
