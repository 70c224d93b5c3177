"""One timed `verify_store` over a bundle folder or the configured bucket, in a fresh interpreter, as JSON.

bench/verify_speed.py (a folder) and bench/run.py (the bucket, settings from
SEALTRAIL_* and the stack state) run this as its own process for each run. It is a
separate script that imports sealtrail only inside timed(), because verify's
worker processes start from a forkserver that imports the caller's __main__
once: a main module full of imports would charge verify for them, where
`sealtrail verify` itself pays only for its small CLI module.

    .venv/bin/python bench/verify_once.py BUNDLE_DIR [WORKERS]
    .venv/bin/python bench/verify_once.py --bucket
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, Self

import psutil

PREFIX = "trail/"  # of the bundle folders bench/verify_speed.py builds


class CpuWatch:
    """This process's and its descendants' CPU seconds (pool workers included, sampled every 50 ms
    so a worker that exits is still counted), and the machine's busy CPU seconds in the same window."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        for p in [me, *me.children(recursive=True)]:
            try:
                t = p.cpu_times()
            except psutil.Error:
                continue
            self.seen[p.pid] = max(self.seen.get(p.pid, 0.0), t.user + t.system)

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            self._sample()

    @staticmethod
    def busy() -> float:
        t = psutil.cpu_times()
        return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)

    def __enter__(self) -> Self:
        self._sample()
        self.start_ours, self.start_busy = sum(self.seen.values()), self.busy()
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()
        self._sample()
        self.ours = sum(self.seen.values()) - self.start_ours
        self.machine = self.busy() - self.start_busy


def timed(root: Path | None, workers: int | None) -> dict[str, Any]:
    """Wall seconds, events verified, CPU seconds of verify's processes and of other work meanwhile.

    root None: the bucket the settings name, through S3 (the store is made
    inside the timing, as the command makes it).
    """
    from sealtrail.config import S3Settings, Settings, load_settings
    from sealtrail.evidence import walk
    from sealtrail.evidence.bundle import DirectoryStore

    settings = Settings(s3=S3Settings(prefix=PREFIX)) if root is not None else load_settings()
    with CpuWatch() as cpu:
        start = time.perf_counter()
        if root is None:
            from sealtrail.sinks.s3 import S3Store

            store: Any = S3Store(settings)
        else:
            store = DirectoryStore(root)
        report = walk.verify_store(store, settings, workers=workers)
        seconds = time.perf_counter() - start
    return {"ok": report.ok, "findings": [f.as_dict() for f in report.findings[:5]], "seconds": seconds, "events": report.events, "objects": report.objects, "cpu": cpu.ours,
            "other_cores": max(0.0, cpu.machine - cpu.ours) / seconds}


if __name__ == "__main__":
    where = None if sys.argv[1] == "--bucket" else Path(sys.argv[1])
    print(json.dumps(timed(where, int(sys.argv[2]) if len(sys.argv) > 2 else None)))
