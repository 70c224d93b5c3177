"""The stream's hot path: consume in bulk, validate, seal, publish, then commit.

Faust's per-event conductor caps a worker at about 15,000 events/s here
(DESIGN.md), so the Faust worker in app.py owns this loop as a task and the
records move in batches through a plain confluent-kafka consumer and producer.
Correctness rests on ordering, not transactions: sealed records and
dead letters are acknowledged by the broker before the input offsets are
committed, and a (re)assigned partition resumes from the head recovered from
audit.chained, so a crash at any point repeats work but never forks a chain or
seals an event twice.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from datetime import datetime, timezone

import orjson
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from sealtrail.chain import Accepted, ChainHead, seal_batch
from sealtrail.config import Settings
from sealtrail.encoding import format_ts
from sealtrail.errors import ConfigError, ServiceUnavailable
from sealtrail.kafka import make_consumer, make_producer, partition_count
from sealtrail.redact import Redactor
from sealtrail.signing import KeySource, Signer
from sealtrail.stream.metrics import StreamMetrics
from sealtrail.stream.recovery import recover_heads
from sealtrail.stream.validate import Rejection, validate_counted

log = logging.getLogger("sealtrail.stream")


def dead_letter(message: Message, rejection: Rejection, at: str) -> bytes:
    """The DLQ record: the reason, where the input came from, and the input itself, losslessly."""
    raw = message.value() or b""
    try:
        payload = {"raw": raw.decode("utf-8")}
    except UnicodeDecodeError:
        payload = {"raw_base64": base64.b64encode(raw).decode("ascii")}
    return orjson.dumps(
        {
            **rejection.as_dict(),
            "topic": message.topic(),
            "partition": message.partition(),
            "offset": message.offset(),
            "rejected_at": at,
            **payload,
        }
    )


class SealWorker:
    """One stream worker: owns some partitions of audit.events through the consumer group."""

    def __init__(self, settings: Settings, keys: Signer | KeySource, metrics: StreamMetrics | None = None) -> None:
        self.settings = settings
        self.keys = keys
        self.metrics = metrics or StreamMetrics()
        self.heads: dict[int, ChainHead] = {}
        self.redactor = Redactor.from_settings(settings.redaction)
        self.sealed_total = 0
        self.rejected_total = 0
        self._consumer: Consumer | None = None

    def check_topics(self) -> None:
        topics = self.settings.kafka.topics
        events = partition_count(self.settings, topics.events)
        chained = partition_count(self.settings, topics.chained)
        if chained < events:
            raise ConfigError(
                "kafka.topics.chained",
                f"{topics.chained} has {chained} partitions, fewer than {topics.events} ({events}): "
                "each input partition is one chain and needs its own output partition",
            )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [tp.partition for tp in partitions]
        started = time.monotonic()
        recovered = recover_heads(self.settings, numbers)
        for tp in partitions:
            head = recovered[tp.partition]
            self.heads[tp.partition] = head
            if head.seq > 0:
                tp.offset = head.src_offset + 1
            self.metrics.head_seq.labels(head.chain).set(head.seq)
        self.metrics.recoveries.inc(len(partitions))
        consumer.assign(partitions)
        log.info(
            "assigned partitions %s; heads %s recovered in %.1fs",
            numbers,
            {h.chain: h.seq for h in recovered.values()},
            time.monotonic() - started,
        )

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.heads.pop(tp.partition, None)
        log.info("revoked partitions %s", [tp.partition for tp in partitions])

    def run(self, stop: threading.Event) -> None:
        self.check_topics()
        cfg = self.settings.stream
        topics = self.settings.kafka.topics
        consumer = make_consumer(self.settings, cfg.group, **{"enable.partition.eof": False})
        producer = make_producer(self.settings)
        self._consumer = consumer
        consumer.subscribe([topics.events], on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while not stop.is_set():
                messages = consumer.consume(cfg.batch_size, timeout=cfg.batch_wait_s)
                if messages:
                    self._process(consumer, producer, messages)
        finally:
            consumer.close()

    def _process(self, consumer: Consumer, producer, messages: list[Message]) -> None:
        cfg = self.settings.stream
        topics = self.settings.kafka.topics
        started = time.monotonic()
        wall = datetime.now(timezone.utc)
        now = format_ts(wall)
        newest_ts: dict[int, int] = {}
        accepted: list[Accepted] = []
        rejected: list[tuple[Message, Rejection]] = []
        last_offset: dict[int, int] = {}
        redactions = 0
        for m in messages:
            if m.error() is not None:
                if m.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("consume error: %s", m.error().str())
                continue
            p = m.partition()
            if p not in self.heads:
                continue  # revoked in this very poll
            last_offset[p] = m.offset()
            newest_ts[p] = m.timestamp()[1]
            result, redacted = validate_counted(m.value(), cfg.max_event_bytes, self.redactor)
            redactions += redacted
            if isinstance(result, Rejection):
                rejected.append((m, result))
            else:
                accepted.append(Accepted(p, m.offset(), result))
        if not last_offset:
            return
        self.metrics.consumed.inc(len(accepted) + len(rejected))
        self.metrics.redacted.inc(redactions)
        result = seal_batch(self.heads, accepted, self.keys.current(), now)
        failures: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(err)

        for record in result.sealed:
            producer.produce(
                topics.chained,
                record.to_wire(),
                key=record.chain.encode(),
                partition=record.partition,
                on_delivery=on_delivery,
            )
        for m, rejection in rejected:
            producer.produce(topics.dlq, dead_letter(m, rejection, now), key=m.key(), on_delivery=on_delivery)
        self._await_acks(producer)
        if failures:
            # Nothing is committed: a restart resumes from what audit.chained really holds.
            raise ServiceUnavailable("kafka", f"{len(failures)} records not delivered: {failures[0].str()}")
        consumer.commit(
            offsets=[TopicPartition(topics.events, p, off + 1) for p, off in last_offset.items()],
            asynchronous=False,
        )
        self._count(result.sealed, rejected, result.duplicates)
        self.metrics.batch_seconds.observe(time.monotonic() - started)
        self.metrics.batch_records.observe(len(accepted) + len(rejected))
        wall_ms = wall.timestamp() * 1000
        for p, ts in newest_ts.items():
            if ts > 0 and p in self.heads:
                self.metrics.lag_seconds.labels(self.heads[p].chain).set(max(0.0, (wall_ms - ts) / 1000))

    def _await_acks(self, producer) -> None:
        """Block until the broker has everything: committing input before that could lose events."""
        waited = 0.0
        while producer.flush(5.0):
            waited += 5.0
            log.warning("broker has not acknowledged sealed records after %.0fs; still waiting", waited)

    def _count(self, sealed, rejected, duplicates: int) -> None:
        m = self.metrics
        by_chain: dict[str, int] = {}
        for record in sealed:
            by_chain[record.chain] = by_chain.get(record.chain, 0) + 1
        for chain, n in by_chain.items():
            m.sealed.labels(chain).inc(n)
        for head in self.heads.values():
            m.head_seq.labels(head.chain).set(head.seq)
        for _, rejection in rejected:
            m.rejected.labels(rejection.reason.value).inc()
        m.duplicates.inc(duplicates)
        m.batches.inc()
        self.sealed_total += len(sealed)
        self.rejected_total += len(rejected)

