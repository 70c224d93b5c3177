"""Bundle folders for DirectoryStore, written by hand: objects with their Object Lock sidecars, and S3 history.

A bundle keeps each object's lock state in `<key>.lock.json` beside it (what
export records from S3). Tests write those the way export does, and change
them to play an insider; `HistoryStore` adds what S3 would also list (newer
versions, delete markers), which Object Lock cannot prevent.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sealtrail.evidence.bundle import DirectoryStore
from sealtrail.store import ObjectVersion, StoredObject, sha256_b64

NOW = datetime.now(timezone.utc).replace(microsecond=0)
LOCK_DAYS = 31  # a day beyond the tests' 30-day retention


def lock_sidecar(body: bytes, *, mode: str = "COMPLIANCE", days: int = LOCK_DAYS) -> dict[str, str]:
    """The lock state export records for an object locked today for `days`."""
    return {
        "mode": mode,
        "retain_until": (NOW + timedelta(days=days)).isoformat(),
        "last_modified": NOW.isoformat(),
        "checksum_sha256": sha256_b64(body),
    }


def put_file(root: Path, key: str, body: bytes, *, locked: bool = True, **sidecar: str) -> Path:
    """Write one object under root (and, when locked, its sidecar with any extra fields such as version_id)."""
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    if locked:
        path.with_name(path.name + ".lock.json").write_text(json.dumps({**sidecar, **lock_sidecar(body)}))
    return path


def set_sidecar(store: DirectoryStore, key: str, **changes: Any) -> None:
    """Change fields of one object's recorded lock state; a None value removes the field."""
    path = store.root / f"{key}.lock.json"
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps({k: v for k, v in doc.items() if v is not None}))


class HistoryStore(DirectoryStore):
    """A bundle plus what S3 would also list for some keys: newer versions and delete markers.

    Object Lock cannot prevent either; this injects them at the store seam.
    """

    def __init__(self, root: Path, history: dict[str, list[tuple[str, bytes | None]]]) -> None:
        super().__init__(root)
        self.history = history  # key -> [(version id, body or None for a delete marker)], oldest first

    def versions(self, prefix: str):  # type: ignore[no-untyped-def]
        for v in super().versions(prefix):
            extra = self.history.get(v.key, [])
            yield ObjectVersion(v.key, v.version_id, not extra, False, v.size, v.last_modified)
            for n, (vid, body) in enumerate(extra, start=1):
                when = v.last_modified + timedelta(seconds=n)
                yield ObjectVersion(v.key, vid, n == len(extra), body is None, len(body or b""), when)

    def get(self, key: str, version_id: str | None = None) -> StoredObject:
        for vid, body in self.history.get(key, []):
            if vid == version_id and body is not None:
                return StoredObject(key, vid, body, sha256_b64(body), "COMPLIANCE", NOW + timedelta(days=99))
        return super().get(key, version_id)
