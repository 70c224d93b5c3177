"""Detached server processes: spawn, check, wait for, and stop them by pid.

`sealtrail up` returns while the servers keep running, so each server is
started in its own session (it survives the Python process and a Ctrl-C in
the terminal) and is afterwards known only by the pid kept in the state file.
A pid alone is not proof: after a reboot the same number can belong to any
process, so liveness also checks the process name before anything is
signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil

from sealtrail.errors import ServiceUnavailable, StackError

# Popen handles of the servers this process started, kept so they are not
# garbage-collected while running (ResourceWarning) and so exits are reaped
# (a killed child of ours stays a zombie, which os.kill(pid, 0) calls alive).
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(
    argv: list[str],
    *,
    log: Path,
    env: Mapping[str, str],
    cwd: Path,
    user: str | None = None,
) -> int:
    """Start ``argv`` detached (own session, stdin closed, output appended to ``log``); return its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
                **as_user(user),
            )
        except OSError as e:
            raise StackError(f"cannot start {argv[0]}: {e}") from e
    _children[proc.pid] = proc
    return proc.pid


def as_user(user: str | None) -> dict[str, Any]:
    """subprocess keyword arguments that run the child as ``user`` with that user's group only."""
    if user is None:
        return {}
    import pwd

    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def is_alive(pid: int, name: str) -> bool:
    """True when ``pid`` runs and its process name starts with ``name`` (``weed``, ``tansu``, ``postgres``)."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]
        return False
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and proc.name().startswith(name)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def stop_all(
    targets: Mapping[int, tuple[str, signal.Signals]],
    *,
    timeout: float,
    on_kill: Callable[[int], None] | None = None,
) -> None:
    """Send each pid its stop signal, wait for all together, then SIGKILL the stragglers' process groups.

    ``targets`` maps pid -> (expected process name, graceful signal). Waiting
    for all at once makes the slowest server, not the sum, set the time.
    """
    pending = {pid: name for pid, (name, sig) in targets.items() if _signal(pid, name, sig)}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = {pid: name for pid, name in pending.items() if is_alive(pid, name)}
        if pending:
            time.sleep(0.1)
    for pid, name in pending.items():
        if on_kill is not None:
            on_kill(pid)
        kill(pid, name)


def kill(pid: int, name: str, timeout: float = 10.0) -> None:
    """SIGKILL ``pid``'s whole process group (a server's helpers die with it) and wait until it is gone."""
    if not is_alive(pid, name):
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while is_alive(pid, name):
        if time.monotonic() > deadline:
            raise StackError(f"{name} (pid {pid}) survived SIGKILL")
        time.sleep(0.05)


def _signal(pid: int, name: str, sig: signal.Signals) -> bool:
    if not is_alive(pid, name):
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def wait_until(
    probe: Callable[[], object],
    *,
    service: str,
    timeout: float,
    pid: int | None = None,
    name: str = "",
    log: Path | None = None,
    interval: float = 0.1,
) -> None:
    """Call ``probe`` until it returns truthy without raising.

    Gives up early when the server's process has exited (no point waiting
    out the timeout for a crashed server), and names the log to read.
    """
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        try:
            if probe():
                return
        except Exception as e:  # noqa: BLE001 - any failure of the probe means "not ready yet"
            last = f"{type(e).__name__}: {' '.join(str(e).split())}"
        where = f"; see {log}" if log else ""
        if pid is not None and not is_alive(pid, name):
            raise ServiceUnavailable(service, f"{name or 'server'} (pid {pid}) exited during startup ({last}){where}")
        if time.monotonic() > deadline:
            raise ServiceUnavailable(service, f"not ready after {timeout:.0f}s ({last}){where}")
        time.sleep(interval)
