"""CPU per event of the stream's hot path (validate -> seal -> wire), without a broker.

Takes the benchmark's workload (stack/workload.py, a realistic mix) as the raw
bytes producers send, mixes in 1% invalid inputs of several kinds, and times
each stage the worker runs on one core: validate_counted, seal_batch over
batches of 5,000 across 6 chains, and SealedRecord.to_wire. Kafka consume and
produce are left out, so this is the ceiling the worker's own code sets (CPU
time of the one thread that runs it, so a busy machine skews it little):

    .venv/bin/python bench/stream_cpu.py [--events 200000] [--repeat 3] [--reference]

``--reference`` also times the pydantic reference validation, which every
rejection and every input the fast path is unsure of still goes through.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import datetime, timezone

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sealtrail.chain import Accepted, ChainHead, RecentIds, chain_id, seal_batch
from sealtrail.config import Settings
from sealtrail.encoding import format_ts
from sealtrail.redact import Redactor
from sealtrail.signing import Signer, key_id_of
from sealtrail.stack.workload import generate
from sealtrail.stream import validate as validation

CHAINS = 6
BATCH = 5000
INVALID_EVERY = 100  # 1% of inputs


def invalid_inputs(event: dict, rng: random.Random) -> bytes:
    """One bad input of a kind a misbehaving producer sends: each reaches a different rejection."""
    kind = rng.randrange(8)
    bad = dict(event)
    if kind == 0:
        return orjson.dumps(event)[:-7]  # truncated JSON
    if kind == 1:
        del bad["tenant"]
    elif kind == 2:
        bad["colour"] = "red"
    elif kind == 3:
        bad["tenant"] = 42
    elif kind == 4:
        bad["category"] = "billing"
    elif kind == 5:
        bad["actor"] = {**bad["actor"], "ip": "10.0.0.256"}
    elif kind == 6:
        bad["occurred_at"] = bad["occurred_at"].replace("+00:00", "")  # no time zone
    else:
        bad["metadata"] = {"n": 2**60}  # beyond RFC 8785's exact integers
    return orjson.dumps(bad)


def workload(count: int) -> list[bytes]:
    rng = random.Random(3)
    inputs = []
    for i, event in enumerate(generate(count)):
        inputs.append(invalid_inputs(event, rng) if i % INVALID_EVERY == INVALID_EVERY - 1 else orjson.dumps(event))
    return inputs


def run_once(inputs: list[bytes], validate: Callable, redactor: Redactor, signer: Signer, window: int) -> dict:
    """One pass over the inputs, a batch at a time as the worker holds them (so GC sees what it would)."""
    max_bytes = Settings().stream.max_event_bytes
    heads = {p: ChainHead(chain_id(p), recent=RecentIds(window)) for p in range(CHAINS)}
    sealed_at = format_ts(datetime.now(timezone.utc))
    clock = time.process_time  # CPU time: other work on a shared machine does not count against a stage
    totals = {"validate": 0.0, "seal_batch": 0.0, "to_wire": 0.0, "accepted": 0, "rejected": 0, "wire_bytes": 0}
    for lo in range(0, len(inputs), BATCH):
        t0 = clock()
        results = [validate(raw, max_bytes, redactor) for raw in inputs[lo:lo + BATCH]]
        t1 = clock()
        accepted = [Accepted(i % CHAINS, i // CHAINS, cols)
                    for i, (cols, _) in enumerate(results, start=lo) if isinstance(cols, dict)]
        t2 = clock()
        sealed = seal_batch(heads, accepted, signer, sealed_at).sealed
        t3 = clock()
        wire_bytes = 0
        for record in sealed:  # each message handed on and dropped, as producer.produce does
            wire_bytes += len(record.to_wire())
        t4 = clock()
        totals["validate"] += t1 - t0
        totals["seal_batch"] += t3 - t2
        totals["to_wire"] += t4 - t3
        totals["accepted"] += len(accepted)
        totals["rejected"] += len(results) - len(accepted)
        totals["wire_bytes"] += wire_bytes
    return totals


def report(label: str, inputs: list[bytes], best: dict) -> None:
    n = len(inputs)
    total = best["validate"] + best["seal_batch"] + best["to_wire"]
    print(f"{label}: {n:,} inputs ({best['accepted']:,} sealed, {best['rejected']:,} rejected)")
    for stage in ("validate", "seal_batch", "to_wire"):
        print(f"  {stage:11s} {best[stage] / n * 1e6:6.2f} us/event")
    print(f"  {'total':11s} {total / n * 1e6:6.2f} us/event  = {n / total:,.0f} events/s on one core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the fastest time of each stage is reported")
    parser.add_argument("--reference", action="store_true", help="also time the pydantic reference validation")
    args = parser.parse_args()

    inputs = workload(args.events)
    settings = Settings()
    redactor = Redactor.from_settings(settings.redaction)
    key = Ed25519PrivateKey.generate()
    signer = Signer(key, key_id_of(key.public_key()))
    paths = [("validate_counted", validation.validate_counted)]
    if args.reference and hasattr(validation, "validate_reference"):
        paths.append(("reference (pydantic) validation", validation.validate_reference))
    for label, validate in paths:
        runs = [run_once(inputs, validate, redactor, signer, settings.stream.dedupe_window) for _ in range(args.repeat)]
        best = {k: min(r[k] for r in runs) for k in runs[0]}
        report(label, inputs, best)


if __name__ == "__main__":
    main()
