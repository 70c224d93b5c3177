"""The workers' Prometheus endpoint on 127.0.0.1, moving to the next port when the configured one is taken.

A second `sealtrail stream` or `sealtrail sink` on the same host finds the default
port (9465 / 9466) in use; it then serves on the first free port of the next few
and says so at WARNING, instead of dying on "Address already in use".
"""

from __future__ import annotations

import errno
import logging
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


def serve_metrics(port: int, registry: CollectorRegistry, setting: str, tries: int = TRIES) -> Any:
    """Serve REGISTRY at http://127.0.0.1:<port>/metrics from a daemon thread; return the HTTP server
    (`.server_port` is the port actually used, `.shutdown()` stops it).

    PORT 0 picks any free port. Otherwise PORT, PORT+1, ... are tried (TRIES in
    all, none above 65535); a ConfigError naming SETTING is raised when all of
    them are in use, or when a port cannot be bound for another reason.
    """
    from prometheus_client import start_http_server

    where = f"{setting} / {env_name(setting)}"
    candidates = [port] if port == 0 else list(range(port, min(port + tries, 65536)))
    for candidate in candidates:
        try:
            server, _thread = start_http_server(candidate, addr=HOST, registry=registry)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                continue
            raise ConfigError(setting, f"cannot serve metrics on {HOST}:{candidate} ({where}): {e.strerror or e}") from e
        if candidate != port:
            log.warning("metrics port %d (%s) is in use; serving metrics on %d", port, where, server.server_port)
        return server
    last = candidates[-1]
    raise ConfigError(
        setting,
        f"metrics ports {port}-{last} on {HOST} are all in use; set {where} to a free port, or 0 for any free port",
    )
