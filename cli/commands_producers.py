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


@cli.group()
def produce() -> None:
    """Publish events from other systems: git history, access reviews."""


def _tenant(ctx: Context, tenant: str | None) -> str:
    return tenant or ctx.settings.producer.tenant or "default"


@produce.command("git")
@click.option("--repo", "repo", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--since", help="only commits after this date (git's --since syntax, e.g. 2026-01-01)")
@click.option("--name", "repo_name", help="repository name in the events [the folder name]")
@click.option("--config-glob", "globs", multiple=True,
              help="files that make a commit a configuration change (repeatable) [*.yml, *.json, *.tf, ...]")
@click.option("--tenant", help="tenant of the events [producer.tenant; default]")
@click.pass_obj
def produce_git(ctx: Context, repo: Path, since: str | None, repo_name: str | None, globs: tuple[str, ...],
                tenant: str | None) -> None:
    """One change event per commit; resumable, and never the same commit twice in the trail."""
    from sealtrail.producers.client import AuditClient
    from sealtrail.producers.git import DEFAULT_CONFIG_GLOBS, publish_git

    with AuditClient(ctx.settings) as client:
        result = publish_git(client, repo, home=ctx.settings.home, repo_name=repo_name, since=since,
                             tenant=_tenant(ctx, tenant), globs=globs or DEFAULT_CONFIG_GLOBS)
    where = f" after {result.resumed_from[:12]}" if result.resumed_from else ""
    say(f"published {result.published} commits{where} ({result.configuration_changes} configuration changes)")


@produce.command("access-review")
@click.option("--source", required=True, help="aws-iam, or file:PATH (JSON or CSV from any identity provider)")
@click.option("--reviewer", help="who performed the review [a system actor]")
@click.option("--tenant", help="tenant of the events [producer.tenant; default]")
@click.pass_obj
def produce_access_review(ctx: Context, source: str, reviewer: str | None, tenant: str | None) -> None:
    """Record who has access (one access event per principal) and what changed since the last review."""
    from sealtrail.producers.access_review import DEFAULT_REVIEWER, publish_review, read_source
    from sealtrail.producers.client import AuditClient

    principals = read_source(source)
    with AuditClient(ctx.settings) as client:
        result = publish_review(client, principals, source=source, home=ctx.settings.home,
                                tenant=_tenant(ctx, tenant), reviewer=reviewer or DEFAULT_REVIEWER)
    changes = "first review" if result.first_review else f"{result.changes} changes since the last review"
    say(f"access review {result.snapshot_id[:12]}: {result.principals} principals, {changes}")


def _evidence_group() -> click.Group:
    """`sealtrail evidence`: shared with other evidence commands if another module defines the group first."""
    existing = cli.commands.get("evidence")
    if isinstance(existing, click.Group):
        return existing

    @cli.group("evidence")
    def evidence() -> None:
        """SOC 2 evidence kept in the trail."""

    return evidence


@_evidence_group().command("add")
@click.option("--type", "kind", required=True, type=click.Choice(["configuration", "code_change", "security", "access_review"]))
@click.option("--task", required=True, help="what was done")
@click.option("--criteria", "criteria", required=True, multiple=True, help="SOC 2 criterion it supports (repeatable), e.g. CC6.1")
@click.option("--reviewer", required=True, help="who approved it")
@click.option("--file", "files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="supporting file; its SHA-256 is recorded (repeatable)")
@click.option("--actor", envvar="USER", help="who records it [$USER]")
@click.option("--ticket", help="change ticket or issue id")
@click.option("--notes")
@click.option("--tenant", help="tenant of the event [producer.tenant; default]")
@click.pass_obj
def evidence_add(ctx: Context, kind: str, task: str, criteria: tuple[str, ...], reviewer: str, files: tuple[Path, ...],
                 actor: str | None, ticket: str | None, notes: str | None, tenant: str | None) -> None:
    """Record a structured evidence entry as an event (locked and chained like every other)."""
    from sealtrail.errors import InvalidEventError
    from sealtrail.producers.client import AuditClient
    from sealtrail.producers.evidence_entry import evidence_event

    if not actor:
        raise InvalidEventError("missing_field", "actor", "pass --actor (no $USER set)")
    event = evidence_event(kind=kind, task=task, criteria=[c.strip() for c in criteria], reviewer=reviewer,
                           actor=actor, tenant=_tenant(ctx, tenant), files=list(files), notes=notes, ticket=ticket)
    with AuditClient(ctx.settings) as client:
        event_id = client.emit(event)
    click.echo(event_id)
