"""A process pool that starts in the background, so its start-up overlaps useful work.

Starting worker processes costs about half a second here, most of it the
imports a worker needs (pyarrow, pydantic, cryptography): on two cores that is
a quarter of a verify run. The pool's forkserver imports the worker's module
once and forks each worker from it; until the workers are up, run() does the
work in the calling thread instead of waiting for them. The forkserver also
imports the caller's __main__ (the `sealtrail` script) once: otherwise every
worker would run it again on start, as multiprocessing does for a main script,
which measured 0.2 to 0.5 CPU s per worker. Never fork the caller
itself: it is running threads, and a forked child can inherit a held lock.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, wait
from typing import Any


def _ready() -> None:
    """Runs once in each worker as it starts, so the pool counts as up only when its workers are."""


class BackgroundPool:
    """Runs tasks in worker processes once they are up, and one at a time in the caller until then.

    One at a time: with several threads calling, more would only share one
    core and hold up the objects they took once the workers are idle. If the
    pool cannot start at all, every task runs in its caller.
    """

    def __init__(self, processes: int, preload: str) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._state = threading.Condition()
        self._settled = False  # the pool is up, or failed to start
        self._inline_busy = False
        self._starter = threading.Thread(target=self._start, args=(processes, preload), daemon=True,
                                         name="sealtrail-pool-start")
        self._starter.start()

    def _start(self, processes: int, preload: str) -> None:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if context.get_start_method() == "forkserver":
            context.set_forkserver_preload(["__main__", preload])
        pool: ProcessPoolExecutor | None = None
        try:
            pool = ProcessPoolExecutor(max_workers=processes, mp_context=context)
            wait([pool.submit(_ready) for _ in range(processes)])
        except (OSError, RuntimeError):  # no worker processes here
            pool = None
        with self._state:
            self._pool, self._settled = pool, True
            self._state.notify_all()

    def run(self, fn: Callable[..., Any], *args: Any) -> Future | Any:
        """fn(*args) in a worker (a Future) once the pool is up; otherwise here (the result)."""
        with self._state:
            while not self._settled and self._inline_busy:
                self._state.wait()
            if self._pool is not None:
                return self._pool.submit(fn, *args)
            limited = not self._settled
            if limited:
                self._inline_busy = True
        try:
            return fn(*args)
        finally:
            if limited:
                with self._state:
                    self._inline_busy = False
                    self._state.notify_all()

    def wait_started(self) -> bool:
        """Block until the workers are up (True) or could not be started (False)."""
        self._starter.join()
        return self._pool is not None

    def shutdown(self) -> None:
        self._starter.join()
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
