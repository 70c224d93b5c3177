"""The sink quarantines records that do not continue their chain instead of dropping them as replays.

A stream that restarts its chains from seq 0 (audit.chained aged out), or a
forged record on audit.chained, puts another record at a seq the bucket already
holds: the sink must neither drop it silently nor store it, but put it on the
quarantine topic and keep running.
"""

from __future__ import annotations

import time

import orjson

from sealtrail.evidence.walk import verify_store
from sealtrail.kafka import make_producer
from sealtrail.layout import data_prefix
from sealtrail.objects import read_table
from sealtrail.record import GENESIS, SealedRecord, record_hash


def test_forged_record_at_a_stored_seq_is_quarantined(trail) -> None:  # type: ignore[no-untyped-def]
    trail.emit(300, seed=41)
    trail.start("stream")
    sink = trail.start("sink")
    trail.wait_stored(300)
    before = sorted(trail.store.keys(data_prefix(trail.settings.s3.prefix)))

    # a self-consistent forgery of a stored record: other content, its own hash, linking where the original did
    original = next(r for r in trail.chained() if r["chain"] == "p000" and r["seq"] == 2)
    forged = SealedRecord.from_wire(orjson.dumps(original))
    forged.columns["actor_id"] = "mallory"
    forged.hash = record_hash(forged.prev or GENESIS, forged.content())
    assert forged.hash.hex() != original["hash"]
    producer = make_producer(trail.settings)
    producer.produce(trail.settings.kafka.topics.chained, forged.to_wire(), partition=0)
    assert producer.flush(30) == 0

    deadline = time.monotonic() + 30
    while not (quarantined := trail.quarantined()):
        assert sink.poll() is None, f"the sink exited\n{trail.log_tail()}"
        assert time.monotonic() < deadline, f"nothing quarantined after 30 s\n{trail.log_tail()}"
        time.sleep(0.5)
    [(headers, value)] = quarantined
    assert value == forged.to_wire()  # the bytes as read from audit.chained
    assert headers["chain"] == "p000" and headers["seq"] == "2" and headers["reason"] == "fork"
    assert headers["hash"] == forged.hash.hex() and headers["known_hash"] == original["hash"]
    assert headers["topic"] == trail.settings.kafka.topics.chained and headers["partition"] == "0"
    assert int(headers["offset"]) >= 0

    # the sink keeps running and storing: new events after the forgery reach the bucket
    trail.emit(60, seed=42)
    trail.wait_stored(360, timeout=45)
    assert sink.poll() is None
    assert set(before) <= set(trail.store.keys(data_prefix(trail.settings.s3.prefix)))
    for key in before:  # what was stored is untouched: one version each, no forged row anywhere
        versions = trail.store.client.list_object_versions(Bucket=trail.store.bucket, Prefix=key)["Versions"]
        assert len(versions) == 1, key
    actors = {a for key in trail.store.keys(data_prefix(trail.settings.s3.prefix))
              for a in read_table(trail.store.get(key).body).column("actor_id").to_pylist()}
    assert "mallory" not in actors
    report = verify_store(trail.store, trail.settings)
    assert report.ok, report.findings
    log = (trail.logs / "sink-1.log").read_text()
    assert "chain p000 seq 2: fork record" in log and forged.hash.hex() in log and original["hash"] in log
