"""sealtrail.sinks.writer: per-chain buffering and the decision of what to flush (pure, no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealtrail.errors import ChainGapError
from sealtrail.layout import parse_data_key
from sealtrail.record import GENESIS, SealedRecord
from sealtrail.sinks.writer import ChainBuffer, object_key_for


def rec(seq: int, signed: bool = False, chain: str = "p002", sealed_at: str = "2026-11-01T23:59:59.000000Z") -> SealedRecord:
    return SealedRecord(
        chain, seq, sealed_at, 100 + seq, {"event_id": f"e{seq}"}, GENESIS,
        "ed25519-0000000000000000" if signed else None, b"s" * 64 if signed else None,
    )


def test_add_buffers_the_next_seq() -> None:
    buf = ChainBuffer("p002", stored_seq=0)
    assert buf.add(rec(1), offset=10, now=5.0)
    assert buf.add(rec(2), offset=11, now=6.0)
    assert [(p.record.seq, p.offset) for p in buf.items] == [(1, 10), (2, 11)]
    assert buf.first_at == 5.0


def test_add_skips_already_stored_seqs() -> None:
    buf = ChainBuffer("p002", stored_seq=5)
    for seq in range(1, 6):
        assert buf.add(rec(seq), offset=seq, now=1.0) is False
    assert buf.items == [] and buf.first_at is None
    assert buf.add(rec(6), offset=6, now=1.0) is True


def test_add_skips_already_buffered_seqs() -> None:
    buf = ChainBuffer("p002", stored_seq=0)
    buf.add(rec(1), 0, 1.0)
    buf.add(rec(2), 1, 1.0)
    assert buf.add(rec(2), 1, 2.0) is False
    assert buf.add(rec(1), 0, 2.0) is False
    assert [p.record.seq for p in buf.items] == [1, 2]


@pytest.mark.parametrize(("stored", "buffered", "arriving"), [(0, 0, 2), (5, 0, 7), (5, 2, 9), (0, 3, 100)])
def test_gap_raises(stored: int, buffered: int, arriving: int) -> None:
    buf = ChainBuffer("p002", stored_seq=stored)
    for seq in range(stored + 1, stored + buffered + 1):
        buf.add(rec(seq), seq, 1.0)
    with pytest.raises(ChainGapError) as e:
        buf.add(rec(arriving), 99, 1.0)
    assert (e.value.chain, e.value.expected, e.value.got) == ("p002", stored + buffered + 1, arriving)
    assert len(buf.items) == buffered  # nothing half-added


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
    assert buf.add(rec(12, True), 1012, 10.0) is False
    assert buf.add(rec(14, True), 1014, 10.0) is True
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
