"""confluent-kafka clients configured from Settings, and reading a partition to its end.

Never trust high watermarks on the embedded broker (DESIGN.md: Tansu reports
the last batch's base offset + 1); "the end" here is always partition EOF.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from sealtrail.config import Settings
from sealtrail.errors import ServiceUnavailable

_log = logging.getLogger("sealtrail.kafka")


def base_config(settings: Settings) -> dict[str, Any]:
    """Every client's connection settings; librdkafka's own log goes to the sealtrail.kafka logger."""
    settings.require("kafka")
    config: dict[str, Any] = {"bootstrap.servers": settings.kafka.bootstrap, "logger": _log}
    if settings.kafka.aws_iam:
        from sealtrail.msk_iam import msk_iam_token

        config.update({"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER",
                       "oauth_cb": msk_iam_token(settings.kafka.aws_region or settings.s3.region)})
    return {**config, **settings.kafka.extra}


def record_bytes_limit(settings: Settings) -> int:
    """The largest record sealtrail produces: an event at the size limit sealed with its envelope, with room to spare.

    Producers and the topics' max.message.bytes (sealtrail/topics.py) both use it, so a record the stream
    accepted is never one the broker refuses (which would stop the stream on every restart).
    """
    return 2 * max(settings.stream.max_event_bytes, settings.producer.max_event_bytes)


def make_admin(settings: Settings) -> AdminClient:
    return AdminClient(base_config(settings))


class BrokerHealth:
    """Whether the worker's Kafka client reaches a broker, from the statistics librdkafka emits.

    What a readiness probe asks: a worker that cannot reach the broker must not count as ready. The
    statistics come from the worker's own poll loop, so the probe never talks to Kafka itself (it would
    block on the very outage it reports), and silence is a finding too: a loop that stopped polling,
    stuck or recovering its heads, is not ready either.
    """

    INTERVAL_MS = 5000
    SILENT_AFTER_S = 3 * INTERVAL_MS / 1000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.brokers_up = 0
        self.brokers_known = 0
        self._seen: float | None = None

    def client_config(self) -> dict[str, Any]:
        """The consumer settings that make librdkafka report to this object."""
        return {"statistics.interval.ms": self.INTERVAL_MS, "stats_cb": self.on_stats}

    def on_stats(self, text: str) -> None:
        import orjson

        brokers = (orjson.loads(text).get("brokers") or {}).values()
        self.brokers_known = len(brokers)
        self.brokers_up = sum(1 for b in brokers if b.get("state") == "UP")
        self._seen = self._clock()

    def ready(self) -> tuple[bool, str]:
        if self._seen is None:
            return False, "no statistics from the Kafka client yet (starting, or recovering chain heads)"
        silent = self._clock() - self._seen
        if silent > self.SILENT_AFTER_S:
            return False, f"the Kafka client has not polled for {silent:.0f} s (recovering heads, or stuck)"
        if not self.brokers_up:
            return False, f"no broker reachable ({self.brokers_known} known)"
        return True, f"{self.brokers_up} of {self.brokers_known} brokers up"


def located(m: Message) -> tuple[int, int]:
    """A consumed or acknowledged record's partition and offset.

    The client types both as optional because a record not yet produced has neither; one that came back
    from the broker without them is the broker's fault, and taking it as offset 0 would misplace it.
    """
    partition, offset = m.partition(), m.offset()
    if partition is None or offset is None:
        raise ServiceUnavailable("kafka", f"a record of {m.topic()} came back without partition or offset")
    return partition, offset


def make_producer(settings: Settings, **overrides: Any) -> Producer:
    """Idempotent, acks=all: a retried send can neither duplicate nor reorder within a partition."""
    config = {
        **base_config(settings),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 50,  # measured: 5 ms batches cost the embedded broker's S3 storage twice the CPU
        "compression.type": "zstd",
        "message.timeout.ms": 300_000,
        "message.max.bytes": record_bytes_limit(settings),  # 2 MiB by default: a 1 MiB event and its envelope
        **overrides,
    }
    return Producer(config)


def make_consumer(settings: Settings, group: str, **overrides: Any) -> Consumer:
    config = {
        **base_config(settings),
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
        "session.timeout.ms": settings.kafka.session_timeout_ms,
        "heartbeat.interval.ms": max(500, settings.kafka.session_timeout_ms // 5),
        "max.poll.interval.ms": 300_000,
        **overrides,
    }
    return Consumer(config)


def flush_all(producer: Producer, timeout_s: float) -> None:
    """Wait until every queued message is acknowledged; raise if the broker stays away."""
    remaining = producer.flush(timeout_s)
    if remaining:
        raise ServiceUnavailable("kafka", f"{remaining} messages not acknowledged after {timeout_s:.0f}s")


def partition_count(settings: Settings, topic: str, timeout_s: float = 10.0) -> int:
    probe = Producer(base_config(settings))
    try:
        meta = probe.list_topics(topic, timeout=timeout_s)
    except KafkaException as e:
        raise ServiceUnavailable("kafka", str(e)) from e
    info = meta.topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        raise ServiceUnavailable("kafka", f"topic {topic} not found at {settings.kafka.bootstrap}")
    return len(info.partitions)


def read_to_end(
    settings: Settings,
    topic: str,
    partitions: list[int],
    batch: int = 10_000,
    idle_timeout_s: float = 30.0,
    starts: dict[int, int] | None = None,
) -> Iterator[list[Message]]:
    """Yield batches of every record in the given partitions, from starts (default: the start) to partition EOF."""
    consumer = make_consumer(settings, group="sealtrail-reader", **{"enable.auto.offset.store": False})
    try:
        consumer.assign([TopicPartition(topic, p, (starts or {}).get(p, 0)) for p in partitions])
        pending = set(partitions)
        last_progress = time.monotonic()
        while pending:
            messages = consumer.consume(batch, timeout=0.5)
            records = []
            for m in messages:
                err = m.error()
                if err is None:
                    records.append(m)
                elif err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(m.partition())
                elif not err.retriable() and err.code() != KafkaError._TRANSPORT:
                    raise ServiceUnavailable("kafka", err.str())
            if records:
                last_progress = time.monotonic()
                yield records
            elif time.monotonic() - last_progress > idle_timeout_s:
                raise ServiceUnavailable("kafka", f"no progress reading {topic} {sorted(pending)}")
    finally:
        consumer.close()


def _records_at(consumer: Consumer, topic: str, offsets: dict[int, int], timeout_s: float) -> dict[int, Message | None]:
    """The first record at or after each partition's offset (None at partition EOF); one fetch round."""
    consumer.assign([TopicPartition(topic, p, o) for p, o in offsets.items()])
    got: dict[int, Message | None] = {}
    deadline = time.monotonic() + timeout_s
    while len(got) < len(offsets):
        if time.monotonic() > deadline:
            silent = sorted(set(offsets) - set(got))
            marks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), cached=True) for p in silent}
            raise ServiceUnavailable("kafka", f"no answer in {timeout_s:.0f} s reading {topic} at "
                                              f"{ {p: offsets[p] for p in silent} } (cached watermarks {marks})")
        for m in consumer.consume(len(offsets), timeout=0.5):
            p, err = m.partition(), m.error()
            if p not in offsets or p in got:
                continue
            if err is None:
                if located(m)[1] >= offsets[p]:
                    got[p] = m
            elif err.code() == KafkaError._PARTITION_EOF:
                got[p] = None
            elif not err.retriable() and err.code() != KafkaError._TRANSPORT:
                raise ServiceUnavailable("kafka", err.str())
    return got


def _probe_consumer(settings: Settings) -> Consumer:
    """A reader that fetches little per probe: each answer needs one record, not a prefetched megabyte batch."""
    return make_consumer(settings, group="sealtrail-reader", **{
        "enable.auto.offset.store": False, "fetch.wait.max.ms": 20, "queued.max.messages.kbytes": 1024,
        "fetch.max.bytes": 2 * 1024 * 1024, "max.partition.fetch.bytes": 256 * 1024})


class TopicProbe:
    """Single records at chosen offsets of a topic's partitions, all partitions in the same fetch rounds.

    What lets recovery find where a chain's tail starts in a partition of any length with about
    log2(records) fetch rounds instead of reading it from the start. The end of a partition is the
    high watermark of a fetch response, never ListOffsets': the embedded broker's ListOffsets said 1
    for partitions holding hundreds of records (DESIGN.md), while its fetch responses are right.
    """

    def __init__(self, settings: Settings, topic: str, timeout_s: float = 30.0) -> None:
        self.topic, self.timeout_s = topic, timeout_s
        self.consumer = _probe_consumer(settings)
        self.rounds = 0

    def __enter__(self) -> TopicProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.consumer.close()

    def _at(self, offsets: dict[int, int]) -> dict[int, Message | None]:
        self.rounds += 1
        try:
            return _records_at(self.consumer, self.topic, offsets, self.timeout_s)
        except KafkaException as e:
            raise ServiceUnavailable("kafka", f"reading {self.topic}: {e}") from e

    def ends(self, partitions: list[int]) -> dict[int, tuple[int, int, Message | None]]:
        """Per partition (low offset, end offset, the last record or None when empty).

        The end is the high watermark of a fetch response, which the embedded broker gets right,
        read after fetching the low offset; ListOffsets' is not used, and no offset past the end is
        asked for (the embedded broker answers such a fetch with silence, not an error).
        """
        lows: dict[int, int] = {}
        for p in partitions:
            try:
                lo, _hi = self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=self.timeout_s,
                                                              cached=False)
            except KafkaException as e:
                raise ServiceUnavailable("kafka", f"watermarks of {self.topic} [{p}]: {e}") from e
            lows[p] = max(lo, 0)
        first = self._at(lows)
        ends = {}
        for p in partitions:
            record = first[p]
            if record is None:  # EOF at the low offset: empty
                ends[p] = lows[p]
                continue
            _lo, hi = self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), cached=True)
            ends[p] = max(hi, located(record)[1] + 1)
        nonempty = {p: ends[p] - 1 for p in partitions if ends[p] > lows[p]}
        last = self._at(nonempty) if nonempty else {}
        return {p: (lows[p], ends[p], last.get(p)) for p in partitions}

    def first_at_least(self, targets: dict[int, int], key: Callable[[Message], int],
                       ends: dict[int, tuple[int, int, Message | None]]) -> dict[int, int]:
        """Per partition, the first offset whose record's key is at least the target (the end if none is).

        key must grow with the offset: a chain's seq along audit.chained does, except for the records of
        a writer that lost the chain, which the caller's own checks pass over.
        """
        bounds = {p: [ends[p][0], ends[p][1]] for p in targets}
        while active := {p: (lo + hi) // 2 for p, (lo, hi) in bounds.items() if lo < hi}:
            for p, m in self._at(active).items():
                if m is None or key(m) >= targets[p]:
                    bounds[p][1] = active[p]
                else:
                    bounds[p][0] = min(located(m)[1] + 1, bounds[p][1])
        return {p: lo for p, (lo, _hi) in bounds.items()}
