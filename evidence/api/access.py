"""Every call to the API becomes an access event in the trail it serves.

A call first reserves a place in the queue (``reserve``), before the app runs;
with no place left (the producer is stuck, not merely slow) or no thread to
drain the queue, the call gets 503 and nothing is served. When its response
starts, the event is built and validated and handed to the reserved place,
which cannot fail for lack of room; an event that cannot be built turns the
response into 503 (see gate.py). One thread feeds the queue to the project's
own producer (AuditClient, with its local spool), so a slow or absent broker
never holds up a response; the spool keeps what the broker does not
acknowledge in time (invariant 1).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

from sealtrail.config import Settings
from sealtrail.event import Event
from sealtrail.producers.client import AuditClient
from sealtrail.producers.families import Auditor
from sealtrail.producers.outbound import prepare
from sealtrail.redact import Redactor

_log = logging.getLogger("sealtrail.serve.access")
_STOP = object()
BATCH = 500


class Slot:
    """A reserved place in the queue: it takes one event (``submit``) or is given back (``release``)."""

    def __init__(self, recorder: AccessRecorder) -> None:
        self._recorder = recorder
        self.used = False

    def submit(self, event: Event) -> bool:
        """Queue EVENT in this place; False only when no thread is left to emit it."""
        if self.used:
            raise RuntimeError("a slot takes one event")
        self.used = True
        return self._recorder._put(event)

    def release(self) -> None:
        if not self.used:
            self.used = True
            self._recorder._free()


class AccessRecorder:
    """Queue of access events and the thread that emits them through AuditClient."""

    def __init__(self, settings: Settings, client_factory: Callable[[], Any] | None = None) -> None:
        self.settings = settings
        self.redactor = Redactor.from_settings(settings.redaction)
        self.auditor = Auditor(self._prepare, source=settings.serve.source, tenant=settings.serve.tenant)
        self.capacity = settings.serve.audit_backlog
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()  # bounded by the slots, never by put
        self._held = 0  # reserved or queued, not yet taken by the thread
        self._lock = threading.Lock()
        self._factory = client_factory or (lambda: AuditClient(settings, spool=True))
        self._client: Any = None
        self._thread: threading.Thread | None = None
        self.emitted = 0
        self.errors = 0
        self.stranded: list[Any] = []  # held by the emitting thread when it died

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
        """Events reserved or queued and not yet taken by the emitting thread."""
        return self._held

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def reserve(self) -> Slot | None:
        """A place for one call's event, or None: the queue is full or nothing drains it."""
        if not self.alive:
            self.errors += 1
            _log.error("no access-event thread is running: calls are refused")
            return None
        with self._lock:
            if self._held >= self.capacity:
                return None
            self._held += 1
        return Slot(self)

    def _put(self, event: Event) -> bool:
        if not self.alive:
            self._free()
            self.errors += 1
            _log.error("access event %s not queued: no access-event thread is running", event.event_id)
            return False
        self._queue.put_nowait(event)
        return True

    def _free(self) -> None:
        with self._lock:
            self._held -= 1

    # the emitting thread ----------------------------------------------------------------------
    def start(self) -> None:
        self._client = self._factory()
        self._thread = threading.Thread(target=self._run, name="sealtrail-serve-access", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(b is _STOP for b in batch)
            for i, event in enumerate(batch):
                if event is _STOP:
                    continue
                self._free()
                try:
                    self._client.emit(event)
                    self.emitted += 1
                except Exception as e:  # noqa: BLE001 - one event's failure must not end the thread
                    self.errors += 1
                    _log.error("access event %s not emitted: %s: %s", event.event_id, type(e).__name__, e)
                except BaseException:
                    self._strand([b for b in batch[i:] if b is not _STOP])
                    raise
            if stop or self._queue.empty():
                self._flush()
            if stop:
                return

    def _strand(self, events: list[Any]) -> None:
        """The thread is dying: keep what it held and what is queued, for close() to emit with a new client."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                events.append(item)
        self.stranded.extend(events)
        _log.error("the access-event thread died holding %d events; they are emitted (or spooled) at close "
                    "and calls are refused until then", len(events))

    def _rescue(self) -> None:
        """Emit the events a dead thread left, through a fresh client (with its spool), at close."""
        if not self.stranded:
            return
        try:
            client = self._factory()
            for event in self.stranded:
                client.emit(event)
                self.emitted += 1
            client.flush()
            client.close()
            self.stranded.clear()
        except BaseException as e:  # noqa: BLE001 - name what is lost rather than lose it silently
            self.errors += len(self.stranded)
            _log.error("access events %s lost: %s: %s", [ev.event_id for ev in self.stranded], type(e).__name__, e)

    def _flush(self) -> None:
        try:
            self._client.flush()
        except Exception as e:  # noqa: BLE001
            self.errors += 1
            _log.error("access events not acknowledged: %s: %s", type(e).__name__, e)

    def close(self, timeout_s: float = 30.0) -> None:
        """Emit what is queued, flush, release the producer and its spool."""
        if self._thread is not None:
            dead = not self._thread.is_alive()
            self._queue.put(_STOP)
            self._thread.join(timeout_s)
            self._thread = None
            if dead:  # what reached the queue after the thread died
                self._strand([])
        self._rescue()
        if self._client is not None:
            try:
                self._client.close()
            except Exception as e:  # noqa: BLE001
                _log.error("closing the access-event producer: %s", e)
            self._client = None
