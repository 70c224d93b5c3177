"""Per-chain buffers and the decision of what to flush: pure, no I/O.

A flush always ends at a signed record (the end of one of the stream's sealed
batches), so every object's last row is covered by a head signature and a
verifier can check each object's tail on its own. Records after the last
signed one wait for the next flush.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sealtrail.errors import ChainGapError
from sealtrail.layout import data_key
from sealtrail.record import GENESIS, SealedRecord


@dataclass
class Pending:
    record: SealedRecord
    offset: int  # offset in audit.chained, committed once the record is in S3
    arrived: float = 0.0  # when the sink read it: a record left over after a cut keeps its age


@dataclass
class ChainBuffer:
    """Records of one chain not yet taken for an object.

    ``stored_seq`` and ``stored_hash`` are the last record already taken: in
    the bucket, or in the chain's open object (which then goes in first).
    """

    chain: str
    stored_seq: int
    stored_hash: bytes = GENESIS  # what the next object's first record links to
    items: list[Pending] = field(default_factory=list)
    first_at: float | None = None

    def add(self, record: SealedRecord, offset: int, now: float) -> bool:
        """Buffer a record unless the bucket already has it; returns whether it was buffered."""
        expected = self.stored_seq + len(self.items) + 1
        if record.seq < expected:
            return False  # replayed after a restart: already stored or already buffered
        if record.seq > expected:
            raise ChainGapError(self.chain, expected, record.seq)
        if not self.items:
            self.first_at = now
        self.items.append(Pending(record, offset, now))
        return True

    def due(self, now: float, max_records: int, max_wait_s: float) -> bool:
        if not self.items:
            return False
        return len(self.items) >= max_records or (self.first_at is not None and now - self.first_at >= max_wait_s)

    def cut(self) -> int:
        """Number of leading records that end at the last signed one (0: nothing flushable yet)."""
        for i in range(len(self.items) - 1, -1, -1):
            if self.items[i].record.signature is not None:
                return i + 1
        return 0

    def take(self, n: int, now: float) -> list[Pending]:
        taken, self.items = self.items[:n], self.items[n:]
        self.stored_seq, self.stored_hash = taken[-1].record.seq, taken[-1].record.hash
        self.first_at = self.items[0].arrived if self.items else None
        return taken


def object_key_for(prefix: str, records: list[SealedRecord]) -> str:
    first, last = records[0], records[-1]
    return data_key(prefix, first.sealed_at[:10], first.chain, first.seq, last.seq)
