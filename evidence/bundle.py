"""An exported bundle on disk, read through the same seam as the bucket.

The second implementation of the store interface verify uses (keys,
versions, get; sinks.store.S3Store is the first), so an auditor can verify an
exported bundle offline with the same code, and tests can build a trail
without S3. A file root/<key> is the single version "1" of that key; its
Object Lock state, when exported, sits beside it in root/<key>.lock.json as
{"mode": "COMPLIANCE", "retain_until": "<ISO 8601>"}, optionally with the
"last_modified" time and the "checksum_sha256" S3 reported at export (so a
file changed after export is a CHECKSUM_MISMATCH; without it the checksum is
computed from the file and proves nothing), and the "version_id" the bucket
gave it (so the digests, which name the sink's version ids, match the bundle;
without it the version is "1"). Read-only on purpose: a bundle is evidence.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from sealtrail.errors import ConfigError
from sealtrail.store import ObjectVersion, StoredObject, sha256_b64

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

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ConfigError("bundle", f"not a directory: {self.root}")

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

    def keys(self, prefix: str) -> Iterator[str]:
        """Every object key under prefix (sidecars are metadata, not objects)."""
        base = self.root
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            key = path.relative_to(base).as_posix()
            if key.startswith(prefix) and not key.endswith(LOCK_SUFFIX):
                yield key

    def page(self, prefix: str, start_after: str | None = None, max_keys: int = 1000) -> tuple[list[str], bool]:
        """As S3Store.page: keys after start_after, at most max_keys, and whether more follow."""
        keys = sorted(k for k in self.keys(prefix) if start_after is None or k > start_after)
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
