"""Reading the benchmark's results back from the bucket and the broker, independently of the workers.

The checks trust nothing a worker says about itself: which events are in the
trail, and how often, comes from the Parquet objects in the bucket; when an
object became durable is when a listing first showed it.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from confluent_kafka import Consumer, TopicPartition

from sealtrail.config import Settings
from sealtrail.layout import data_prefix, parse_data_key
from sealtrail.sinks.s3 import s3_client


@dataclass(frozen=True)
class Listed:
    key: str
    size: int
    chain: str | None
    first: int
    last: int


class Bucket:
    """Listings of one trail prefix, remembering when each data object was first seen."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bucket = settings.s3.bucket
        self.prefix = settings.s3.prefix
        self.client = s3_client(settings)
        self.first_seen: dict[str, float] = {}

    def list(self, prefix: str | None = None) -> list[Listed]:
        out: list[Listed] = []
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix or self.prefix)
        for page in pages:
            for item in page.get("Contents", []):
                obj = parse_data_key(item["Key"])
                out.append(Listed(item["Key"], item["Size"], obj.chain if obj else None,
                                  obj.first if obj else 0, obj.last if obj else 0))
        return out

    def poll(self) -> int:
        """List the data objects, note new ones with the time they were seen; returns events stored."""
        objects = self.list(data_prefix(self.prefix))
        now = time.time()
        heads: dict[str, int] = {}
        for o in objects:
            if o.chain is None:
                continue
            self.first_seen.setdefault(o.key, now)
            heads[o.chain] = max(heads.get(o.chain, 0), o.last)
        return sum(heads.values())

    def event_ids(self) -> dict[str, tuple[int, str, float]]:
        """event_id -> (rows carrying it, key of the first object holding it, its sealed_at as epoch seconds).

        Also totals the compressed bytes of each Parquet column (self.column_bytes),
        which says where the bytes per event go.
        """
        seen: dict[str, tuple[int, str, float]] = {}
        self.column_bytes: Counter = Counter()
        self.rows = 0
        for o in self.list(data_prefix(self.prefix)):
            if o.chain is None:
                continue
            body = self.client.get_object(Bucket=self.bucket, Key=o.key)["Body"].read()
            reader = pq.ParquetFile(pa.BufferReader(body))
            meta = reader.metadata
            self.rows += meta.num_rows
            for g in range(meta.num_row_groups):
                group = meta.row_group(g)
                for c in range(group.num_columns):
                    column = group.column(c)
                    self.column_bytes[column.path_in_schema] += column.total_compressed_size
            self.column_bytes["(footer and page headers)"] += len(body) - sum(
                meta.row_group(g).column(c).total_compressed_size
                for g in range(meta.num_row_groups) for c in range(meta.row_group(g).num_columns))
            table = reader.read(columns=["event_id", "sealed_at"], use_threads=False)
            micros = pc.cast(pc.cast(table.column("sealed_at"), pa.timestamp("us")), pa.int64()).to_pylist()
            for eid, us in zip(table.column("event_id").to_pylist(), micros, strict=True):
                n, key, sealed = seen.get(eid, (0, o.key, us / 1e6))
                seen[eid] = (n + 1, key, sealed)
        return seen

    def column_bytes_per_event(self) -> dict[str, float]:
        rows = max(self.rows, 1)
        return {name: round(b / rows, 2) for name, b in self.column_bytes.most_common()}

    def sizes(self) -> dict[str, int]:
        """Bytes under the prefix by kind of object: data (Parquet), keys, and everything else."""
        out: Counter = Counter()
        counts: Counter = Counter()
        for o in self.list():
            rest = o.key[len(self.prefix):]
            kind = "data" if o.chain is not None else rest.split("/", 1)[0] or "other"
            out[kind] += o.size
            counts[kind] += 1
        return {**{f"{k}_bytes": v for k, v in out.items()}, **{f"{k}_objects": v for k, v in counts.items()}}


def check_sealed_once(seen: dict[str, tuple[int, str, float]], expected: list[str]) -> dict:
    """Every expected event exactly once, nothing else: the benchmark's first correctness check."""
    want = set(expected)
    missing = [e for e in expected if e not in seen]
    duplicated = [e for e, (n, _, _) in seen.items() if n > 1]
    extra = [e for e in seen if e not in want]
    return {
        "expected": len(expected),
        "rows": sum(n for n, _, _ in seen.values()),
        "missing": len(missing),
        "duplicated": len(duplicated),
        "extra": len(extra),
        "examples": {"missing": missing[:3], "duplicated": duplicated[:3], "extra": extra[:3]},
        "ok": not missing and not duplicated and not extra,
    }


def first_sealed_at(settings: Settings, topic: str, partitions: int, timeout_s: float = 20.0) -> float | None:
    """Wall-clock time of the earliest sealed_at among the first records of each chained partition.

    The stream stamps sealed_at as soon as a consumed batch reaches it, so this
    is when the first record was consumed, to the microsecond.
    """
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap, "group.id": "bench-reader",
                         "enable.auto.commit": False, **settings.kafka.extra})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        pending = set(range(partitions))
        earliest: float | None = None
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for m in consumer.consume(100, timeout=0.5):
                if m.error() is not None or m.partition() not in pending:
                    continue
                pending.discard(m.partition())
                consumer.pause([TopicPartition(topic, m.partition())])
                try:
                    sealed = orjson.loads(m.value())["sealed_at"]
                    t = datetime.strptime(sealed, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
                except (KeyError, ValueError, TypeError, orjson.JSONDecodeError):
                    continue
                earliest = t if earliest is None else min(earliest, t)
        return earliest
    finally:
        consumer.close()


def percentiles(values: list[float], qs: tuple[float, ...] = (0.5, 0.95, 0.99)) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    out = {}
    for q in qs:
        i = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
        out[f"p{round(q * 100)}"] = ordered[i]
    out["max"] = ordered[-1]
    out["mean"] = sum(ordered) / len(ordered)
    return out
