"""Where the embedded stack keeps things under its home, and the state file that describes a running stack.

The state file (``$HOME/stack.json``) is the only link between `sealtrail up`
and every later command: it holds the endpoints and keys that
``sealtrail.config.stack_layer`` turns into settings, and the pids that
`sealtrail down` stops. Everything else under the home persists across
down/up, so the data does too.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from sealtrail.config import STACK_STATE_FILE
from sealtrail.errors import StackError

# unix socket paths must fit in sockaddr_un (108 bytes on Linux, 104 on macOS)
_MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class StackPaths:
    """The layout of one stack home."""

    home: Path

    @property
    def state_file(self) -> Path:
        return self.home / STACK_STATE_FILE

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    @property
    def root(self) -> Path:
        """Everything the servers persist between runs."""
        return self.home / "stack"

    @property
    def s3_data(self) -> Path:
        return self.root / "s3"

    @property
    def pgdata(self) -> Path:
        return self.root / "postgres"

    @property
    def credentials(self) -> Path:
        return self.root / "credentials.json"

    @property
    def s3_identities(self) -> Path:
        return self.root / "s3-identities.json"

    @property
    def sockets(self) -> Path:
        """A folder for weed's local unix sockets, short enough for sockaddr_un even under a deep home."""
        preferred = self.root / "run"
        if len(str(preferred / "filer.sock")) <= _MAX_SOCKET_PATH:
            return preferred
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"sealtrail-{digest}"


def paths_for(home: Path) -> StackPaths:
    """Absolute paths, because the servers run with their own working directories."""
    return StackPaths(home.expanduser().resolve())


@dataclass(frozen=True)
class Credentials:
    """Generated once per home and kept, so the same keys work after down/up."""

    s3_access_key: str
    s3_secret_key: str
    postgres_password: str


def load_or_create_credentials(paths: StackPaths) -> Credentials:
    if paths.credentials.exists():
        try:
            return Credentials(**json.loads(paths.credentials.read_text()))
        except (OSError, ValueError, TypeError) as e:
            raise StackError(f"unreadable {paths.credentials}: {e}; remove it to generate new keys") from e
    creds = Credentials(
        s3_access_key="ST" + secrets.token_hex(9).upper(),
        s3_secret_key=secrets.token_urlsafe(30),
        postgres_password=secrets.token_hex(16),
    )
    write_private(paths.credentials, json.dumps(asdict(creds), indent=2))
    return creds


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds keys), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


@dataclass(frozen=True)
class StackState:
    """What a running stack is: endpoints, keys, topic names, and the pid of each server.

    Field names are the keys of ``stack.json``; ``sealtrail.config.stack_layer``
    reads the endpoint ones.
    """

    kafka_bootstrap: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    bucket: str
    topics: dict[str, str]
    database_url: str
    pids: dict[str, int]
    ports: dict[str, int]
    home: str
    started_at: str
    tansu_bucket: str = "tansu"
    region: str = "us-east-1"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackState:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_pid(self, service: str, pid: int | None) -> StackState:
        """A copy with ``service``'s pid replaced (None: the service is stopped on purpose)."""
        pids = {k: v for k, v in self.pids.items() if k != service}
        if pid is not None:
            pids[service] = pid
        return replace(self, pids=pids)


def read_state(paths: StackPaths) -> StackState | None:
    if not paths.state_file.exists():
        return None
    try:
        return StackState.from_json(json.loads(paths.state_file.read_text()))
    except (OSError, ValueError, TypeError) as e:
        raise StackError(f"unreadable stack state {paths.state_file}: {e}") from e


def write_state(paths: StackPaths, state: StackState) -> None:
    write_private(paths.state_file, json.dumps(state.as_json(), indent=2) + "\n")


def remove_state(paths: StackPaths) -> None:
    paths.state_file.unlink(missing_ok=True)
