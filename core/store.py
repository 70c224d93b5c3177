"""The store's value types: what a listing, a HEAD and a GET of a versioned, Object-Locked store return.

Both stores (sinks.store.S3Store over boto3, evidence.bundle.DirectoryStore over
a bundle folder) speak in these, so the verifier, the sink and an independent
reader depend on them and not on the AWS SDK.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    key: str
    version_id: str
    is_latest: bool
    is_delete_marker: bool
    size: int
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class ObjectHead:
    version_id: str | None
    checksum_sha256: str | None
    size: int


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    version_id: str | None
    body: bytes
    checksum_sha256: str | None
    lock_mode: str | None
    retain_until: datetime | None


def sha256_b64(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
