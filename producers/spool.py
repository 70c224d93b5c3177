"""A bounded, durable local spool: where events wait while Kafka is unreachable or slow.

SQLite in WAL mode with ``synchronous=FULL``: an append returns only after
its transaction is fsynced, so an event the spool accepted survives kill -9
and power loss. Rows are replayed in the order they were appended and removed
only after the broker acknowledged them; a crash between the two replays them
again, and the stream drops the repeats by event id (the key).

Several processes of one service may share a spool folder: each live client
holds one slot file (``slot-000.db``, ``slot-001.db``, ...) under an exclusive
``flock`` on its ``.lock`` beside it, which the kernel releases when the
process dies. Slots left behind by dead processes are adopted and drained by
any live client of the same folder (``orphans``), so a service restarted with
fewer processes still replays everything.

The bound is on the spooled event bytes. When an append would pass it, the
spool either raises SpoolFullError at once (``when_full="raise"``) or waits for
the replay to make room (``"block"``, optionally with a timeout, then raises):
an event is never dropped silently.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sealtrail.errors import InvalidEventError, SpoolError, SpoolFullError

SLOT_PREFIX = "slot-"
MAX_SLOTS = 1000
_SCHEMA = """
create table if not exists events (
    seq   integer primary key autoincrement,
    key   text not null,
    value blob not null
)
"""


@dataclass(frozen=True)
class Spooled:
    seq: int
    key: str
    value: bytes


class Spool:
    """One slot file, held exclusively by this process until ``close``."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int,
        when_full: Literal["block", "raise"] = "raise",
        block_timeout_s: float | None = None,
        wait: bool = False,
    ) -> None:
        if max_bytes < 1:
            raise InvalidEventError("invalid_value", "spool.max_bytes", "must be positive")
        if when_full not in ("block", "raise"):
            raise InvalidEventError("invalid_value", "spool.when_full", "block or raise")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.when_full = when_full
        self.block_timeout_s = block_timeout_s
        lock_fd = _lock(self.path, wait=wait)
        if lock_fd is None:
            raise SpoolError(str(self.path), "held by another live process")
        self._lock_fd = lock_fd
        self._mutex = threading.Lock()
        self._room = threading.Condition(self._mutex)
        try:
            # created 0600 before SQLite opens it: its -wal and -shm files take the database file's mode
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._db.execute("pragma journal_mode=wal")
            self._db.execute("pragma synchronous=full")
            self._db.execute(_SCHEMA)
            count, used = self._db.execute("select count(*), coalesce(sum(length(value)), 0) from events").fetchone()
        except (sqlite3.Error, OSError) as e:
            os.close(self._lock_fd)
            raise SpoolError(str(self.path), f"unusable ({e})") from e
        self.count, self.used_bytes = int(count), int(used)
        self._closed = False

    @classmethod
    def claim(cls, directory: Path, **options: object) -> Spool:
        """The first slot in ``directory`` that no live process holds (creating the folder and slot as needed)."""
        directory = Path(directory)
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # events wait here: only their owner may read them
        except OSError as e:
            raise SpoolError(str(directory), f"cannot create the spool folder: {e}") from e
        for i in range(MAX_SLOTS):
            path = directory / f"{SLOT_PREFIX}{i:03d}.db"
            try:
                return cls(path, **options)  # type: ignore[arg-type]
            except SpoolError as e:
                if e.problem != "held by another live process":
                    raise
        raise SpoolError(str(directory), f"all {MAX_SLOTS} slots are held by live processes")

    # writing ------------------------------------------------------------------------------
    def append(self, items: Iterable[tuple[str, bytes]]) -> None:
        """Durably add events (key, JSON bytes) at the end, in one fsynced transaction."""
        batch = [(k, v) for k, v in items]
        size = sum(len(v) for _k, v in batch)
        if not batch:
            return
        with self._room:
            self._check_open()
            if size > self.max_bytes:
                raise SpoolFullError(str(self.path), size, self.max_bytes)
            self._wait_for_room(size)
            try:
                self._db.execute("begin immediate")
                self._db.executemany("insert into events (key, value) values (?, ?)", batch)
                self._db.execute("commit")
            except sqlite3.Error as e:
                if self._db.in_transaction:
                    self._db.execute("rollback")
                raise SpoolError(str(self.path), f"write failed ({e}); the event was not accepted") from e
            self.count += len(batch)
            self.used_bytes += size

    def _wait_for_room(self, size: int) -> None:
        if self.used_bytes + size <= self.max_bytes:
            return
        if self.when_full == "raise":
            raise SpoolFullError(str(self.path), self.used_bytes, self.max_bytes)
        began = time.monotonic()
        while self.used_bytes + size > self.max_bytes:
            waited = time.monotonic() - began
            if self.block_timeout_s is not None and waited >= self.block_timeout_s:
                raise SpoolFullError(str(self.path), self.used_bytes, self.max_bytes, waited)
            remaining = None if self.block_timeout_s is None else self.block_timeout_s - waited
            self._room.wait(timeout=min(remaining, 1.0) if remaining is not None else 1.0)
            self._check_open()

    # replaying ----------------------------------------------------------------------------
    def peek(self, limit: int) -> list[Spooled]:
        """The oldest ``limit`` events, in append order (they stay until ``remove_through``)."""
        with self._mutex:
            self._check_open()
            rows = self._db.execute("select seq, key, value from events order by seq limit ?", (limit,)).fetchall()
        return [Spooled(int(seq), key, bytes(value)) for seq, key, value in rows]

    def remove_through(self, seq: int) -> None:
        """Forget every event up to ``seq`` (the broker acknowledged them)."""
        with self._room:
            self._check_open()
            self._db.execute("begin immediate")
            count, size = self._db.execute(
                "select count(*), coalesce(sum(length(value)), 0) from events where seq <= ?", (seq,)
            ).fetchone()
            self._db.execute("delete from events where seq <= ?", (seq,))
            self._db.execute("commit")
            self.count -= int(count)
            self.used_bytes -= int(size)
            if self.count == 0:
                # the file shrinks back once empty (the WAL would otherwise keep its high-water size)
                self._db.execute("pragma wal_checkpoint(truncate)")
            self._room.notify_all()

    def __iter__(self) -> Iterator[Spooled]:
        return iter(self.peek(self.count or 1))

    def close(self) -> None:
        with self._room:
            if self._closed:
                return
            self._closed = True
            self._db.close()
            os.close(self._lock_fd)
            self._room.notify_all()

    def _check_open(self) -> None:
        if self._closed:
            raise SpoolError(str(self.path), "closed")

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock(path: Path, *, wait: bool) -> int | None:
    """An exclusive flock on ``path.lock``; None when another live process holds it."""
    lock_path = path.with_suffix(".lock")
    try:
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    except OSError as e:
        raise SpoolError(str(path), f"cannot open the lock file: {e}") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def slots(directory: Path) -> list[Path]:
    return sorted(Path(directory).glob(f"{SLOT_PREFIX}*.db"))


def orphans(directory: Path, *, exclude: Path | None = None) -> list[Path]:
    """Slot files that hold events and that no live process holds: left by a process that died."""
    found = []
    for path in slots(directory):
        if exclude is not None and path == exclude:
            continue
        fd = _lock(path, wait=False)
        if fd is None:
            continue
        try:
            with closing(sqlite3.connect(path, timeout=5)) as db:
                (count,) = db.execute("select count(*) from events").fetchone()
        except sqlite3.Error:
            count = 0
        finally:
            os.close(fd)
        if count:
            found.append(path)
    return found


@dataclass(frozen=True)
class SlotStatus:
    path: Path
    events: int
    bytes: int
    held: bool


def status(directory: Path) -> list[SlotStatus]:
    """Every slot in ``directory``: how many events wait in it and whether a live process holds it."""
    out = []
    for path in slots(directory):
        fd = _lock(path, wait=False)
        held = fd is None
        try:
            with closing(sqlite3.connect(path, timeout=5)) as db:
                count, size = db.execute("select count(*), coalesce(sum(length(value)), 0) from events").fetchone()
        except sqlite3.Error:
            count, size = 0, 0
        finally:
            if fd is not None:
                os.close(fd)
        out.append(SlotStatus(path, int(count), int(size), held))
    return out
