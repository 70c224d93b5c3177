"""Fault injection on the real stack: kill -9 the workers while events flow.

Afterwards every emitted event must be in the bucket exactly once and every
chain must verify (DESIGN.md invariants 1 and 2). The number of kills per run
is SEALTRAIL_TEST_KILLS (default 6; the soak runs use more).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import pytest

from sealtrail.evidence.verify import verify_store

KILLS = int(os.environ.get("SEALTRAIL_TEST_KILLS", "6"))

pytestmark = pytest.mark.faults


class Emitter(threading.Thread):
    """Publishes waves of events until stopped, so kills land while work is in flight."""

    def __init__(self, trail, wave: int = 300, pause: float = 0.3) -> None:  # type: ignore[no-untyped-def]
        super().__init__(daemon=True)
        self.trail, self.wave, self.pause = trail, wave, pause
        self.ids: list[str] = []
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        seed = 1000
        try:
            while not self.halt.is_set():
                self.ids.extend(self.trail.emit(self.wave, seed=seed))
                seed += 1
                time.sleep(self.pause)
        except BaseException as e:  # noqa: BLE001 - surfaced by the test
            self.error = e


def assert_exactly_once(trail, emitted: list[str]) -> None:  # type: ignore[no-untyped-def]
    trail.wait_stored(len(set(emitted)), timeout=180)
    ids = trail.event_ids()
    missing = set(emitted) - set(ids)
    assert not missing, f"{len(missing)} acknowledged events lost"
    assert set(ids) == set(emitted)
    dupes = [i for i, n in ids.items() if n > 1]
    assert not dupes, f"{len(dupes)} events stored twice"
    chained = trail.chained()
    assert len(chained) == len(ids), "audit.chained holds a forked or repeated chain"
    report = verify_store(trail.store, trail.settings)
    assert report.ok, report.findings


def test_stream_worker_killed_mid_flow(trail) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(5)
    trail.start("sink")
    emitter = Emitter(trail)
    emitter.start()
    try:
        for _ in range(KILLS):
            stream = trail.start("stream")
            time.sleep(rng.uniform(4.0, 9.0))  # startup takes ~4 s; kills land before, during and after it
            trail.stop(stream, signal.SIGKILL)
    finally:
        emitter.halt.set()
        emitter.join()
    assert emitter.error is None, emitter.error
    trail.start("stream")
    assert_exactly_once(trail, emitter.ids)


def test_sink_worker_killed_mid_flow(trail) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(6)
    trail.start("stream")
    emitter = Emitter(trail)
    emitter.start()
    try:
        for _ in range(KILLS):
            sink = trail.start("sink")
            time.sleep(rng.uniform(2.0, 6.0))
            trail.stop(sink, signal.SIGKILL)
    finally:
        emitter.halt.set()
        emitter.join()
    assert emitter.error is None, emitter.error
    trail.start("sink")
    assert_exactly_once(trail, emitter.ids)
