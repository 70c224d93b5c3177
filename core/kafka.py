"""confluent-kafka clients configured from Settings, and reading a partition to its end.

Never trust high watermarks on the embedded broker (DESIGN.md: Tansu reports
the last batch's base offset + 1); "the end" here is always partition EOF.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from sealtrail.config import Settings
from sealtrail.errors import ServiceUnavailable


def base_config(settings: Settings) -> dict[str, Any]:
    return {"bootstrap.servers": settings.kafka.bootstrap, **settings.kafka.extra}


def make_producer(settings: Settings, **overrides: Any) -> Producer:
    """Idempotent, acks=all: a retried send can neither duplicate nor reorder within a partition."""
    config = {
        **base_config(settings),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 50,  # measured: 5 ms batches cost the embedded broker's S3 storage twice the CPU
        "compression.type": "zstd",
        "message.timeout.ms": 300_000,
        "message.max.bytes": 2 * 1024 * 1024,  # room for a 1 MiB event (the default limit) and its envelope
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
) -> Iterator[list[Message]]:
    """Yield batches of every record in the given partitions, from the start to partition EOF."""
    consumer = make_consumer(settings, group="sealtrail-reader", **{"enable.auto.offset.store": False})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
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


def for_each_record(
    settings: Settings, topic: str, partitions: list[int], handle: Callable[[Message], None]
) -> int:
    count = 0
    for records in read_to_end(settings, topic, partitions):
        for m in records:
            handle(m)
        count += len(records)
    return count
