"""A stream worker that freezes itself holding a batch sealed on a head that is about to go stale.

Run as a script by test_faults.py (with the trail's SEALTRAIL_* environment and
a marker path as its argument): the product's SealWorker on the real broker and
S3 server, with one fault injected at its own producer seam. The first batch
that covers every partition the worker owns (with ``first`` as a second
argument: the worker's very first batch, sealed on the heads recovery gave it)
is sealed as usual; its records are then held back instead of produced,
the worker writes MARKER (the held records and the heads they were sealed on)
and stops itself with SIGSTOP. Heartbeats stop with it, so the group gives its
partitions to another worker. After SIGCONT the held records are produced as
they were sealed, and once that batch is through the product's own fencing,
MARKER.after records the worker's sealtrail_chain_overtaken_total.
"""

import json
import os
import signal
import sys
import threading
from pathlib import Path

import orjson

from sealtrail.config import load_settings
from sealtrail.logs import configure
from sealtrail.signing import KeySource
from sealtrail.stream.metrics import StreamMetrics
from sealtrail.stream.worker import SealWorker


def write_atomically(path: Path, doc: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)


class HeldProducer:
    """Holds every record of one batch until the worker flushes it; then marks, freezes, and sends them."""

    def __init__(self, producer, chained: str, marker: Path, before: dict) -> None:  # type: ignore[no-untyped-def]
        self.producer, self.chained, self.marker, self.before = producer, chained, marker, before
        self.held: list[tuple[tuple, dict]] = []

    def produce(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self.held.append((args, kwargs))

    def poll(self, timeout: float = 0) -> int:
        return self.producer.poll(timeout)

    def flush(self, timeout: float = -1) -> int:
        if self.held:
            records = [orjson.loads(args[1]) for args, _ in self.held if args[0] == self.chained]
            write_atomically(self.marker, {
                "pid": os.getpid(),
                "heads_before": self.before,
                "records": [{k: r.get(k) for k in ("chain", "seq", "hash", "prev", "src_offset")} for r in records],
            })
            os.kill(os.getpid(), signal.SIGSTOP)  # frozen here until the test sends SIGCONT
            for args, kwargs in self.held:
                self.producer.produce(*args, **kwargs)
            self.held = []
        return self.producer.flush(timeout)


class StaleWorker(SealWorker):
    def __init__(self, *args, marker: Path, first: bool = False, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.marker = marker
        self.first = first
        self.frozen = False

    def _process(self, consumer, producer, messages) -> None:  # type: ignore[no-untyped-def]
        partitions = {m.partition() for m in messages if m.error() is None}
        wanted = partitions and (self.first or partitions == set(self.heads))
        if self.frozen or not self.heads or not wanted:
            super()._process(consumer, producer, messages)
            return
        self.frozen = True
        before = {p: {"chain": h.chain, "seq": h.seq, "hash": h.hash.hex(), "src_offset": h.src_offset,
                      "next_out": h.next_out} for p, h in self.heads.items()}
        super()._process(consumer, HeldProducer(producer, self.settings.kafka.topics.chained, self.marker, before),
                         messages)
        write_atomically(self.marker.with_name(self.marker.name + ".after"), {
            "overtaken": self.metrics.registry.get_sample_value("sealtrail_chain_overtaken_total"),
            "heads_after": {p: {"chain": h.chain, "seq": h.seq, "src_offset": h.src_offset}
                            for p, h in self.heads.items()},
        })


if __name__ == "__main__":
    configure()
    settings = load_settings()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    StaleWorker(settings, KeySource(settings), StreamMetrics(), marker=Path(sys.argv[1]),
                first=sys.argv[2:] == ["first"]).run(stop)
