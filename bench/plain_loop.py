"""Reference: a plain confluent-kafka consume -> validate -> chain and sign -> produce -> commit loop.

The practical limit of Python here: no Faust, no metrics, no dead-letter
topic, no head recovery, one thread. It does the same per-event work as the
product's stream, with the product's own pure functions (validate_counted,
seal_batch, the idempotent acks=all producer from sealtrail.kafka), so the
ratio to `sealtrail stream` is what the worker around that work costs.

Timed from the first record consumed to the last sealed record acknowledged
by the broker (and its input offsets committed), as the product's stage is.

With ``--minimal`` it does the least any sealing stream must: parse with
orjson, its sorted (canonical) bytes, a SHA-256 chain per partition, an HMAC
of each hash, and a small orjson record produced with the same producer. No
validation, redaction, Ed25519 or Parquet-ready columns: the practical ceiling
of a Python consume -> hash -> produce loop on this machine, which the
benchmark reports every other rate against.

    plain_loop.py --input TOPIC --output TOPIC --group G --count N --status OUT [--minimal]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from confluent_kafka import KafkaError, TopicPartition

from sealtrail.chain import Accepted, ChainHead, RecentIds, chain_id, seal_batch
from sealtrail.config import load_settings
from sealtrail.encoding import format_ts
from sealtrail.kafka import make_consumer, make_producer, partition_count
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
    ap.add_argument("--group", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--status", type=Path, required=True)
    ap.add_argument("--minimal", action="store_true", help="only parse, canonical bytes, SHA-256 chain, HMAC, produce")
    args = ap.parse_args()

    settings = load_settings()
    cfg = settings.stream
    signer = load_or_create_signer(settings.signing_key_path, settings.public_keys_dir)
    partitions = partition_count(settings, args.input)
    consumer = make_consumer(settings, args.group, **{"enable.partition.eof": False})
    producer = make_producer(settings)
    consumer.assign([TopicPartition(args.input, p, 0) for p in range(partitions)])
    heads = {p: ChainHead(chain_id(p), recent=RecentIds(cfg.dedupe_window)) for p in range(partitions)}
    minimal_heads: dict[int, tuple[bytes, int]] = {}
    mac_key = hashlib.sha256(b"sealtrail bench ceiling").digest()
    status = {"count": 0, "sealed": 0, "rejected": 0, "done": False, "t_first": None, "t_last": None}
    failures: list[KafkaError] = []

    def on_delivery(err, _msg) -> None:  # type: ignore[no-untyped-def]
        if err is not None:
            failures.append(err)

    next_status = 0.0
    while status["count"] < args.count:
        messages = consumer.consume(cfg.batch_size, timeout=cfg.batch_wait_s)
        if not messages:
            continue
        if status["t_first"] is None:
            status["t_first"] = time.time()
        last_offset: dict[int, int] = {}
        if args.minimal:
            sealed = 0
            for m in messages:
                if m.error() is not None:
                    continue
                p = m.partition()
                last_offset[p] = m.offset()
                canonical = orjson.dumps(orjson.loads(m.value()), option=orjson.OPT_SORT_KEYS)
                prev, seq = minimal_heads.get(p, (b"\0" * 32, 0))
                digest = hashlib.sha256(prev + canonical).digest()
                minimal_heads[p] = (digest, seq + 1)
                mac = hmac.new(mac_key, digest, hashlib.sha256).digest()
                producer.produce(args.output, orjson.dumps({"seq": seq + 1, "hash": digest.hex(), "mac": mac.hex(),
                                                            "event": orjson.Fragment(canonical)}),
                                 key=m.key(), partition=p, on_delivery=on_delivery)
                sealed += 1
        else:
            now = format_ts(datetime.now(UTC))
            accepted: list[Accepted] = []
            for m in messages:
                if m.error() is not None:
                    continue
                last_offset[m.partition()] = m.offset()
                result, _redacted = validate_counted(m.value(), cfg.max_event_bytes)
                if isinstance(result, Rejection):
                    status["rejected"] += 1
                else:
                    accepted.append(Accepted(m.partition(), m.offset(), result))
            batch = seal_batch(heads, accepted, signer, now)
            for record in batch.sealed:
                producer.produce(args.output, record.to_wire(), key=record.chain.encode(), partition=record.partition,
                                 on_delivery=on_delivery)
            sealed = len(batch.sealed)
        while producer.flush(5.0):
            pass
        if failures:
            raise SystemExit(f"{len(failures)} records not delivered: {failures[0].str()}")
        consumer.commit(offsets=[TopicPartition(args.input, p, o + 1) for p, o in last_offset.items()],
                        asynchronous=False)
        status["count"] += sum(1 for m in messages if m.error() is None)
        status["sealed"] += sealed
        status["t_last"] = time.time()
        if status["t_last"] >= next_status:
            write_status(args.status, status)
            next_status = status["t_last"] + 0.5
    status["done"] = True
    write_status(args.status, status)
    consumer.close()


if __name__ == "__main__":
    main()
