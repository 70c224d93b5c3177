"""A per-test trail on the session's embedded stack: own topics, bucket prefix and groups.

Workers run as real `sealtrail stream` / `sealtrail sink` processes, configured
through SEALTRAIL_* variables exactly as an operator would, so kill -9 in the
fault tests hits a real process. The integration tests get one through the
make_trail and trail fixtures (tests/integration/conftest.py); a module that
builds its own (a module-scoped trail) imports Trail from here.
"""


from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from sealtrail.config import Settings
from sealtrail.kafka import make_consumer, make_producer, read_to_end
from sealtrail.layout import data_prefix
from sealtrail.objects import read_table
from sealtrail.producers.client import AuditClient
from sealtrail.sinks.s3 import S3Store
from sealtrail.sinks.worker import last_stored_seqs
from sealtrail.stack.workload import generate
from tests.support.environment import settings_from, trail_environment


class Trail:
    def __init__(self, base: Settings, tmp: Path, partitions: int = 3, retention_mode: str = "COMPLIANCE",
                 retention_policy: Path | None = None) -> None:
        tag = uuid.uuid4().hex[:8]
        self.partitions = partitions
        self.env = {
            **trail_environment(base.home, f"t{tag}"),
            "SEALTRAIL_SINK__FLUSH_INTERVAL_S": "0.5",
            "SEALTRAIL_STREAM__BATCH_SIZE": "500",
            "SEALTRAIL_RETENTION__MODE": retention_mode,
            # GOVERNANCE (which tests use to play an insider) is refused unless declared non-production
            "SEALTRAIL_RETENTION__ENVIRONMENT": "non-production" if retention_mode == "GOVERNANCE" else "production",
            "SEALTRAIL_KEYS__SIGNING_KEY_FILE": str(tmp / "signing.pem"),
        }
        if retention_policy is not None:  # the file is then the whole policy: no mode or environment beside it
            del self.env["SEALTRAIL_RETENTION__MODE"], self.env["SEALTRAIL_RETENTION__ENVIRONMENT"]
            self.env["SEALTRAIL_RETENTION__POLICY_FILE"] = str(retention_policy)
        self.settings = settings_from(self.env)
        self.logs = tmp / "logs"
        self.logs.mkdir(exist_ok=True)
        self.procs: list[subprocess.Popen] = []
        topics = self.settings.kafka.topics
        admin = AdminClient({"bootstrap.servers": self.settings.kafka.bootstrap})
        futures = admin.create_topics(
            [NewTopic(topics.events, partitions, 1), NewTopic(topics.chained, partitions, 1), NewTopic(topics.dlq, 1, 1),
             NewTopic(topics.quarantine, 1, 1)]
        )
        for f in futures.values():
            f.result(30)
        self.store = S3Store(self.settings)

    # producing ----------------------------------------------------------------------------
    def emit(self, count: int, seed: int = 1) -> list[str]:
        with AuditClient(self.settings) as client:
            return [client.emit(e) for e in generate(count, seed=seed)]

    def emit_raw(self, values: list[bytes]) -> None:
        producer = make_producer(self.settings)
        for v in values:
            producer.produce(self.settings.kafka.topics.events, v)
        assert producer.flush(30) == 0

    # workers ------------------------------------------------------------------------------
    def start(self, command: str) -> subprocess.Popen:
        log = open(self.logs / f"{command}-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "sealtrail.cli", command],
            env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs:
            self.stop(proc, signal.SIGKILL)

    def log_tail(self) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            out.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(out)

    # reading back -------------------------------------------------------------------------
    def stored(self) -> int:
        return sum(last_stored_seqs(self.store, self.settings.s3.prefix).values())

    def wait_stored(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.stored() < count:
            for proc in self.procs:
                if proc.poll() not in (None, 0, -9, -15):
                    raise AssertionError(f"a worker exited with {proc.returncode}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.stored()}/{count} stored after {timeout}s\n{self.log_tail()}")
            time.sleep(0.5)

    def event_ids(self) -> Counter:
        """How often each event id is sealed as an event in the bucket's data objects (accounting rows
        for rejected inputs and repeated ids are not events)."""
        ids: Counter = Counter()
        for key in self.store.keys(data_prefix(self.settings.s3.prefix)):
            table = read_table(self.store.get(key).body)
            kinds = table.column("kind").to_pylist() if "kind" in table.column_names else [None] * table.num_rows
            ids.update(i for i, k in zip(table.column("event_id").to_pylist(), kinds, strict=True) if k is None)
        return ids

    def rows(self) -> list[dict[str, Any]]:
        """Every row of the bucket's data objects (seq, src_offset and the accounting columns), per chain."""
        out = []
        for key in self.store.keys(data_prefix(self.settings.s3.prefix)):
            table = read_table(self.store.get(key).body).select(["seq", "src_offset", "event_id", "kind", "reason"])
            chain = key.rsplit("/", 1)[-1].split("-")[0]
            out.extend({"chain": chain, **row} for row in table.to_pylist())
        return sorted(out, key=lambda r: (r["chain"], r["seq"]))

    def chained(self) -> list[dict[str, Any]]:
        out = []
        for batch in read_to_end(self.settings, self.settings.kafka.topics.chained, list(range(self.partitions))):
            out.extend(orjson.loads(m.value()) for m in batch)
        return out

    def quarantined(self) -> list[tuple[dict[str, str], bytes]]:
        """The sink's quarantine topic: each record's headers and its wire bytes as read from audit.chained."""
        out = []
        for batch in read_to_end(self.settings, self.settings.kafka.topics.quarantine, [0]):
            out.extend(({k: v.decode() for k, v in m.headers() or []}, m.value()) for m in batch)
        return out

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Each partition's high watermark: the offset the next record will get."""
        consumer = make_consumer(self.settings, f"probe-{uuid.uuid4().hex[:8]}")
        try:
            return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                    for p in range(self.partitions)}
        finally:
            consumer.close()

    def committed_offsets(self, group: str, topic: str) -> dict[int, int]:
        """The offsets a consumer group has committed on each partition of a topic (negative: none yet).

        Workers commit an input only once what it produced is acknowledged (or
        stored), so a group's committed offsets say how far its work is done."""
        consumer = make_consumer(self.settings, group)  # never subscribes: it does not join the group
        try:
            found = consumer.committed([TopicPartition(topic, p) for p in range(self.partitions)], timeout=30)
            return {tp.partition: tp.offset for tp in found}
        finally:
            consumer.close()

    def dead_letters(self) -> list[dict[str, Any]]:
        out = []
        for batch in read_to_end(self.settings, self.settings.kafka.topics.dlq, [0]):
            out.extend(orjson.loads(m.value()) for m in batch)
        return out
