#!/usr/bin/env python3
"""sealtrail's benchmark: one run on the embedded stack, every number checked before it is reported.

    .venv/bin/python bench/run.py [--events N | --quick] [--profile]     (or: make bench / make bench-quick)

It starts its own embedded stack in a temporary home, writes the deterministic
mixed workload (sealtrail.stack.workload.generate) to a JSON-lines file, and then
runs, one after the other so each has the machine to itself:

  1. emit     the producer client (AuditClient.emit, one process) -> events topic
  2. stream   `sealtrail stream` over that backlog: first record consumed ->
              last sealed record acknowledged (product's metrics + sealed_at)
  3. plain    reference: a plain confluent-kafka loop, same data, same work; and the same loop with
              only the minimal work (orjson canonical bytes, SHA-256 chain, HMAC, produce): the ceiling
  4. naive    reference: a naive per-event Faust agent, same data (a prefix)
  5. sink     `sealtrail sink` over the sealed backlog: assignment -> last
              event in a locked object (time spent idle waiting for the flush
              timer is reported, and left out of the stage's rate)
  6. verify   verify_store over the sink's trail
  7. e2e      fresh topics and prefix, one stream and one sink worker running,
              then the emitter publishes everything as fast as it can: first
              emit -> last event in a locked object; afterwards a paced load
              (half that rate) for the latency a sustainable load sees
  8. checks   every event in each trail exactly once (read back from the
              Parquet in the bucket), verify intact (the CLI, exit 0)

Workers are the product's own commands with the product's default settings
(SEALTRAIL_* variables in the environment still apply, as they would for an
operator); only topics, prefix and groups are per phase. Results go to
bench/results/ as JSON and Markdown (latest.json, latest.md and a timestamped
copy). The run exits 1 without a table if any check fails.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import proc
import readback
import report
from proc import Worker

from sealtrail.config import Settings, load_settings

RESULTS = BENCH / "results"
# how to tell that a worker's consumer group has handed it partitions: a metric set on assignment, or its log
STREAM_READY = (("sealtrail_chain_recoveries_total", "sealtrail_chain_head_seq#labels"),
                r"sealtrail.stream.*assigned partitions \[|\] assigned partitions \[")
SINK_READY = (("sealtrail_sink_stored_seq#labels",), r"sealtrail.sink.*assigned \[")
POLL_S = 0.1
LIST_S = 0.2


class BenchError(Exception):
    pass


def batch_stats(before: dict[str, float], after: dict[str, float]) -> dict[str, float | None]:
    """Mean batch latency and size of the stream between two scrapes of its metrics (when it exports them)."""
    def mean(name: str) -> float | None:
        n = after.get(f"{name}_count", 0) - before.get(f"{name}_count", 0)
        return (after.get(f"{name}_sum", 0) - before.get(f"{name}_sum", 0)) / n if n else None

    return {"batches": after.get("sealtrail_batches_total", 0) - before.get("sealtrail_batches_total", 0),
            "batch_seconds_mean": mean("sealtrail_batch_seconds"),
            "batch_records_mean": mean("sealtrail_batch_records")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=None, help="events in the workload [1,000,000; --quick: 50,000]")
    ap.add_argument("--quick", action="store_true", help="a development run of about 2 minutes")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--naive-events", type=int, default=None,
                    help="events the naive Faust reference processes [10,000; --quick: 4,000]")
    ap.add_argument("--plain-events", type=int, default=None,
                    help="events the plain-loop reference processes [300,000; --quick: all]")
    ap.add_argument("--paced-seconds", type=float, default=None, help="length of the paced latency run [30; --quick: 8]")
    ap.add_argument("--paced-rate", type=float, default=None, help="events/s of the paced run [half the e2e rate]")
    ap.add_argument("--profile", action="store_true", help="py-spy (pip install -e '.[bench]') on emit, stream and sink")
    ap.add_argument("--keep", action="store_true", help="leave the temporary home (stack stopped) for inspection")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    args.events = args.events or (50_000 if args.quick else 1_000_000)
    args.naive_events = min(args.events, args.naive_events or (4_000 if args.quick else 10_000))
    args.plain_events = min(args.events, args.plain_events or 300_000)
    args.paced_seconds = args.paced_seconds or (8.0 if args.quick else 30.0)
    return args


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import confluent_kafka
    import faust
    import pyarrow

    return {
        "cores": os.cpu_count(),
        "memory_gb": psutil.virtual_memory().total / 2**30,
        "cpu_model": model or platform.processor() or "unknown",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "versions": {"faust": faust.__version__, "confluent_kafka": confluent_kafka.__version__,
                     "librdkafka": confluent_kafka.libversion()[0], "pyarrow": pyarrow.__version__},
    }


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH.parent, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=BENCH.parent,
                               capture_output=True, text=True, check=False).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class Trail:
    """One phase's own topics, bucket prefix and consumer groups on the shared stack."""

    def __init__(self, home: Path, tag: str) -> None:
        self.tag = tag
        self.env = {
            "SEALTRAIL_HOME": str(home),
            "SEALTRAIL_KAFKA__TOPICS__EVENTS": f"{tag}.events",
            "SEALTRAIL_KAFKA__TOPICS__CHAINED": f"{tag}.chained",
            "SEALTRAIL_KAFKA__TOPICS__DLQ": f"{tag}.dlq",
            "SEALTRAIL_S3__PREFIX": f"{tag}/",
            "SEALTRAIL_STREAM__GROUP": f"{tag}-stream",
            "SEALTRAIL_SINK__GROUP": f"{tag}-sink",
            "SEALTRAIL_STREAM__METRICS_PORT": "0",
            "SEALTRAIL_SINK__METRICS_PORT": "0",
        }
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            self.settings: Settings = load_settings()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def create_topics(self, wanted: dict[str, int] | None = None) -> None:
        """The trail's three topics (or just ``wanted``: name -> partitions)."""
        from confluent_kafka.admin import AdminClient, NewTopic

        t = self.settings.kafka.topics
        n = self.settings.kafka.partitions
        wanted = wanted or {t.events: n, t.chained: n, t.dlq: 1}
        admin = AdminClient({"bootstrap.servers": self.settings.kafka.bootstrap, **self.settings.kafka.extra})
        for future in admin.create_topics([NewTopic(name, p, 1) for name, p in wanted.items()]).values():
            future.result(30)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.n = args.events
        self.started = time.monotonic()
        self.home = Path(tempfile.mkdtemp(prefix="stbench-"))
        self.logs = self.home / "bench-logs"
        self.work = self.home / "bench-work"
        self.work.mkdir(parents=True)
        self.workers: list[Worker] = []
        self.settings: Settings | None = None
        self.stack_pids: dict[str, int] = {}
        self.sys_samples: list[tuple[float, float, dict[str, float], float]] = []
        self.stamp = time.strftime("%Y%m%d-%H%M%S")
        self.profiles: dict[str, Any] = {}
        self.stream_series: list[tuple[float, float]] = []
        self.stream_start: float | None = None
        self.r: dict[str, Any] = {
            "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "command": "bench/run.py " + " ".join(sys.argv[1:]),
            "events": self.n,
            "seed": args.seed,
            "stages": {},
            "references": {},
            "e2e": {},
            "latency": {"poll_s": LIST_S},
            "storage": {},
            "checks": {},
            "other_load": {},
        }

    # -- output ------------------------------------------------------------------------------
    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)

    # -- stack and workload ------------------------------------------------------------------
    def start_stack(self) -> None:
        from sealtrail import stack

        self.say(f"starting the embedded stack in {self.home}")
        stack.start(load_settings({"home": str(self.home)}), progress=lambda m: self.say(f"  {m}"))
        self.settings = load_settings({"home": str(self.home)})
        state = stack.status(self.settings)
        self.stack_pids = {name: s.pid for name, s in state.services.items() if s.pid} if state else {}
        s = self.settings
        self.r["settings"] = {
            "partitions": s.kafka.partitions,
            "stream_batch_size": s.stream.batch_size,
            "stream_batch_wait_s": s.stream.batch_wait_s,
            "sink_flush_records": s.sink.flush_records,
            "sink_flush_interval_s": s.sink.flush_interval_s,
            "session_timeout_ms": s.kafka.session_timeout_ms,
        }

    def stop_stack(self) -> None:
        if self.settings is None:
            return
        from sealtrail import stack

        self.say("stopping the embedded stack")
        try:
            stack.stop(self.settings)
        except Exception as e:  # noqa: BLE001 - cleanup must go on
            self.say(f"  stack stop: {e}")

    def write_workload(self, path: Path, count: int, seed: int) -> tuple[list[str], int, int]:
        """JSON lines of the workload; returns the event ids, raw bytes and gzip'd bytes (level 6, gzip's default)."""
        from sealtrail.stack.workload import generate

        ids: list[str] = []
        raw = 0
        with path.open("wb") as out, gzip.GzipFile(self.work / "workload.jsonl.gz", "wb", compresslevel=6) as gz:
            chunk: list[bytes] = []
            for event in generate(count, seed=seed):
                ids.append(event["event_id"])
                chunk.append(orjson.dumps(event) + b"\n")
                if len(chunk) == 10_000:
                    data = b"".join(chunk)
                    out.write(data)
                    gz.write(data)
                    raw += len(data)
                    chunk = []
            data = b"".join(chunk)
            out.write(data)
            gz.write(data)
            raw += len(data)
        zipped = (self.work / "workload.jsonl.gz").stat().st_size
        (self.work / "workload.jsonl.gz").unlink()
        return ids, raw, zipped

    # -- helpers -----------------------------------------------------------------------------
    def spawn(self, name: str, argv: list[str], trail: Trail, service: bool = False) -> Worker:
        w = proc.spawn(name, argv, trail.env, self.logs, service=service)
        self.workers.append(w)
        return w

    def stop(self, w: Worker) -> None:
        code = w.stop()
        if code not in (0, -signal.SIGTERM, None):
            self.say(f"  {w.name} exited with {code}; log {w.log}")

    def profile(self, w: Worker | None, name: str | None = None) -> Worker | None:
        """py-spy on a worker (or, with w None, on this process and its children: the verifier's pool)."""
        if not self.args.profile:
            return None
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if spy is None:
            raise BenchError("--profile needs py-spy: .venv/bin/pip install -e '.[bench]'")
        name = name or (w.name if w else "bench")
        out = self.work / f"profile-{name}.txt"
        target = ["--pid", str(w.pid)] if w else ["--pid", str(os.getpid()), "--subprocesses"]
        p = proc.spawn(f"py-spy-{name}", [spy, "record", *target, "--rate", "100", "--nonblocking",
                                           "--format", "raw", "--output", str(out)], {}, self.logs)
        deadline = time.monotonic() + 15
        while "Sampling process" not in p.log_tail() and p.alive() and time.monotonic() < deadline:
            time.sleep(0.05)  # attached: from here on a SIGINT makes it write what it sampled
        self.workers.append(p)
        p.profile_out = out  # type: ignore[attr-defined]
        return p

    def finish_profile(self, spy: Worker | None, name: str) -> None:
        if spy is None:
            return
        if spy.alive():
            spy.popen.send_signal(signal.SIGINT)
            try:
                spy.popen.wait(30)
            except subprocess.TimeoutExpired:
                spy.popen.kill()
        out: Path = spy.profile_out  # type: ignore[attr-defined]
        if out.exists():
            self.args.out.mkdir(parents=True, exist_ok=True)
            kept = self.args.out / f"profile-{self.stamp}-{name}.txt"
            shutil.copy(out, kept)
            focus = report.FOCUS.get(name.split("-")[-1], ())
            self.profiles[name] = {"raw": str(kept), **report.summarize_profile(out, focus)}
            self.say(f"  profile of {name}: {kept}")
        else:
            self.say(f"  py-spy wrote no profile for {name}; see {spy.log}")

    def watch(self, workers: list[Worker], done: Callable[[float], bool], progress: Callable[[], str],
              timeout_s: float, what: str) -> float:
        """Poll until done(now) is true; sample resources every tick, print progress every 2 s."""
        sampler = proc.Sampler(workers)
        deadline = time.monotonic() + timeout_s
        last_print = time.monotonic()
        while True:
            now = sampler.tick()
            self.sample_system(now)
            if done(now):
                return now
            sampler.check_alive()
            if time.monotonic() - last_print >= 2.0:
                self.say(f"  {progress()}")
                last_print = time.monotonic()
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {w.name}\n{w.log_tail()}" for w in workers)
                raise BenchError(f"{what}: no completion after {timeout_s:.0f}s\n{tails}")
            time.sleep(POLL_S)

    def wait_assigned(self, w: Worker, markers: tuple[str, ...], log_line: str, timeout_s: float = 120.0) -> float:
        """A worker is ready once its consumer group handed it partitions (a metric or its log says so)."""
        w.discover_metrics()
        pattern = re.compile(log_line)

        def ready(_now: float) -> bool:
            m = w.scrape()
            return any(m.get(k, 0) > 0 for k in markers) or pattern.search(w.log_tail(50_000)) is not None

        return self.watch([w], ready, lambda: f"{w.name}: waiting for its partitions", timeout_s, f"{w.name} assignment")

    def sample_system(self, now: float) -> None:
        """Machine-wide busy CPU, and CPU of the stack's servers and of this process, for each tick."""
        t = psutil.cpu_times()
        busy = t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)
        servers: dict[str, float] = {}
        for name, pid in self.stack_pids.items():
            try:
                c = psutil.Process(pid).cpu_times()
                servers[name] = c.user + c.system + c.children_user + c.children_system
            except psutil.Error:
                pass
        me = psutil.Process().cpu_times()
        self.sys_samples.append((now, busy, servers, me.user + me.system))

    def _at(self, t: float) -> tuple[float, float, dict[str, float], float]:
        return min(self.sys_samples, key=lambda s: abs(s[0] - t))

    def stack_cpu(self, start: float, end: float) -> dict[str, float]:
        a, b = self._at(start), self._at(end)
        return {name: b[2].get(name, 0.0) - a[2].get(name, 0.0) for name in b[2]}

    def other_load(self, name: str, start: float, end: float, ours: float) -> None:
        """Cores busy with work that is not this benchmark's during a phase's measured window (the machine is shared)."""
        if not self.sys_samples:
            return
        a, b = self._at(start), self._at(end)
        wall = max(b[0] - a[0], 1e-9)
        busy = b[1] - a[1]
        servers = sum(self.stack_cpu(start, end).values())
        me = b[3] - a[3]
        other = busy - servers - me - ours
        self.r["other_load"][name] = {"window_s": round(wall, 2), "busy_cores": round(busy / wall, 2),
                                      "measured_process_cores": round(ours / wall, 2),
                                      "stack_cores": {k: round(v / wall, 2) for k, v in self.stack_cpu(start, end).items()},
                                      "bench_cores": round(me / wall, 2),
                                      "other_cores": round(max(0.0, other) / wall, 2)}

    # -- phases ------------------------------------------------------------------------------
    def emit(self, trail: Trail, name: str, source: Path, count: int, skip: int = 0, rate: float = 0.0,
             extra_workers: list[Worker] | None = None, on_tick: Callable[[float], bool] | None = None,
             progress: Callable[[dict], str] | None = None, timeout_s: float | None = None,
             profile: bool = False) -> tuple[Worker, dict, array]:
        times_path = self.work / f"{name}.times"
        status_path = self.work / f"{name}.status.json"
        argv = proc.script(BENCH / "emitter.py", str(source), "--count", str(count), "--skip", str(skip),
                           "--rate", str(rate), "--times", str(times_path), "--status", str(status_path))
        w = self.spawn(name, argv, trail)
        spy = self.profile(w) if profile else None
        status: dict = {}

        def done(now: float) -> bool:
            nonlocal status
            try:
                status = json.loads(status_path.read_text())
            except (OSError, ValueError):
                pass
            finished = bool(status.get("done"))
            if on_tick is not None:
                return on_tick(now) and finished
            return finished

        def show() -> str:
            if progress is not None:
                return progress(status)
            t0 = status.get("t_first") or time.time()
            c = status.get("count", 0)
            return f"{name}: {c:,}/{count:,} emitted, {c / max(time.time() - t0, 1e-9):,.0f}/s"

        self.watch([w, *(extra_workers or [])], done, show, timeout_s or max(300.0, count / 500), name)
        self.finish_profile(spy, name)
        times = array("d")
        with times_path.open("rb") as f:
            times.fromfile(f, count)
        w.popen.wait(30)
        return w, status, times

    def phase_emit(self, stage: Trail) -> None:
        self.say(f"emit: {self.n:,} events with AuditClient.emit into {stage.settings.kafka.topics.events}")
        w, st, _ = self.emit(stage, "emit", self.workload, self.n, profile=True)
        seconds = st["t_acked"] - st["t_first"]
        cpu = w.cpu_seconds()
        self.r["stages"]["emit"] = {
            "events": self.n, "seconds": seconds, "events_per_s": self.n / seconds,
            "queued_per_s": self.n / (st["t_last_call"] - st["t_first"]), "cpu_s": cpu,
            "events_per_cpu_s": self.n / cpu if cpu else None, "peak_rss": w.peak_rss(),
        }
        self.other_load("emit", st["t_first"], st["t_acked"], cpu)
        self.say(f"emit: {self.n / seconds:,.0f} events/s (acknowledged), {cpu:.1f} CPU s")

    def phase_stream(self, stage: Trail) -> None:
        self.say("stream: `sealtrail stream` over the backlog")
        w = self.spawn("stream", proc.sealtrail_command("stream"), stage, service=True)
        self.wait_assigned(w, *STREAM_READY)
        spy = self.profile(w)
        first_poll: float | None = None
        sealed = 0.0

        def done(now: float) -> bool:
            nonlocal first_poll, sealed
            m = w.scrape()
            if first_poll is None and m.get("sealtrail_events_consumed_total", 0) > 0:
                first_poll = now
            sealed = m.get("sealtrail_events_sealed_total", 0)
            if not self.stream_series or self.stream_series[-1][1] != sealed:
                self.stream_series.append((now, sealed))
            return sealed >= self.n

        def show() -> str:
            rate = sealed / (time.time() - first_poll) if first_poll else 0
            return f"stream: {sealed:,.0f}/{self.n:,} sealed, {rate:,.0f}/s, rss {w.rss_samples[-1][1] / 2**20:,.0f} MB" \
                if w.rss_samples else "stream: starting"

        end = self.watch([w], done, show, max(600.0, self.n / 200), "stream")
        self.finish_profile(spy, "stream")
        metrics = w.scrape()
        t = stage.settings.kafka.topics
        first = readback.first_sealed_at(stage.settings, t.chained, stage.settings.kafka.partitions)
        start = min(x for x in (first, first_poll) if x is not None)
        cpu = w.cpu_seconds(since=start - POLL_S)
        peak = w.peak_rss()
        self.stop(w)
        seconds = end - start
        self.stream_start = start
        self.r["stages"]["stream"] = {
            "events": self.n, "seconds": seconds, "events_per_s": self.n / seconds, "cpu_s": cpu,
            "events_per_cpu_s": self.n / cpu if cpu else None, "peak_rss": peak,
            "start_from": "sealed_at of the first batch" if first is not None and first <= (first_poll or first)
            else "first poll of the consumed counter",
            "rejected": metrics.get("sealtrail_events_rejected_total", 0.0),
            "duplicates": metrics.get("sealtrail_duplicates_total", 0.0),
            **batch_stats({}, metrics),
        }
        self.other_load("stream", start, end, cpu)
        self.say(f"stream: {self.n / seconds:,.0f} events/s ({seconds:.1f} s), {cpu:.1f} CPU s, "
                 f"peak RSS {peak / 2**20:,.0f} MB")

    def stream_rate_over(self, count: int) -> float | None:
        """The stream stage's rate over its first ``count`` events (from its sealed counter), for like-for-like ratios."""
        hit = next((t for t, sealed in self.stream_series if sealed >= count), None)
        return count / (hit - self.stream_start) if hit and self.stream_start else None

    def phase_plain(self, stage: Trail, minimal: bool = False) -> None:
        """The plain loop over the same events: the product's work (validate, seal) or, minimal, the ceiling."""
        name = "ceiling" if minimal else "plain"
        out = f"{stage.tag}.{name}"
        stage.create_topics({out: stage.settings.kafka.partitions})
        count = self.args.plain_events
        what = ("the minimal work (orjson canonical bytes, SHA-256 chain, HMAC, produce)" if minimal
                else "the same work")
        self.say(f"reference: plain confluent-kafka loop, {what}, over the first {count:,} of the same events")
        status_path = self.work / f"{name}.status.json"
        w = self.spawn(f"{name}-loop", proc.script(BENCH / "plain_loop.py", "--input", stage.settings.kafka.topics.events,
                                                   "--output", out, "--group", f"{stage.tag}-{name}", "--count",
                                                   str(count), "--status", str(status_path),
                                                   *(["--minimal"] if minimal else [])), stage)
        status: dict = {}

        def done(_now: float) -> bool:
            nonlocal status
            try:
                status = json.loads(status_path.read_text())
            except (OSError, ValueError):
                pass
            return bool(status.get("done"))

        self.watch([w], done, lambda: f"{name} loop: {status.get('count', 0):,}/{count:,}", max(600.0, count / 200),
                   f"{name} loop")
        seconds = status["t_last"] - status["t_first"]
        cpu = w.cpu_seconds()
        w.popen.wait(30)
        key = "ceiling" if minimal else "plain_loop"
        self.r["references"][key] = {
            "events": status["count"], "sealed": status["sealed"], "seconds": seconds,
            "events_per_s": status["count"] / seconds, "cpu_s": cpu, "peak_rss": w.peak_rss(),
            "events_per_cpu_s": status["count"] / cpu if cpu else None,
            "stream_events_per_s_same_prefix": self.stream_rate_over(status["count"]),
        }
        self.other_load(key, status["t_first"], status["t_last"], cpu)
        self.say(f"{name} loop: {status['count'] / seconds:,.0f} events/s")

    def phase_naive(self, stage: Trail) -> None:
        out = f"{stage.tag}.naive"
        stage.create_topics({out: stage.settings.kafka.partitions})
        count = self.args.naive_events
        self.say(f"reference: naive per-event Faust agent over the first {count:,} of the same events")
        status_path = self.work / "naive.status.json"
        w = self.spawn("naive-faust", proc.script(
            BENCH / "naive_faust.py", "--input", stage.settings.kafka.topics.events, "--output", out,
            "--app-id", f"{stage.tag}-naive", "--count", str(count), "--status", str(status_path),
            "--datadir", str(self.work / "naive-faust")), stage, service=True)
        status: dict = {}

        def done(_now: float) -> bool:
            nonlocal status
            try:
                status = json.loads(status_path.read_text())
            except (OSError, ValueError):
                pass
            return bool(status.get("done"))

        def show() -> str:
            if not status.get("t_first"):
                return "naive Faust: starting and joining its group"
            c = status.get("count", 0)
            return f"naive Faust: {c:,}/{count:,}, {c / max(time.time() - status['t_first'], 1e-9):,.0f}/s"

        self.watch([w], done, show, 120.0 + count / 200, "naive Faust")
        seconds = status["t_last"] - status["t_first"]
        cpu = w.cpu_seconds(since=status["t_first"])
        peak = w.peak_rss()
        w.popen.kill()  # a reference: nothing to shut down gracefully, and Faust takes seconds to
        w.popen.wait()
        self.r["references"]["naive_faust"] = {
            "events": status["count"], "sealed": status["sealed"], "seconds": seconds,
            "events_per_s": status["count"] / seconds, "cpu_s": cpu, "peak_rss": peak,
            "events_per_cpu_s": status["count"] / cpu if cpu else None,
        }
        self.other_load("naive_faust", status["t_first"], status["t_last"], cpu)
        self.say(f"naive Faust: {status['count'] / seconds:,.0f} events/s")

    def phase_sink(self, stage: Trail) -> None:
        self.say("sink: `sealtrail sink` over the sealed backlog")
        w = self.spawn("sink", proc.sealtrail_command("sink"), stage, service=True)
        assigned = self.wait_assigned(w, *SINK_READY)
        spy = self.profile(w)
        written = 0.0

        def done(now: float) -> bool:
            nonlocal written
            m = w.scrape()
            written = m.get("sealtrail_sink_events_written_total", 0)
            return written >= self.n

        def show() -> str:
            rate = written / (time.time() - assigned)
            return f"sink: {written:,.0f}/{self.n:,} in locked objects, {rate:,.0f}/s"

        end = self.watch([w], done, show, max(600.0, self.n / 200), "sink")
        self.finish_profile(spy, "sink")
        start = assigned
        samples = [(t, c) for t, c in w.cpu_samples if start - POLL_S <= t <= end]
        # ticks in which the sink used under 10% of a core: it had consumed everything and was
        # waiting for the flush timer (flush_interval_s) to write the last partial objects
        idle = sum(t1 - t0 for (t0, c0), (t1, c1) in itertools.pairwise(samples) if (c1 - c0) < 0.1 * (t1 - t0))
        cpu = w.cpu_seconds(since=start - POLL_S, until=end + POLL_S)
        peak = w.peak_rss()
        metrics = w.scrape()
        self.stop(w)
        seconds = end - start
        busy = max(seconds - idle, 1e-9)
        self.r["stages"]["sink"] = {
            "events": self.n, "seconds_with_timer_wait": seconds, "idle_s": idle, "seconds": busy,
            "events_per_s": self.n / busy, "events_per_s_with_timer_wait": self.n / seconds, "cpu_s": cpu,
            "events_per_cpu_s": self.n / cpu if cpu else None, "peak_rss": peak,
            "objects": metrics.get("sealtrail_sink_objects_written_total"),
            "parquet_bytes": metrics.get("sealtrail_sink_bytes_written_total"),
            "put_retries": metrics.get("sealtrail_sink_put_retries_total"),
        }
        self.other_load("sink", start, end, cpu)
        self.say(f"sink: {self.n / busy:,.0f} events/s busy ({busy:.1f} s + {idle:.1f} s waiting for the flush timer), "
                 f"{cpu:.1f} CPU s, peak RSS {peak / 2**20:,.0f} MB")

    def phase_verify(self, stage: Trail, runs: int = 3) -> None:
        """verify_store over the sink's trail through S3, each run in a fresh light process (verify_once.py,
        as `sealtrail verify` runs: its worker processes start every time), best of runs; then the whole
        `sealtrail verify` command, start-up and imports included."""
        self.say(f"verify: verify_store over the sink's trail, {runs} runs in fresh processes")
        env = {**os.environ, **stage.env}
        spy = self.profile(None, "verify")
        done = []
        for _ in range(runs):
            out = subprocess.run([sys.executable, str(BENCH / "verify_once.py"), "--bucket"], env=env,
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise BenchError(f"verify_once.py exited {out.returncode}: {out.stderr[-800:]}")
            done.append(json.loads(out.stdout.splitlines()[-1]))
            self.say(f"  verify: {done[-1]['events']:,} events in {done[-1]['seconds']:.2f} s")
        self.finish_profile(spy, "verify")
        best = min(done, key=lambda r: r["seconds"])
        t0 = time.perf_counter()
        cli = subprocess.run(proc.sealtrail_command("verify", "--json"), env=env, capture_output=True, text=True)
        whole = time.perf_counter() - t0
        self.r["stages"]["verify"] = {"events": best["events"], "objects": best["objects"], "seconds": best["seconds"],
                                      "events_per_s": best["events"] / best["seconds"],
                                      "runs_s": [r["seconds"] for r in done], "cpu_s": best["cpu"],
                                      "ok": all(r["ok"] for r in done) and cli.returncode == 0,
                                      "whole_command_s": whole, "whole_command_exit": cli.returncode,
                                      "findings": best["findings"]}
        self.say(f"verify: {best['events']:,} events in {best['objects']} objects, "
                 f"{best['events'] / best['seconds']:,.0f} events/s (best of {runs}; {best['cpu']:.1f} CPU s), "
                 f"{'intact' if best['ok'] else 'FINDINGS'}; the whole `sealtrail verify` command "
                 f"{whole:.2f} s (exit {cli.returncode})")

    def phase_e2e(self, trail: Trail) -> None:
        self.say("e2e: starting one stream and one sink worker on fresh topics")
        stream = self.spawn("e2e-stream", proc.sealtrail_command("stream"), trail, service=True)
        sink = self.spawn("e2e-sink", proc.sealtrail_command("sink"), trail, service=True)
        self.wait_assigned(stream, *STREAM_READY)
        self.wait_assigned(sink, *SINK_READY)
        bucket = readback.Bucket(trail.settings)
        stored = [0, 0.0]  # events stored, time of the last listing

        def listing(now: float, target: int) -> bool:
            if now - stored[1] >= LIST_S:
                stored[0] = bucket.poll()
                stored[1] = now
            return stored[0] >= target

        def show(label: str, total: int, base: int) -> Callable[[dict], str]:
            def line(st: dict) -> str:
                m = stream.scrape()
                t0 = st.get("t_first") or time.time()
                return (f"{label}: emitted {st.get('count', 0):,}/{total:,}, sealed "
                        f"{m.get('sealtrail_events_sealed_total', 0) - base:,.0f}, in locked objects {stored[0] - base:,} "
                        f"({(stored[0] - base) / max(time.time() - t0, 1e-9):,.0f}/s)")
            return line

        self.say(f"e2e: emitting {self.n:,} events as fast as the client goes")
        m0 = stream.scrape(0)
        emitter, st, times = self.emit(trail, "e2e-emit", self.workload, self.n, extra_workers=[stream, sink],
                                       on_tick=lambda now: listing(now, self.n), progress=show("e2e", self.n, 0),
                                       timeout_s=max(900.0, self.n / 100))
        end = stored[1]
        seconds = end - st["t_first"]
        stream_cpu = stream.cpu_seconds(since=st["t_first"])
        sink_cpu = sink.cpu_seconds(since=st["t_first"])
        self.r["e2e"] = {
            "events": self.n, "seconds": seconds, "events_per_s": self.n / seconds,
            "emit_seconds": st["t_acked"] - st["t_first"], "emit_events_per_s": self.n / (st["t_acked"] - st["t_first"]),
            "stream_cpu_s": stream_cpu, "sink_cpu_s": sink_cpu, "emitter_cpu_s": emitter.cpu_seconds(),
            "stream_peak_rss": None, "sink_peak_rss": None,
        }
        self.other_load("e2e", st["t_first"], end, stream_cpu + sink_cpu + emitter.cpu_seconds())
        servers = self.stack_cpu(st["t_first"], end)
        per_event = {"emitter": emitter.cpu_seconds(), "stream": stream_cpu, "sink": sink_cpu, **servers}
        self.r["e2e"]["cpu_us_per_event"] = {k: round(1e6 * v / self.n, 1) for k, v in per_event.items()}
        self.r["e2e"]["cpu_us_per_event"]["total"] = round(1e6 * sum(per_event.values()) / self.n, 1)
        self.say(f"e2e: {self.n / seconds:,.0f} events/s from first emit to last event in a locked object "
                 f"({seconds:.1f} s; the emitter alone took {st['t_acked'] - st['t_first']:.1f} s)")
        snapshot = bucket.sizes()
        saturated_seen = dict(bucket.first_seen)
        m1 = stream.scrape(0)
        self.r["e2e"]["stream_batches"] = batch_stats(m0, m1)

        # a paced load, for the latency a sustainable rate sees
        rate = self.args.paced_rate or max(1000.0, round(0.5 * self.n / seconds, -2))
        paced_n = int(rate * self.args.paced_seconds)
        paced_file = self.work / "paced.jsonl"
        paced_ids, _, _ = self.write_workload(paced_file, paced_n, self.args.seed + 1)
        self.say(f"e2e: paced load, {paced_n:,} more events at {rate:,.0f}/s")
        base = self.n
        _, pst, paced_times = self.emit(trail, "paced-emit", paced_file, paced_n, rate=rate,
                                        extra_workers=[stream, sink],
                                        on_tick=lambda now: listing(now, self.n + paced_n),
                                        progress=show("paced", paced_n, base),
                                        timeout_s=120.0 + 4 * self.args.paced_seconds)
        self.r["latency"]["paced_stream_batches"] = batch_stats(m1, stream.scrape(0))
        self.r["e2e"]["stream_peak_rss"] = stream.peak_rss()
        self.r["e2e"]["sink_peak_rss"] = sink.peak_rss()
        self.stop(stream)
        self.stop(sink)
        t0 = st["t_first"]
        self.r["e2e"]["objects"] = [
            {"key": o.key.rsplit("/", 1)[-1], "rows": o.last - o.first + 1, "bytes": o.size,
             "seen_s": round(bucket.first_seen[o.key] - t0, 2)}
            for o in sorted(bucket.list(), key=lambda o: bucket.first_seen.get(o.key, 0)) if o.key in bucket.first_seen
        ]

        seen = bucket.event_ids()
        self.trails["e2e"] = (bucket, seen, self.ids + paced_ids)
        for label, ids, emitted_at, first_seen in (("saturated", self.ids, times, saturated_seen),
                                                   ("paced", paced_ids, paced_times, bucket.first_seen)):
            total, to_sealed, to_durable = [], [], []
            for eid, t in zip(ids, emitted_at, strict=True):
                hit = seen.get(eid)
                if hit is not None and hit[1] in first_seen:
                    durable = first_seen[hit[1]]
                    total.append(durable - t)
                    to_sealed.append(hit[2] - t)
                    to_durable.append(durable - hit[2])
            self.r["latency"][label] = {**readback.percentiles(total), "events": len(total),
                                        "emit_to_sealed": readback.percentiles(to_sealed),
                                        "sealed_to_durable": readback.percentiles(to_durable)}
        self.r["latency"]["paced_rate"] = rate
        self.r["latency"]["paced_seconds"] = pst["t_last_call"] - pst["t_first"]
        p = self.r["latency"]["paced"]
        self.say(f"latency (paced): p50 {p.get('p50', 0):.2f} s, p95 {p.get('p95', 0):.2f} s, p99 {p.get('p99', 0):.2f} s")
        data_bytes = snapshot.get("data_bytes", 0)
        total_bytes = sum(v for k, v in snapshot.items() if k.endswith("_bytes"))
        self.r["storage"].update({
            "e2e_data_objects": snapshot.get("data_objects", 0),
            "trail_bytes_per_event": total_bytes / self.n,
            "trail_data_bytes_per_event": data_bytes / self.n,
            "e2e_bucket": snapshot,
        })

    # -- checks ------------------------------------------------------------------------------
    def checks(self, stage: Trail, e2e: Trail) -> None:
        self.say("checks: reading every trail back from the bucket")
        c = self.r["checks"]
        bucket = readback.Bucket(stage.settings)
        c["stage_sealed_once"] = readback.check_sealed_once(bucket.event_ids(), self.ids)
        self.r["storage"]["stage_column_bytes_per_event"] = bucket.column_bytes_per_event()
        sizes = bucket.sizes()
        self.r["storage"].update({
            "stage_data_objects": sizes.get("data_objects", 0),
            "stage_bytes_per_event": sum(v for k, v in sizes.items() if k.endswith("_bytes")) / self.n,
            "stage_bucket": sizes,
        })
        c["stage_verify_ok"] = bool(self.r["stages"]["verify"]["ok"]) and self.r["stages"]["verify"]["events"] == self.n
        _, seen, expected = self.trails["e2e"]
        c["e2e_sealed_once"] = readback.check_sealed_once(seen, expected)
        self.say("checks: `sealtrail verify --json` over the end-to-end trail")
        t0 = time.time()
        done = subprocess.run(proc.sealtrail_command("verify", "--json"), env={**os.environ, **e2e.env},
                              capture_output=True, text=True, timeout=900, check=False)
        try:
            rep = json.loads(done.stdout)
        except ValueError:
            rep = {"ok": False, "stderr": done.stderr[-2000:]}
        c["e2e_verify_cli"] = {"exit_code": done.returncode, "events": rep.get("events"), "ok": rep.get("ok"),
                               "seconds": time.time() - t0, "findings": rep.get("findings", [])[:5]}
        c["stream_no_rejections"] = not self.r["stages"]["stream"].get("rejected")
        plain = self.r["references"].get("plain_loop", {})
        c["plain_loop_sealed_all"] = (plain.get("sealed") == plain.get("events")
                                      and plain.get("events", 0) >= self.args.plain_events)
        ceiling = self.r["references"].get("ceiling", {})
        c["ceiling_sealed_all"] = (ceiling.get("sealed") == ceiling.get("events")
                                   and ceiling.get("events", 0) >= self.args.plain_events)
        naive = self.r["references"].get("naive_faust", {})
        c["naive_faust_sealed_all"] = naive.get("sealed") == self.args.naive_events
        c["ok"] = all((c["stage_sealed_once"]["ok"], c["stage_verify_ok"], c["e2e_sealed_once"]["ok"],
                       done.returncode == 0 and rep.get("ok") is True and rep.get("events") == len(expected),
                       c["stream_no_rejections"], c["plain_loop_sealed_all"], c["ceiling_sealed_all"],
                       c["naive_faust_sealed_all"]))
        self.say("checks: " + ("all passed" if c["ok"] else "FAILED: " + json.dumps(
            {k: v for k, v in c.items() if k != "ok"}, default=str)[:3000]))

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> int:
        self.r["machine"] = machine()
        self.r["commit"] = git_commit()
        self.workload = self.work / "workload.jsonl"
        self.say(f"workload: generating {self.n:,} events (seed {self.args.seed}) while the stack starts")
        with ThreadPoolExecutor(1) as pool:
            generated = pool.submit(self.write_workload, self.workload, self.n, self.args.seed)
            self.start_stack()
            self.ids, raw, zipped = generated.result()
        self.r["storage"].update({"jsonl_bytes_per_event": raw / self.n, "gzip_jsonl_bytes_per_event": zipped / self.n})
        self.trails: dict[str, Any] = {}
        stage = Trail(self.home, "stage")
        e2e = Trail(self.home, "e2e")
        stage.create_topics()
        e2e.create_topics()
        self.phase_emit(stage)
        self.phase_stream(stage)
        self.phase_plain(stage)
        self.phase_plain(stage, minimal=True)
        self.phase_naive(stage)
        self.phase_sink(stage)
        self.phase_verify(stage)
        self.phase_e2e(e2e)
        self.checks(stage, e2e)
        self.r["ratios"] = report.ratios(self.r)
        self.r["targets"] = report.targets(self.r)
        self.r["profiles"] = self.profiles
        self.r["total_seconds"] = time.monotonic() - self.started
        return self.write()

    def write(self) -> int:
        out = self.args.out
        out.mkdir(parents=True, exist_ok=True)
        ok = self.r["checks"].get("ok", False)
        name = f"bench-{self.stamp}" + ("" if ok else "-FAILED")
        (out / f"{name}.json").write_text(json.dumps(self.r, indent=2, default=str))
        if not ok:
            self.say(f"checks failed: no numbers reported; details in {out / name}.json")
            return 1
        md = report.markdown(self.r)
        for label, summary in self.profiles.items():
            md += "\n" + report.profile_markdown(f"Profile of {label} (py-spy)", summary)
        (out / f"{name}.md").write_text(md)
        shutil.copy(out / f"{name}.json", out / "latest.json")
        shutil.copy(out / f"{name}.md", out / "latest.md")
        print(md)
        self.say(f"results: {out / name}.json and .md (also latest.json, latest.md)")
        return 0

    def cleanup(self) -> None:
        for w in self.workers:
            if w.alive():
                w.stop(10)
        self.stop_stack()
        if self.args.keep:
            self.say(f"kept {self.home}")
        else:
            shutil.rmtree(self.home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    try:
        return bench.run()
    except BenchError as e:
        bench.say(f"error: {e}")
        return 2
    except KeyboardInterrupt:
        bench.say("interrupted")
        return 130
    finally:
        bench.say(f"total {time.monotonic() - bench.started:.0f} s")
        bench.cleanup()


if __name__ == "__main__":
    sys.exit(main())
