"""What verification found: tampering as values, never as exceptions.

A verifier must keep going after the first problem and report everything it
can see, so each problem is a Finding (a kind from a stable wire vocabulary,
the object key and version it was found in, the chain and the first bad
sequence number) collected into a Report. The CLI maps a Report with findings
to exit code 1; errors that stop verification (bucket unreachable, bad
settings) stay SealtrailError exceptions (exit code 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FindingKind(StrEnum):
    # a record's content
    CELL_CHANGED = "cell_changed"
    ROW_REMOVED = "row_removed"
    ROW_INSERTED = "row_inserted"
    ROWS_REORDERED = "rows_reordered"
    # whole objects
    OBJECT_DELETED = "object_deleted"
    DELETE_MARKER = "delete_marker"
    NEWER_VERSION = "newer_version"
    OBJECT_INJECTED = "object_injected"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    UNREADABLE_OBJECT = "unreadable_object"
    # signatures over chain heads
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    UNSIGNED_TAIL = "unsigned_tail"
    # digests (the sink's signed list of what it wrote)
    DIGEST_ALTERED = "digest_altered"
    TRUNCATED_TAIL = "truncated_tail"
    UNDIGESTED_OBJECT = "undigested_object"
    # an exported bundle's manifest (files changed, missing or added after export)
    MANIFEST_MISMATCH = "manifest_mismatch"
    # Object Lock
    RETENTION_SHORT = "retention_short"
    NOT_LOCKED = "not_locked"


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    key: str | None
    version: str | None
    chain: str | None
    seq: int | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "key": self.key,
            "version": self.version,
            "chain": self.chain,
            "seq": self.seq,
            "detail": self.detail,
        }

    def sort_key(self) -> tuple[str, int, str, str]:
        """Chain, then sequence, so a report reads in trail order."""
        return (self.chain or "", self.seq if self.seq is not None else -1, self.key or "", self.kind.value)


@dataclass
class Report:
    """The outcome of one verification run.

    chains maps a chain id to {"events", "head_seq", "head_hash", "signed_heads"}:
    what an auditor records to compare the next run against (a head that moved
    backwards, or whose hash changed, is tampering no single run can see).
    """

    chains: dict[str, dict[str, Any]] = field(default_factory=dict)
    objects: int = 0
    events: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "objects": self.objects,
            "events": self.events,
            "chains": {name: dict(summary) for name, summary in sorted(self.chains.items())},
            "findings": [f.as_dict() for f in self.findings],
        }
