"""An old trail built synthetically, in the product's own formats, so its workers take it as theirs.

Running the pipeline over a million events into a hundred thousand objects
would take an hour here (the sink writes an object every flush, and a flush
waits for a timer), so bench/restart_cost.py builds the old trail directly,
with the functions the workers use, in the order they use them:

  input     every event goes through the producer's own prepare/encode to
            the trail's events topic, one partition per chain, so the input
            offsets the records name exist (each delivery report is checked
            against the offset the record claims);
  sealing   the stream's validate_counted and seal_batch, about ten inputs a
            batch, each batch's records produced to the chained topic as the
            stream produces them (SealedRecord.to_wire, keyed by chain, on the
            chain's partition; each landing offset is checked);
  objects   one data object per sealed batch, written with ObjectWriter and
            named by object_key_for, locked as the sink locks them
            (S3Store.put_locked, the retention policy's lock for its events);
  digests   one digest per object, build_digest as the sink calls it (the
            object's version id, SHA-256, Merkle root and input range, the
            batch's signed head, the link to the chain's previous digest),
            locked with the policy's longest lock.

The PUTs are what costs (the embedded S3 server took 250 to 600 locked PUTs a
second here, depending on the machine's other load, whatever the number of
client threads or processes), so each process keeps a pool of threads busy:
data objects are PUT in parallel, and each chain's digests are built strictly
in chain order (each one links to the SHA-256 of the one before) as the
version ids of its objects come back, then PUT in the same pool. Chains are
split over a few processes, which share the CPU work (validation, hashing,
Parquet) that one interpreter could not keep up with. sealed_at runs from
`days` ago to yesterday 23:00 UTC, so the objects spread over that many dt=
folders as an old trail's do, and today's folder holds only what a restart
seals.
"""

from __future__ import annotations

import hashlib
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.support

from tests.support.environment import settings_from, trail_environment  # noqa: E402

Say = Callable[[str], None]


class BuildError(Exception):
    pass


class Trail:
    """One trail's own topics, bucket prefix and consumer groups on the shared stack (as bench/run.py's)."""

    def __init__(self, home: Path, tag: str, extra_env: dict[str, str] | None = None) -> None:
        self.tag = tag
        self.env = {**trail_environment(home, tag), **(extra_env or {})}
        self.settings = settings_from(self.env)

    def create_topics(self) -> None:
        """The trail's four topics, through the product's topic spec (the workers check it at start)."""
        from sealtrail import topics

        report = topics.init(self.settings)
        if report.losses:
            raise BuildError(f"topics of {self.tag} would lose data: {report.losses}")

    def publish_key(self) -> None:
        """What `sealtrail stream` and `sealtrail sink` do at start: the public key, locked, under the prefix."""
        from sealtrail.publication import publish_public_key
        from sealtrail.signing import KeySource
        from sealtrail.sinks.s3 import S3Store

        publish_public_key(S3Store(self.settings), self.settings, KeySource(self.settings).current())


@dataclass(frozen=True)
class ChainPlan:
    partition: int
    events: int
    objects: int
    seed: int
    chained_from: int = 1  # the first seq still on audit.chained (Kafka's retention aged out the ones before)


def plan_chains(partitions: int, events: int, objects: int, seed: int) -> list[ChainPlan]:
    """Events and objects split as evenly as they go over the chains."""
    if objects > events:
        raise BuildError(f"{objects:,} objects cannot hold {events:,} events: at least one event per object")
    out = []
    for p in range(partitions):
        e = events // partitions + (1 if p < events % partitions else 0)
        o = objects // partitions + (1 if p < objects % partitions else 0)
        out.append(ChainPlan(p, e, max(1, min(o, e)), seed + 1000 * p))
    return out


def trail_span(days: float, now: datetime | None = None) -> tuple[datetime, datetime]:
    """From `days` before the end to yesterday 23:00 UTC: today's dt= folder stays for what a restart seals."""
    now = now or datetime.now(timezone.utc)
    end = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(hours=1)
    return end - timedelta(days=days), end


def build_old_trail(trail: Trail, events: int, objects: int, days: float, seed: int, processes: int,
                    put_threads: int, say: Say, chained_days: float | None = None) -> dict[str, Any]:
    """Build the trail; returns per chain what was built (last seq, offsets, hash) and the rates.

    chained_days: audit.chained keeps only the records of the trail's last chained_days, as its
    retention would (None: every record). The kept ones start at offset 0, as on a topic that was
    re-created: the embedded broker has no DeleteRecords, and fetching near the end of a partition of
    166,667 records got no answer from it within 30 s (measured), which a real broker answers at once.
    """
    import dataclasses
    import math
    import multiprocessing as mp

    from sealtrail.signing import KeySource

    KeySource(trail.settings)  # creates the signing key once, before the processes read it
    plans = plan_chains(trail.settings.kafka.partitions, events, objects, seed)
    if chained_days is not None and chained_days < days:
        plans = [dataclasses.replace(p, chained_from=max(1, p.events - math.ceil(p.events * chained_days / days) + 1))
                 for p in plans]
    start, end = trail_span(days)
    processes = max(1, min(processes, len(plans)))
    groups = [[p for i, p in enumerate(plans) if i % processes == k] for k in range(processes)]
    ctx = mp.get_context("spawn")
    progress: Any = ctx.Queue()
    env = trail.env
    began = time.monotonic()
    procs = [ctx.Process(target=_build_chains, name=f"build-{k}",
                         args=(env, group, start.timestamp(), end.timestamp(), put_threads, progress), daemon=True)
             for k, group in enumerate(groups)]
    for p in procs:
        p.start()
    status: dict[int, dict[str, Any]] = {}
    results: dict[int, dict[str, Any]] = {}
    errors: list[str] = []
    last_print = 0.0
    while len(results) + len(errors) < len(plans):
        try:
            kind, partition, payload = progress.get(timeout=1.0)
        except queue.Empty:
            dead = [p for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
            if dead:
                errors.append(f"{dead[0].name} exited with {dead[0].exitcode}")
                break
            continue
        if kind == "progress":
            status[partition] = payload
        elif kind == "done":
            results[partition] = payload
            status[partition] = payload
        else:
            errors.append(f"chain p{partition:03d}: {payload}")
        now = time.monotonic()
        if now - last_print >= 5.0 or len(results) == len(plans):
            last_print = now
            ev = sum(s.get("events", 0) for s in status.values())
            obj = sum(s.get("objects", 0) for s in status.values())
            puts = sum(s.get("puts", 0) for s in status.values())
            took = now - began
            say(f"  old trail: {ev:,}/{events:,} events sealed, {obj:,}/{sum(p.objects for p in plans):,} objects "
                f"and their digests locked ({puts:,} PUTs, {puts / max(took, 1e-9):,.0f}/s) after {took:,.0f} s")
    for p in procs:
        p.join(30 if not errors else 5)
        if p.is_alive():
            p.kill()
    if errors:
        raise BuildError("; ".join(errors))
    seconds = time.monotonic() - began
    puts = sum(r["puts"] for r in results.values())
    put_s = sum(r["put_seconds"] for r in results.values())
    return {
        "events": sum(r["events"] for r in results.values()),
        "objects": sum(r["objects"] for r in results.values()),
        "digests": sum(r["digests"] for r in results.values()),
        "seconds": seconds,
        "puts": puts,
        "puts_per_s": puts / seconds,
        "put_latency_ms_mean": 1000 * put_s / max(puts, 1),
        "processes": processes,
        "put_threads_per_process": put_threads,
        "days": days,
        "first_sealed_at": start.isoformat(),
        "last_sealed_at": end.isoformat(),
        "chains": {f"p{p:03d}": results[p] for p in sorted(results)},
    }


def commit_offsets(settings: Any, group: str, topic: str, next_offsets: dict[int, int]) -> dict[int, int]:
    """Commit a consumer group's offsets as its workers would have after the last record; returns what the
    broker then says is committed."""
    from confluent_kafka import TopicPartition

    from sealtrail.kafka import make_consumer

    consumer = make_consumer(settings, group)
    try:
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in next_offsets.items()], asynchronous=False)
        got = consumer.committed([TopicPartition(topic, p) for p in next_offsets], timeout=30)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in got}


# ---------------------------------------------------------------------------
# in the build processes


def _build_chains(env: dict[str, str], plans: list[ChainPlan], start_ts: float, end_ts: float, put_threads: int,
                  progress: Any) -> None:
    os.environ.update(env)
    from sealtrail.config import load_settings
    from sealtrail.kafka import make_producer
    from sealtrail.redact import Redactor
    from sealtrail.retention import policy_for
    from sealtrail.signing import KeySource
    from sealtrail.sinks.s3 import S3Store

    settings = load_settings()
    signer = KeySource(settings).current()
    policy = policy_for(settings)
    redactor = Redactor.from_settings(settings.redaction)
    producer = make_producer(settings)
    local = threading.local()
    stats = {"puts": 0, "put_seconds": 0.0}
    stats_lock = threading.Lock()

    def put(key: str, body: bytes, events: set | None) -> str | None:
        """As the sink's _put_locked: the lock computed at each attempt; S3 outages retried."""
        from sealtrail.errors import ServiceUnavailable

        store = getattr(local, "store", None)
        if store is None:
            store = local.store = S3Store(settings)
        for attempt in range(6):
            now = datetime.now(timezone.utc)
            lock = policy.longest_lock(now) if events is None else policy.lock_for_events(events, now)
            t0 = time.perf_counter()
            try:
                version = store.put_locked(key, body, lock.mode, lock.retain_until)
            except ServiceUnavailable:
                if attempt == 5:
                    raise
                time.sleep(0.2 * 2 ** attempt)
                continue
            with stats_lock:
                stats["puts"] += 1
                stats["put_seconds"] += time.perf_counter() - t0
            return version
        raise AssertionError("unreachable")

    slots = threading.BoundedSemaphore(put_threads * 6)  # PUTs queued at once: bounds memory, keeps the pool busy
    with ThreadPoolExecutor(put_threads, thread_name_prefix="put") as pool:
        def submit(key: str, body: bytes, events: set | None) -> Future:
            slots.acquire()
            future = pool.submit(put, key, body, events)
            future.add_done_callback(lambda _f: slots.release())
            return future

        for plan in plans:
            try:
                before = dict(stats)
                result = _build_chain(plan, settings, signer, redactor, producer, submit, start_ts, end_ts,
                                      progress, stats)
                result.update({k: stats[k] - before[k] for k in stats})  # this chain's PUTs
                progress.put(("done", plan.partition, result))
            except Exception as e:  # noqa: BLE001 - reported to the parent, which fails the run
                import traceback

                progress.put(("error", plan.partition, f"{e!r}\n{traceback.format_exc()[-2000:]}"))
                return


def _build_chain(plan: ChainPlan, settings: Any, signer: Any, redactor: Any, producer: Any,
                 submit: Callable[..., Future], start_ts: float, end_ts: float, progress: Any,
                 stats: dict[str, Any]) -> dict[str, Any]:
    from sealtrail import merkle
    from sealtrail.chain import Accepted, ChainHead, RecentIds, seal_batch
    from sealtrail.digest import DigestLink, ListedObject, build_digest, head_of
    from sealtrail.encoding import format_ts
    from sealtrail.objects import ObjectWriter
    from sealtrail.producers.outbound import encode, prepare
    from sealtrail.sinks.buffer import object_key_for
    from sealtrail.stack.workload import generate
    from sealtrail.store import sha256_b64
    from sealtrail.stream.validate import Rejection, validate_counted

    p, chain = plan.partition, f"p{plan.partition:03d}"
    topics, prefix = settings.kafka.topics, settings.s3.prefix
    max_bytes = settings.stream.max_event_bytes
    track_events = bool(policy_rules(settings))
    heads = {p: ChainHead(chain, recent=RecentIds(settings.stream.dedupe_window))}
    delivery_errors: list[str] = []
    landed = {"input": -1, "chained": -1}

    def delivered(kind: str, expected: int, err: Any, msg: Any) -> None:
        if err is not None:
            delivery_errors.append(f"{kind} offset {expected}: {err.str()}")
        elif msg.partition() != p or msg.offset() != expected:
            delivery_errors.append(f"{kind} record expected at {p}/{expected} landed at {msg.partition()}/{msg.offset()}")
        else:
            landed[kind] = max(landed[kind], expected)

    def produce(topic: str, value: bytes, key: bytes, callback: Callable) -> None:
        while True:
            try:
                producer.produce(topic, value, key=key, partition=p, on_delivery=callback)
                return
            except BufferError:
                producer.poll(0.05)

    events = generate(plan.events, seed=plan.seed)
    base, extra = divmod(plan.events, plan.objects)
    span = end_ts - start_ts
    waiting: deque[tuple[Future, dict[str, Any]]] = deque()
    digest_puts: deque[Future] = deque()
    previous: DigestLink | None = None
    prev_hash = heads[p].hash
    offset = 0
    done_events = digests = 0
    last_head: dict[str, Any] = {}
    last_report = time.monotonic()
    puts_before = stats["puts"]

    def settle(block: bool) -> None:
        """Digest, in chain order, the objects whose PUT came back (each digest links to the one before)."""
        nonlocal previous, digests
        while waiting and (block or waiting[0][0].done() or len(waiting) > 2000):
            future, meta = waiting.popleft()
            version = future.result()
            listed = ListedObject(meta["key"], version, meta["sha256"], meta["first"], meta["last"], meta["size"],
                                  meta["root"], meta["input_first"], meta["input_last"])
            key, body = build_digest(prefix, chain, [listed], meta["head"], previous, signer, meta["created_at"])
            digest_puts.append(submit(key, body, None))
            previous = DigestLink(key, hashlib.sha256(body).hexdigest(), meta["head"]["seq"])
            digests += 1
        while digest_puts and (block or digest_puts[0].done()):
            digest_puts.popleft().result()  # raises what the PUT raised

    for j in range(plan.objects):
        size = base + (1 if j < extra else 0)
        sealed_dt = datetime.fromtimestamp(start_ts + span * (j + 0.5) / plan.objects + p * 1e-6, timezone.utc)
        sealed_at = format_ts(sealed_dt)
        batch = []
        for _ in range(size):
            event = next(events)
            event["occurred_at"] = (sealed_dt - timedelta(seconds=1)).isoformat()
            raw = encode(prepare(event, redactor))
            produce(topics.events, raw, event["event_id"].encode(), partial(delivered, "input", offset))
            columns, _redacted = validate_counted(raw, max_bytes, redactor)
            if isinstance(columns, Rejection):
                raise BuildError(f"the workload's event {event['event_id']} was rejected: {columns}")
            batch.append(Accepted(p, offset, columns, raw))
            offset += 1
        sealed = seal_batch(heads, batch, signer, sealed_at).sealed
        if len(sealed) != size:
            raise BuildError(f"chain {chain}: {size} inputs sealed as {len(sealed)} records")
        for record in sealed:
            if record.seq >= plan.chained_from:
                produce(topics.chained, record.to_wire(), record.chain.encode(),
                        partial(delivered, "chained", record.seq - plan.chained_from))
        producer.poll(0)
        writer = ObjectWriter(prev_hash)
        writer.append(sealed)
        body = writer.close()
        first, last = sealed[0], sealed[-1]
        key = object_key_for(prefix, [first, last])
        kinds = {(r.columns["category"], r.columns["action"], r.columns["tenant"]) for r in sealed} \
            if track_events else set()
        meta = {"key": key, "sha256": sha256_b64(body), "first": first.seq, "last": last.seq, "size": len(body),
                "root": merkle.root_of_hashes([r.hash for r in sealed]).hex(),
                "input_first": first.src_offset, "input_last": last.src_offset, "head": head_of(last),
                "created_at": format_ts(sealed_dt + timedelta(seconds=2))}
        waiting.append((submit(key, body, kinds), meta))
        prev_hash = last.hash
        last_head = {"seq": last.seq, "hash": last.hash.hex(), "src_offset": last.src_offset, "key": key}
        done_events += size
        settle(block=False)
        if delivery_errors:
            raise BuildError(f"chain {chain}: {delivery_errors[0]} ({len(delivery_errors)} problems)")
        now = time.monotonic()
        if now - last_report >= 2.0:
            last_report = now
            progress.put(("progress", p, {"events": done_events, "objects": j + 1 - len(waiting),
                                          "puts": stats["puts"] - puts_before}))
    settle(block=True)
    left = producer.flush(120)
    if left or delivery_errors:
        raise BuildError(f"chain {chain}: {left} records unacknowledged; "
                         f"{delivery_errors[0] if delivery_errors else ''}")
    if landed["input"] != offset - 1 or landed["chained"] != heads[p].seq - plan.chained_from:
        raise BuildError(f"chain {chain}: acknowledged up to input {landed['input']} and chained {landed['chained']}, "
                         f"expected {offset - 1} and {heads[p].seq - 1}")
    return {"events": done_events, "objects": plan.objects, "digests": digests, "last_seq": heads[p].seq,
            "last_src_offset": offset - 1, "last_chained_offset": heads[p].seq - plan.chained_from, "head": last_head,
            "last_digest": previous.key if previous else None}


def policy_rules(settings: Any) -> tuple:
    from sealtrail.retention import policy_for

    return tuple(policy_for(settings).rules)
