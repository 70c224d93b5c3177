"""The client services use to publish audit events.

Imports only confluent-kafka, pydantic and the format modules: no Faust,
pyarrow, boto3 or DuckDB at import time. Events are validated before they
leave the process (a bad or oversized event raises InvalidEventError at the
call site, where the bug is), keyed by event id (so a retried event lands on
the same chain and is sealed once), and sent with an idempotent, acks=all
producer.

`flush()` returns only when every event emitted so far is safe, or raises:
acknowledged by the broker, or, with the spool on (``spool.enabled``, or
``AuditClient(settings, spool=True)``), written and fsynced to the local spool
because the broker did not acknowledge it within ``producer.delivery_timeout_s``.
While events wait in the spool, new events go there too (so they are replayed
in the order they were emitted) and a replay thread sends them once the broker
answers, removing each batch only after it was acknowledged. A process that
dies with events in the spool replays them when it, or any client of the same
spool folder, starts again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, Message, Producer

from sealtrail.config import Settings
from sealtrail.errors import InvalidEventError, SealtrailError, ServiceUnavailable
from sealtrail.event import Event
from sealtrail.kafka import make_producer
from sealtrail.producers.outbound import event_bytes
from sealtrail.redact import Redactor
from sealtrail.retry import Backoff, call_with_retry

if TYPE_CHECKING:
    from sealtrail.producers.spool import Spool

_log = logging.getLogger("sealtrail.producers")
_rdkafka_log = logging.getLogger("sealtrail.producers.librdkafka")
# an outage logs "connection refused" every second: visible where the application configured
# logging, not dumped on stderr by logging's last-resort handler
_rdkafka_log.addHandler(logging.NullHandler())


def event_size_limit(settings: Settings) -> int:
    """What the client refuses: above its own limit, or above what the stream would send to the DLQ."""
    return min(settings.producer.max_event_bytes, settings.stream.max_event_bytes)


def check_size(value: bytes, limit: int) -> None:
    if len(value) > limit:
        raise InvalidEventError(
            "oversized", None,
            f"{len(value)} bytes > limit {limit} (producer.max_event_bytes / stream.max_event_bytes); "
            "events are refused, never truncated",
        )


# Errors that mean "the broker is away or slow": the spool takes the event over. Anything else (a
# record too large, an unknown topic, an authorization failure) is raised by flush() instead, since
# replaying it would fail the same way forever.
_OUTAGE_CODES = frozenset({
    KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN,
    KafkaError.REQUEST_TIMED_OUT, KafkaError.NOT_ENOUGH_REPLICAS, KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    KafkaError.LEADER_NOT_AVAILABLE, KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.BROKER_NOT_AVAILABLE,
    KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT,
})


def spoolable(err: KafkaError) -> bool:
    return err.retriable() or err.code() in _OUTAGE_CODES


class AuditClient:
    """Publishes events to audit.events. Use as a context manager, or call flush()/close()."""

    def __init__(self, settings: Settings, *, spool: bool | None = None, **producer_overrides: Any) -> None:
        self.settings = settings
        self.topic = settings.kafka.topics.events
        self.redactor = Redactor.from_settings(settings.redaction)
        self.max_event_bytes = event_size_limit(settings)
        self._use_spool = settings.spool.enabled if spool is None else spool
        if self._use_spool:
            # the broker gets delivery_timeout_s to acknowledge; then the spool takes the event over
            producer_overrides = {
                "message.timeout.ms": int(settings.producer.delivery_timeout_s * 1000),
                "reconnect.backoff.max.ms": 1000,
                # "connection refused" every second of an outage belongs in the log, not on stderr
                "logger": _rdkafka_log,
                **producer_overrides,
            }
        self._producer = make_producer(settings, **producer_overrides)
        self._failures: list[KafkaError] = []
        self._errors: list[SealtrailError] = []
        self.sent = 0
        self.spool = None
        self._replayer: _Replayer | None = None
        self._lock = threading.Lock()
        self._spooling = False
        if self._use_spool:
            from sealtrail.producers.spool import Spool

            cfg = settings.spool
            self.spool = Spool.claim(
                settings.spool_dir, max_bytes=cfg.max_bytes, when_full=cfg.when_full, block_timeout_s=cfg.block_timeout_s
            )
            self._spooling = self.spool.count > 0  # left by an earlier run: it goes first
            self._replayer = _Replayer(self, settings)
            self._replayer.start()

    # sending ----------------------------------------------------------------------------------
    def emit(self, event: Mapping[str, Any] | Event) -> str:
        """Validate, redact and queue one event; returns its event id. Call flush() to wait until it is safe."""
        event_id, value = event_bytes(event, self.redactor)
        self.send_raw(value, event_id)
        return event_id

    def emit_many(self, events: list[Mapping[str, Any] | Event]) -> list[str]:
        """Like emit for each, but spooled (when spooling) in one fsynced transaction."""
        encoded = [event_bytes(e, self.redactor) for e in events]
        for key, value in encoded:
            check_size(value, self.max_event_bytes)
        if self.spool is not None:
            with self._lock:
                if self._spooling:
                    self.spool.append(encoded)
                    self.sent += len(encoded)
                    self._replayer.wake()  # type: ignore[union-attr]
                    return [k for k, _ in encoded]
        for key, value in encoded:
            self._produce(key, value)
        return [k for k, _ in encoded]

    def send_raw(self, value: bytes, key: str) -> None:
        """Queue already-validated JSON bytes (used by `sealtrail emit`)."""
        check_size(value, self.max_event_bytes)
        if self.spool is not None:
            with self._lock:
                if self._spooling:
                    self.spool.append([(key, value)])
                    self.sent += 1
                    self._replayer.wake()  # type: ignore[union-attr]
                    return
        self._produce(key, value)

    def _produce(self, key: str, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(self.topic, value, key=key.encode(), on_delivery=self._on_delivery)
                break
            except BufferError:
                self._producer.poll(0.1)  # local queue full: wait for deliveries
        self._producer.poll(0)
        self.sent += 1

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            return
        if self.spool is None or not spoolable(err):
            self._failures.append(err)  # flush() raises it: a refusal, not an outage, is the caller's to see
            return
        # not acknowledged in time (or refused): the spool takes it over and replays it
        try:
            with self._lock:
                self._spooling = True
                self.spool.append([((msg.key() or b"").decode(), msg.value() or b"")])
            if self._replayer is not None:
                self._replayer.wake()
        except SealtrailError as e:  # SpoolFullError, SpoolError: flush() raises it
            self._errors.append(e)

    # waiting ----------------------------------------------------------------------------------
    @property
    def spooling(self) -> bool:
        """True while events wait in the spool (the broker was away); new events queue behind them."""
        return self._spooling

    def flush(self, timeout_s: float | None = None) -> None:
        """Return when every emitted event is acknowledged, or (with the spool) durable in it; else raise."""
        if timeout_s is None:
            timeout_s = self.settings.producer.delivery_timeout_s + 30.0 if self._use_spool else 60.0
        remaining = self._producer.flush(timeout_s)
        if self._errors:
            errors, self._errors = self._errors, []
            raise errors[0]
        if remaining:
            raise ServiceUnavailable("kafka", f"{remaining} events not acknowledged after {timeout_s:.0f}s")
        if self._failures:
            failures, self._failures = self._failures, []
            raise ServiceUnavailable("kafka", f"{len(failures)} events not delivered: {failures[0].str()}")

    def drain(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the spool to be replayed to the broker; True when it is empty."""
        self.flush()
        if self._replayer is None:
            return True
        return self._replayer.wait_empty(timeout_s)

    def close(self, drain_timeout_s: float = 0.0) -> None:
        """Flush; with the spool, optionally wait for the replay, then release the spool (what is left stays in it)."""
        try:
            self.flush()
            if self._replayer is not None and drain_timeout_s > 0:
                self._replayer.wait_empty(drain_timeout_s)
        finally:
            if self._replayer is not None:
                self._replayer.stop()
                self._replayer = None
            if self.spool is not None:
                left = self.spool.count
                self.spool.close()
                if left:
                    _log.warning("%d events wait in %s; the next client of %s replays them",
                                 left, self.spool.path, self.settings.spool_dir)

    def __enter__(self) -> AuditClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _NotAcknowledged(ServiceUnavailable):
    def __init__(self, detail: str) -> None:
        super().__init__("kafka", f"broker not acknowledging yet ({detail})")


def _replay_failed(error: BaseException, wait: float) -> None:
    """The broker not acknowledging yet is expected while it is away (info); anything else is a warning."""
    if isinstance(error, _NotAcknowledged):
        _log.info("spool replay: %s; retrying", error)
    else:
        _log.warning("spool replay: %s", error)


class _Replayer(threading.Thread):
    """Sends spooled events in order, in batches, and removes a batch only once the broker acknowledged it."""

    def __init__(self, client: AuditClient, settings: Settings) -> None:
        super().__init__(name="sealtrail-spool-replay", daemon=True)
        self.client = client
        self.settings = settings
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._empty = threading.Condition()
        self._producer: Producer | None = None
        self.replayed = 0

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._halt.set()
        self._wake.set()
        self.join(timeout=self.settings.producer.delivery_timeout_s + 10)

    def wait_empty(self, timeout_s: float) -> bool:
        spool = self.client.spool
        with self._empty:
            return self._empty.wait_for(lambda: spool is None or spool.count == 0 or self._halt.is_set(),
                                        timeout=timeout_s) and (spool is None or spool.count == 0)

    def run(self) -> None:
        cfg = self.settings.spool
        backoff = Backoff(cfg.retry_interval_s, cfg.retry_interval_s)  # a fixed pause: one client, one broker
        self._producer = make_producer(
            self.settings,
            **{"message.timeout.ms": int(self.settings.producer.delivery_timeout_s * 1000),
               "reconnect.backoff.max.ms": 1000, "logger": _rdkafka_log},
        )
        self._adopt_orphans()
        while not self._halt.is_set():
            spool = self.client.spool
            if spool is None or spool.count == 0:
                self._wake.wait(cfg.retry_interval_s)
                self._wake.clear()
                self._adopt_orphans()
                continue
            try:  # any sealtrail error: this thread must outlive whatever the broker or the disk does
                call_with_retry(self._replay_batch, spool, cfg.replay_batch, backoff=backoff, stop=self._halt,
                                retry_on=SealtrailError, on_retry=_replay_failed)
            except SealtrailError:
                pass  # halted while retrying

    def _replay_batch(self, spool: Spool, limit: int) -> None:
        """One batch from ``spool``, removed once the broker acknowledged it."""
        batch = spool.peek(limit)
        if not batch:
            return
        self._send(batch)
        spool.remove_through(batch[-1].seq)
        self.replayed += len(batch)
        if spool is self.client.spool:
            with self.client._lock:  # noqa: SLF001 - the client's own helper
                if spool.count == 0:
                    self.client._spooling = False  # noqa: SLF001
            if spool.count == 0:
                with self._empty:
                    self._empty.notify_all()

    def _send(self, batch: list[Any]) -> None:
        assert self._producer is not None
        failed: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failed.append(err)

        topic = self.client.topic
        for item in batch:
            while True:
                try:
                    self._producer.produce(topic, item.value, key=item.key.encode(), on_delivery=on_delivery)
                    break
                except BufferError:
                    self._producer.poll(0.1)
        deadline = time.monotonic() + self.settings.producer.delivery_timeout_s + 5
        while True:  # in short steps, so close() does not wait out a broker outage
            remaining = self._producer.flush(0.2)
            if not remaining or self._halt.is_set() or time.monotonic() > deadline:
                break
        if remaining or failed:
            raise _NotAcknowledged(failed[0].str() if failed else f"{remaining} pending")

    def _adopt_orphans(self) -> None:
        """Drain the slots of dead processes that shared this spool folder."""
        from sealtrail.errors import SpoolError
        from sealtrail.producers.spool import Spool, orphans

        own = self.client.spool
        if own is None:
            return
        for path in orphans(self.settings.spool_dir, exclude=own.path):
            try:
                orphan = Spool(path, max_bytes=max(own.max_bytes, 1))
            except SpoolError:
                continue  # claimed by another live client meanwhile
            try:
                _log.info("replaying %d events left in %s by a process that died", orphan.count, path)
                while orphan.count and not self._halt.is_set():
                    try:
                        self._replay_batch(orphan, self.settings.spool.replay_batch)
                    except SealtrailError as e:  # not acknowledged: the rest waits for the next wake
                        _replay_failed(e, self.settings.spool.retry_interval_s)
                        return
            finally:
                orphan.close()


class AsyncAuditClient:
    """The asyncio face of AuditClient: ``await emit(...)``, ``await flush()``, ``async with``.

    Emitting to Kafka never blocks (librdkafka queues it); while spooling,
    the fsynced write runs in a worker thread so the event loop keeps going.
    """

    def __init__(self, settings: Settings, *, spool: bool | None = None, **producer_overrides: Any) -> None:
        self._client = AuditClient(settings, spool=spool, **producer_overrides)

    @property
    def sync(self) -> AuditClient:
        return self._client

    async def emit(self, event: Mapping[str, Any] | Event) -> str:
        client = self._client
        key, value = event_bytes(event, client.redactor)
        if client.spooling:
            await asyncio.to_thread(client.send_raw, value, key)
        else:
            client.send_raw(value, key)
        return key

    async def flush(self, timeout_s: float | None = None) -> None:
        await asyncio.to_thread(self._client.flush, timeout_s)

    async def aclose(self, drain_timeout_s: float = 0.0) -> None:
        await asyncio.to_thread(self._client.close, drain_timeout_s)

    async def __aenter__(self) -> AsyncAuditClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
