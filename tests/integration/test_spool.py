"""No loss when Kafka is down: the producer's spool on the real embedded stack.

The broker is stopped; a publishing process keeps emitting (each wave
reported only after flush() returned, i.e. once every event in it was
acknowledged or fsynced into the spool) and is killed with SIGKILL mid-wave.
A new process on the same spool folder starts while the broker is still
down, the broker comes back, the spool is replayed, and the real stream and
sink workers seal everything: every acknowledged event exactly once, and the
chains verify (DESIGN.md invariants 1 and 2).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest

from sealtrail.evidence.walk import verify_store
from sealtrail.kafka import read_to_end
from sealtrail.stack import start_broker, status, stop_broker

pytestmark = pytest.mark.faults

PUBLISHER = textwrap.dedent(
    """
    import sys, time
    from sealtrail.config import load_settings
    from sealtrail.producers import AuditClient
    from sealtrail.stack.workload import generate

    acked_file, seed, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    client = AuditClient(load_settings())
    print("started spooling=%s spooled=%d" % (client.spooling, client.spool.count), flush=True)
    with open(acked_file, "a") as acked:
        for wave in range(1000 if mode == "forever" else 1):
            ids = [client.emit(e) for e in generate(100, seed=seed + wave)]
            client.flush()                      # now every one of them is acknowledged or in the spool
            acked.write("".join(i + "\\n" for i in ids))
            acked.flush()
            print("wave", wave, "spooling", client.spooling, "spooled", client.spool.count, flush=True)
    if mode == "drain":
        began = time.monotonic()
        drained = client.drain(180)
        print("drained" if drained else "NOT DRAINED", round(time.monotonic() - began, 1), flush=True)
        client.close()
        sys.exit(0 if drained else 3)
    """
)


def publisher(trail, spool_dir: Path, acked: Path, seed: int, mode: str, log: Path) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        **trail.env,
        "SEALTRAIL_SPOOL__ENABLED": "true",
        "SEALTRAIL_SPOOL__PATH": str(spool_dir),
        "SEALTRAIL_SPOOL__RETRY_INTERVAL_S": "0.5",
        "SEALTRAIL_PRODUCER__DELIVERY_TIMEOUT_S": "2",
    }
    return subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, str(acked), str(seed), mode],
        env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_broker_outage_and_kill_9_lose_nothing(trail, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spool_dir, acked, log = tmp_path / "spool", tmp_path / "acked.txt", tmp_path / "publisher.log"
    stop_broker(trail.settings)
    try:
        first = publisher(trail, spool_dir, acked, seed=500, mode="forever", log=log)
        wait_for(lambda: len(lines(acked)) >= 400 or first.poll() is not None, 90, "400 spooled events")
        assert first.poll() is None, log.read_text()
        os.kill(first.pid, signal.SIGKILL)  # mid-wave: some emitted events were never acknowledged
        first.wait()
        accepted_before_kill = set(lines(acked))

        second = publisher(trail, spool_dir, acked, seed=900, mode="drain", log=log)
        wait_for(lambda: len(lines(acked)) >= len(accepted_before_kill) + 100, 60, "the restarted publisher's wave")
        assert second.poll() is None, "the restarted publisher must wait for the broker, not give up"
    finally:
        current = status(trail.settings)
        if current is not None and not current.services["kafka"].process_alive:
            start_broker(trail.settings)
    assert second.wait(180) == 0, log.read_text()
    accepted = set(lines(acked))
    assert len(accepted) >= 500

    in_topic: set[str] = set()
    for batch in read_to_end(trail.settings, trail.settings.kafka.topics.events, list(range(trail.partitions))):
        in_topic.update(orjson.loads(m.value())["event_id"] for m in batch)
    assert accepted <= in_topic, f"{len(accepted - in_topic)} acknowledged events never reached Kafka"

    trail.start("stream")
    trail.start("sink")
    trail.wait_stored(len(in_topic), timeout=180)
    stored = trail.event_ids()
    assert set(stored) == in_topic
    assert max(stored.values()) == 1, "an event was sealed twice"
    report = verify_store(trail.store, trail.settings)
    assert report.ok, report.findings
    assert "started spooling=True" in log.read_text(), "the restarted publisher found the dead one's spool"


def test_asyncio_client_with_typed_helpers_reaches_the_trail(trail, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The asyncio face, the families and the request context, end to end with the spool on and the broker up."""
    import asyncio

    from sealtrail.producers import AsyncAuditClient, Auditor, audit_context

    settings = trail.settings.model_copy(
        update={"spool": trail.settings.spool.model_copy(update={"enabled": True, "path": tmp_path / "spool"})}
    )

    async def request(audit, i: int) -> list[str]:  # type: ignore[no-untyped-def]
        with audit_context(actor_id=f"user-{i}", ip="198.51.100.7", tenant="acme", request_id=f"req-{i}"):
            await asyncio.sleep(0)
            return [
                await audit.auth.login(method="password"),
                await audit.change.update("order", f"o-{i}", before={"status": "new"},
                                          after={"status": "paid", "card": "4111 1111 1111 1111"}),
                await audit.access.export("report", f"r-{i}", rows=i),
            ]

    async def main() -> list[str]:
        async with AsyncAuditClient(settings) as client:
            audit = Auditor(client.emit, source="web")
            batches = await asyncio.gather(*(request(audit, i) for i in range(100)))
            await client.flush()
            assert not client.sync.spooling
        return [i for b in batches for i in b]

    ids = asyncio.run(main())
    trail.start("stream")
    trail.start("sink")
    trail.wait_stored(len(ids))
    stored = trail.event_ids()
    assert set(stored) == set(ids) and max(stored.values()) == 1
    rows = trail.store  # the card number never reached the bucket
    from sealtrail.layout import data_prefix
    from sealtrail.objects import read_table

    for key in rows.keys(data_prefix(trail.settings.s3.prefix)):
        table = read_table(rows.get(key).body)
        assert not any("4111" in (v or "") for v in table.column("after").to_pylist())
        actors = table.column("actor_id").to_pylist()
        requests = table.column("request_id").to_pylist()
        assert all(r == f"req-{a.split('-')[1]}" for a, r in zip(actors, requests, strict=True))


def test_spool_drain_replays_a_dead_process_slot(trail, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`sealtrail spool drain` adopts slots nobody holds and replays them; `spool status` shows them empty.

    In batches of 7, so the slot takes eight acknowledged round trips.
    """
    from sealtrail.producers import encode, prepare
    from sealtrail.producers.spool import Spool
    from sealtrail.stack.workload import generate

    folder = tmp_path / "spool"
    events = [prepare(e) for e in generate(50, seed=77)]
    with Spool.claim(folder, max_bytes=10**7) as left_behind:
        left_behind.append([(str(e.event_id), encode(e)) for e in events])

    def sealtrail(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sealtrail.cli", *args], capture_output=True, text=True,
                              env={**os.environ, **trail.env, "SEALTRAIL_SPOOL__REPLAY_BATCH": "7"}, timeout=120)

    assert "50 events" in sealtrail("spool", "status", "--path", str(folder)).stdout
    drained = sealtrail("spool", "drain", "--path", str(folder), "--timeout", "60")
    assert drained.returncode == 0, drained.stderr
    assert "0 events" in sealtrail("spool", "status", "--path", str(folder)).stdout
    in_topic: set[str] = set()
    for batch in read_to_end(trail.settings, trail.settings.kafka.topics.events, list(range(trail.partitions))):
        in_topic.update(orjson.loads(m.value())["event_id"] for m in batch)
    assert in_topic == {str(e.event_id) for e in events}
