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

import hashlib
import logging
import threading
import time
from datetime import datetime, timezone

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from sealtrail.chain import Accepted, ChainHead, seal_batch
from sealtrail.config import Settings
from sealtrail.encoding import format_ts
from sealtrail.errors import ConfigError, ServiceUnavailable
from sealtrail.kafka import located, make_consumer, make_producer
from sealtrail.record import rejected_columns
from sealtrail.redact import Redactor
from sealtrail.signing import KeySource, Signer
from sealtrail.store import ObjectStore
from sealtrail.stream.metrics import StreamMetrics
from sealtrail.stream.recovery import recover_heads
from sealtrail.stream.validate import Rejection, validate_counted

log = logging.getLogger("sealtrail.stream")


DLQ_SAMPLE_BYTES = 64 * 1024  # of the input, for an operator to see what was wrong with it
DLQ_MAX_BYTES = 1024 * 1024  # a dead letter is never larger: below any broker's message limit


def dead_letter(message: Message, rejection: Rejection, at: str, redactor: Redactor | None = None) -> bytes:
    """The DLQ record, bounded: the reason, where the input came from, its full length and SHA-256, and
    its first DLQ_SAMPLE_BYTES as text, secrets redacted.

    The trail itself accounts for every rejected offset (a rejected row); this record is for the
    operator fixing the producer, so it may be cut short, but never so large that producing it fails:
    400 KB of control bytes, which JSON escapes six-fold, once made a record the broker refused and
    stopped the worker on every restart.
    """
    raw = message.value() or b""
    sample = raw[:DLQ_SAMPLE_BYTES].decode("utf-8", "backslashreplace")
    redacted = 0
    if redactor is not None:
        sample, redacted = redactor.redact_text(sample)
    doc = {
        **rejection.as_dict(),
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "rejected_at": at,
        "input_bytes": len(raw),
        "input_sha256": hashlib.sha256(raw).hexdigest(),
        "truncated": len(raw) > DLQ_SAMPLE_BYTES,
        "redacted": redacted,
        "raw": sample,
    }
    body = orjson.dumps(doc)
    if len(body) > DLQ_MAX_BYTES:
        return minimal_dead_letter(message, rejection, at)
    return body


def minimal_dead_letter(message: Message, rejection: Rejection, at: str) -> bytes:
    """What is left when the full dead letter cannot be produced: where, why, how big, which bytes."""
    raw = message.value() or b""
    return orjson.dumps({
        "reason": rejection.reason.value, "field": None, "detail": "input not included",
        "topic": message.topic(), "partition": message.partition(), "offset": message.offset(),
        "rejected_at": at, "input_bytes": len(raw), "input_sha256": hashlib.sha256(raw).hexdigest(),
    })


class SealWorker:
    """One stream worker: owns some partitions of audit.events through the consumer group."""

    def __init__(self, settings: Settings, keys: Signer | KeySource, metrics: StreamMetrics | None = None,
                 store: ObjectStore | None = None) -> None:
        self.settings = settings
        self.keys = keys
        self.metrics = metrics or StreamMetrics()
        self.heads: dict[int, ChainHead] = {}
        self.redactor = Redactor.from_settings(settings.redaction)
        self.sealed_total = 0
        self.rejected_total = 0
        self._consumer: Consumer | None = None
        self._store = store
        self._resumed_at: dict[int, int] = {}  # input offset each chain resumed at, per partition

    @property
    def store(self):
        """The bucket, which head recovery reads (made on first use: the S3 client is not cheap)."""
        if self._store is None:
            from sealtrail.sinks.s3 import S3Store

            self._store = S3Store(self.settings)
        return self._store

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [tp.partition for tp in partitions]
        started = time.monotonic()
        recovered = recover_heads(self.settings, numbers, self.store)
        for tp in partitions:
            head = recovered[tp.partition]
            self.heads[tp.partition] = head
            if head.seq > 0:
                tp.offset = head.src_offset + 1
                self._resumed_at[tp.partition] = tp.offset
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
        cfg = self.settings.stream
        topics = self.settings.kafka.topics
        consumer = make_consumer(self.settings, cfg.group, **{"enable.partition.eof": False},
                                 **self.metrics.broker.client_config())
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
        inputs: list[Accepted] = []  # every input, in offset order: each becomes one record of its chain
        rejected: list[tuple[Message, Rejection]] = []
        last_offset: dict[int, int] = {}
        redactions = 0
        for m in messages:
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consume error: %s", err.str())
                continue
            p, offset = located(m)
            if p not in self.heads:
                continue  # revoked in this very poll
            head = self.heads[p]
            if head.seq and offset <= head.src_offset and offset < self._resumed_at.get(p, -1):
                # Read from below where the chain resumed: the partition starts again (a re-created topic).
                # Skipping these as "already sealed" would lose them without a trace in the trail.
                raise ConfigError(
                    "kafka.topics.events",
                    f"{m.topic()} partition {p} delivered offset {offset}, below offset "
                    f"{self._resumed_at[p]} where chain {head.chain} resumed: was the topic re-created? "
                    "Nothing is sealed until an operator decides",
                )
            last_offset[p] = offset
            newest_ts[p] = m.timestamp()[1]
            raw = m.value()
            checked, redacted = validate_counted(raw, cfg.max_event_bytes, self.redactor)
            redactions += redacted
            if isinstance(checked, Rejection):
                rejected.append((m, checked))
                inputs.append(Accepted(p, offset, rejected_columns(checked.reason.value, raw)))
            else:
                inputs.append(Accepted(p, offset, checked, raw))
        if not last_offset:
            return
        self.metrics.consumed.inc(len(inputs))
        self.metrics.redacted.inc(redactions)
        result = seal_batch(self.heads, inputs, self.keys.current(), now)
        failures: list[KafkaError] = []
        landed: dict[int, list[int]] = {}  # audit.chained offsets the broker gave each partition's records

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                failures.append(err)
                return
            offset, partition = msg.offset(), msg.partition()
            if offset is not None and offset >= 0 and partition is not None:
                landed.setdefault(partition, []).append(offset)
            # else acknowledged without an offset (seen across a broker restart): an unknown landing
            # place, so the count falls short and the fence follows the chain again

        for record in result.sealed:
            producer.produce(
                topics.chained,
                record.to_wire(),
                key=record.chain.encode(),
                partition=record.partition,
                on_delivery=on_delivery,
            )
        for m, rejection in rejected:
            self._dead_letter(producer, m, rejection, now)
        self._await_acks(producer)
        if failures:
            # Nothing is committed: a restart resumes from what audit.chained really holds.
            raise ServiceUnavailable("kafka", f"{len(failures)} records not delivered: {failures[0].str()}")
        for p in self._overtaken(result.sealed, landed):
            last_offset.pop(p, None)  # this batch's input is sealed again from the recovered head
        self._commit(consumer, [TopicPartition(topics.events, p, off + 1) for p, off in last_offset.items()])
        self._count(result.sealed, rejected, result.duplicates)
        self.metrics.batch_seconds.observe(time.monotonic() - started)
        self.metrics.batch_records.observe(len(inputs))
        wall_ms = wall.timestamp() * 1000
        for p, ts in newest_ts.items():
            if ts > 0 and p in self.heads:
                self.metrics.lag_seconds.labels(self.heads[p].chain).set(max(0.0, (wall_ms - ts) / 1000))

    def _overtaken(self, sealed: list, landed: dict[int, list[int]]) -> list[int]:
        """Partitions where another writer's records came in between ours on audit.chained.

        Without transactions nothing stops a worker that was frozen past its session (a GC pause, a
        stalled VM) from sending, when it wakes, the batch it sealed on a head another worker has
        since moved on. So each batch's records must land exactly where this worker's chain ends;
        where they do not, the chain is followed again by its hash links (recovery, which the sink
        follows too) and the input is sealed again from there. Our records that do not link are
        passed over by both and never reach the bucket.
        """
        counts: dict[int, int] = {}
        for record in sealed:
            counts[record.partition] = counts.get(record.partition, 0) + 1
        suspect: dict[int, bytes] = {}  # partition -> the head hash this worker sealed on
        for p, n in counts.items():
            head = self.heads.get(p)
            if head is None:
                continue
            offsets = sorted(landed.get(p, []))
            if (len(offsets) == n and offsets[0] >= 0 and offsets == list(range(offsets[0], offsets[0] + n))
                    and head.next_out == offsets[0]):
                head.next_out = offsets[-1] + 1
                continue
            log.info("chain %s: %d record(s) landed at %s, expected from %d; following the chain again",
                     head.chain, n, offsets[:3], head.next_out)
            suspect[p] = head.hash
        if not suspect:
            return []
        overtaken = []
        for p, recovered in recover_heads(self.settings, sorted(suspect), self.store).items():
            mine = suspect[p]
            self.heads[p] = recovered
            self.metrics.recoveries.inc()
            if recovered.hash == mine:
                continue  # the offsets were not what we expected (or not reported), but the chain is ours
            log.error("chain %s: another writer's records landed between ours on %s; the chain continues at "
                      "seq %d, and input from offset %d is sealed again", recovered.chain,
                      self.settings.kafka.topics.chained, recovered.seq, recovered.src_offset + 1)
            self.metrics.overtaken.inc()
            self._resumed_at[p] = recovered.src_offset + 1
            if self._consumer is not None:
                self._consumer.seek(TopicPartition(self.settings.kafka.topics.events, p, recovered.src_offset + 1))
            overtaken.append(p)
        return overtaken

    def _commit(self, consumer: Consumer, offsets: list[TopicPartition]) -> None:
        """Commit input offsets; refused when the group took the partitions away meanwhile, which is safe:
        the new owner resumes from the chain itself, never from committed offsets alone."""
        if not offsets:
            return
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            log.warning("input offsets not committed (%s); the partitions' new owner resumes from the chain", e)

    def _dead_letter(self, producer, message: Message, rejection: Rejection, now: str) -> None:
        """Produce a dead letter; a failure falls back to the minimal one and never stops the worker.

        The rejected row in the trail is the durable account of the input (it is sealed and acknowledged
        before the input offset is committed); the dead letter only helps an operator.
        """
        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                self.metrics.dlq_failures.inc()
                log.error("dead letter for %s/%s@%s not delivered: %s",
                          message.topic(), message.partition(), message.offset(), err.str())

        builds = (lambda: dead_letter(message, rejection, now, self.redactor),
                  lambda: minimal_dead_letter(message, rejection, now))
        for attempt, build in enumerate(builds):
            try:
                producer.produce(self.settings.kafka.topics.dlq, build(), key=message.key(), on_delivery=on_delivery)
                return
            except (KafkaException, BufferError, ValueError) as e:
                self.metrics.dlq_failures.inc()
                log.error("dead letter for %s/%s@%s refused (%s)%s", message.topic(), message.partition(),
                          message.offset(), e, "; trying a minimal one" if attempt == 0 else "")
        log.error("no dead letter for %s/%s@%s; the trail's rejected row accounts for it",
                  message.topic(), message.partition(), message.offset())

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

