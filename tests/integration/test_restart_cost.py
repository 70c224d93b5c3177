"""A restart's cost on the real stack: a bounded tail of audit.chained and a few S3 requests per chain.

The old way read every record of audit.chained and listed every object of the
bucket; these tests count what recovery reads, on a trail whose topic holds
far more than the dedupe window, and check that the bounded read resumes
exactly where reading everything would, and that the pipeline then goes on
with every event once.
"""

from __future__ import annotations

from collections import Counter

import pytest

from sealtrail.sinks.s3 import S3Store
from sealtrail.stream import recovery
from tests.support.environment import settings_from

WINDOW = 40


def _counting_store(settings) -> tuple[S3Store, Counter]:  # type: ignore[no-untyped-def]
    store, calls = S3Store(settings), Counter()
    store.client.meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))
    return store, calls


def _recover(settings, partitions: list[int], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """recover_heads, counting the audit.chained records it reads and its S3 requests."""
    read = Counter()
    real = recovery.read_to_end

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        for batch in real(*args, **kwargs):
            read.update(m.partition() for m in batch)
            yield batch

    monkeypatch.setattr(recovery, "read_to_end", counted)
    store, calls = _counting_store(settings)
    heads = recovery.recover_heads(settings, partitions, store)
    monkeypatch.setattr(recovery, "read_to_end", real)
    return heads, read, calls


def test_restart_reads_a_bounded_tail_and_resumes_where_a_full_read_would(trail, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    trail.env["SEALTRAIL_STREAM__DEDUPE_WINDOW"] = str(WINDOW)
    emitted = trail.emit(1800)
    stream, _sink = trail.start("stream"), trail.start("sink")
    trail.wait_stored(len(emitted))
    trail.stop(stream)
    partitions = list(range(trail.partitions))

    bounded, read, calls = _recover(settings_from(trail.env), partitions, monkeypatch)
    everything = settings_from({**trail.env, "SEALTRAIL_STREAM__DEDUPE_WINDOW": "1000000"})
    full, read_all, _ = _recover(everything, partitions, monkeypatch)
    assert sum(read_all.values()) >= 1800  # the whole topic, as every restart used to read it
    for p in partitions:
        assert (bounded[p].seq, bounded[p].hash, bounded[p].src_offset, bounded[p].next_out) == \
            (full[p].seq, full[p].hash, full[p].src_offset, full[p].next_out)
        assert read[p] <= WINDOW + 1, f"partition {p}: {read[p]} records read for a window of {WINDOW}"
    requests = sum(calls.values())
    assert requests <= 12 * trail.partitions, calls  # a few LISTs and GETs per chain, no listing of the bucket

    more = trail.emit(300, seed=7)
    trail.start("stream")
    trail.wait_stored(len(emitted) + len(more))
    ids = trail.event_ids()
    assert set(ids) == set(emitted) | set(more) and max(ids.values()) == 1
    from sealtrail.evidence.walk import verify_store

    report = verify_store(trail.store, trail.settings)
    assert report.intact and report.complete, report.findings
