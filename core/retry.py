"""Calling again what may succeed later: one way for the sink, head recovery, the CDC relay and the spool replay.

What is retried is what says so (sealtrail.errors.Transient: a service away)
unless a caller names more; anything else is raised at once. Waits double
from ``first`` up to ``most``; with jitter each wait is drawn uniformly below
that ("full jitter"), so many workers meeting one outage do not retry in
step. A stop event ends a wait at once and raises the last error: a worker
shutting down never waits out an outage. tenacity runs the attempts; the
producer SDK retries with it too, so it is a dependency of the base install.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity

from sealtrail.errors import Transient

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    first: float  # seconds after the first failed attempt
    most: float  # the longest wait
    jitter: bool = False

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (from 1)."""
        longest = min(self.most, self.first * 2.0 ** min(attempt - 1, 64))
        return random.uniform(0, longest) if self.jitter else longest


# The object store away (sink and head recovery): many workers meet one outage, so with jitter.
STORE_BACKOFF = Backoff(0.2, 5.0, jitter=True)


class _Stopped(Exception):
    """The stop event was set during a wait: end it and raise the error that led to it."""


def call_with_retry(
    call: Callable[..., T],
    *args: Any,
    backoff: Backoff,
    stop: threading.Event | None = None,
    give_up_after_s: float | None = None,
    retry_on: type | tuple[type, ...] = Transient,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """call(*args), again after each ``retry_on`` error, until it returns.

    The error is raised when ``stop`` is set (before or during a wait) or
    ``give_up_after_s`` has passed since the first attempt. ``on_retry`` is
    told each error and the wait that follows it (to log and count).
    """
    last: list[BaseException] = []

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        if error is not None and state.next_action is not None:
            last[:] = [error]
            if on_retry is not None:
                on_retry(error, state.next_action.sleep)

    def sleep(seconds: float) -> None:
        if stop is None:
            time.sleep(seconds)
        elif stop.wait(seconds):
            raise _Stopped

    stops: list[Any] = []
    if stop is not None:
        stops.append(tenacity.stop_when_event_set(stop))
    if give_up_after_s is not None:
        stops.append(tenacity.stop_after_delay(give_up_after_s))
    retrying = tenacity.Retrying(
        # Transient is a marker, not an exception class: only isinstance sees it
        retry=tenacity.retry_if_exception(lambda e: isinstance(e, retry_on)),
        wait=lambda state: backoff.delay(state.attempt_number),
        stop=tenacity.stop_any(*stops) if stops else tenacity.stop_never,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(call, *args)
    except _Stopped:
        raise last[0] from None
