"""End to end on the real embedded stack: emit -> stream -> sink -> locked Parquet -> verify."""

from __future__ import annotations

import io
import time
from datetime import datetime, timedelta, timezone

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from sealtrail.evidence.walk import verify_store
from sealtrail.layout import data_prefix, parse_data_key
from sealtrail.objects import SCHEMA, read_table
from sealtrail.store import sha256_b64

MALFORMED = [b"{not json", b'{"event_id": "not-a-uuid"}', b"\xff\xfe\x00 binary"]


def test_events_flow_into_locked_parquet_and_verify(trail) -> None:  # type: ignore[no-untyped-def]
    ids = trail.emit(1500, seed=11)
    trail.emit_raw(MALFORMED)
    trail.start("stream")
    trail.start("sink")
    trail.wait_stored(1500 + len(MALFORMED))

    stored = trail.event_ids()
    assert set(stored) == set(ids)
    assert max(stored.values()) == 1, "an event was stored twice"
    rejected = [r for r in trail.rows() if r["kind"] == "rejected"]
    assert sorted(r["reason"] for r in rejected) == ["invalid_json", "invalid_utf8", "invalid_value"]

    letters = trail.dead_letters()
    assert sorted(d["reason"] for d in letters) == ["invalid_json", "invalid_utf8", "invalid_value"]
    assert all("raw" in d and d["input_sha256"] for d in letters)

    report = verify_store(trail.store, trail.settings)
    assert report.ok, report.findings
    assert report.events == 1500 + len(MALFORMED)  # every input is one row: 1,500 events, 3 rejected rows
    assert len(report.chains) == trail.partitions

    key = next(iter(trail.store.keys(data_prefix(trail.settings.s3.prefix))))
    obj = trail.store.get(key)
    assert obj.lock_mode == "COMPLIANCE"
    assert obj.retain_until > datetime.now(timezone.utc) + timedelta(days=trail.settings.retention.days - 1)
    assert obj.checksum_sha256 == sha256_b64(obj.body)
    with pytest.raises(ClientError):
        trail.store.client.delete_object(Bucket=trail.store.bucket, Key=key, VersionId=obj.version_id)


def test_restarted_workers_add_nothing_twice(trail) -> None:  # type: ignore[no-untyped-def]
    """A second generation of workers, given the same and new input, extends the chains without repeats."""
    first = trail.emit(600, seed=21)
    stream, sink = trail.start("stream"), trail.start("sink")
    trail.wait_stored(600)
    trail.stop(stream)
    trail.stop(sink)
    again = trail.emit(600, seed=21)  # the same events again: producer retries of the whole batch
    more = trail.emit(400, seed=22)
    assert again == first
    trail.start("stream")
    trail.start("sink")
    trail.wait_stored(1600)  # every input is a record: the 600 retries as duplicate rows
    stored = trail.event_ids()
    assert set(stored) == set(first) | set(more)
    assert max(stored.values()) == 1
    duplicates = [r for r in trail.rows() if r["kind"] == "duplicate"]
    assert sorted(r["event_id"] for r in duplicates) == sorted(first)
    assert verify_store(trail.store, trail.settings).ok


def test_verify_fails_on_a_changed_cell_and_a_deleted_object(make_trail) -> None:  # type: ignore[no-untyped-def]
    trail = make_trail(retention_mode="GOVERNANCE")  # so the test can play an insider who bypasses it
    trail.start("stream")
    trail.start("sink")
    for wave in range(3):  # three flushes, so every chain has at least three objects
        trail.emit(300, seed=31 + wave)
        trail.wait_stored(300 * (wave + 1))
    for proc in trail.procs:
        trail.stop(proc)
    assert verify_store(trail.store, trail.settings).ok

    objects = sorted(
        (o for o in map(parse_data_key, trail.store.keys(data_prefix(trail.settings.s3.prefix))) if o),
        key=lambda o: (o.chain, o.first),
    )
    by_chain: dict[str, list] = {}
    for o in objects:
        by_chain.setdefault(o.chain, []).append(o)
    victim_chain = max(by_chain, key=lambda c: len(by_chain[c]))
    assert len(by_chain[victim_chain]) >= 3, "need three objects in one chain"
    client, bucket = trail.store.client, trail.store.bucket

    # 1. change one cell: an insider replaces the only version of an object with an edited copy
    edited = by_chain[victim_chain][0]
    original = trail.store.get(edited.key)
    table = read_table(original.body)
    rows = table.to_pylist()
    rows[1]["actor_id"] = "someone-else"
    forged = io.BytesIO()
    schema = SCHEMA.with_metadata(table.schema.metadata)  # an insider keeps the object's start hash
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), forged, compression="zstd")
    client.delete_object(Bucket=bucket, Key=edited.key, VersionId=original.version_id, BypassGovernanceRetention=True)
    client.put_object(Bucket=bucket, Key=edited.key, Body=forged.getvalue())

    # 2. delete a middle object of the same chain outright (every version)
    gone = by_chain[victim_chain][1]
    for v in trail.store.versions(gone.key):
        client.delete_object(Bucket=bucket, Key=gone.key, VersionId=v.version_id, BypassGovernanceRetention=True)

    report = verify_store(trail.store, trail.settings)
    assert not report.ok
    kinds = {(f.kind.value, f.key) for f in report.findings}
    assert ("cell_changed", edited.key) in kinds, report.findings
    changed = next(f for f in report.findings if f.kind.value == "cell_changed")
    assert changed.seq == edited.first + 1
    assert any(f.kind.value == "object_deleted" and f.chain == victim_chain for f in report.findings), report.findings


def test_key_rotation_mid_flow_keeps_everything_verifiable(trail) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    trail.start("stream")
    trail.start("sink")
    first = trail.emit(400, seed=41)
    trail.wait_stored(400)
    rotated = subprocess.run(
        [sys.executable, "-m", "sealtrail.cli", "keys", "rotate"],
        env={**os.environ, **trail.env}, capture_output=True, text=True, check=True,
    )
    new_key = rotated.stdout.strip()

    def digest_keys() -> set[str]:
        return {orjson.loads(trail.store.get(k).body)["key_id"]
                for k in trail.store.keys(f"{trail.settings.s3.prefix}digests/")}

    more: list[str] = []
    deadline = time.monotonic() + 60  # workers look at the key file once a second
    while True:  # until the stream's heads and the sink's digests are both signed with the new key
        more += trail.emit(100, seed=42 + len(more))
        trail.wait_stored(400 + len(more))
        if new_key in {r["key_id"] for r in trail.chained() if r["key_id"]} and new_key in digest_keys():
            break
        assert time.monotonic() < deadline, f"the workers did not sign with the rotated key {new_key} in a minute"
    used = {r["key_id"] for r in trail.chained() if r["key_id"]}
    assert len(used) == 2, used  # the old key and the new one, nothing else
    assert set(trail.event_ids()) == set(first) | set(more)
    statements = list(trail.store.keys(f"{trail.settings.s3.prefix}keys/rotations/"))
    assert [k.rsplit("/", 1)[-1] for k in statements] == [f"{(used - {new_key}).pop()}-{new_key}.json"]
    report = verify_store(trail.store, trail.settings)  # keys from the bucket: the statement explains the change
    assert report.ok, report.findings
    assert report.keys["pinned"] is False


def test_objects_grow_a_row_group_at_a_time_up_to_object_bytes(trail) -> None:  # type: ignore[no-untyped-def]
    """Small row groups and a small byte bound: objects hold several row groups and close by size."""
    limit = 60_000
    trail.env.update({"SEALTRAIL_SINK__FLUSH_RECORDS": "100", "SEALTRAIL_SINK__OBJECT_BYTES": str(limit),
                      "SEALTRAIL_SINK__FLUSH_INTERVAL_S": "3", "SEALTRAIL_STREAM__BATCH_SIZE": "100"})
    ids = trail.emit(3000, seed=5)
    trail.start("stream")
    trail.start("sink")
    trail.wait_stored(3000)

    assert set(trail.event_ids()) == set(ids) and max(trail.event_ids().values()) == 1
    sizes, groups = [], []
    for key in trail.store.keys(data_prefix(trail.settings.s3.prefix)):
        body = trail.store.get(key).body
        sizes.append(len(body))
        groups.append(pq.ParquetFile(pa.BufferReader(body)).metadata.num_row_groups)
    assert max(groups) > 1, groups  # row groups were appended to an open object
    # closed by size: at most one row group past the bound (a row group here is about 10 KB)
    assert any(size >= limit for size in sizes) and max(sizes) < limit + 40_000, sizes
    report = verify_store(trail.store, trail.settings)
    assert report.ok, report.findings


def test_the_sdk_sends_no_secret_to_the_broker_whichever_path_an_event_takes(trail) -> None:  # type: ignore[no-untyped-def]
    """AuditClient.emit takes its fast path only for events with nothing to redact; read back from the real
    broker, events with secrets arrive redacted (they took the reference path) and plain ones unchanged."""
    from sealtrail.kafka import read_to_end
    from sealtrail.producers import AuditClient
    from sealtrail.producers.outbound import prepared_bytes
    from sealtrail.redact import MARKER

    base = {"category": "auth", "action": "auth.login", "actor": {"id": "alice"}, "tenant": "acme", "source": "web"}
    secret_events = [
        {**base, "metadata": {"password": "hunter2-hunter2"}},
        {**base, "actor": {"id": "alice", "user_agent": "Bearer abcdefghijklmnopqrstuvwxyz0123"}},
        {**base, "metadata": {"note": "card 4111 1111 1111 1111"}},
        {**base, "metadata": {"card": 4111111111111111}},
    ]
    plain = {**base, "metadata": {"method": "passkey"}}
    assert all(prepared_bytes(e) is None for e in secret_events) and prepared_bytes(plain) is not None
    with AuditClient(trail.settings) as client:
        ids = [client.emit(e) for e in [*secret_events, plain]]
    sent = {}
    for batch in read_to_end(trail.settings, trail.settings.kafka.topics.events, list(range(trail.partitions))):
        sent.update((m.key().decode(), m.value()) for m in batch)
    assert set(ids) <= set(sent)
    for event_id in ids[:-1]:
        value = sent[event_id]
        assert MARKER.encode() in value, value
        for secret in (b"hunter2", b"abcdefghijklmnopqrstuvwxyz0123", b"4111 1111 1111 1111", b"4111111111111111"):
            assert secret not in value, value
    assert orjson.loads(sent[ids[-1]])["metadata"] == {"method": "passkey"}
