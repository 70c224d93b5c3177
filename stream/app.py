"""The Faust worker: lifecycle, signals and supervision around the bulk sealing loop.

Faust stays the worker, as the design asks, but its per-event Stream layer does
not carry the events (about 15,000 events/s here): a Faust service owns
SealWorker, which moves records in batches on its own thread. Faust's own
consumer carries only the low-volume dead-letter topic, whose agent logs why
input was rejected (Faust refuses to start a consumer with no topic). Metrics
are served by prometheus_client on their own port.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import faust
import orjson
from mode import Service

from sealtrail.config import Settings
from sealtrail.signing import KeySource, Signer
from sealtrail.stream.metrics import StreamMetrics
from sealtrail.stream.worker import SealWorker

log = logging.getLogger("sealtrail.stream")


class SealService(Service):
    """Runs SealWorker on a thread; a failure there crashes the Faust worker (non-zero exit)."""

    worker: SealWorker

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def on_start(self) -> None:
        loop = asyncio.get_running_loop()

        def run() -> None:
            try:
                self.worker.run(self._stop)
            except BaseException as e:  # noqa: BLE001 - reported to the worker, which exits
                log.error("sealing loop failed: %s", e)
                if not self._stop.is_set():
                    asyncio.run_coroutine_threadsafe(self.crash(e), loop)

        self._thread = threading.Thread(target=run, name="seal-loop", daemon=True)
        self._thread.start()

    async def on_stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 30)


def build_app(settings: Settings, keys: Signer | KeySource, metrics: StreamMetrics | None = None) -> faust.App:
    worker = SealWorker(settings, keys, metrics)
    app = faust.App(
        f"{settings.stream.group}-faust",
        broker=f"kafka://{settings.kafka.bootstrap}",
        web_enabled=False,
        datadir=str(settings.home / "faust"),
        topic_allow_declare=False,
        topic_disable_leader=True,
        broker_session_timeout=settings.kafka.session_timeout_ms / 1000,
        broker_heartbeat_interval=max(0.5, settings.kafka.session_timeout_ms / 5000),
    )

    dead_letters = app.topic(settings.kafka.topics.dlq, value_type=bytes, value_serializer="raw")

    @app.agent(dead_letters)
    async def report_dead_letters(stream):
        async for raw in stream:
            try:
                d = orjson.loads(raw)
                log.warning(
                    "dead letter: %s at %s (input %s/%s@%s)",
                    d.get("reason"), d.get("field"), d.get("topic"), d.get("partition"), d.get("offset"),
                )
            except orjson.JSONDecodeError:
                log.warning("unreadable dead letter: %r", raw[:200])

    class _Sealer(SealService):
        pass

    _Sealer.worker = worker
    app.service(_Sealer)
    app.sealer = worker  # type: ignore[attr-defined]
    return app
