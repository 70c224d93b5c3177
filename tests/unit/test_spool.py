"""sealtrail.producers.spool: durable, bounded, ordered, one live owner per slot; nothing lost to kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sealtrail.errors import SpoolError, SpoolFullError
from sealtrail.producers.spool import Spool, orphans, status


def items(n: int, start: int = 0, size: int = 10) -> list[tuple[str, bytes]]:
    return [(f"k{i}", f"{i:0{size}d}".encode()) for i in range(start, start + n)]


def test_append_peek_remove_in_order(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=10_000) as spool:
        spool.append(items(5))
        spool.append(items(5, start=5))
        assert spool.count == 10 and spool.used_bytes == 100
        first = spool.peek(4)
        assert [s.key for s in first] == ["k0", "k1", "k2", "k3"]
        spool.remove_through(first[-1].seq)
        assert [s.key for s in spool.peek(100)] == [f"k{i}" for i in range(4, 10)]
        assert spool.count == 6 and spool.used_bytes == 60


def test_survives_reopening(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=10_000) as spool:
        spool.append(items(3))
    with Spool(tmp_path / "s.db", max_bytes=10_000) as spool:
        assert spool.count == 3 and spool.used_bytes == 30
        assert [s.value for s in spool.peek(10)] == [v for _, v in items(3)]


def test_full_raises_and_names_the_bound(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=50, when_full="raise") as spool:
        spool.append(items(5))
        with pytest.raises(SpoolFullError, match="50 of 50 bytes"):
            spool.append(items(1, start=5))
        assert spool.count == 5  # the refused event was not half-written


def test_event_larger_than_the_spool_is_refused_even_when_blocking(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=20, when_full="block") as spool, pytest.raises(SpoolFullError):
        spool.append([("big", b"x" * 21)])


def test_full_blocks_until_replay_makes_room(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=50, when_full="block") as spool:
        spool.append(items(5))
        done = threading.Event()

        def writer() -> None:
            spool.append(items(1, start=5))
            done.set()

        t = threading.Thread(target=writer)
        t.start()
        assert not done.wait(0.3), "append should wait while the spool is full"
        spool.remove_through(spool.peek(1)[0].seq)
        assert done.wait(5)
        t.join()
        assert [s.key for s in spool.peek(10)] == ["k1", "k2", "k3", "k4", "k5"]


def test_block_with_timeout_raises(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=10, when_full="block", block_timeout_s=0.2) as spool:
        spool.append(items(1))
        began = time.monotonic()
        with pytest.raises(SpoolFullError, match="after waiting"):
            spool.append(items(1, start=1))
        assert time.monotonic() - began >= 0.2


def test_one_owner_per_slot_and_claim_takes_the_next(tmp_path: Path) -> None:
    first = Spool.claim(tmp_path, max_bytes=1000)
    second = Spool.claim(tmp_path, max_bytes=1000)
    try:
        assert first.path.name == "slot-000.db" and second.path.name == "slot-001.db"
        with pytest.raises(SpoolError, match="held by another live process"):
            Spool(first.path, max_bytes=1000)
    finally:
        first.close()
        second.close()
    with Spool.claim(tmp_path, max_bytes=1000) as again:
        assert again.path.name == "slot-000.db"


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="when_full"):
        Spool(tmp_path / "s.db", max_bytes=10, when_full="drop")  # type: ignore[arg-type]


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sealtrail.producers.spool import Spool
    spool = Spool.claim(Path(sys.argv[1]), max_bytes=10**9)
    i = 0
    while True:
        spool.append([(f"k{i}", b"v%d" % i)])
        print(i, flush=True)          # reported only after the fsynced commit
        i += 1
    """
)


def test_kill_9_loses_nothing_acknowledged_and_the_slot_becomes_an_orphan(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    acknowledged = -1
    assert proc.stdout is not None
    while acknowledged < 300:
        acknowledged = int(proc.stdout.readline())
    held = status(tmp_path)
    assert [s.held for s in held] == [True]
    assert orphans(tmp_path) == []  # a live process holds it
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    [orphan] = orphans(tmp_path)
    with Spool(orphan, max_bytes=10**9) as spool:
        keys = [s.key for s in spool.peek(10**6)]
    # everything reported is there, in order, with no gap (the writer may have gone on past what was read)
    assert len(keys) > acknowledged
    assert keys == [f"k{i}" for i in range(len(keys))]


def unreachable_settings(tmp_path: Path, **spool: object):  # type: ignore[no-untyped-def]
    from sealtrail.config import load_settings
    from sealtrail.stack import free_port

    return load_settings({
        "home": str(tmp_path / "home"),
        "kafka": {"bootstrap": f"127.0.0.1:{free_port()}"},  # nothing listens there
        "producer": {"delivery_timeout_s": 0.5},
        "spool": {"enabled": True, "path": str(tmp_path / "spool"), "retry_interval_s": 0.2, **spool},
    })


EVENT = {"category": "auth", "action": "auth.login", "actor": {"id": "alice"}, "tenant": "acme", "source": "web"}


def test_client_spools_what_the_broker_did_not_acknowledge(tmp_path: Path) -> None:
    from sealtrail.producers import AuditClient

    client = AuditClient(unreachable_settings(tmp_path))
    try:
        first = client.emit(EVENT)
        client.flush()  # returns: the event is durable in the spool, not lost
        assert client.spooling and client.spool is not None and client.spool.count == 1
        second = client.emit(EVENT)  # while spooling, straight to the spool, behind the first
        assert [s.key for s in client.spool.peek(10)] == [first, second]
    finally:
        client.close()
    assert [s.events for s in status(tmp_path / "spool")] == [2]


def test_client_refuses_oversized_events_and_raises_when_the_spool_is_full(tmp_path: Path) -> None:
    from sealtrail.errors import InvalidEventError
    from sealtrail.producers import AuditClient

    client = AuditClient(unreachable_settings(tmp_path, max_bytes=4096))
    try:
        with pytest.raises(InvalidEventError, match="oversized"):
            client.emit({**EVENT, "metadata": {"blob": "x" * 1_100_000}})  # over the 1 MiB default
        client.emit(EVENT)
        client.flush()
        assert client.spooling
        with pytest.raises(SpoolFullError, match="spool.max_bytes"):
            for _ in range(100):
                client.emit(EVENT)
    finally:
        client.close()


def test_only_outages_are_spooled() -> None:
    """A refusal (too large, unknown topic, not authorised) would fail the same way on every replay."""
    from confluent_kafka import KafkaError

    from sealtrail.producers.client import spoolable

    assert spoolable(KafkaError(KafkaError._MSG_TIMED_OUT))
    assert spoolable(KafkaError(KafkaError._TRANSPORT))
    assert not spoolable(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    assert not spoolable(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))


def test_spool_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    """L6: slot databases were 0644 in a 0755 folder; they hold whole events waiting for the broker."""
    import stat

    old = os.umask(0o022)
    try:
        spool = Spool.claim(tmp_path / "home" / "spool", max_bytes=1 << 20)
        spool.append([("k", b"{}")])
    finally:
        os.umask(old)
    files = sorted((tmp_path / "home" / "spool").iterdir())
    assert {p.name for p in files} >= {"slot-000.db", "slot-000.db-wal", "slot-000.lock"}
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: 0o600 for p in files}
    assert stat.S_IMODE((tmp_path / "home" / "spool").stat().st_mode) == 0o700
    spool.close()
