"""Reference: a naive per-event Faust agent, as a typical first attempt would be written.

One event at a time through Faust's Stream: validate it, chain it onto the
head kept in a Faust Table (changelogged to Kafka, so every event also writes
the table's changelog), sign the new head (a batch of one, so every record is
a signed head), and ``await topic.send`` the sealed record. The per-event work
is the product's own (validate_counted, seal_batch), so the ratio to `sealtrail
stream` is what per-event Faust costs.

It stops counting after ``--count`` events (at about 2,000 events/s here, a
million would take most of ten minutes; its rate is flat, so a prefix of the
same data measures it), flushes the producer, and reports the time from the
first event received to the last sealed record acknowledged.

    naive_faust.py --input TOPIC --output TOPIC --app-id ID --count N --status OUT --datadir DIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import faust

from sealtrail.chain import Accepted, ChainHead, RecentIds, chain_id, seal_batch
from sealtrail.config import load_settings
from sealtrail.encoding import format_ts
from sealtrail.kafka import partition_count
from sealtrail.signing import load_or_create_signer
from sealtrail.stream.validate import Rejection, validate_counted


def write_status(path: Path, status: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status))
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--app-id", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--status", type=Path, required=True)
    ap.add_argument("--datadir", type=Path, required=True)
    args = ap.parse_args()

    settings = load_settings()
    signer = load_or_create_signer(settings.signing_key_path, settings.public_keys_dir)
    partitions = partition_count(settings, args.input)
    session_s = settings.kafka.session_timeout_ms / 1000
    app = faust.App(
        args.app_id,
        broker=f"kafka://{settings.kafka.bootstrap}",
        web_enabled=False,
        datadir=str(args.datadir),
        store="memory://",
        topic_partitions=partitions,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=session_s,
        broker_heartbeat_interval=max(0.5, session_s / 5),
    )
    events = app.topic(args.input, key_type=bytes, key_serializer="raw", value_type=bytes, value_serializer="raw")
    sealed_topic = app.topic(args.output, key_type=bytes, key_serializer="raw", value_type=bytes,
                             value_serializer="raw", partitions=partitions)
    heads = app.Table("chain_heads", partitions=partitions)
    recent = {p: RecentIds(settings.stream.dedupe_window) for p in range(partitions)}
    status = {"count": 0, "sealed": 0, "done": False, "t_first": None, "t_last": None}
    max_bytes = settings.stream.max_event_bytes

    @app.agent(events)
    async def seal(stream):  # type: ignore[no-untyped-def]
        next_status = 0.0
        async for event in stream.events():
            if status["done"]:
                continue
            if status["t_first"] is None:
                status["t_first"] = time.time()
            message = event.message
            p = message.partition
            result, _redacted = validate_counted(event.value, max_bytes)
            if not isinstance(result, Rejection):
                chain = chain_id(p)
                head = ChainHead(chain, recent=recent[p])
                stored = heads.get(chain)
                if stored is not None:
                    head.seq, head.hash, head.src_offset = stored["seq"], bytes.fromhex(stored["hash"]), stored["src"]
                now = format_ts(datetime.now(UTC))
                for record in seal_batch({p: head}, [Accepted(p, message.offset, result)], signer, now).sealed:
                    await sealed_topic.send(key=record.chain.encode(), value=record.to_wire(), partition=p)
                    status["sealed"] += 1
                heads[chain] = {"seq": head.seq, "hash": head.hash.hex(), "src": head.src_offset}
            status["count"] += 1
            t = time.time()
            if status["count"] >= args.count:
                await app.producer.flush()
                status["t_last"] = time.time()
                status["done"] = True
                write_status(args.status, status)
            elif t >= next_status:
                status["t_last"] = t
                write_status(args.status, status)
                next_status = t + 0.5

    sys.argv = [sys.argv[0], "worker"]
    faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main()
