"""The workers' commit protocols at the project's own seams: nothing is committed before it is durable.

The stream commits input offsets only after the broker acknowledged every sealed record; the sink
commits audit.chained offsets only after the object and its signed digest are stored. Here the
broker and the consumer are small fakes standing where confluent-kafka's Producer and Consumer stand
(`_process(consumer, producer, messages)`, `_flush_due(consumer, ...)`), and the bucket is a writable
DirectoryStore with one PUT made to fail, so each step of the protocol can be broken on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError, TopicPartition

from sealtrail.chain import Accepted, ChainHead, seal_batch
from sealtrail.config import S3Settings, Settings
from sealtrail.errors import ConfigError, ServiceUnavailable
from sealtrail.evidence.bundle import DirectoryStore
from sealtrail.evidence.walk import verify_store
from sealtrail.layout import public_key_key
from sealtrail.record import SealedRecord
from sealtrail.sinks.worker import SinkWorker
from sealtrail.stack.workload import generate
from sealtrail.stream.validate import validate
from sealtrail.stream.worker import SealWorker
from tests.support.signers import new_signer

SETTINGS = Settings(s3=S3Settings(prefix="trail/"))
SIGNER = new_signer()


class Message:
    """What the workers read of a confluent-kafka Message."""

    def __init__(self, topic: str, partition: int, offset: int, value: bytes, key: bytes | None = None) -> None:
        self._topic, self._partition, self._offset, self._value, self._key = topic, partition, offset, value, key

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)


class Broker:
    """A producer whose deliveries are decided by fail(topic, n): acknowledged at consecutive offsets, or
    refused with a KafkaError, when flush() is called (as librdkafka calls delivery callbacks)."""

    def __init__(self, fail: Callable[[str, int], bool] = lambda topic, n: False) -> None:
        self.fail, self.pending, self.acked = fail, [], {}
        self.next_offset: dict[tuple[str, int], int] = {}

    def produce(self, topic: str, value: bytes, key: bytes | None = None, partition: int = 0,
                on_delivery: Callable[..., None] | None = None, **_: Any) -> None:
        self.pending.append((topic, partition, value, key, on_delivery))

    def flush(self, timeout: float = 0) -> int:
        pending, self.pending = self.pending, []
        for n, (topic, partition, value, key, callback) in enumerate(pending):
            if self.fail(topic, n):
                if callback:
                    callback(KafkaError(KafkaError._MSG_TIMED_OUT), None)
                continue
            offset = self.next_offset.get((topic, partition), 0)
            self.next_offset[(topic, partition)] = offset + 1
            message = Message(topic, partition, offset, value, key)
            self.acked.setdefault(topic, []).append(message)
            if callback:
                callback(None, message)
        return 0

    def poll(self, timeout: float = 0) -> int:
        return 0


class Group:
    """A consumer's group side: what was committed, and nothing committed before."""

    def __init__(self) -> None:
        self.commits: list[list[tuple[str, int, int]]] = []

    def commit(self, offsets: list[TopicPartition], asynchronous: bool = False) -> None:
        self.commits.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])

    def committed(self, partitions: list[TopicPartition], timeout: float = 0) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, -1001) for tp in partitions]

    def assign(self, partitions: list[TopicPartition]) -> None:
        pass

    def seek(self, tp: TopicPartition) -> None:
        pass


def inputs(n: int) -> list[Message]:
    return [Message(SETTINGS.kafka.topics.events, 0, i, orjson.dumps(e)) for i, e in enumerate(generate(n, seed=5))]


def stream_worker() -> SealWorker:
    worker = SealWorker(SETTINGS, SIGNER)
    worker.heads[0] = ChainHead("p000", next_out=0)
    return worker


# ---------------------------------------------------------------------------
# the stream: input offsets are committed only after every sealed record is acknowledged


def test_the_stream_commits_input_after_the_broker_has_every_sealed_record() -> None:
    worker, broker, group = stream_worker(), Broker(), Group()
    worker._process(group, broker, inputs(20))
    assert len(broker.acked[SETTINGS.kafka.topics.chained]) == 20
    assert group.commits == [[(SETTINGS.kafka.topics.events, 0, 20)]]
    assert worker.heads[0].seq == 20 and worker.heads[0].next_out == 20


def test_a_failed_delivery_commits_nothing() -> None:
    worker, group = stream_worker(), Group()
    broker = Broker(fail=lambda topic, n: topic == SETTINGS.kafka.topics.chained and n == 7)
    with pytest.raises(ServiceUnavailable, match="1 records not delivered"):
        worker._process(group, broker, inputs(20))
    assert group.commits == []  # a restart resumes from what audit.chained really holds


def test_a_failed_dead_letter_still_commits_because_the_trail_holds_the_rejection() -> None:
    worker, group = stream_worker(), Group()
    broker = Broker(fail=lambda topic, n: topic == SETTINGS.kafka.topics.dlq)
    messages = inputs(5) + [Message(SETTINGS.kafka.topics.events, 0, 5, b"{not json")]
    worker._process(group, broker, messages)
    chained = [SealedRecord.from_wire(m.value()) for m in broker.acked[SETTINGS.kafka.topics.chained]]
    assert [r.src_offset for r in chained] == list(range(6)) and chained[-1].kind == "rejected"
    assert SETTINGS.kafka.topics.dlq not in broker.acked
    assert group.commits == [[(SETTINGS.kafka.topics.events, 0, 6)]]
    assert worker.metrics.dlq_failures._value.get() == 1


# ---------------------------------------------------------------------------
# the sink: audit.chained offsets are committed only after the object and its digest are stored


class FailingPuts(DirectoryStore):
    """A writable folder whose PUTs of keys matching `refuse` fail as a bucket that denies them."""

    def __init__(self, root: Path, refuse: Callable[[str], bool]) -> None:
        super().__init__(root, writable=True)
        self.refuse = refuse

    def put_locked(self, key: str, body: bytes, mode: str, retain_until: datetime) -> str | None:
        if self.refuse(key):
            raise ConfigError("s3.access_key", f"AccessDenied (PUT {key})")
        return super().put_locked(key, body, mode, retain_until)


def sealed_records(*batches: int) -> list[Message]:
    """Records as the stream seals them, one seal_batch per batch: each batch ends on a signed head,
    where the sink may cut an object."""
    head, events, sealed = ChainHead("p000"), list(generate(sum(batches), seed=6)), []
    start = 0
    for b, size in enumerate(batches):
        batch = []
        for i in range(start, start + size):
            columns = validate(orjson.dumps(events[i]), 1 << 20)
            assert isinstance(columns, dict)
            batch.append(Accepted(0, i, columns))
        sealed += seal_batch({0: head}, batch, SIGNER, f"2026-12-01T10:00:0{b}.000000Z").sealed
        start += size
    return [Message(SETTINGS.kafka.topics.chained, 0, i, r.to_wire()) for i, r in enumerate(sealed)]


def run_sink(store: DirectoryStore, messages: list[Message]) -> Group:
    worker, group = SinkWorker(SETTINGS, SIGNER, store=store), Group()
    worker._on_assign(group, [TopicPartition(SETTINGS.kafka.topics.chained, 0)])
    for m in messages:
        worker.buffers[0].add(SealedRecord.from_wire(m.value()), m.offset(), 0.0)
    worker._flush_due(group, force=True)
    return group


def test_a_failed_digest_put_commits_nothing_and_the_next_run_digests_the_object(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    root.mkdir()
    (root / public_key_key("trail/", SIGNER.key_id)).parent.mkdir(parents=True)
    (root / public_key_key("trail/", SIGNER.key_id)).write_bytes(SIGNER.public_pem)
    records = sealed_records(12, 3)
    broken = FailingPuts(root, refuse=lambda key: "/digests/" in key)
    with pytest.raises(ConfigError, match="AccessDenied"):
        run_sink(broken, records[:12])
    store = DirectoryStore(root, writable=True)
    assert [k for k in store.keys("trail/") if "/data/" in k], "the object was written before the digest"
    assert not [k for k in store.keys("trail/") if "/digests/" in k]
    # Nothing was committed, so audit.chained is read again from where the group stood: the same 12
    # records, then 3 new ones. The restart digests the stored object, passes over the replays, and
    # commits once the new records are stored too.
    group = run_sink(store, records)
    assert group.commits == [[(SETTINGS.kafka.topics.chained, 0, 15)]]
    assert len([k for k in store.keys("trail/") if "/data/" in k]) == 2, "the replay wrote an object twice"
    assert len([k for k in store.keys("trail/") if "/digests/" in k]) == 2
    report = verify_store(DirectoryStore(root), SETTINGS, trusted_keys=[SIGNER.public_pem])
    assert report.ok and report.events == 15, report.findings


def test_a_failed_object_put_commits_nothing_and_writes_no_digest(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    root.mkdir()
    broken = FailingPuts(root, refuse=lambda key: "/data/" in key)
    with pytest.raises(ConfigError, match="AccessDenied"):
        run_sink(broken, sealed_records(5))
    assert list(DirectoryStore(root).keys("")) == []
