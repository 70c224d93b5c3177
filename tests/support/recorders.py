"""A producer's emit that keeps what it got: what the families and middleware tests call instead of a client.

It validates through `prepare` as AuditClient.emit does, so a helper that
builds an invalid event fails here as it would against the real client.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sealtrail.producers import prepare


class Recorder:
    """An emit that validates like the client does and keeps the events as JSON."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> str:
        prepared = prepare(event)
        self.events.append(prepared.model_dump(mode="json", exclude_none=True))
        return str(prepared.event_id)


class AsyncRecorder(Recorder):
    """The same for asyncio callers; it yields once, so an emit is a real suspension point."""

    async def __call__(self, event: dict[str, Any]) -> str:  # type: ignore[override]
        await asyncio.sleep(0)
        return super().__call__(event)
