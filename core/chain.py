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

from sealtrail.record import GENESIS, SealedRecord, chain_hash, content_digest, hashed_bytes, row_check_of
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


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid event ready to seal: its input position and its flat columns."""

    partition: int
    offset: int
    columns: dict[str, Any]


@dataclass
class SealResult:
    sealed: list[SealedRecord]
    duplicates: int


def seal_batch(heads: dict[int, ChainHead], batch: list[Accepted], signer: Signer, sealed_at: str) -> SealResult:
    """Chain every accepted event onto its partition's head and sign each chain's new head.

    Events whose id the chain sealed recently are dropped (exactly once in the
    trail despite at-least-once delivery), including a repeat within the batch.
    The record that ends each chain's part of the batch names the key (under
    its hash) and carries the signature. ``heads`` is advanced in place.
    """
    todo: list[Accepted] = []
    last_of: dict[int, int] = {}
    duplicates = 0
    for item in batch:  # first pass: what gets sealed, and which record ends each chain's batch
        head = heads[item.partition]
        if item.offset <= head.src_offset:
            continue  # already sealed before a restart or rebalance
        if not head.recent.add_new(item.columns["event_id"]):
            duplicates += 1
            head.src_offset = item.offset
            continue
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
                                   row_check_of(digest)))
        head.seq, head.hash = seq, hashed
        if item.offset > head.src_offset:  # a later duplicate may already have moved it on
            head.src_offset = item.offset
    return SealResult(sealed, duplicates)
