"""The workers' /healthz and /ready on the real broker: a worker that cannot reach the broker is not ready.

What Kubernetes' probes (deploy/k8s) and the image's HEALTHCHECK ask. The broker
is stopped under running workers and started again; /ready must follow it both
ways while /healthz keeps answering (a liveness probe must not restart a worker
for an outage that is not its own).
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.faults


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _metrics_url(log: Path, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"metrics on\s+(http://[\d.]+:\d+)/metrics", log.read_text(errors="replace"))  # wrapped at 80
        if found:
            return found.group(1)
        time.sleep(0.5)
    raise AssertionError(f"no metrics address in {log}:\n{log.read_text(errors='replace')[-3000:]}")


def _until(url: str, status: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = _get(url)
        if seen[0] == status:
            return seen[1]
        time.sleep(1)
    raise AssertionError(f"{url} never answered {status} in {timeout:.0f} s; last {seen}")


def test_ready_follows_the_broker_and_healthz_stays_up(trail, stack) -> None:  # type: ignore[no-untyped-def]
    from sealtrail.stack import start_broker, stop_broker

    trail.start("stream")
    trail.start("sink")
    stream = _metrics_url(trail.logs / "stream-0.log")
    sink = _metrics_url(trail.logs / "sink-1.log")
    for base in (stream, sink):
        assert "brokers up" in _until(f"{base}/ready", 200, 120)
    stop_broker(stack.settings, kill=True)
    try:
        for base in (stream, sink):
            why = _until(f"{base}/ready", 503, 60)
            assert "no broker reachable" in why or "has not polled" in why, why
            assert _get(f"{base}/healthz") == (200, "alive\n")
        status, body = _get(f"{stream}/metrics")
        assert status == 200 and "sealtrail_kafka_brokers_up 0.0" in body
    finally:
        start_broker(stack.settings)
    for base in (stream, sink):
        _until(f"{base}/ready", 200, 120)
    trail.emit(50)
    trail.wait_stored(50)
