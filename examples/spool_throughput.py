"""Measure the producer spool: fsynced appends (one event and 100-event batches) and replay to the broker.

    sealtrail up
    python examples/spool_throughput.py [EVENTS]

Writes into a temporary spool folder, then replays it into audit.events of the
running stack (the events are real; a running stream worker will seal them).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from sealtrail.config import load_settings
from sealtrail.producers import AuditClient, encode, prepare
from sealtrail.producers.spool import Spool
from sealtrail.stack.workload import generate


def main(count: int) -> None:
    settings = load_settings()
    folder = Path(tempfile.mkdtemp(prefix="sealtrail-spool-"))
    items = [(str(e.event_id), encode(e)) for e in (prepare(d) for d in generate(count, seed=99))]
    size = sum(len(v) for _, v in items)
    with Spool.claim(folder, max_bytes=10 * size + 1) as spool:
        single = items[: min(2000, count)]
        began = time.perf_counter()
        for item in single:
            spool.append([item])
        one = len(single) / (time.perf_counter() - began)
        began = time.perf_counter()
        rest = items[len(single):]
        for i in range(0, len(rest), 100):
            spool.append(rest[i : i + 100])
        batched = len(rest) / (time.perf_counter() - began) if rest else float("nan")
        total = spool.count
    print(f"spool append, one event per fsync:   {one:10.0f} events/s")
    print(f"spool append, 100 events per fsync:  {batched:10.0f} events/s")
    replay_settings = settings.model_copy(update={"spool": settings.spool.model_copy(update={"path": folder})})
    began = time.perf_counter()
    client = AuditClient(replay_settings, spool=True)
    drained = client.drain(600)
    seconds = time.perf_counter() - began
    client.close()
    print(f"replay to {settings.kafka.bootstrap}:  {total / seconds:10.0f} events/s "
          f"({total} events, {size / count:.0f} bytes each, {'drained' if drained else 'NOT drained'})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
