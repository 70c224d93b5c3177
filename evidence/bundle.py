"""An exported bundle on disk, read through the same seam as the bucket.

The second implementation of the store interface verify uses (keys,
versions, get; sinks.s3.S3Store is the first), so an auditor can verify an
exported bundle offline with the same code, and tests can build a trail
without S3. A file root/<key> is the single version "1" of that key; its
Object Lock state, when exported, sits beside it in root/<key>.lock.json as
{"mode": "COMPLIANCE", "retain_until": "<ISO 8601>"}, optionally with the
"last_modified" time and the "checksum_sha256" S3 reported at export (so a
file changed after export is a CHECKSUM_MISMATCH; without it the checksum is
computed from the file and proves nothing), and the "version_id" the bucket
gave it (so the digests, which name the sink's version ids, match the bundle;
without it the version is "1"). Read-only by default, since a bundle is
evidence; DirectoryStore(root, writable=True) adds put_locked (each key once,
its lock in the sidecar), so the sink's protocol can run against a folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sealtrail.errors import ConfigError
from sealtrail.store import ObjectHead, ObjectVersion, StoredObject, sha256_b64

LOCK_SUFFIX = ".lock.json"
VERSION_ID = "1"
SIDECAR_FIELDS = ("version_id", "mode", "retain_until", "last_modified", "checksum_sha256")


def _ts(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class DirectoryStore:
    """A folder laid out like the bucket: root/<key>, with optional root/<key>.lock.json sidecars."""

    def __init__(self, root: Path | str, writable: bool = False) -> None:
        self.root = Path(root)
        self.writable = writable
        if not self.root.is_dir():
            raise ConfigError("bundle", f"not a directory: {self.root}")

    def describe(self) -> str:
        return str(self.root)

    def arrow_filesystem(self) -> tuple[Any, str]:
        """pyarrow's local filesystem and this folder's absolute path: a bundle queried like the bucket."""
        import pyarrow.fs as pafs

        return pafs.LocalFileSystem(), self.root.resolve().as_posix()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ConfigError("bundle", f"key outside the bundle: {key!r}")
        return path

    def _lock(self, key: str) -> dict:
        """The key's sidecar: an object of text fields, each parsed here, so a malformed one is a ConfigError
        naming the file, never a traceback."""
        sidecar = self._path(key + LOCK_SUFFIX)
        if not sidecar.is_file():
            return {}
        try:
            lock = json.loads(sidecar.read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(str(sidecar), f"unreadable lock sidecar: {e}") from e
        except RecursionError as e:
            raise ConfigError(str(sidecar), "unreadable lock sidecar: nested too deeply") from e
        if not isinstance(lock, dict):
            raise ConfigError(str(sidecar), "unreadable lock sidecar: not a JSON object")
        wrong = [name for name in SIDECAR_FIELDS if not isinstance(lock.get(name), (str, type(None)))]
        if wrong:
            raise ConfigError(str(sidecar), f"unreadable lock sidecar: {', '.join(wrong)} not text")
        try:
            _ts(lock.get("last_modified")), _ts(lock.get("retain_until"))
        except ValueError as e:
            raise ConfigError(str(sidecar), f"unreadable lock sidecar: {e}") from e
        return lock

    def keys(self, prefix: str, start_after: str | None = None) -> Iterator[str]:
        """Every object key under prefix (after start_after), in key order; sidecars are metadata, not objects."""
        base = self.root
        for key in sorted(path.relative_to(base).as_posix() for path in base.rglob("*") if path.is_file()):
            if key.startswith(prefix) and not key.endswith(LOCK_SUFFIX) and (start_after is None or key > start_after):
                yield key

    def page(self, prefix: str, start_after: str | None = None, max_keys: int = 1000) -> tuple[list[str], bool]:
        """As S3Store.page: keys after start_after, at most max_keys, and whether more follow."""
        keys = list(self.keys(prefix, start_after))
        return keys[:max_keys], len(keys) > max_keys

    def folders(self, prefix: str, start_after: str | None = None) -> Iterator[str]:
        """As S3Store.folders: the distinct key prefixes up to the next / under prefix, after start_after."""
        folders = {prefix + key[len(prefix):].split("/", 1)[0] + "/" for key in self.keys(prefix)
                   if "/" in key[len(prefix):]}
        yield from sorted(f for f in folders if start_after is None or f > start_after)

    def versions(self, prefix: str, start_after: str | None = None) -> Iterator[ObjectVersion]:
        for key in self.keys(prefix):
            if start_after is not None and key <= start_after:
                continue
            path = self._path(key)
            stat = path.stat()
            lock = self._lock(key)
            modified = _ts(lock.get("last_modified"))
            if modified is None:
                modified = datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc)
            yield ObjectVersion(key, lock.get("version_id") or VERSION_ID, True, False, stat.st_size, modified)

    def get(self, key: str, version_id: str | None = None) -> StoredObject:
        lock = self._lock(key)
        held = lock.get("version_id") or VERSION_ID
        if version_id not in (None, held, "null"):
            raise ConfigError("bundle", f"{key}: a bundle holds one version per key ({held}), not {version_id!r}")
        try:
            body = self._path(key).read_bytes()
        except OSError as e:
            raise ConfigError("bundle", f"cannot read {key}: {e}") from e
        checksum = lock.get("checksum_sha256") or sha256_b64(body)
        return StoredObject(key, held, body, checksum, lock.get("mode"), _ts(lock.get("retain_until")))

    def head(self, key: str) -> ObjectHead | None:
        """As S3Store.head: the key's version id, checksum and size, or None when there is no such file."""
        try:
            path = self._path(key)
            size = path.stat().st_size
        except OSError:
            return None
        if not path.is_file():
            return None
        lock = self._lock(key)
        checksum = lock.get("checksum_sha256") or sha256_b64(path.read_bytes())
        return ObjectHead(lock.get("version_id") or VERSION_ID, checksum, size)

    def put_locked(self, key: str, body: bytes, mode: str, retain_until: datetime) -> str | None:
        """Write a new object and its lock sidecar (writable stores only). A key is written once: Object
        Lock would keep the first version, and a bundle holds one version per key."""
        if not self.writable:
            raise ConfigError("bundle", f"read-only: cannot write {key!r} into {self.root}")
        path = self._path(key)
        if path.exists():
            raise ConfigError("bundle", f"{key!r} is already written; a key is written once")
        path.parent.mkdir(parents=True, exist_ok=True)
        now = datetime.now(timezone.utc)
        sidecar = {"version_id": VERSION_ID, "mode": mode, "retain_until": retain_until.isoformat(),
                   "last_modified": now.isoformat(), "checksum_sha256": sha256_b64(body)}
        self._path(key + LOCK_SUFFIX).write_text(json.dumps(sidecar))
        path.write_bytes(body)
        return VERSION_ID
