"""The sink worker: audit.chained -> locked Parquet objects in S3, offsets committed after.

Order of operations per flush: name the object from its content, HEAD it (a
locked bucket keeps every re-upload as another retained version, so a replay
must not PUT again), PUT with checksum and retention, and only then commit the
offsets. On every partition assignment the last stored sequence of each chain
is read from the bucket itself, so a crash anywhere between those steps leaves
neither a gap nor an overlap. S3 outages are retried with backoff for as long
as they last; nothing is committed meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone

from confluent_kafka import Consumer, KafkaError, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge
from tenacity import Retrying, retry_if_exception_type, wait_exponential

from sealtrail.chain import chain_id
from sealtrail.config import Settings
from sealtrail.errors import ServiceUnavailable
from sealtrail.kafka import make_consumer
from sealtrail.layout import data_prefix, parse_data_key
from sealtrail.record import SealedRecord
from sealtrail.sinks.parquet import to_parquet
from sealtrail.sinks.store import S3Store
from sealtrail.sinks.writer import ChainBuffer, Pending, object_key_for

log = logging.getLogger("sealtrail.sink")


class SinkMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.objects = Counter("sealtrail_sink_objects_written_total", "locked data objects written", registry=r)
        self.events = Counter("sealtrail_sink_events_written_total", "sealed events written to S3", registry=r)
        self.bytes = Counter("sealtrail_sink_bytes_written_total", "Parquet bytes written", registry=r)
        self.skipped = Counter(
            "sealtrail_sink_objects_already_present_total", "flushes whose object existed (replay)", registry=r
        )
        self.retries = Counter("sealtrail_sink_put_retries_total", "S3 calls retried", registry=r)
        self.stored_seq = Gauge("sealtrail_sink_stored_seq", "last sequence stored per chain", ["chain"], registry=r)


def last_stored_seqs(store: S3Store, prefix: str) -> dict[str, int]:
    """The highest sequence number in the bucket for each chain, from object names alone."""
    seqs: dict[str, int] = {}
    for key in store.keys(data_prefix(prefix)):
        obj = parse_data_key(key)
        if obj is not None and obj.last > seqs.get(obj.chain, 0):
            seqs[obj.chain] = obj.last
    return seqs


class SinkWorker:
    def __init__(self, settings: Settings, store: S3Store | None = None, metrics: SinkMetrics | None = None) -> None:
        self.settings = settings
        self.store = store or S3Store(settings)
        self.metrics = metrics or SinkMetrics()
        self.buffers: dict[int, ChainBuffer] = {}
        self.events_written = 0
        self.objects_written = 0
        self._stop = threading.Event()

    def _retrying(self) -> Retrying:
        def before_sleep(state) -> None:  # type: ignore[no-untyped-def]
            self.metrics.retries.inc()
            log.warning("S3 unavailable (%s); retrying", state.outcome.exception())

        return Retrying(
            retry=retry_if_exception_type(ServiceUnavailable),
            wait=wait_exponential(multiplier=0.2, max=5),
            before_sleep=before_sleep,
            reraise=True,
            stop=lambda state: self._stop.is_set(),
        )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        stored = self._retrying()(last_stored_seqs, self.store, self.settings.s3.prefix)
        for tp in partitions:
            chain = chain_id(tp.partition)
            self.buffers[tp.partition] = ChainBuffer(chain, stored.get(chain, 0))
            self.metrics.stored_seq.labels(chain).set(stored.get(chain, 0))
        consumer.assign(partitions)
        log.info("assigned %s; stored heads %s", [tp.partition for tp in partitions], stored)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.buffers.pop(tp.partition, None)

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        topic = self.settings.kafka.topics.chained
        consumer = make_consumer(
            self.settings, self.settings.sink.group, **{"enable.partition.eof": False, "max.poll.interval.ms": 900_000}
        )
        consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while not self._stop.is_set():
                messages = consumer.consume(5000, timeout=0.2)
                now = time.monotonic()
                for m in messages:
                    if m.error() is not None:
                        if m.error().code() != KafkaError._PARTITION_EOF:
                            log.warning("consume error: %s", m.error().str())
                        continue
                    buffer = self.buffers.get(m.partition())
                    if buffer is not None:
                        buffer.add(SealedRecord.from_wire(m.value()), m.offset(), now)
                self._flush_due(consumer, force=False)
            self._flush_due(consumer, force=True)
        finally:
            consumer.close()

    def _flush_due(self, consumer: Consumer, force: bool) -> None:
        cfg = self.settings.sink
        now = time.monotonic()
        commits: list[TopicPartition] = []
        for partition, buffer in self.buffers.items():
            if not (force or buffer.due(now, cfg.flush_records, cfg.flush_interval_s)):
                continue
            n = buffer.cut()
            if n == 0:
                continue
            taken = buffer.take(n, now)
            self._write(taken)
            commits.append(TopicPartition(self.settings.kafka.topics.chained, partition, taken[-1].offset + 1))
        if commits:
            consumer.commit(offsets=commits, asynchronous=False)

    def _write(self, taken: list[Pending]) -> None:
        records = [p.record for p in taken]
        key = object_key_for(self.settings.s3.prefix, records)
        retry = self._retrying()
        if retry(self.store.exists, key):
            self.metrics.skipped.inc()
            log.info("%s already stored; not writing it again", key)
        else:
            body = to_parquet(records)
            retention = self.settings.retention
            retain_until = datetime.now(timezone.utc) + timedelta(days=retention.days)
            retry(self.store.put_locked, key, body, retention.mode, retain_until)
            self.metrics.objects.inc()
            self.metrics.bytes.inc(len(body))
            self.objects_written += 1
        self.metrics.events.inc(len(records))
        self.metrics.stored_seq.labels(records[0].chain).set(records[-1].seq)
        self.events_written += len(records)
