"""BackgroundPool: work runs in the caller until the worker processes are up, then in them."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future

import pytest

from sealtrail.evidence import workers
from sealtrail.evidence.workers import BackgroundPool


def test_tasks_run_in_worker_processes_once_they_are_up() -> None:
    pool = BackgroundPool(2, preload="sealtrail.evidence.workers")
    try:
        pool.wait_started()
        outcome = pool.run(os.getpid)
        assert isinstance(outcome, Future)
        assert outcome.result(timeout=30) != os.getpid()
    finally:
        pool.shutdown()


def test_until_then_tasks_run_in_the_caller_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    class Slow:  # a pool that takes as long as the test wants to start
        def __init__(self, **_: object) -> None:
            release.wait(30)

        def submit(self, fn, *args):  # type: ignore[no-untyped-def]
            future: Future = Future()
            future.set_result(("worker", fn(*args)))
            return future

        def shutdown(self, **_: object) -> None:
            pass

    monkeypatch.setattr(workers, "ProcessPoolExecutor", Slow)
    pool = BackgroundPool(2, preload="sealtrail.evidence.workers")
    running, most = [0], [0]
    lock = threading.Lock()

    def task() -> str:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return "caller"

    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(pool.run(task))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["caller"] * 4 and most[0] == 1
    release.set()
    pool.wait_started()
    assert pool.run(task).result() == ("worker", "caller")
    pool.shutdown()


def test_a_pool_that_cannot_start_leaves_the_work_to_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**_: object) -> None:
        raise OSError("no processes here")

    monkeypatch.setattr(workers, "ProcessPoolExecutor", refuse)
    pool = BackgroundPool(2, preload="sealtrail.evidence.workers")
    assert pool.wait_started() is False
    assert pool.run(os.getpid) == os.getpid()
    pool.shutdown()
