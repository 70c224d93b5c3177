"""How `sealtrail serve` runs the app under uvicorn: TLS and the concurrency cap come from the settings.

    config = uvicorn_config(create_app(settings), settings)
    uvicorn.Server(config).run(sockets=[sock])
"""

from __future__ import annotations

import ssl
from typing import Any

import uvicorn

from sealtrail.config import Settings
from sealtrail.errors import ConfigError


def tls_files(settings: Settings) -> tuple[str, str] | None:
    """(certificate, key) paths when serve.tls_cert and serve.tls_key are set; a ConfigError if only one is."""
    cert, key = settings.serve.tls_cert, settings.serve.tls_key
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        missing = "serve.tls_cert" if cert is None else "serve.tls_key"
        raise ConfigError(missing, "HTTPS needs both serve.tls_cert and serve.tls_key (--tls-cert, --tls-key)")
    for setting, path in (("serve.tls_cert", cert), ("serve.tls_key", key)):
        if not path.is_file():
            raise ConfigError(setting, f"no such file: {path}")
    return str(cert), str(key)


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    """A loaded uvicorn Config: HTTPS with serve.tls_*, at most serve.max_concurrency connections and calls
    (uvicorn answers 503 above that, before the app), no access log (the app logs each call)."""
    tls = tls_files(settings)
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on", server_header=False,
        limit_concurrency=settings.serve.max_concurrency,
        ssl_certfile=tls[0] if tls else None, ssl_keyfile=tls[1] if tls else None,
    )
    try:
        config.load()  # reads the certificate and key now, so a bad pair is a ConfigError, not a traceback
    except (ssl.SSLError, OSError) as e:
        raise ConfigError("serve.tls_cert", f"cannot use {tls[0] if tls else ''} with its key: {e}") from e
    return config
