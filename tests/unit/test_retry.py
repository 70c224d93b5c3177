"""sealtrail.retry: what is retried, how long it waits, and that a stop ends the waiting."""

from __future__ import annotations

import threading
import time

import pytest

from sealtrail.errors import ConfigError, ServiceUnavailable
from sealtrail.retry import STORE_BACKOFF, Backoff, call_with_retry


class Flaky:
    """Fails with ``error`` the first ``failures`` calls, then returns the number of calls."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.calls


def test_a_transient_error_is_retried_until_the_call_returns() -> None:
    waits: list[float] = []
    flaky = Flaky(3, ServiceUnavailable("s3", "away"))
    assert call_with_retry(flaky, backoff=Backoff(0.001, 0.002), on_retry=lambda e, w: waits.append(w)) == 4
    assert waits == [0.001, 0.002, 0.002]


def test_anything_else_is_raised_at_once() -> None:
    flaky = Flaky(1, ConfigError("x", "bad"))
    with pytest.raises(ConfigError):
        call_with_retry(flaky, backoff=Backoff(0.001, 0.001))
    assert flaky.calls == 1


def test_a_caller_may_retry_more_than_transient_errors() -> None:
    assert call_with_retry(Flaky(2, ConfigError("x", "bad")), backoff=Backoff(0.001, 0.001),
                           retry_on=ConfigError) == 3


def test_a_stop_ends_the_wait_at_once_and_raises_the_error() -> None:
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    began = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        call_with_retry(Flaky(10**9, ServiceUnavailable("kafka", "away")), backoff=Backoff(30.0, 30.0), stop=stop)
    assert time.monotonic() - began < 5


def test_giving_up_after_a_time_raises_the_last_error() -> None:
    with pytest.raises(ServiceUnavailable):
        call_with_retry(Flaky(10**9, ServiceUnavailable("s3", "away")), backoff=Backoff(0.01, 0.01),
                        give_up_after_s=0.05)


def test_waits_double_up_to_the_most_and_jitter_stays_below() -> None:
    assert [Backoff(0.5, 30.0).delay(n) for n in (1, 2, 3, 7, 8, 10_000)] == [0.5, 1.0, 2.0, 30.0, 30.0, 30.0]
    for n in range(1, 40):
        assert 0 <= STORE_BACKOFF.delay(n) <= min(5.0, 0.2 * 2 ** (n - 1))
