"""The workers' metrics and health endpoint, moving to the next port when the configured one is taken.

    /metrics   Prometheus
    /healthz   liveness: 200 while the process serves (a probe restarts a process that stops answering)
    /ready     readiness: 200 when the worker can do its job (its Kafka client reaches a broker), else 503
               with the reason, so an orchestrator sends no traffic and pages nobody for a worker that
               is still recovering its heads

A second `sealtrail stream` or `sealtrail sink` on the same host finds the default
port (9465 / 9466) in use; it then serves on the first free port of the next few
and says so at WARNING, instead of dying on "Address already in use". It listens
on 127.0.0.1 unless `metrics_host` (SEALTRAIL_METRICS_HOST) says otherwise, as it
must in a container, where the scraper is on another host.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sealtrail.errors import ConfigError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger("sealtrail.metrics")

TRIES = 20  # the configured port and the 19 after it
HOST = "127.0.0.1"


def env_name(setting: str) -> str:
    """`stream.metrics_port` -> `SEALTRAIL_STREAM__METRICS_PORT` (the settings' env prefix and delimiter)."""
    return "SEALTRAIL_" + setting.upper().replace(".", "__")


Readiness = Callable[[], tuple[bool, str]]


def _always_ready() -> tuple[bool, str]:
    return True, "no readiness check"


def _app(registry: CollectorRegistry, ready: Readiness) -> Callable[..., Any]:
    from prometheus_client import make_wsgi_app

    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"alive\n"]
        if path == "/ready":
            ok, detail = ready()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [f"{'ready' if ok else 'not ready'}: {detail}\n".encode()]
        return metrics(environ, start_response)

    return app


def _start(host: str, port: int, app: Callable[..., Any]) -> Any:
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client.exposition import ThreadingWSGIServer

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # a scrape every 15 s is not news
            pass

    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True, name="sealtrail-metrics").start()
    return server


def serve_metrics(port: int, registry: CollectorRegistry, setting: str, tries: int = TRIES,
                  ready: Readiness = _always_ready, host: str = HOST) -> Any:
    """Serve /metrics, /healthz and /ready on host:port from a daemon thread; return the HTTP server
    (`.server_port` is the port actually used, `.shutdown()` stops it).

    PORT 0 picks any free port. Otherwise PORT, PORT+1, ... are tried (TRIES in
    all, none above 65535); a ConfigError naming SETTING is raised when all of
    them are in use, or when a port cannot be bound for another reason.
    """
    where = f"{setting} / {env_name(setting)}"
    app = _app(registry, ready)
    candidates = [port] if port == 0 else list(range(port, min(port + tries, 65536)))
    for candidate in candidates:
        try:
            server = _start(host, candidate, app)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                continue
            raise ConfigError(setting, f"cannot serve metrics on {host}:{candidate} ({where}): {e.strerror or e}") from e
        if candidate != port:
            log.warning("metrics port %d (%s) is in use; serving metrics on %d", port, where, server.server_port)
        return server
    last = candidates[-1]
    raise ConfigError(
        setting,
        f"metrics ports {port}-{last} on {host} are all in use; set {where} to a free port, or 0 for any free port",
    )
