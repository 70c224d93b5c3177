"""Every call to the API becomes an access event in the trail it serves.

The event is built and validated on the request path (so a bad event fails
there, loudly), then handed to a queue; one thread feeds the queue to the
project's own producer (AuditClient, with its local spool), so a slow or
absent broker never holds up a response. The spool keeps what the broker does
not acknowledge in time (invariant 1). If the queue itself fills up (the
producer is stuck, not merely slow), the API stops answering with 503 rather
than serve calls it cannot record.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

from sealtrail.config import Settings
from sealtrail.errors import SealtrailError
from sealtrail.event import Event
from sealtrail.producers.client import AuditClient, prepare
from sealtrail.producers.families import Auditor
from sealtrail.redact import Redactor

_log = logging.getLogger("sealtrail.serve.access")
_STOP = object()
BATCH = 500


class AccessRecorder:
    """Queue of access events and the thread that emits them through AuditClient."""

    def __init__(self, settings: Settings, client_factory: Callable[[], Any] | None = None) -> None:
        self.settings = settings
        self.redactor = Redactor.from_settings(settings.redaction)
        self.auditor = Auditor(self._prepare, source=settings.serve.source, tenant=settings.serve.tenant)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=settings.serve.audit_backlog)
        self._factory = client_factory or (lambda: AuditClient(settings, spool=True))
        self._client: Any = None
        self._thread: threading.Thread | None = None
        self.emitted = 0
        self.errors = 0

    # request path -----------------------------------------------------------------------------
    def _prepare(self, event: dict[str, Any]) -> Event:
        return prepare(event, self.redactor)

    def build(self, action: str, *, outcome: str, actor: str, metadata: Mapping[str, Any],
              resource: tuple[str, str] | None) -> Event:
        """The access event for one call, with ip, user agent and request id from the request context."""
        return self.auditor.event("access", action, outcome=outcome, actor=actor, resource=resource,
                                  metadata=metadata)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def full(self) -> bool:
        return self._queue.full()

    def submit(self, event: Event, timeout_s: float = 1.0) -> bool:
        """Queue one event; False (and an error logged) only if the queue stayed full for timeout_s."""
        try:
            self._queue.put(event, timeout=timeout_s)
            return True
        except queue.Full:
            self.errors += 1
            _log.error("access event %s not queued: %d events wait for the producer", event.event_id,
                       self._queue.qsize())
            return False

    # the emitting thread ----------------------------------------------------------------------
    def start(self) -> None:
        self._client = self._factory()
        self._thread = threading.Thread(target=self._run, name="sealtrail-serve-access", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch = [item]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(b is _STOP for b in batch)
            for event in batch:
                if event is _STOP:
                    continue
                try:
                    self._client.emit(event)
                    self.emitted += 1
                except SealtrailError as e:
                    self.errors += 1
                    _log.error("access event %s not emitted: %s", event.event_id, e)
            if stop or self._queue.empty():
                self._flush()
            if stop:
                return

    def _flush(self) -> None:
        try:
            self._client.flush()
        except SealtrailError as e:
            self.errors += 1
            _log.error("access events not acknowledged: %s", e)

    def close(self, timeout_s: float = 30.0) -> None:
        """Emit what is queued, flush, release the producer and its spool."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout_s)
            self._thread = None
        if self._client is not None:
            try:
                self._client.close()
            except SealtrailError as e:
                _log.error("closing the access-event producer: %s", e)
            self._client = None
