"""`sealtrail emit | stream | sink`: putting events in and running the workers."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

import click

from sealtrail.cli.main import Context, cli
from sealtrail.cli.progress import say
from sealtrail.metrics_server import serve_metrics

if TYPE_CHECKING:
    from sealtrail.config import Settings


def publish_public_key(settings: Settings, signer) -> None:
    """The signer's public key into the bucket (sealtrail.publication), before the worker signs."""
    from sealtrail import publication
    from sealtrail.sinks.s3 import S3Store

    publication.publish_public_key(S3Store(settings), settings, signer)


def publish_rotation(settings: Settings, old: str, new: str) -> None:
    """The old key's statement naming the new one into the bucket (sealtrail.publication)."""
    from sealtrail import publication
    from sealtrail.sinks.s3 import S3Store

    publication.publish_rotation(S3Store(settings), settings, old, new)


def read_lines(source: BinaryIO, limit: int) -> Iterator[tuple[int, bytes | None, int]]:
    """(line number, line, size) for each line; a line longer than limit is None and is never held in memory."""
    number = 0
    while True:
        line = source.readline(limit + 1)
        if not line:
            return
        number += 1
        if line.endswith(b"\n") or len(line) <= limit:
            yield number, line, len(line)
            continue
        size = len(line)
        while True:  # the rest of the long line, read in pieces and dropped
            rest = source.readline(1 << 16)
            size += len(rest)
            if not rest or rest.endswith(b"\n"):
                break
        yield number, None, size


@cli.command()
@click.argument("source", type=click.File("rb"), default="-")
@click.pass_obj
def emit(ctx: Context, source) -> int:
    """Publish JSON events, one per line, from SOURCE (a file, or - for stdin).

    Each invalid line is reported as "line N: reason" and skipped; every valid
    line is still sent. Lines are checked by the stream's own rules (its JSON
    parser, RFC 8785 numbers, the event size limit), so a line sent is a line
    the stream seals. Exits 1 with the number of invalid lines when there were any.
    """
    from sealtrail.errors import InvalidEventError
    from sealtrail.producers.client import AuditClient
    from sealtrail.producers.outbound import encode, parse_line, prepare

    bad = 0
    with AuditClient(ctx.settings) as client:
        for number, line, size in read_lines(source, client.max_event_bytes):
            try:
                if line is None:
                    raise InvalidEventError("oversized", None, f"{size} bytes > limit {client.max_event_bytes}")
                if not line.strip():
                    continue
                event = prepare(parse_line(line), client.redactor)
                client.send_raw(encode(event), str(event.event_id))
            except InvalidEventError as e:
                bad += 1
                click.echo(f"line {number}: {e}", err=True)
                continue
            if client.sent % 10_000 == 0:
                say(f"queued {client.sent} events")
    say(f"sent {client.sent} events (acknowledged by the broker); {bad} invalid lines")
    if bad:
        click.echo(f"error: {bad} invalid lines were not sent", err=True)
    return 1 if bad else 0


def _stop_on_signals(stop) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop())


@cli.command()
@click.pass_obj
def stream(ctx: Context) -> None:
    """Run a stream worker: validate, dedupe, chain and sign (a Faust worker).

    Refuses to start when audit.events, audit.chained or audit.dlq are configured so that records would be
    lost (`sealtrail topics check` lists why).
    """
    import faust

    from sealtrail.signing import KeySource
    from sealtrail.stream.app import build_app
    from sealtrail.stream.metrics import StreamMetrics
    from sealtrail.topics import STREAM_ROLES, require_topics

    settings = ctx.settings
    require_topics(settings, STREAM_ROLES, "stream")
    keys = KeySource(settings)
    publish_public_key(settings, keys.current())
    metrics = StreamMetrics()
    port = serve_metrics(settings.stream.metrics_port, metrics.registry, "stream.metrics_port",
                         ready=metrics.broker.ready, host=settings.metrics_host).server_port
    say(f"stream worker: key {keys.current().key_id}, metrics on http://{settings.metrics_host}:{port}/metrics")
    app = build_app(settings, keys, metrics)
    faust.Worker(app, loglevel="info", quiet=True, redirect_stdouts=False).execute_from_commandline()


@cli.command()
@click.pass_obj
def sink(ctx: Context) -> None:
    """Run a sink worker: audit.chained -> locked Parquet in S3.

    Refuses to start when audit.chained or audit.quarantine are configured so that records would be lost
    (`sealtrail topics check` lists why).
    """
    from sealtrail.signing import KeySource
    from sealtrail.sinks.worker import SinkWorker
    from sealtrail.topics import SINK_ROLES, require_topics

    require_topics(ctx.settings, SINK_ROLES, "sink")
    keys = KeySource(ctx.settings)
    publish_public_key(ctx.settings, keys.current())
    worker = SinkWorker(ctx.settings, keys)
    port = serve_metrics(ctx.settings.sink.metrics_port, worker.metrics.registry, "sink.metrics_port",
                         ready=worker.metrics.broker.ready, host=ctx.settings.metrics_host).server_port
    say(f"sink worker: bucket {ctx.settings.s3.bucket}, metrics on http://{ctx.settings.metrics_host}:{port}/metrics")
    _stop_on_signals(worker.stop)

    def report() -> None:
        while not worker._stop.wait(10):  # noqa: SLF001
            say(f"sink: {worker.events_written} events in {worker.objects_written} objects")

    threading.Thread(target=report, daemon=True).start()
    worker.run()
    say(f"sink stopped: {worker.events_written} events in {worker.objects_written} objects")


@cli.group()
def keys() -> None:
    """Signing keys: list them, rotate the current one."""


@keys.command("rotate")
@click.pass_obj
def keys_rotate(ctx: Context) -> None:
    """Replace the signing key; the old one stays valid for what it signed.

    The new public key is published to the bucket before this returns; running
    stream and sink workers switch to the new key within a second. The old
    private key is destroyed, its public key kept (locally and in the bucket).
    """
    from sealtrail.errors import ConfigError
    from sealtrail.signing import rotate_key

    settings = ctx.settings
    if settings.keys.signing_key is not None:
        raise ConfigError("keys.signing_key", "the key comes from the environment: rotate it where it is stored")
    if settings.keys.kms_key_id is not None:
        raise ConfigError("keys.kms_key_id", "the key lives in AWS KMS: create a new KMS key and point keys.kms_key_id at it")
    old, new = rotate_key(settings.signing_key_path, settings.public_keys_dir)
    publish_public_key(settings, new)
    if old is not None:
        publish_rotation(settings, old, new.key_id)
    say(f"rotated signing key {old or '(none)'} -> {new.key_id}; public key"
        f"{' and rotation statement' if old else ''} published")
    click.echo(new.key_id)


@keys.command("list")
@click.pass_obj
def keys_list(ctx: Context) -> None:
    """Key ids whose public keys are published in the bucket (the current one marked)."""
    from sealtrail.layout import KEYS
    from sealtrail.signing import existing_signer
    from sealtrail.sinks.s3 import S3Store

    settings = ctx.settings
    store = S3Store(settings)
    signer = existing_signer(settings)  # listing creates no key: without one, none is current
    current = signer.key_id if signer is not None else None
    prefix = f"{settings.s3.prefix}{KEYS}"
    for key in sorted(store.keys(prefix)):
        kid = key[len(prefix):].removesuffix(".pem")
        if "/" in kid:  # rotations/: the statements, not keys
            continue
        click.echo(f"{kid}{'  (current)' if kid == current else ''}")
