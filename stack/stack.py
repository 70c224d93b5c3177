"""Start, inspect and stop the embedded stack as one unit; restart single servers for fault tests.

Order matters on the way up: the S3 server first (Tansu keeps its log there),
then the broker; PostgreSQL is independent and starts while weed boots. On the
way down it is the reverse: the broker stops before the storage under it.
Any failure on the way up stops what was started, so a failed `sealtrail up`
leaves nothing running and no state file.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sealtrail.config import EMBEDDED_KAFKA, Settings
from sealtrail.errors import SealtrailError, ServiceUnavailable, StackError
from sealtrail.stack import broker, postgres, processes, s3server
from sealtrail.stack.ports import free_ports, port_answers
from sealtrail.stack.state import (
    StackPaths,
    StackState,
    load_or_create_credentials,
    paths_for,
    read_state,
    remove_state,
    write_state,
)
from sealtrail.topics import init as init_topics

Progress = Callable[[str], None]

TANSU_BUCKET = "tansu"
SERVICES = (broker.SERVICE, s3server.SERVICE, postgres.SERVICE)
_NAMES = {
    broker.SERVICE: broker.PROCESS_NAME,
    s3server.SERVICE: s3server.PROCESS_NAME,
    postgres.SERVICE: postgres.PROCESS_NAME,
}
# postgres: SIGINT is the "fast" shutdown; SIGTERM ("smart") waits for every client to disconnect
_STOP_SIGNALS = {broker.SERVICE: signal.SIGTERM, s3server.SERVICE: signal.SIGTERM, postgres.SERVICE: signal.SIGINT}
# weed's filer waits 15s for its own metadata subscriptions before it gives up and stops
_STOP_TIMEOUT_S = {broker.SERVICE: 10.0, s3server.SERVICE: 30.0, postgres.SERVICE: 30.0}


def start(settings: Settings, *, progress: Progress | None = None) -> StackState:
    """Start the S3 server, the broker and PostgreSQL under ``settings.home`` and write its state file.

    Creates the audit bucket (Object Lock on) and the four topics (sealtrail/topics.py) if
    they are missing; data from an earlier run under the same home is reused.
    """
    say = progress or _quiet
    paths = paths_for(settings.home)
    _refuse_if_running(paths, say)
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.logs.mkdir(parents=True, exist_ok=True)
    creds = load_or_create_credentials(paths)
    port_names = (*s3server.PORT_NAMES, broker.SERVICE, postgres.SERVICE)
    ports = dict(zip(port_names, free_ports(len(port_names)), strict=True))
    region = settings.s3.region
    topics = settings.kafka.topics
    s3_endpoint = s3server.endpoint(ports)
    kafka_bootstrap = broker.bootstrap(ports[broker.SERVICE])
    db_url = postgres.database_url(ports[postgres.SERVICE], creds)
    began = time.monotonic()
    pids: dict[str, int] = {}
    try:
        with _step(paths, s3server.SERVICE):
            say(f"starting S3 server (weed) on {s3_endpoint}")
            pids[s3server.SERVICE] = s3server.start(paths, ports, creds)
        with _step(paths, postgres.SERVICE):
            say(f"starting PostgreSQL on port {ports[postgres.SERVICE]}")
            pids[postgres.SERVICE] = postgres.start(paths, ports[postgres.SERVICE], creds)
            # ready in about half a second, while weed is still booting; a failure
            # here is cheap to undo, whereas weed takes ~15s to stop once it is up
            postgres.wait_ready(paths, db_url, pids[postgres.SERVICE])
        with _step(paths, s3server.SERVICE):
            s3 = s3server.wait_ready(paths, ports, creds, pids[s3server.SERVICE])
            say(f"S3 ready after {time.monotonic() - began:.1f}s")
            say(f"ensuring buckets {settings.s3.bucket} (Object Lock) and {TANSU_BUCKET}")
            s3server.ensure_bucket(s3, settings.s3.bucket, object_lock=True)
            s3server.ensure_bucket(s3, TANSU_BUCKET, object_lock=False)
        with _step(paths, broker.SERVICE):
            say(f"starting Kafka broker (tansu) on {kafka_bootstrap}")
            pids[broker.SERVICE] = broker.start(paths, ports[broker.SERVICE], s3_endpoint, creds, TANSU_BUCKET, region)
            broker.wait_ready(paths, ports[broker.SERVICE], pids[broker.SERVICE])
            _ensure_topics(settings, kafka_bootstrap, say)
        state = StackState(
            kafka_bootstrap=kafka_bootstrap,
            s3_endpoint=s3_endpoint,
            s3_access_key=creds.s3_access_key,
            s3_secret_key=creds.s3_secret_key,
            bucket=settings.s3.bucket,
            topics={"events": topics.events, "chained": topics.chained, "dlq": topics.dlq,
                    "quarantine": topics.quarantine},
            database_url=db_url,
            pids=pids,
            ports=ports,
            home=str(paths.home),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            tansu_bucket=TANSU_BUCKET,
            region=region,
        )
        write_state(paths, state)
    except BaseException:
        say("startup failed; stopping what was started")
        _stop_services(pids, ports, say)
        raise
    say(f"stack up in {time.monotonic() - began:.1f}s (state in {paths.state_file})")
    return state


def _ensure_topics(settings: Settings, kafka_bootstrap: str, say: Progress) -> None:
    """The four topics through the same code as `sealtrail topics init`, as the embedded broker needs them
    (one replica: there is one broker). Existing topics are reported, not changed."""
    embedded = settings.model_copy(update={"kafka": settings.kafka.model_copy(
        update={"bootstrap": kafka_bootstrap, "extra": {}, **EMBEDDED_KAFKA})})
    report = init_topics(embedded, progress=say)
    for problem in report.problems:
        say(f"topic {problem.severity.value}: {problem}")
    say(f"topics {', '.join(s.name for s in report.specs)} ready")


def stop(settings: Settings, progress: Progress | None = None) -> None:
    """Stop every server of the stack (broker first) and remove the state file; the data stays."""
    say = progress or _quiet
    paths = paths_for(settings.home)
    state = read_state(paths)
    if state is None:
        raise StackError(f"no embedded stack is running in {paths.home}")
    if not _live(state):
        remove_state(paths)
        raise StackError(f"no embedded stack is running in {paths.home} (removed a stale state file)")
    began = time.monotonic()
    _stop_services(state.pids, state.ports, say)
    remove_state(paths)
    say(f"stack stopped in {time.monotonic() - began:.1f}s")


@dataclass(frozen=True)
class ServiceStatus:
    """One server: is its process alive, and does its port accept connections?"""

    name: str
    pid: int | None
    port: int
    process_alive: bool
    port_answers: bool

    @property
    def up(self) -> bool:
        return self.process_alive and self.port_answers


@dataclass(frozen=True)
class StackStatus:
    state: StackState
    services: dict[str, ServiceStatus]

    @property
    def up(self) -> bool:
        return all(s.up for s in self.services.values())

    def as_json(self) -> dict[str, Any]:
        return {
            **self.state.as_json(),
            "up": self.up,
            "services": {
                name: {
                    "pid": s.pid,
                    "port": s.port,
                    "up": s.up,
                    "process_alive": s.process_alive,
                    "port_answers": s.port_answers,
                }
                for name, s in self.services.items()
            },
        }


def status(settings: Settings) -> StackStatus | None:
    """The state of the stack under ``settings.home``, with each server's liveness; None if none was started."""
    paths = paths_for(settings.home)
    state = read_state(paths)
    if state is None:
        return None
    services = {}
    for name in SERVICES:
        pid = state.pids.get(name)
        port = state.ports[name]
        services[name] = ServiceStatus(
            name=name,
            pid=pid,
            port=port,
            process_alive=pid is not None and processes.is_alive(pid, _NAMES[name]),
            port_answers=port_answers(port),
        )
    return StackStatus(state=state, services=services)


def restart_broker(settings: Settings) -> StackState:
    """kill -9 the broker and start it again on the same port with the same storage (a crash, for fault tests)."""
    stop_broker(settings, kill=True)
    return start_broker(settings)


def _stop_service(settings: Settings, service: str, process_name: str, kill: bool) -> StackState:
    """Stop one server of the stack (an outage, for fault tests), keeping its ports and data."""
    paths, state = _running(settings)
    pid = state.pids.get(service)
    if pid is not None:
        if kill:
            processes.kill(pid, process_name)
        else:
            processes.stop_all({pid: (process_name, signal.SIGTERM)}, timeout=_STOP_TIMEOUT_S[service])
    state = state.with_pid(service, None)
    write_state(paths, state)
    return state


def stop_broker(settings: Settings, *, kill: bool = True) -> StackState:
    """Stop only the broker; its records stay in the S3 server. kill -9 by default."""
    return _stop_service(settings, broker.SERVICE, broker.PROCESS_NAME, kill)


def start_broker(settings: Settings) -> StackState:
    """Start the broker again on the same port and storage, after stop_broker."""
    paths, state = _running(settings)
    pid = state.pids.get(broker.SERVICE)
    if pid is not None and processes.is_alive(pid, broker.PROCESS_NAME):
        raise StackError(f"the broker is already running (pid {pid})")
    creds = load_or_create_credentials(paths)
    port = state.ports[broker.SERVICE]
    with _step(paths, broker.SERVICE):
        new_pid = broker.start(paths, port, state.s3_endpoint, creds, state.tansu_bucket, state.region)
        state = state.with_pid(broker.SERVICE, new_pid)
        write_state(paths, state)
        broker.wait_ready(paths, port, new_pid)
    return state


def stop_s3(settings: Settings, *, kill: bool = False) -> StackState:
    """Stop only the S3 server; ``kill`` makes it a kill -9 instead of ~15s of shutdown."""
    return _stop_service(settings, s3server.SERVICE, s3server.PROCESS_NAME, kill)


def start_s3(settings: Settings) -> StackState:
    """Start the S3 server again on the same ports and data, after stop_s3."""
    paths, state = _running(settings)
    pid = state.pids.get(s3server.SERVICE)
    if pid is not None and processes.is_alive(pid, s3server.PROCESS_NAME):
        raise StackError(f"the S3 server is already running (pid {pid})")
    creds = load_or_create_credentials(paths)
    with _step(paths, s3server.SERVICE):
        new_pid = s3server.start(paths, state.ports, creds)
        state = state.with_pid(s3server.SERVICE, new_pid)
        write_state(paths, state)
        s3server.wait_ready(paths, state.ports, creds, new_pid)
    return state


def _quiet(_message: str) -> None:
    pass


def _live(state: StackState) -> dict[str, int]:
    return {name: pid for name, pid in state.pids.items() if processes.is_alive(pid, _NAMES.get(name, ""))}


def _refuse_if_running(paths: StackPaths, say: Progress) -> None:
    state = read_state(paths)
    if state is None:
        return
    live = _live(state)
    if live:
        pids = ", ".join(f"{name} {pid}" for name, pid in live.items())
        raise StackError(
            f"an embedded stack is already running in {paths.home} (pids {pids}); run `sealtrail down` first"
        )
    say(f"removing stale state from a stack started {state.started_at} (its processes are gone)")
    remove_state(paths)


def _running(settings: Settings) -> tuple[StackPaths, StackState]:
    paths = paths_for(settings.home)
    state = read_state(paths)
    if state is None:
        raise StackError(f"no embedded stack is running in {paths.home}")
    return paths, state


def _stop_services(pids: Mapping[str, int], ports: Mapping[str, int], say: Progress) -> None:
    """Broker first (it writes to S3), then S3 and PostgreSQL together."""
    for group in ((broker.SERVICE,), (s3server.SERVICE, postgres.SERVICE)):
        targets = {pids[name]: (_NAMES[name], _STOP_SIGNALS[name]) for name in group if name in pids}
        if not targets:
            continue
        say(f"stopping {' and '.join(name for name in group if name in pids)}")
        processes.stop_all(
            targets,
            timeout=max(_STOP_TIMEOUT_S[name] for name in group),
            on_kill=lambda pid: say(f"pid {pid} did not stop in time; killing it"),
        )
    if s3server.SERVICE in pids:
        # only now, with our weed just gone: the same port numbers may belong to
        # another stack's weed later, so a stale state never removes sockets
        s3server.remove_grpc_sockets(dict(ports))


@contextmanager
def _step(paths: StackPaths, service: str) -> Iterator[None]:
    """Name the service and its log in whatever goes wrong inside, so the message says where to look."""
    def see(name: str) -> str:
        return f"; see {paths.log(name)}" if paths.log(name).exists() else ""

    try:
        yield
    except ServiceUnavailable as e:
        if str(paths.logs) in e.detail:
            raise
        raise ServiceUnavailable(e.service, f"{e.detail}{see(e.service)}") from e
    except SealtrailError:
        raise
    except Exception as e:
        raise ServiceUnavailable(service, f"{type(e).__name__}: {e}{see(service)}") from e
