"""Bytes per event of the sealed trail against gzip'd JSON lines of the same events, without a broker.

Seals the benchmark's workload (stack/workload.py, a realistic mix) in stream-
sized batches over six chains, writes objects as the sink does, and prints
bytes per event overall and per Parquet column. `make bench` measures the same
through the real stack; this is the quick loop for format work:

    .venv/bin/python bench/storage.py [--events 300000] [--object-events 50000]
"""

from __future__ import annotations

import argparse
import gzip
from collections import defaultdict

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sealtrail.chain import Accepted, ChainHead, seal_batch
from sealtrail.encoding import format_ts
from sealtrail.event import Event
from sealtrail.flatten import flatten
from sealtrail.objects import to_parquet
from sealtrail.record import GENESIS
from sealtrail.signing import Signer, key_id_of
from sealtrail.stack.workload import generate

CHAINS = 6
BATCH = 5000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--object-events", type=int, default=50_000, help="records per object per chain")
    args = parser.parse_args()

    events = list(generate(args.events))
    jsonl = b"".join(orjson.dumps(e) + b"\n" for e in events)
    gz = len(gzip.compress(jsonl, compresslevel=6))

    key = Ed25519PrivateKey.generate()
    signer = Signer(key, key_id_of(key.public_key()))
    heads = {p: ChainHead(f"p{p:03d}") for p in range(CHAINS)}
    sealed = defaultdict(list)
    for lo in range(0, len(events), BATCH):
        batch = [Accepted(i % CHAINS, i // CHAINS, flatten(Event.model_validate(e)))
                 for i, e in enumerate(events[lo:lo + BATCH], start=lo)]
        for r in seal_batch(heads, batch, signer, format_ts(Event.model_validate(events[lo]).occurred_at)).sealed:
            sealed[r.chain].append(r)

    total, columns = 0, defaultdict(int)
    for records in sealed.values():
        prev = GENESIS
        for lo in range(0, len(records), args.object_events):
            part = records[lo:lo + args.object_events]
            body = to_parquet(part, prev)
            prev = part[-1].hash
            total += len(body)
            meta = pq.ParquetFile(pa.BufferReader(body)).metadata
            for g in range(meta.num_row_groups):
                for c in range(meta.num_columns):
                    col = meta.row_group(g).column(c)
                    columns[col.path_in_schema] += col.total_compressed_size
    n = len(events)
    print(f"events {n:,}  objects of up to {args.object_events:,} records per chain")
    print(f"trail   {total / n:6.1f} B/event")
    print(f"gzip'd JSON lines {gz / n:6.1f} B/event (raw {len(jsonl) / n:.1f})")
    for name, size in sorted(columns.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {name:18s} {size / n:6.2f}")


if __name__ == "__main__":
    main()
