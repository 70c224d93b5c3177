"""`sealtrail serve`: the admin query API, and `sealtrail serve token add | list | remove`."""

from __future__ import annotations

from pathlib import Path

import click

from sealtrail.cli.main import Context, cli
from sealtrail.cli.progress import say


@cli.group(invoke_without_command=True)
@click.option("--host", help="address to listen on [serve.host: 127.0.0.1; SEALTRAIL_SERVE__HOST]")
@click.option("--port", type=click.IntRange(0, 65535), help="port; 0 picks a free one [serve.port: 8480]")
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path),
              help="PEM certificate (chain): serve HTTPS [serve.tls_cert; SEALTRAIL_SERVE__TLS_CERT]")
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path),
              help="PEM private key of --tls-cert [serve.tls_key; SEALTRAIL_SERVE__TLS_KEY]")
@click.pass_context
def serve(click_ctx: click.Context, host: str | None, port: int | None, tls_cert: Path | None,
          tls_key: Path | None) -> None:
    """Serve the admin API: search, read with proof, export. Every call is recorded as an access event.

    Bearer tokens come from `sealtrail serve token add`; the OpenAPI document
    is at /openapi.json. Prometheus metrics are on 127.0.0.1:serve.metrics_port
    (9467), not on the API's address. Without --tls-cert/--tls-key the API
    speaks plain HTTP: put it behind a TLS proxy unless it listens on loopback.
    """
    if click_ctx.invoked_subcommand is not None:
        return
    import ipaddress
    import logging
    import socket

    import uvicorn

    from sealtrail.evidence.api import create_app
    from sealtrail.evidence.api.server import uvicorn_config

    ctx: Context = click_ctx.obj
    settings = ctx.settings
    settings.require("s3")  # the trail it serves,
    settings.require("kafka")  # and where it records each call
    if tls_cert is not None or tls_key is not None:
        tls = {"tls_cert": tls_cert or settings.serve.tls_cert, "tls_key": tls_key or settings.serve.tls_key}
        settings = settings.model_copy(update={"serve": settings.serve.model_copy(update=tls)})
    host = host or settings.serve.host
    port = settings.serve.port if port is None else port
    tokens = settings.serve_tokens_file
    app = create_app(settings)
    config = uvicorn_config(app, settings)
    if not app.state.tokens.entries():
        say(f"[yellow]no tokens in {tokens}: every call will get 401; add one with "
            "`sealtrail serve token add NAME --role auditor`[/yellow]")
    https = settings.serve.tls_cert is not None
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not https and not loopback:
        say(f"[yellow]serving plain HTTP on {host}: bearer tokens cross the network in clear text; "
            "give --tls-cert and --tls-key, or put a TLS proxy in front[/yellow]")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        from sealtrail.errors import ConfigError

        raise ConfigError("serve.port", f"cannot listen on {host}:{port}: {e.strerror}") from e
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    base = f"{'https' if https else 'http'}://{shown}:{bound}"
    metrics = f"http://127.0.0.1:{settings.serve.metrics_port}/metrics" if settings.serve.metrics else "off"
    say(f"sealtrail serve listening on {base}  (OpenAPI: {base}/openapi.json, metrics: {metrics}, "
        f"tokens: {tokens}, trail: s3://{settings.s3.bucket}/{settings.s3.prefix}, "
        f"access events -> {settings.kafka.topics.events})")
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # librdkafka reports a down broker every few milliseconds; the spool already keeps the events
        logging.getLogger("sealtrail.producers.librdkafka").setLevel(logging.CRITICAL)
    uvicorn.Server(config).run(sockets=[sock])


@serve.group()
def token() -> None:
    """Bearer tokens: only their SHA-256 is stored."""


@token.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["auditor", "admin"]), required=True,
              help="auditor: search, read, proof; admin: also export")
@click.pass_obj
def token_add(ctx: Context, name: str, role: str) -> None:
    """Make a token for NAME and print it once (it cannot be shown again)."""
    from sealtrail.evidence.api.tokens import TokenStore

    path = ctx.settings.serve_tokens_file
    secret = TokenStore(path).add(name, role)
    say(f"token {name} ({role}) added to {path}; it is shown once:")
    click.echo(secret)


@token.command("list")
@click.pass_obj
def token_list(ctx: Context) -> None:
    """Token names and roles."""
    from sealtrail.evidence.api.tokens import TokenStore

    entries = TokenStore(ctx.settings.serve_tokens_file).entries()
    if not entries:
        say(f"no tokens in {ctx.settings.serve_tokens_file}")
    for name, role in sorted(entries.items()):
        click.echo(f"{name}\t{role}")


@token.command("remove")
@click.argument("name")
@click.pass_obj
def token_remove(ctx: Context, name: str) -> None:
    """Revoke NAME's token (a running server notices at its next call)."""
    from sealtrail.evidence.api.tokens import TokenStore

    TokenStore(ctx.settings.serve_tokens_file).remove(name)
    say(f"token {name} removed")
