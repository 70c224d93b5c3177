"""`sealtrail demo`: the whole pipeline on the embedded stack, end to end, with a summary.

Starts the stack if it is not running, publishes a realistic mixed load (plus a
few malformed records, to show the dead-letter path), runs one stream and one
sink worker as separate processes until every event is in a locked object,
stops them, verifies the whole bucket and runs a query. Each run adds new
events (a fresh seed), so running it twice extends the same trail and verifies
all of it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealtrail.config import Settings, load_settings
from sealtrail.errors import ServiceUnavailable

MALFORMED = (b"{not json", b'{"event_id": "x"}', b"\xff\xfe binary")


@dataclass
class DemoResult:
    emitted: int
    malformed: int
    stored_before: int
    stored_after: int
    seconds: dict[str, float] = field(default_factory=dict)
    verify: dict[str, Any] = field(default_factory=dict)
    query_rows: list[dict[str, Any]] = field(default_factory=list)


def stored_events(settings: Settings) -> int:
    from sealtrail.sinks.s3 import S3Store
    from sealtrail.sinks.worker import last_stored_seqs

    return sum(last_stored_seqs(S3Store(settings), settings.s3.prefix).values())


def spawn_worker(settings: Settings, command: str, log_dir: Path) -> subprocess.Popen:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / f"{command}.log", "ab")  # noqa: SIM115 - owned by the child
    env_overrides = {"SEALTRAIL_STREAM__METRICS_PORT": "0", "SEALTRAIL_SINK__METRICS_PORT": "0",
                     "SEALTRAIL_SINK__FLUSH_INTERVAL_S": "1"}
    import os

    return subprocess.Popen(
        [sys.executable, "-m", "sealtrail.cli", "--home", str(settings.home), command],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env_overrides},
    )


def stop_worker(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def publish(settings: Settings, count: int, seed: int) -> int:
    from sealtrail.kafka import make_producer
    from sealtrail.producers.client import AuditClient
    from sealtrail.stack.workload import generate

    with AuditClient(settings) as client:
        for event in generate(count, seed=seed):
            client.emit(event)
    raw = make_producer(settings)
    for value in MALFORMED:
        raw.produce(settings.kafka.topics.events, value)
    raw.flush(30)
    return client.sent


def run_demo(home: Path, count: int, say: Callable[[str], None], bar) -> DemoResult:
    from sealtrail import stack

    settings = load_settings({"home": str(home)})
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    current = stack.status(settings)
    if current is None or not current.up:
        if current is not None:
            stack.stop(settings, progress=say)
        stack.start(settings, progress=say)
        settings = load_settings({"home": str(home)})
    timings["stack"] = time.monotonic() - t0

    before = stored_events(settings)
    t0 = time.monotonic()
    emitted = publish(settings, count, seed=time.time_ns() % 2**32)
    timings["emit"] = time.monotonic() - t0
    say(f"published {emitted} events and {len(MALFORMED)} malformed records")

    logs = settings.home / "logs"
    t0 = time.monotonic()
    workers = [spawn_worker(settings, "stream", logs), spawn_worker(settings, "sink", logs)]
    try:
        target = before + emitted + len(MALFORMED)  # every input is a record: the malformed as rejected rows
        with bar("sealing into S3", emitted + len(MALFORMED)) as update:
            deadline = time.monotonic() + max(120.0, count / 500)
            while True:
                now_stored = stored_events(settings)
                update(now_stored - before)
                if now_stored >= target:
                    break
                for proc, name in zip(workers, ("stream", "sink")):
                    if proc.poll() is not None:
                        raise ServiceUnavailable(name, f"worker exited with {proc.returncode}; see {logs}/{name}.log")
                if time.monotonic() > deadline:
                    raise ServiceUnavailable("pipeline", f"only {now_stored - before}/{emitted} events sealed; see {logs}")
                time.sleep(1.0)
    finally:
        for proc in workers:
            stop_worker(proc)
    timings["seal"] = time.monotonic() - t0
    after = stored_events(settings)

    from sealtrail.evidence.check import verify_evidence
    from sealtrail.evidence.query import open_events, run_sql
    from sealtrail.sinks.s3 import S3Store

    t0 = time.monotonic()
    with bar("verifying", None) as update:
        report = verify_evidence(settings, store=S3Store(settings), progress=update).report
    timings["verify"] = time.monotonic() - t0
    con = open_events(settings)
    rows = run_sql(
        con,
        "select actor_ip, count(*) as failed_logins, count(distinct actor_id) as accounts "
        "from events where action = 'auth.login_failed' group by actor_ip order by failed_logins desc limit 3",
    )
    return DemoResult(emitted, len(MALFORMED), before, after, timings, report.as_dict(), rows)
