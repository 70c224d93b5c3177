"""sealtrail.sinks.buffer: per-chain buffering and the decision of what to flush (pure, no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealtrail.layout import parse_data_key
from sealtrail.record import GENESIS, SealedRecord, record_hash
from sealtrail.sinks.buffer import ChainBuffer, ForkReason, Verdict, object_key_for


def rec(seq: int, signed: bool = False, chain: str = "p002", sealed_at: str = "2026-11-01T23:59:59.000000Z") -> SealedRecord:
    return SealedRecord(
        chain, seq, sealed_at, 100 + seq, {"event_id": f"e{seq}"}, GENESIS,
        "ed25519-0000000000000000" if signed else None, b"s" * 64 if signed else None,
    )


def chain_of(n: int, tag: str = "a", start: bytes = GENESIS) -> list[SealedRecord]:
    """n linked records (real hashes and prev links); another tag makes another chain at the same seqs."""
    out, prev = [], start
    for seq in range(1, n + 1):
        r = SealedRecord("p002", seq, "2026-11-01T23:59:59.000000Z", seq, {"event_id": f"{tag}{seq}"}, GENESIS,
                         "ed25519-0000000000000000" if seq % 2 == 0 else None, None, prev=prev)
        r.hash = record_hash(prev, r.content())
        out.append(r)
        prev = r.hash
    return out


def test_add_buffers_the_next_seq() -> None:
    buf = ChainBuffer("p002", stored_seq=0)
    assert buf.add(rec(1), offset=10, now=5.0)
    assert buf.add(rec(2), offset=11, now=6.0)
    assert [(p.record.seq, p.offset) for p in buf.items] == [(1, 10), (2, 11)]
    assert buf.first_at == 5.0


def test_identical_replay_of_stored_seqs_is_dropped() -> None:
    records = chain_of(8)
    buf = ChainBuffer("p002", stored_seq=0)
    for r in records[:6]:
        assert buf.add(r, r.seq, 1.0)
    buf.take(6, now=2.0)  # stored since assignment: the sink remembers their hashes
    for r in records[:6]:
        added = buf.add(r, r.seq, 3.0)
        assert added.verdict is Verdict.REPLAY and not added and added.known == r.hash
    assert buf.items == [] and buf.first_at is None
    assert buf.add(records[6], 6, 4.0).verdict is Verdict.ACCEPTED


def test_identical_replay_of_the_bucket_head_is_dropped() -> None:
    """After assignment the sink knows the last stored record's hash (read from the bucket)."""
    records = chain_of(5)
    buf = ChainBuffer("p002", stored_seq=5, stored_hash=records[4].hash)
    assert buf.add(records[4], 4, 1.0).verdict is Verdict.REPLAY


def test_identical_replay_of_buffered_seqs_is_dropped() -> None:
    records = chain_of(3)
    buf = ChainBuffer("p002", stored_seq=0)
    buf.add(records[0], 0, 1.0)
    buf.add(records[1], 1, 1.0)
    assert buf.add(records[1], 1, 2.0).verdict is Verdict.REPLAY
    assert buf.add(records[0], 0, 2.0).verdict is Verdict.REPLAY
    assert [p.record.seq for p in buf.items] == [1, 2]


@pytest.mark.parametrize("where", ["stored", "bucket-head", "buffered"])
def test_different_record_at_a_held_seq_is_a_fork(where: str) -> None:
    """A stream that restarted its chains from seq 0: new records at seqs the sink holds are not replays."""
    old, new = chain_of(6), chain_of(6, tag="restarted")
    if where == "bucket-head":
        buf, seq = ChainBuffer("p002", stored_seq=6, stored_hash=old[5].hash), 6
    else:
        buf = ChainBuffer("p002", stored_seq=0)
        for r in old:
            buf.add(r, r.seq, 1.0)
        if where == "stored":
            buf.take(6, now=1.0)
        seq = 3
    before = (buf.stored_seq, list(buf.items))
    added = buf.add(new[seq - 1], 99, 2.0)
    assert added.verdict is Verdict.FORK and added.reason is ForkReason.FORK and not added
    assert added.known == old[seq - 1].hash and added.expected == 7
    assert (buf.stored_seq, buf.items) == before  # nothing changed


def test_next_seq_that_does_not_link_is_a_fork() -> None:
    old, new = chain_of(4), chain_of(4, tag="zombie")
    buf = ChainBuffer("p002", stored_seq=0)
    for r in old[:3]:
        buf.add(r, r.seq, 1.0)
    new[3].seq = 4  # the expected seq, but it links to another chain's record 3
    added = buf.add(new[3], 4, 2.0)
    assert added.verdict is Verdict.FORK and added.reason is ForkReason.FORK
    assert added.known == old[2].hash and added.expected == 4
    assert len(buf.items) == 3
    assert buf.add(old[3], 4, 2.0).verdict is Verdict.ACCEPTED


def test_next_seq_after_the_bucket_head_must_link_to_it() -> None:
    old = chain_of(5)
    foreign = chain_of(5, tag="x")
    buf = ChainBuffer("p002", stored_seq=4, stored_hash=old[3].hash)
    assert buf.add(foreign[4], 5, 1.0).reason is ForkReason.FORK
    assert buf.add(old[4], 5, 1.0).verdict is Verdict.ACCEPTED


def test_first_record_links_to_genesis() -> None:
    stray = chain_of(2)[1]
    stray.seq = 1  # prev is record 1's hash, not GENESIS
    assert ChainBuffer("p002", stored_seq=0).add(stray, 0, 1.0).reason is ForkReason.FORK


def test_record_without_prev_is_not_link_checked() -> None:
    """Records from before the wire carried prev have only their seq to go by."""
    buf = ChainBuffer("p002", stored_seq=7, stored_hash=b"\x01" * 32)
    assert buf.add(rec(8), 8, 1.0).verdict is Verdict.ACCEPTED


@pytest.mark.parametrize(("stored", "buffered", "arriving"), [(0, 0, 2), (5, 0, 7), (5, 2, 9), (0, 3, 100)])
def test_seq_beyond_the_expected_one_is_a_gap_verdict(stored: int, buffered: int, arriving: int) -> None:
    buf = ChainBuffer("p002", stored_seq=stored)
    for seq in range(stored + 1, stored + buffered + 1):
        buf.add(rec(seq), seq, 1.0)
    added = buf.add(rec(arriving), 99, 1.0)  # no exception: the sink keeps running
    assert added.verdict is Verdict.FORK and added.reason is ForkReason.GAP and not added
    assert added.expected == stored + buffered + 1 and added.known is None
    assert len(buf.items) == buffered  # nothing half-added


def test_old_seq_the_sink_no_longer_knows_is_unverifiable() -> None:
    records = chain_of(10)
    buf = ChainBuffer("p002", stored_seq=0, remember=3)
    for r in records:
        buf.add(r, r.seq, 1.0)
    buf.take(10, now=1.0)
    assert sorted(buf.known) == [8, 9, 10]  # bounded: the newest hashes only
    assert buf.add(records[8], 9, 2.0).verdict is Verdict.REPLAY
    added = buf.add(records[2], 3, 2.0)  # may be the very record, but the sink cannot tell
    assert added.verdict is Verdict.FORK and added.reason is ForkReason.UNVERIFIABLE
    # and after a restart only what the worker read back from the bucket is known
    fresh = ChainBuffer("p002", stored_seq=10, stored_hash=records[9].hash)
    assert fresh.add(records[9], 10, 1.0).verdict is Verdict.REPLAY
    assert fresh.add(records[8], 9, 1.0).reason is ForkReason.UNVERIFIABLE
    seeded = ChainBuffer("p002", stored_seq=10, stored_hash=records[9].hash, known={r.seq: r.hash for r in records[5:]})
    assert seeded.add(records[6], 7, 1.0).verdict is Verdict.REPLAY


@pytest.mark.parametrize(
    ("signed", "want"),
    [
        pytest.param([], 0, id="empty"),
        pytest.param([False, False, False], 0, id="nothing-signed-yet"),
        pytest.param([False, False, True], 3, id="all-up-to-head"),
        pytest.param([False, True, False, False], 2, id="tail-after-head-waits"),
        pytest.param([True, False, True, False], 3, id="last-signed-wins"),
        pytest.param([True], 1, id="single-signed"),
    ],
)
def test_cut_ends_at_last_signed(signed: list[bool], want: int) -> None:
    buf = ChainBuffer("p002", stored_seq=0)
    for i, s in enumerate(signed, start=1):
        buf.add(rec(i, s), i, 1.0)
    assert buf.cut() == want


def test_take_advances_stored_seq() -> None:
    buf = ChainBuffer("p002", stored_seq=10)
    for seq, signed in [(11, False), (12, True), (13, False)]:
        buf.add(rec(seq, signed), 1000 + seq, now=1.0)
    n = buf.cut()
    taken = buf.take(n, now=9.0)
    assert [(p.record.seq, p.offset) for p in taken] == [(11, 1011), (12, 1012)]
    assert buf.stored_seq == 12
    assert [p.record.seq for p in buf.items] == [13]
    assert buf.first_at == 1.0  # the leftover keeps its arrival time: it is not held a second full interval
    # the next record continues from the leftover, and replays of what was taken are skipped
    assert buf.add(rec(12, True), 1012, 10.0).verdict is Verdict.REPLAY
    assert buf.add(rec(14, True), 1014, 10.0).verdict is Verdict.ACCEPTED
    taken = buf.take(buf.cut(), now=11.0)
    assert [p.record.seq for p in taken] == [13, 14]
    assert buf.stored_seq == 14 and buf.items == [] and buf.first_at is None


def test_due_by_count() -> None:
    buf = ChainBuffer("p002", stored_seq=0)
    assert not buf.due(now=1e9, max_records=1, max_wait_s=1.0)  # empty is never due
    for seq in (1, 2):
        buf.add(rec(seq), seq, now=100.0)
    assert not buf.due(now=100.0, max_records=3, max_wait_s=60.0)
    buf.add(rec(3), 3, now=100.0)
    assert buf.due(now=100.0, max_records=3, max_wait_s=60.0)


def test_due_by_time() -> None:
    buf = ChainBuffer("p002", stored_seq=0)
    buf.add(rec(1), 1, now=100.0)
    buf.add(rec(2), 2, now=104.0)  # the clock runs from the first buffered record
    assert not buf.due(now=104.9, max_records=1000, max_wait_s=5.0)
    assert buf.due(now=105.0, max_records=1000, max_wait_s=5.0)


def test_due_by_time_from_clock_zero() -> None:
    """A record buffered at t=0.0 ages like any other (0.0 is a time, not 'unset')."""
    buf = ChainBuffer("p002", stored_seq=0)
    buf.add(rec(1), 1, now=0.0)
    assert buf.first_at == 0.0
    assert buf.due(now=10.0, max_records=1000, max_wait_s=5.0)


def test_object_key_for() -> None:
    records = [rec(41, chain="p007", sealed_at="2026-11-01T23:59:59.999999Z"), rec(42, True, chain="p007", sealed_at="2026-11-02T00:00:00.000001Z")]
    key = object_key_for("trail/", records)
    assert key == "trail/data/dt=2026-11-01/chain=p007/p007-000000000041-000000000042.parquet"
    obj = parse_data_key(key)
    assert obj is not None and (obj.chain, obj.first, obj.last, obj.dt) == ("p007", 41, 42, "2026-11-01")


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[SealedRecord], list[tuple[int, int]]]:
    n = draw(st.integers(1, 40))
    records = [rec(i + 1, draw(st.booleans())) for i in range(n)]
    # (after how many deliveries the sink crashes, how far before its committed offset it resumes)
    crashes = draw(st.lists(st.tuples(st.integers(0, 2 * n), st.integers(0, 5)), max_size=3))
    return records, sorted(crashes)


@settings(max_examples=200, deadline=None)
@given(deliveries(), st.integers(1, 10))
def test_flushes_store_each_seq_once_and_end_signed(case: tuple[list[SealedRecord], list[tuple[int, int]]], flush_records: int) -> None:
    """Crash, rebuild the buffer from what the bucket holds, resume at or before the committed offset."""
    records, crashes = case
    buf = ChainBuffer("p002", stored_seq=0)
    stored: list[int] = []
    position, delivered = 0, 0
    while position < len(records):
        if crashes and delivered >= crashes[0][0]:
            _, back = crashes.pop(0)
            buf = ChainBuffer("p002", stored_seq=len(stored))  # unflushed items are lost with the process
            position = max(0, len(stored) - back)  # committed offset is the next unstored record
        buf.add(records[position], position, now=float(delivered))
        position += 1
        delivered += 1
        if buf.due(float(delivered), flush_records, 1e9) and (n := buf.cut()):
            taken = buf.take(n, now=float(delivered))
            assert taken[-1].record.signature is not None
            stored += [p.record.seq for p in taken]
    if n := buf.cut():
        stored += [p.record.seq for p in buf.take(n, now=float(delivered))]
    last_signed = max((r.seq for r in records if r.signature is not None), default=0)
    assert stored == list(range(1, last_signed + 1))
    assert buf.stored_seq == last_signed
