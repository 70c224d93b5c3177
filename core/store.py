"""The store's value types: what a listing, a HEAD and a GET of a versioned, Object-Locked store return.

Both stores (sinks.s3.S3Store over boto3, evidence.bundle.DirectoryStore over
a bundle folder) speak in these, so the verifier, the sink and an independent
reader depend on them and not on the AWS SDK.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


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


@runtime_checkable
class ObjectStore(Protocol):
    """What every reader of the trail needs of a store: a versioned listing and reads of one version.

    S3Store (sinks.s3, the bucket) and DirectoryStore (evidence.bundle, an exported folder) implement it;
    a writable DirectoryStore adds put_locked, so the sink's protocol runs without S3. Listings are in key
    order, as S3 returns them; page and folders are what lets a worker find its place in a trail of any age
    without listing it (sealtrail.index).
    """

    def keys(self, prefix: str, start_after: str | None = None) -> Iterator[str]: ...

    def page(self, prefix: str, start_after: str | None = None, max_keys: int = 1000) -> tuple[list[str], bool]: ...

    def folders(self, prefix: str, start_after: str | None = None) -> Iterator[str]: ...

    def versions(self, prefix: str, start_after: str | None = None) -> Iterator[ObjectVersion]: ...

    def get(self, key: str, version_id: str | None = None) -> StoredObject: ...

    def head(self, key: str) -> ObjectHead | None: ...

    def describe(self) -> str:
        """Where the trail is, for a manifest or a log line: s3://bucket or a folder's path."""
        ...

    def arrow_filesystem(self) -> tuple[Any, str]:
        """A pyarrow filesystem and the store's root path in it, for reading the Parquet in place."""
        ...


@runtime_checkable
class WritableStore(ObjectStore, Protocol):
    """A store the sink can write to: each object once, under Object Lock."""

    def put_locked(self, key: str, body: bytes, mode: str, retain_until: datetime) -> str | None: ...
