"""The client services use to publish audit events.

Imports only confluent-kafka, pydantic and the format modules: no Faust,
pyarrow, boto3 or DuckDB at import time. Events are validated before they
leave the process (a bad event raises InvalidEventError at the call site, where
the bug is), keyed by event id (so a retried event lands on the same chain and
is sealed once), and sent with an idempotent, acks=all producer. `flush()`
returns only when the broker has acknowledged everything, or raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import orjson
import uuid_utils
from confluent_kafka import KafkaError, Message
from pydantic import ValidationError

from sealtrail.config import Settings
from sealtrail.errors import InvalidEventError, ServiceUnavailable
from sealtrail.event import Event
from sealtrail.kafka import make_producer
from sealtrail.redact import redact_event


def new_event_id() -> str:
    """A time-ordered UUIDv7, so ids sort roughly by creation time."""
    return str(uuid_utils.uuid7())


def prepare(event: Mapping[str, Any] | Event) -> Event:
    """Fill in what a producer may leave out (event_id, occurred_at), validate, redact secrets."""
    if not isinstance(event, Event):
        data = dict(event)
        data.setdefault("event_id", new_event_id())
        data.setdefault("occurred_at", datetime.now(timezone.utc))
        try:
            event = Event.model_validate(data)
        except ValidationError as e:
            first = e.errors(include_url=False)[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            raise InvalidEventError(first["type"], field, first["msg"]) from e
    return redact_event(event)[0]


def encode(event: Event) -> bytes:
    return orjson.dumps(event.model_dump(mode="json", exclude_none=True))


class AuditClient:
    """Publishes events to audit.events. Use as a context manager, or call flush()/close()."""

    def __init__(self, settings: Settings, **producer_overrides: Any) -> None:
        self.topic = settings.kafka.topics.events
        self._producer = make_producer(settings, **producer_overrides)
        self._failures: list[KafkaError] = []
        self.sent = 0

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._failures.append(err)

    def emit(self, event: Mapping[str, Any] | Event) -> str:
        """Queue one event; returns its event id. Call flush() to wait for the broker."""
        prepared = prepare(event)
        self.send_raw(encode(prepared), str(prepared.event_id))
        return str(prepared.event_id)

    def send_raw(self, value: bytes, key: str) -> None:
        """Queue already-validated JSON bytes (used by `sealtrail emit`)."""
        while True:
            try:
                self._producer.produce(self.topic, value, key=key.encode(), on_delivery=self._on_delivery)
                break
            except BufferError:
                self._producer.poll(0.1)  # local queue full: wait for deliveries
        self._producer.poll(0)
        self.sent += 1

    def flush(self, timeout_s: float = 60.0) -> None:
        remaining = self._producer.flush(timeout_s)
        if remaining:
            raise ServiceUnavailable("kafka", f"{remaining} events not acknowledged after {timeout_s:.0f}s")
        if self._failures:
            failures, self._failures = self._failures, []
            raise ServiceUnavailable("kafka", f"{len(failures)} events not delivered: {failures[0].str()}")

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> AuditClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
