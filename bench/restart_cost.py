#!/usr/bin/env python3
"""What a restart costs on a young trail and on an old one (issue 13, part 5): the old within 1.5x of the young.

    .venv/bin/python bench/restart_cost.py [--quick | --events N --objects N] [--window N]   (make bench-restart)

It starts its own embedded stack in a temporary home and builds two trails on
it, each with its own topics, bucket prefix and groups (bench/synthetic_trail.py:
the product's own encoding, sealing, objects and digests, locked, spread over
many dt= days): a young one (10,000 events over one day) and an old one
(1,000,000 events in 100,000 objects over a year). Then, for each trail:

  anchor    `sealtrail anchor save` as a daily verify run would have left it;
  recovery  in this process: recover_heads for every partition (audit.chained
            records read, probe rounds, S3 requests by operation) and the sink's
            partition assignment (SinkWorker._on_assign, S3 requests by
            operation), each timed;
  restart   a few new events wait on the events topic; one `sealtrail stream`
            and one `sealtrail sink` process start: time until each has its
            partitions, and until every new event is in a locked object named
            by a digest (restart-to-durable);
  verify    `sealtrail verify --anchor FILE --new` (the whole command, timed),
            then the same check in this process counting its S3 requests; the
            objects it verified must hold every new event exactly once and
            nothing else.

audit.chained keeps what its retention would (--chained-days, 7: the old
trail's last week, the whole young one); with --chained-days 0 it holds every
record of the year, which the embedded broker then fetches from too slowly near
the end of a partition (no answer within 30 s at offset 166,666) to measure.
A restart reads up to stream.dedupe_window records per chain from
audit.chained, so both trails get the same window (--window, below the young
trail's chain length so that both read a full window). The sink's flush
interval is shortened on both (--flush-interval), or its timer would be all that
restart-to-durable measures. Results: a table on stdout and
bench/results/restart_cost.json. Exit 1 when a check fails, 3 when a number
misses the 1.5x target.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import proc  # noqa: E402
from synthetic_trail import Trail, build_old_trail, commit_offsets  # noqa: E402

RESULTS = BENCH / "results"
TARGET = 1.5
STREAM_READY = re.compile(r"assigned partitions \[[^\]]*\]; heads .* recovered in ([0-9.]+)s")
SINK_READY = re.compile(r"assigned \[[^\]]*\]; stored heads")


class BenchError(Exception):
    pass


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench/restart_cost.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="an old trail of 100,000 events in 10,000 objects")
    ap.add_argument("--events", type=int, help="events of the old trail [1,000,000; --quick: 100,000]")
    ap.add_argument("--objects", type=int, help="data objects of the old trail [events / 10]")
    ap.add_argument("--days", type=float, default=365.0, help="days the old trail spans [365]")
    ap.add_argument("--young-events", type=int, default=10_000, help="events of the young trail [10,000]")
    ap.add_argument("--young-objects", type=int, help="data objects of the young trail [as dense as the old one]")
    ap.add_argument("--window", type=int, default=1000,
                    help="stream.dedupe_window of both trails [1000; the product's default is 200,000]")
    ap.add_argument("--also-window", type=int, action="append", default=[],
                    help="also time one in-process recovery per trail with this window (repeatable; e.g. 200000)")
    ap.add_argument("--chained-days", type=float, default=7.0,
                    help="days of records audit.chained keeps, as its retention would [7; 0: every record]")
    ap.add_argument("--flush-interval", type=float, default=1.0, help="sink.flush_interval_s of both trails [1.0]")
    ap.add_argument("--new-events", type=int, default=60, help="events waiting when the workers restart [60]")
    ap.add_argument("--rounds", type=int, default=2, help="restarts measured per trail; medians reported [2]")
    ap.add_argument("--processes", type=int, default=2, help="processes building a trail [2]")
    ap.add_argument("--put-threads", type=int, default=8, help="PUT threads per build process [8]")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="leave the temporary home (stack stopped) for inspection")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    args.events = args.events or (100_000 if args.quick else 1_000_000)
    args.objects = args.objects or max(1, args.events // 10)
    args.young_objects = args.young_objects or max(1, round(args.young_events * args.objects / args.events))
    return args


def counting_store(settings: Any) -> tuple[Any, Counter]:
    """An S3Store whose every request is counted by operation (boto3's before-call event)."""
    from sealtrail.sinks.s3 import S3Store

    store, calls = S3Store(settings), Counter()
    store.client.meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))
    return store, calls


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class RestartBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.monotonic()
        self.home = Path(tempfile.mkdtemp(prefix="strestart-"))
        self.logs = self.home / "bench-logs"
        self.work = self.home / "bench-work"
        self.work.mkdir(parents=True)
        self.settings: Any = None
        self.workers: list[proc.Worker] = []
        self.r: dict[str, Any] = {
            "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "command": "bench/restart_cost.py " + " ".join(sys.argv[1:]),
            "settings": {"dedupe_window": args.window, "sink_flush_interval_s": args.flush_interval,
                         "new_events_per_restart": args.new_events, "rounds": args.rounds,
                         "chained_days": args.chained_days or None},
            "trails": {},
            "checks": {},
        }

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:7.1f}s] {message}", file=sys.stderr, flush=True)

    # -- stack ---------------------------------------------------------------------------------
    def start_stack(self) -> None:
        from sealtrail import stack
        from sealtrail.config import load_settings

        self.say(f"starting the embedded stack in {self.home}")
        stack.start(load_settings({"home": str(self.home)}), progress=lambda m: self.say(f"  {m}"))
        self.settings = load_settings({"home": str(self.home)})
        self.r["settings"]["partitions"] = self.settings.kafka.partitions
        self.r["settings"]["session_timeout_ms"] = self.settings.kafka.session_timeout_ms

    def cleanup(self) -> None:
        for w in self.workers:
            if w.alive():
                w.stop(10)
        if self.settings is not None:
            from sealtrail import stack

            self.say("stopping the embedded stack")
            try:
                stack.stop(self.settings)
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                self.say(f"  stack stop: {e}")
        if self.args.keep:
            self.say(f"kept {self.home}")
        else:
            shutil.rmtree(self.home, ignore_errors=True)

    # -- building ------------------------------------------------------------------------------
    def build(self, tag: str, events: int, objects: int, days: float, seed: int) -> tuple[Trail, dict[str, Any]]:
        trail = Trail(self.home, tag, {"SEALTRAIL_STREAM__DEDUPE_WINDOW": str(self.args.window),
                                       "SEALTRAIL_SINK__FLUSH_INTERVAL_S": str(self.args.flush_interval)})
        trail.create_topics()
        trail.publish_key()
        self.say(f"{tag}: building {events:,} events in {objects:,} objects over {days:g} days")
        built = build_old_trail(trail, events, objects, days, seed, self.args.processes, self.args.put_threads,
                                lambda m: self.say(m.replace("old trail", tag)), self.args.chained_days or None)
        # as the workers would have left their groups after the last record
        s, chains = trail.settings, built["chains"]
        commit_offsets(s, s.stream.group, s.kafka.topics.events,
                       {int(c[1:]): r["last_src_offset"] + 1 for c, r in chains.items()})
        commit_offsets(s, s.sink.group, s.kafka.topics.chained,
                       {int(c[1:]): r["last_chained_offset"] + 1 for c, r in chains.items()})
        self.say(f"{tag}: {built['events']:,} events, {built['objects']:,} objects and {built['digests']:,} digests "
                 f"in {built['seconds']:.0f} s ({built['puts_per_s']:,.0f} PUTs/s)")
        return trail, built

    # -- measuring -----------------------------------------------------------------------------
    def save_anchor(self, trail: Trail, name: str) -> tuple[Path, dict[str, Any]]:
        from sealtrail.evidence.anchor import save_anchor

        store, calls = counting_store(trail.settings)
        t0 = time.perf_counter()
        doc = save_anchor(store, trail.settings)
        seconds = time.perf_counter() - t0
        path = self.work / f"{name}.anchor.json"
        path.write_text(json.dumps(doc, indent=2))
        return path, {"seconds": seconds, "s3_requests": sum(calls.values()), "s3_by_operation": dict(calls),
                      "chains": len(doc["chains"])}

    def recovery(self, trail: Trail, window: int | None = None) -> dict[str, Any]:
        """recover_heads for every partition, as a stream worker given all of them runs it, with where its time goes."""
        from sealtrail.stream import recovery

        settings = trail.settings
        if window is not None:
            settings = settings.model_copy(update={"stream": settings.stream.model_copy(
                update={"dedupe_window": window})})
        partitions = list(range(settings.kafka.partitions))
        read: Counter = Counter()
        spent: Counter = Counter()
        probes: list[Any] = []
        real_read, real_probe, real_heads = recovery.read_to_end, recovery.TopicProbe, recovery.bucket_heads

        def counted(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            for batch in real_read(*args, **kwargs):
                read.update(m.partition() for m in batch)
                spent["tail_read_s"] += time.perf_counter() - t0
                yield batch
                t0 = time.perf_counter()
            spent["tail_read_s"] += time.perf_counter() - t0

        def timed_heads(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return real_heads(*args, **kwargs)
            finally:
                spent["bucket_heads_s"] += time.perf_counter() - t0

        class CountedProbe(real_probe):  # type: ignore[misc, valid-type]
            def __enter__(self) -> Any:
                probes.append(self)
                return super().__enter__()

            def _at(self, offsets: dict[int, int]) -> Any:
                t0 = time.perf_counter()
                try:
                    return super()._at(offsets)
                finally:
                    spent["probe_rounds_s"] += time.perf_counter() - t0

        store, calls = counting_store(settings)
        recovery.read_to_end, recovery.TopicProbe, recovery.bucket_heads = counted, CountedProbe, timed_heads
        try:
            t0 = time.perf_counter()
            heads = recovery.recover_heads(settings, partitions, store)
            seconds = time.perf_counter() - t0
        finally:
            recovery.read_to_end, recovery.TopicProbe, recovery.bucket_heads = real_read, real_probe, real_heads
        return {"seconds": seconds, "chained_records_read": sum(read.values()),
                "chained_read_per_partition": {str(p): read[p] for p in partitions},
                "probe_rounds": sum(p.rounds for p in probes), "s3_requests": sum(calls.values()),
                "s3_by_operation": dict(calls), "heads": {h.chain: h.seq for h in heads.values()},
                **{k: round(v, 3) for k, v in spent.items()}}

    def sink_assignment(self, trail: Trail) -> dict[str, Any]:
        """SinkWorker._on_assign for every partition: what a sink does before it consumes a record."""
        from confluent_kafka import TopicPartition

        from sealtrail.kafka import make_consumer
        from sealtrail.signing import KeySource
        from sealtrail.sinks.worker import SinkWorker

        class Assigned:
            """The sink group's real committed offsets (the digest search's hints); assign() only noted."""

            def __init__(self) -> None:
                self.consumer = make_consumer(trail.settings, trail.settings.sink.group)

            def committed(self, partitions: list[Any], timeout: float) -> list[Any]:
                return self.consumer.committed(partitions, timeout=timeout)

            def assign(self, partitions: list[Any]) -> None:
                self.partitions = partitions

        store, calls = counting_store(trail.settings)
        worker = SinkWorker(trail.settings, KeySource(trail.settings), store=store)
        topic = trail.settings.kafka.topics.chained
        assigned = Assigned()
        t0 = time.perf_counter()
        try:
            worker._on_assign(assigned, [TopicPartition(topic, p) for p in range(trail.settings.kafka.partitions)])
        finally:
            seconds = time.perf_counter() - t0
            assigned.consumer.close()
        return {"seconds": seconds, "s3_requests": sum(calls.values()), "s3_by_operation": dict(calls),
                "stored": {b.chain: b.stored_seq for b in worker.buffers.values()},
                "undigested": sum(len(v) for v in worker.stored.values())}

    def emit_new(self, trail: Trail, count: int, seed: int) -> tuple[list[str], dict[int, int]]:
        """count new events on the events topic, round-robin over the partitions, acknowledged."""
        from sealtrail.kafka import flush_all, make_producer
        from sealtrail.producers.outbound import encode, prepare
        from sealtrail.redact import Redactor
        from sealtrail.stack.workload import generate

        s = trail.settings
        redactor = Redactor.from_settings(s.redaction)
        producer = make_producer(s)
        ids, per = [], Counter()
        for i, event in enumerate(generate(count, seed=seed)):
            p = i % s.kafka.partitions
            producer.produce(s.kafka.topics.events, encode(prepare(event, redactor)), key=event["event_id"].encode(),
                             partition=p)
            ids.append(event["event_id"])
            per[p] += 1
        flush_all(producer, 60)
        return ids, dict(per)

    def durable_seqs(self, store: Any, trail: Trail, targets: dict[str, int]) -> dict[str, int]:
        """The last seq each chain's newest digest covers (found as the sink finds it)."""
        from sealtrail.index import newest_digest_name

        out = {}
        for chain, target in targets.items():
            named = newest_digest_name(store, trail.settings.s3.prefix, chain, target)
            out[chain] = named[0] if named else 0
        return out

    def restart(self, trail: Trail, name: str, heads: dict[str, int], new: dict[int, int]) -> dict[str, Any]:
        """One stream and one sink process started over waiting events: time to partitions, time to durable."""
        from sealtrail.sinks.s3 import S3Store

        targets = {f"p{p:03d}": heads[f"p{p:03d}"] + n for p, n in new.items()}
        store = S3Store(trail.settings)
        t0 = time.monotonic()
        stream = proc.spawn(f"{name}-stream", proc.sealtrail_command("stream"), trail.env, self.logs, service=True)
        sink = proc.spawn(f"{name}-sink", proc.sealtrail_command("sink"), trail.env, self.logs, service=True)
        self.workers += [stream, sink]
        seen: dict[str, float] = {}
        stream_recovery_s = None
        deadline = t0 + 300
        try:
            while True:
                now = time.monotonic()
                for w in (stream, sink):
                    if not w.alive():
                        raise BenchError(f"{w.name} exited with {w.popen.returncode}:\n{w.log_tail()}")
                if "stream" not in seen and (m := STREAM_READY.search(stream.log_tail(20_000))):
                    seen["stream"], stream_recovery_s = now - t0, float(m.group(1))
                if "sink" not in seen and SINK_READY.search(sink.log_tail(20_000)):
                    seen["sink"] = now - t0
                stored = self.durable_seqs(store, trail, targets)
                if all(stored[c] >= t for c, t in targets.items()):
                    seen["durable"] = time.monotonic() - t0
                    break
                if now > deadline:
                    raise BenchError(f"{name}: not durable after 300 s ({stored} of {targets})\n"
                                     f"{stream.log_tail()}\n{sink.log_tail()}")
                time.sleep(0.1)
        finally:
            for w in (stream, sink):
                w.stop()
        over = {c: s for c, s in stored.items() if s != targets[c]}
        if over:
            raise BenchError(f"{name}: chains stored past the new events: {over} (expected {targets})")
        return {"restart_to_durable_s": seen["durable"], "stream_assigned_s": seen.get("stream"),
                "stream_recovery_s": stream_recovery_s, "sink_assigned_s": seen.get("sink")}

    def verify_new(self, trail: Trail, anchor: Path, new_ids: list[str]) -> dict[str, Any]:
        """`sealtrail verify --anchor FILE --new` as a command, then in this process counting S3 requests;
        the objects it verified hold every new event once and nothing else."""
        from sealtrail.evidence.anchor import read_anchor
        from sealtrail.evidence.check import verify_evidence
        from sealtrail.objects import read_table

        env = {**os.environ, **trail.env}
        t0 = time.perf_counter()
        done = subprocess.run(proc.sealtrail_command("verify", "--anchor", str(anchor), "--new", "--json"), env=env,
                              capture_output=True, text=True, timeout=900, check=False)
        cli_s = time.perf_counter() - t0
        try:
            rep = json.loads(done.stdout)
        except ValueError:
            rep = {"ok": False, "stderr": done.stderr[-2000:]}
        store, calls = counting_store(trail.settings)
        t0 = time.perf_counter()
        checked = verify_evidence(trail.settings, store=store, anchor=read_anchor(anchor), only_new=True)
        inproc_s = time.perf_counter() - t0
        requests, by_op = sum(calls.values()), dict(calls)
        ids: Counter = Counter()
        for key in checked.report.verified:
            table = read_table(store.get(key).body)
            kinds = table.column("kind").to_pylist() if "kind" in table.column_names else [None] * table.num_rows
            ids.update(i for i, k in zip(table.column("event_id").to_pylist(), kinds, strict=True) if k is None)
        once = set(ids) == set(new_ids) and all(n == 1 for n in ids.values())
        r = checked.report
        return {"cli_seconds": cli_s, "cli_exit": done.returncode, "cli_events": rep.get("events"),
                "cli_ok": rep.get("ok"), "cli_findings": rep.get("findings", [])[:5],
                "seconds": inproc_s, "s3_requests": requests, "s3_by_operation": by_op,
                "objects": r.objects, "events": r.events, "ok": r.ok,
                "findings": [f.as_dict() for f in r.findings][:5], "new_events_once": once,
                "events_seen": sum(ids.values()), "events_expected": len(new_ids)}

    def full_verify(self, trail: Trail) -> dict[str, Any]:
        env = {**os.environ, **trail.env}
        t0 = time.perf_counter()
        done = subprocess.run(proc.sealtrail_command("verify", "--json"), env=env, capture_output=True, text=True,
                              timeout=3600, check=False)
        try:
            rep = json.loads(done.stdout)
        except ValueError:
            rep = {"ok": False, "stderr": done.stderr[-2000:]}
        return {"seconds": time.perf_counter() - t0, "exit": done.returncode, "ok": rep.get("ok"),
                "events": rep.get("events"), "objects": rep.get("objects"), "findings": rep.get("findings", [])[:5]}

    def measure(self, trail: Trail, name: str, built: dict[str, Any], seed: int) -> dict[str, Any]:
        heads = {c: r["last_seq"] for c, r in built["chains"].items()}
        rounds = []
        for k in range(self.args.rounds):
            label = f"{name}-{k + 1}"
            anchor, anchored = self.save_anchor(trail, label)
            rec = self.recovery(trail)
            if rec["heads"] != heads:
                raise BenchError(f"{label}: recovery found heads {rec['heads']}, the trail ends at {heads}")
            sink = self.sink_assignment(trail)
            if sink["stored"] != heads or sink["undigested"]:
                raise BenchError(f"{label}: the sink's assignment found {sink['stored']} "
                                 f"({sink['undigested']} undigested), the trail ends at {heads}")
            new_ids, per = self.emit_new(trail, self.args.new_events, seed + 1_000_003 * (k + 1))
            restart = self.restart(trail, label, heads, per)
            check = self.verify_new(trail, anchor, new_ids)
            rounds.append({"anchor_save": anchored, "recovery": rec, "sink_assignment": sink, "restart": restart,
                           "verify_new": check})
            self.say(f"{label}: recovery read {rec['chained_records_read']:,} records, {rec['s3_requests']} S3 "
                     f"requests ({rec['seconds']:.2f} s); sink assignment {sink['s3_requests']} S3 requests "
                     f"({sink['seconds']:.2f} s); restart-to-durable {restart['restart_to_durable_s']:.1f} s; "
                     f"verify --new {check['cli_seconds']:.1f} s, {check['s3_requests']} S3 requests, "
                     f"{check['events']} events, {'ok' if check['ok'] and check['new_events_once'] else 'FAILED'}")
            if not (check["ok"] and check["cli_exit"] == 0 and check["new_events_once"]
                    and check["events"] == len(new_ids)):
                raise BenchError(f"{label}: verify --new did not find every new event once: "
                                 f"{json.dumps(check, default=str)[:3000]}")
            for p, n in per.items():
                heads[f"p{p:03d}"] += n
        out = {"rounds": rounds, "summary": summarize(rounds), "other_windows": {}}
        for window in self.args.also_window:
            rec = self.recovery(trail, window)
            rec.pop("chained_read_per_partition")
            out["other_windows"][str(window)] = rec
            self.say(f"{name}: recovery with stream.dedupe_window {window:,} read {rec['chained_records_read']:,} "
                     f"records in {rec['seconds']:.1f} s ({rec['s3_requests']} S3 requests)")
        return out

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> int:
        a = self.args
        self.start_stack()
        young, young_built = self.build("young", a.young_events, a.young_objects, 1.0, a.seed)
        old, old_built = self.build("old", a.events, a.objects, a.days, a.seed + 100_000)
        for name, built in (("young", young_built), ("old", old_built)):
            self.r["trails"][name] = {"build": {k: v for k, v in built.items() if k != "chains"},
                                      "heads": {c: r["last_seq"] for c, r in built["chains"].items()}}
        self.r["trails"]["young"].update(self.measure(young, "young", young_built, a.seed))
        self.r["trails"]["old"].update(self.measure(old, "old", old_built, a.seed + 100_000))
        self.say("young: `sealtrail verify` over the whole trail (the synthetic trail is one the product verifies)")
        full = self.full_verify(young)
        self.r["checks"]["young_full_verify"] = full
        expected = a.young_events + a.rounds * a.new_events
        self.r["checks"]["ok"] = full["exit"] == 0 and full["ok"] is True and full["events"] == expected
        if not self.r["checks"]["ok"]:
            raise BenchError(f"the young trail does not verify in full: {json.dumps(full, default=str)[:3000]}")
        self.r["comparison"] = compare(self.r["trails"]["young"]["summary"], self.r["trails"]["old"]["summary"])
        self.r["meets_target"] = all(row["meets"] for row in self.r["comparison"] if row["target"])
        self.r["total_seconds"] = time.monotonic() - self.started
        return self.write()

    def write(self) -> int:
        out = self.args.out
        out.mkdir(parents=True, exist_ok=True)
        (out / "restart_cost.json").write_text(json.dumps(self.r, indent=2, default=str))
        print(table(self.r))
        self.say(f"results: {out / 'restart_cost.json'}")
        return 0 if self.r["meets_target"] else 3


# what is compared, young against old: (label, path in a round, part of the 1.5x target)
METRICS = (
    ("recovery: audit.chained records read", ("recovery", "chained_records_read"), True),
    ("recovery: probe fetch rounds", ("recovery", "probe_rounds"), False),
    ("recovery: S3 requests", ("recovery", "s3_requests"), True),
    ("recovery: seconds (in-process)", ("recovery", "seconds"), False),
    ("recovery: of which probe rounds, s", ("recovery", "probe_rounds_s"), False),
    ("recovery: of which bucket heads, s", ("recovery", "bucket_heads_s"), False),
    ("recovery: of which tail read, s", ("recovery", "tail_read_s"), False),
    ("sink assignment: S3 requests", ("sink_assignment", "s3_requests"), True),
    ("sink assignment: seconds (in-process)", ("sink_assignment", "seconds"), False),
    ("restart: stream has its partitions, s", ("restart", "stream_assigned_s"), False),
    ("restart: stream's recovery (its log), s", ("restart", "stream_recovery_s"), False),
    ("restart: sink has its partitions, s", ("restart", "sink_assigned_s"), False),
    ("restart-to-durable, s", ("restart", "restart_to_durable_s"), True),
    ("verify --anchor --new: command, s", ("verify_new", "cli_seconds"), True),
    ("verify --anchor --new: S3 requests", ("verify_new", "s3_requests"), True),
    ("verify --anchor --new: seconds (in-process)", ("verify_new", "seconds"), False),
    ("anchor save: S3 requests", ("anchor_save", "s3_requests"), False),
)


def summarize(rounds: list[dict[str, Any]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for label, (part, field), _ in METRICS:
        values = [r[part][field] for r in rounds if r[part].get(field) is not None]
        out[label] = median(values) if values else None
    for part in ("recovery", "sink_assignment", "verify_new", "anchor_save"):
        ops: Counter = Counter()
        for r in rounds:
            ops.update(r[part]["s3_by_operation"])
        out[f"{part}: S3 by operation (all rounds)"] = dict(ops)  # type: ignore[assignment]
    return out


def compare(young: dict[str, Any], old: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for label, _, target in METRICS:
        y, o = young.get(label), old.get(label)
        ratio = o / y if y and o is not None else None
        rows.append({"metric": label, "young": y, "old": o, "ratio": ratio, "target": target,
                     "meets": ratio is not None and ratio <= TARGET})
    return rows


def table(r: dict[str, Any]) -> str:
    t = r["trails"]
    yb, ob = t["young"]["build"], t["old"]["build"]
    s = r["settings"]
    lines = [
        f"restart cost, young vs old trail ({s['partitions']} chains, one stream and one sink worker; "
        f"stream.dedupe_window {s['dedupe_window']:,}, sink.flush_interval_s {s['sink_flush_interval_s']:g}, "
        f"{s['new_events_per_restart']} new events per restart, median of {s['rounds']} restarts; audit.chained "
        f"keeps {'every record' if not s.get('chained_days') else str(s['chained_days']) + ' days of records'})",
        f"  young: {yb['events']:,} events, {yb['objects']:,} objects + {yb['digests']:,} digests over "
        f"{yb['days']:g} days",
        f"  old:   {ob['events']:,} events, {ob['objects']:,} objects + {ob['digests']:,} digests over "
        f"{ob['days']:g} days (built in {ob['seconds']:.0f} s)",
        "",
        f"| {'metric':<44} | {'young':>9} | {'old':>9} | {'old/young':>9} | target {TARGET:g}x |",
        f"|{'-' * 46}|{'-' * 11}|{'-' * 11}|{'-' * 11}|{'-' * 13}|",
    ]

    def num(v: float | None) -> str:
        if v is None:
            return "-"
        return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"

    for row in r["comparison"]:
        verdict = ("meets" if row["meets"] else "MISSES") if row["target"] else "(info)"
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-"
        lines.append(f"| {row['metric']:<44} | {num(row['young']):>9} | {num(row['old']):>9} | {ratio:>9} | "
                     f"{verdict:>11} |")
    lines.append("")
    for part in ("recovery", "sink_assignment", "verify_new"):
        key = f"{part}: S3 by operation (all rounds)"
        lines.append(f"  {part} S3 requests by operation, all rounds: young {t['young']['summary'][key]}, "
                     f"old {t['old']['summary'][key]}")
    for window in r["trails"]["young"].get("other_windows", {}):
        y, o = r["trails"]["young"]["other_windows"][window], r["trails"]["old"]["other_windows"][window]
        lines.append(f"  recovery with stream.dedupe_window {int(window):,} (one run, in-process): young "
                     f"{y['chained_records_read']:,} records read in {y['seconds']:.1f} s, old "
                     f"{o['chained_records_read']:,} in {o['seconds']:.1f} s ({o['seconds'] / y['seconds']:.2f}x)")
    lines.append(f"  target (old within {TARGET:g}x of young on every metric marked): "
                 + ("met" if r["meets_target"] else "NOT met"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    bench = RestartBench(parse_args(argv))
    try:
        return bench.run()
    except BenchError as e:
        bench.say(f"error: {e}")
        return 1
    except KeyboardInterrupt:
        bench.say("interrupted")
        return 130
    finally:
        bench.say(f"total {time.monotonic() - bench.started:.0f} s")
        bench.cleanup()


if __name__ == "__main__":
    sys.exit(main())
