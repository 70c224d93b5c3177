"""What verification found: tampering as values, never as exceptions.

A verifier must keep going after the first problem and report everything it
can see, so each problem is a Finding (a kind from a stable wire vocabulary,
the object key and version it was found in, the chain and the first bad
sequence number) collected into a Report. The CLI maps a Report with findings
to exit code 1; errors that stop verification (bucket unreachable, bad
settings) stay SealtrailError exceptions (exit code 2).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sealtrail.printable import printable


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
    # the keys' history: a key that signed before it was published, or took over a chain unexplained
    KEY_BEFORE_PUBLICATION = "key_before_publication"
    KEY_CHANGE_UNEXPLAINED = "key_change_unexplained"
    # digests (the sink's signed list of what it wrote)
    DIGEST_ALTERED = "digest_altered"
    TRUNCATED_TAIL = "truncated_tail"
    UNDIGESTED_OBJECT = "undigested_object"
    # a window's first object that no signed checkpoint ties to the chain before it
    UNANCHORED_START = "unanchored_start"
    # an exported bundle's manifest (files changed, missing or added after export)
    MANIFEST_MISMATCH = "manifest_mismatch"
    # Object Lock
    RETENTION_SHORT = "retention_short"
    NOT_LOCKED = "not_locked"
    # completeness: input offsets of the partition that no row of its chain accounts for
    INPUT_GAP = "input_gap"


# Findings that say the trail lacks something (events, inputs, objects), not that what is there was changed.
COMPLETENESS_KINDS = frozenset({
    FindingKind.INPUT_GAP,
    FindingKind.OBJECT_DELETED,
    FindingKind.TRUNCATED_TAIL,
    FindingKind.DELETE_MARKER,
    FindingKind.ROW_REMOVED,
})
_LABELS = {  # (one, many) for the text report's verdict lines
    FindingKind.INPUT_GAP: ("input gap", "input gaps"),
    FindingKind.OBJECT_DELETED: ("object deleted", "objects deleted"),
    FindingKind.TRUNCATED_TAIL: ("truncated tail", "truncated tails"),
    FindingKind.DELETE_MARKER: ("delete marker", "delete markers"),
    FindingKind.ROW_REMOVED: ("rows removed", "rows removed"),
}


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

    def text(self) -> str:
        """The finding as a report line; the key, version and detail can hold anyone's text (printable)."""
        return (f"FAIL {self.kind.value}: chain {printable(self.chain)} seq {self.seq} object {printable(self.key)} "
                f"version {printable(self.version)}: {printable(self.detail)}")

    def sort_key(self) -> tuple[str, int, str, str]:
        """Chain, then sequence, so a report reads in trail order."""
        return (self.chain or "", self.seq if self.seq is not None else -1, self.key or "", self.kind.value)


@dataclass
class Report:
    """The outcome of one verification run.

    chains maps a chain id to {"events", "head_seq", "head_hash", "signed_heads"}:
    what an auditor records to compare the next run against (a head that moved
    backwards, or whose hash changed, is tampering no single run can see); and
    what the rows account for: the input offsets covered ("input_first",
    "input_last") and the rejected and duplicate inputs among them.

    Two verdicts: intact (nothing found but missing pieces: what is there is
    as sealed) and complete (nothing is missing: no input gap, deleted or
    hidden object, truncated tail or removed row). A run that verified no
    object is neither, unless it continued from heads an earlier run verified
    (continued: chain -> head seq) and nothing was sealed since. ok is "no
    findings at all".
    """

    chains: dict[str, dict[str, Any]] = field(default_factory=dict)
    objects: int = 0
    events: int = 0
    findings: list[Finding] = field(default_factory=list)
    continued: dict[str, int] | None = None
    # well-named data objects the run did not check, each with why (before the window, another prefix...)
    unverified: list[dict[str, str]] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)  # keys of the data objects read and checked
    keys: dict[str, Any] = field(default_factory=dict)  # pinned or read from the bucket, and which

    @property
    def _read_something(self) -> bool:
        return self.objects > 0 or bool(self.continued)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def intact(self) -> bool:
        return self._read_something and all(f.kind in COMPLETENESS_KINDS for f in self.findings)

    @property
    def complete(self) -> bool:
        return self._read_something and not any(f.kind in COMPLETENESS_KINDS for f in self.findings)

    def verdict_lines(self) -> list[str]:
        """"intact: yes" and "complete: no (2 input gaps)", as the text report prints them."""
        def counted(kinds: list[FindingKind], label: Callable[[FindingKind, int], str]) -> str:
            counts = Counter(kinds)
            return ", ".join(label(kind, n) for kind, n in sorted(counts.items(), key=lambda kv: kv[0].value))

        def verdict(name: str, good: bool, kinds: list[FindingKind], label: Callable[[FindingKind, int], str]) -> str:
            if good:
                return f"{name}: yes"
            return f"{name}: no ({counted(kinds, label) if kinds else 'no objects verified'})"

        damaged = [f.kind for f in self.findings if f.kind not in COMPLETENESS_KINDS]
        missing = [f.kind for f in self.findings if f.kind in COMPLETENESS_KINDS]
        return [
            verdict("intact", self.intact, damaged, lambda kind, n: f"{n} {kind.value}"),
            verdict("complete", self.complete, missing, lambda kind, n: f"{n} {_LABELS[kind][n != 1]}"),
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "intact": self.intact,
            "complete": self.complete,
            "objects": self.objects,
            "events": self.events,
            "chains": {name: dict(summary) for name, summary in sorted(self.chains.items())},
            "findings": [f.as_dict() for f in self.findings],
            **({"continued_from": dict(sorted(self.continued.items()))} if self.continued else {}),
            "unverified": list(self.unverified),
            "keys": dict(self.keys),
        }

    def text(self) -> str:
        """verify's text report. Every name and detail taken from the trail or the bundle goes through
        printable (a file name can hold ESC or CR); the verdicts come from a fixed vocabulary."""
        report = self
        lines = [f"{report.events} events in {report.objects} objects, {len(report.chains)} chains"]
        if report.keys:
            k = report.keys
            lines.append(f"keys: pinned ({printable(', '.join(map(str, k.get('trusted', []))))}, from "
                         f"{printable(k.get('source'))})" if k.get("pinned")
                         else "keys: not pinned (read from the bucket: proves self-consistency only)")
        if report.continued:
            heads = ", ".join(f"{chain} after seq {seq}" for chain, seq in sorted(report.continued.items()))
            lines.append(f"only what was sealed since the anchor was verified: {printable(heads)}")
        for chain, summary in sorted(report.chains.items()):
            first = summary.get("first_seq") or ((report.continued or {}).get(chain, 0) + 1)
            head = summary.get("head_seq", 0)
            lines.append(f"  {printable(chain)}: seqs {first}..{head} verified" if head >= first else
                         f"  {printable(chain)}: nothing verified" + (f" after seq {first - 1}" if first > 1 else ""))
        if report.unverified:
            lines.append(f"{len(report.unverified)} data objects not verified (intact says nothing about them):")
            lines += [f"  {printable(u['key'])}: {printable(u['why'])}" for u in report.unverified[:20]]
            if len(report.unverified) > 20:
                lines.append(f"  ... and {len(report.unverified) - 20} more (--json lists them all)")
        lines += [finding.text() for finding in report.findings]
        lines.append("intact" if report.ok else f"{len(report.findings)} problems found")
        lines += report.verdict_lines()
        return "\n".join(lines) + "\n"
