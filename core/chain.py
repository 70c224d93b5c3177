"""Appending events to per-partition hash chains: the pure heart of the stream.

Each partition of audit.events is one chain, so the order Kafka guarantees is
the order the chain records, and a chain has exactly one writer at a time (the
consumer that owns the partition). Sealing is a pure function of the chain head
and the batch; the worker around it only moves bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sealtrail.record import (
    GENESIS,
    SealedRecord,
    chain_hash,
    content_digest,
    duplicate_columns,
    hashed_bytes,
    row_check_of,
)
from sealtrail.signing import Signer, head_message


def chain_id(partition: int) -> str:
    return f"p{partition:03d}"


class RecentIds:
    """A bounded set of the event ids a chain sealed last, to drop producer retries."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self.add_new(event_id)

    def add_new(self, event_id: str) -> bool:
        """Remember event_id unless it is already remembered; False for a repeat (one lookup, not two)."""
        ids = self._ids
        if event_id in ids:
            return False
        if self.capacity > 0:
            ids[event_id] = None
            if len(ids) > self.capacity:
                ids.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._ids)


@dataclass
class ChainHead:
    """Where a chain stands: its last sequence number and hash, and the input offset sealed last."""

    chain: str
    seq: int = 0
    hash: bytes = GENESIS
    src_offset: int = -1
    recent: RecentIds = field(default_factory=lambda: RecentIds(0))
    next_out: int = -1  # offset the chain's next record must land at on audit.chained (-1: unknown, never trusted)


@dataclass(frozen=True, slots=True)
class Accepted:
    """One input ready to seal at its input position: a valid event's flat columns, or the accounting
    columns of a rejected input (sealtrail.record.rejected_columns). raw is the input's bytes, for the
    size and SHA-256 a duplicate's row keeps."""

    partition: int
    offset: int
    columns: dict[str, Any]
    raw: bytes | None = None


@dataclass
class SealResult:
    sealed: list[SealedRecord]
    duplicates: int


def seal_batch(heads: dict[int, ChainHead], batch: list[Accepted], signer: Signer, sealed_at: str) -> SealResult:
    """Chain every input onto its partition's head and sign each chain's new head.

    Every input offset becomes one record, so the trail accounts for all of
    them (an auditor checks the offsets are contiguous): a valid event is
    sealed; a rejected input is sealed as its accounting row; an event whose
    id the chain sealed recently (a producer retry, also within the batch)
    is sealed as a duplicate row naming that id, so it is in the trail once
    as an event. Inputs at or before a head's src_offset were sealed before
    a restart and are skipped. The record that ends each chain's part of the
    batch names the key (under its hash) and carries the signature. ``heads``
    is advanced in place. Items must be in offset order per partition.
    """
    todo: list[Accepted] = []
    last_of: dict[int, int] = {}
    duplicates = 0
    for item in batch:  # first pass: what gets sealed, and which record ends each chain's batch
        head = heads[item.partition]
        if item.offset <= head.src_offset:
            continue  # already sealed before a restart or rebalance
        columns = item.columns
        if "kind" not in columns and not head.recent.add_new(columns["event_id"]):
            duplicates += 1
            item = Accepted(item.partition, item.offset, duplicate_columns(columns["event_id"], item.raw))
        head.src_offset = item.offset
        last_of[item.partition] = len(todo)
        todo.append(item)
    sealed: list[SealedRecord] = []
    for index, item in enumerate(todo):
        head = heads[item.partition]
        seq = head.seq + 1
        key_id = signer.key_id if last_of[item.partition] == index else None
        content = hashed_bytes(head.chain, seq, sealed_at, item.offset, item.columns, key_id)
        digest = content_digest(content)
        hashed = chain_hash(head.hash, digest)
        signature = signer.sign(head_message(head.chain, seq, sealed_at, hashed)) if key_id else None
        sealed.append(SealedRecord(head.chain, seq, sealed_at, item.offset, item.columns, hashed, key_id, signature,
                                   row_check_of(digest), head.hash))
        head.seq, head.hash = seq, hashed
    return SealResult(sealed, duplicates)
