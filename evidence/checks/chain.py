"""A chain's objects stitched in sequence order: what is checked across objects, and why it is enough.

DESIGN.md, invariant 3:

- Every stored column but the signature is under the record's hash
  (sealtrail.record.hashed_bytes; key_id only on signed heads), and the chain id is the object's chain=
  folder, so recomputing each hash from exactly what Athena reads finds any
  changed cell; linking each record to its predecessor's hash finds rows
  added, removed or reordered; object names carry their first and last
  sequence numbers, so a missing object is a gap in the numbering.
- Signed heads (the last record of each chain in each sealed batch) cover
  every earlier record through the chain; a verifier needs the public keys
  only. The chain's last record must be signed, or its tail is not covered.

Each object's rows are checked on their own (checks/rows.py, the hot, pure
half, run in worker processes) and the results stitched here in sequence
order: ChainWalk links each object's first row to the last stored hash
before it, so the order in which workers finish does not matter. Pure: no
store, no settings; evidence/walk.py does the fetching.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sealtrail.evidence.checks.rows import Columns, ObjectRows, check_object_alone, object_finding, offset_finding
from sealtrail.evidence.findings import Finding, FindingKind
from sealtrail.layout import DataObject
from sealtrail.record import GENESIS
from sealtrail.signing import PublicKeys

K = FindingKind


@dataclass
class ChainWalk:
    """Feeds a chain's objects in sequence order; what verify_chain and verify_store share.

    Keeping the walk incremental lets verify_store drop each object's rows as
    soon as they are checked, so memory is bounded by a few objects per chain.
    """

    chain: str
    keys: PublicKeys
    start_seq: int = 1  # > 1: a window; what precedes it is neither read nor missed

    def __post_init__(self) -> None:
        self.findings: list[Finding] = []
        self.next_seq = self.start_seq
        # A window's first object is anchored by its own start hash, proven by the signed heads after it.
        self.prev_hash: bytes | None = GENESIS if self.start_seq == 1 else None
        self.prev_seq = self.start_seq - 1
        self.window_start_hash: bytes | None = None
        self.tenant_events = 0
        self.prev_key: str | None = None
        self.events = 0
        self.signed = 0
        self.head_seq = 0
        self.head_hash: bytes | None = None
        self.last_signed_seq = 0
        self.tail_known = True
        self.tail_signed = True
        self.tail_key: str | None = None
        # Input accounting: the highest input offset so far and the seq it was at (None: unknown, as
        # before a chain's first row, at a window's start, or after an unreadable object).
        self.prev_src_offset: int | None = None
        self.prev_src_seq = 0
        self.missing: str | None = None  # the seqs no object holds since the last row seen
        self.input_first: int | None = None
        self.input_last: int | None = None
        self.rejected = 0
        self.duplicates = 0

    def covers(self, obj: DataObject) -> bool:
        """False for an object overlapping what earlier objects hold (reported, not fed)."""
        if obj.first >= self.next_seq:
            return True
        self.findings.append(object_finding(
            K.ROW_INSERTED, obj, self.chain, obj.first,
            f"object holds seqs {obj.first}..{obj.last}, overlapping seqs up to {self.next_seq - 1} "
            f"already held by {self.prev_key}",
        ))
        return False

    def _gap(self, obj: DataObject) -> None:
        if obj.first > self.next_seq:
            lo, hi = self.next_seq, obj.first - 1
            span = f"seq {lo}" if lo == hi else f"seqs {lo}..{hi}"
            self.findings.append(Finding(
                K.OBJECT_DELETED, None, None, self.chain, lo,
                f"no object holds {span} (the next object is {obj.key})",
            ))
            self.prev_hash = None
            self.missing = f"; no object holds {span}" if self.missing is None else self.missing + f", {span}"

    def _inputs(self, obj: DataObject, rows: ObjectRows) -> None:
        """The input offsets between the last row seen and this object's first: one per seq."""
        if rows.first_src_offset is None or rows.first_seq is None:
            return
        if self.input_first is None:
            self.input_first = rows.first_src_offset
        prev = self.prev_src_offset
        if prev is not None and rows.inputs and rows.first_src_offset != prev + 1:
            self.findings.append(offset_finding(
                self.chain, obj.key, prev + 1, rows.first_src_offset, self.prev_src_seq, rows.first_seq, prev,
                self.missing or ""))
        if rows.last_src_offset is not None and (prev is None or rows.last_src_offset > prev):
            self.prev_src_offset, self.prev_src_seq = rows.last_src_offset, rows.check.last_seq
            self.input_last = rows.last_src_offset
        self.missing = None
        if not rows.inputs:  # a v2 object's offsets may skip: nothing to hold the next object to
            self.prev_src_offset = None
        self.rejected += rows.rejected
        self.duplicates += rows.duplicates

    def feed(self, obj: DataObject, columns: Columns | None, start_hash: bytes | None) -> None:
        """One object in sequence order; columns None means present but unreadable (already reported)."""
        rows = None if columns is None else check_object_alone(self.chain, obj, columns, self.keys, start_hash)
        self.feed_rows(obj, rows)

    def feed_rows(self, obj: DataObject, rows: ObjectRows | None) -> None:
        if not self.covers(obj):
            return
        self._gap(obj)
        prev_key, self.prev_key, self.tail_key = self.prev_key, obj.key, obj.key
        self.next_seq = obj.last + 1
        if rows is None:
            self.prev_hash, self.prev_seq = None, obj.last
            self.tail_known = False
            self.prev_src_offset, self.missing = None, None  # its offsets are unknown
            return
        self._inputs(obj, rows)
        check = rows.check
        self.findings.extend(check.findings)
        if self.window_start_hash is None and self.start_seq > 1 and rows.first_seq == self.start_seq:
            self.window_start_hash = rows.start_hash
        if rows.records and rows.start_hash is None:
            self.findings.append(object_finding(
                K.CELL_CHANGED, obj, self.chain, rows.first_seq,
                "the object's sealtrail.prev_hash metadata is missing or malformed: its first records "
                "cannot be linked",
            ))
        elif (rows.records and self.prev_hash is not None and self.prev_seq + 1 == rows.first_seq
                and rows.start_hash != self.prev_hash):
            where = f"seq {self.prev_seq}" + (f" in {prev_key}" if prev_key else "")
            self.findings.append(object_finding(
                K.CELL_CHANGED, obj, self.chain, rows.first_seq,
                f"the object links its first record (seq {rows.first_seq}) to a hash other than that of {where}: "
                "its prev_hash metadata or that record was altered",
            ))
        self.events += rows.records
        self.tenant_events += rows.tenant_events
        self.signed += check.signed_count
        if rows.records:
            self.prev_hash, self.prev_seq = check.last_hash, check.last_seq
            self.head_seq, self.head_hash = check.last_seq, check.last_hash
            if rows.last_signed_seq is not None:
                self.last_signed_seq = rows.last_signed_seq
            self.tail_known, self.tail_signed = True, check.last_row_signed
        else:
            self.prev_hash, self.prev_seq = None, obj.last

    def finish(self) -> tuple[list[Finding], dict[str, Any]]:
        if self.tail_known and not self.tail_signed:
            lo = self.last_signed_seq + 1
            self.findings.append(Finding(
                K.UNSIGNED_TAIL, self.tail_key, None, self.chain, lo,
                f"seqs {lo}..{self.head_seq} are not covered by a signed head",
            ))
        summary = {
            "events": self.events,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash.hex() if self.head_hash else None,
            "signed_heads": self.signed,
            "input_first": self.input_first,
            "input_last": self.input_last,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
        }
        if self.tenant_events:
            summary["tenant_events"] = self.tenant_events
        if self.start_seq > 1:
            summary["first_seq"] = self.start_seq
            summary["start_hash"] = self.window_start_hash.hex() if self.window_start_hash else None
        return sorted(self.findings, key=Finding.sort_key), summary


def verify_chain(
    chain: str, objects: Iterable[tuple[DataObject, Columns | None, bytes | None]], keys: PublicKeys,
    start_seq: int = 1,
) -> tuple[list[Finding], dict[str, Any]]:
    """Check one chain from its objects: (object, columns or None if unreadable, start hash), any order."""
    walk = ChainWalk(chain, keys, start_seq)
    for obj, columns, start_hash in sorted(objects, key=lambda item: (item[0].first, item[0].last, item[0].key)):
        walk.feed(obj, columns, start_hash)
    return walk.finish()
