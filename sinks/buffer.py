"""Per-chain buffers and the decision of what to flush: pure, no I/O.

A flush always ends at a signed record (the end of one of the stream's sealed
batches), so every object's last row is covered by a head signature and a
verifier can check each object's tail on its own. Records after the last
signed one wait for the next flush.

A record is only taken if it continues the chain: the next seq, linking to the
last record's hash. One at a seq the sink already holds is dropped only if it
is that very record (same hash); anything else (another record at a held seq,
a record that does not link, a seq beyond the next, an old seq whose hash the
sink no longer knows) is a verdict for the worker to quarantine, never a
silent drop and never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sealtrail.layout import data_key
from sealtrail.record import GENESIS, SealedRecord


@dataclass
class Pending:
    record: SealedRecord
    offset: int  # offset in audit.chained, committed once the record is in S3
    arrived: float = 0.0  # when the sink read it: a record left over after a cut keeps its age


class Verdict(StrEnum):
    ACCEPTED = "accepted"  # buffered: the next seq, linking to the chain's last record
    REPLAY = "replay"  # the very record the sink already holds at that seq (same hash): dropped
    FORK = "fork"  # not accepted: to the quarantine topic (the reason says why)


class ForkReason(StrEnum):
    FORK = "fork"  # another record at a seq the sink holds, or the next seq not linking to the last hash
    GAP = "gap"  # a seq beyond the next one: the records between are missing
    UNVERIFIABLE = "unverifiable"  # a seq older than the hashes the sink remembers


@dataclass(frozen=True, slots=True)
class Added:
    """What ``ChainBuffer.add`` made of a record; truthy only when it was buffered."""

    verdict: Verdict
    expected: int  # the seq the chain expected next
    reason: ForkReason | None = None
    known: bytes | None = None  # the hash the sink holds at that seq (at expected - 1 for a non-linking prev)

    def __bool__(self) -> bool:
        return self.verdict is Verdict.ACCEPTED


@dataclass
class ChainBuffer:
    """Records of one chain not yet taken for an object.

    ``stored_seq`` and ``stored_hash`` are the last record already taken: in
    the bucket, or in the chain's open object (which then goes in first).
    ``known`` maps the seqs of records taken since the buffer was made (and
    any the worker read back from the bucket) to their hashes, the newest
    ``remember`` of them, so a replay can be told from a fork.
    """

    chain: str
    stored_seq: int
    stored_hash: bytes = GENESIS  # what the next object's first record links to
    items: list[Pending] = field(default_factory=list)
    first_at: float | None = None
    known: dict[int, bytes] = field(default_factory=dict)
    remember: int = 50_000

    def __post_init__(self) -> None:
        if self.stored_seq > 0:
            self.known[self.stored_seq] = self.stored_hash
        self._trim()

    def _trim(self) -> None:
        while len(self.known) > self.remember:  # seqs arrive in order: the first key is the oldest
            del self.known[next(iter(self.known))]

    def hash_at(self, seq: int) -> bytes | None:
        """The hash of the record the sink holds at seq (stored or buffered); None if it does not know it."""
        if seq > self.stored_seq:
            i = seq - self.stored_seq - 1
            return self.items[i].record.hash if i < len(self.items) else None
        return self.known.get(seq)

    def add(self, record: SealedRecord, offset: int, now: float) -> Added:
        """Buffer the record if it continues the chain; otherwise say why not (nothing is changed then)."""
        expected = self.stored_seq + len(self.items) + 1
        if record.seq < expected:
            known = self.hash_at(record.seq)
            if known is None:
                return Added(Verdict.FORK, expected, ForkReason.UNVERIFIABLE)
            if known == record.hash:
                return Added(Verdict.REPLAY, expected, known=known)
            return Added(Verdict.FORK, expected, ForkReason.FORK, known)
        if record.seq > expected:
            return Added(Verdict.FORK, expected, ForkReason.GAP)
        last = self.items[-1].record.hash if self.items else self.stored_hash
        if record.prev is not None and record.prev != last:
            return Added(Verdict.FORK, expected, ForkReason.FORK, last)
        if not self.items:
            self.first_at = now
        self.items.append(Pending(record, offset, now))
        return Added(Verdict.ACCEPTED, expected)

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
        self.known.update((p.record.seq, p.record.hash) for p in taken)
        self._trim()
        self.first_at = self.items[0].arrived if self.items else None
        return taken


def object_key_for(prefix: str, records: list[SealedRecord]) -> str:
    first, last = records[0], records[-1]
    return data_key(prefix, first.sealed_at[:10], first.chain, first.seq, last.seq)
