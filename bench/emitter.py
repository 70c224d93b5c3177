"""Publish workload events with the product's producer client and record when each was emitted.

Run as a process of its own (so its CPU and memory are its own), configured by
SEALTRAIL_* variables like any service. Events are read from a JSON-lines file
(orjson.loads is about 2 us an event, a few per cent of emit) and passed to
``AuditClient.emit`` one at a time, exactly as a service would. The wall-clock
time of every emit call goes to a binary file of float64 (the latency of event
i is measured from there); a small JSON status file is rewritten twice a second
for the progress display, and once more, with the time the broker acknowledged
the last event, at the end.

    emitter.py FILE --count N [--skip K] [--rate EPS] --times OUT --status OUT
"""

from __future__ import annotations

import argparse
import json
import os
import time
from array import array
from pathlib import Path

import orjson

from sealtrail.config import load_settings
from sealtrail.producers import AuditClient


def write_status(path: Path, status: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status))
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file", type=Path)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--rate", type=float, default=0.0, help="events/s; 0 = as fast as the client goes")
    ap.add_argument("--times", type=Path, required=True)
    ap.add_argument("--status", type=Path, required=True)
    args = ap.parse_args()

    settings = load_settings()
    times = array("d")
    status = {"count": 0, "done": False, "t_first": None, "t_last_call": None, "t_acked": None}
    next_status = 0.0
    with args.file.open("rb") as source, AuditClient(settings) as client:
        for _ in range(args.skip):
            source.readline()
        t0 = time.time()
        status["t_first"] = t0
        for i in range(args.count):
            line = source.readline()
            if not line:
                raise SystemExit(f"{args.file} has fewer than {args.skip + args.count} lines")
            event = orjson.loads(line)
            now = time.time()
            if args.rate > 0:
                due = t0 + i / args.rate
                if due > now:
                    time.sleep(due - now)
                    now = time.time()
            times.append(now)
            client.emit(event)
            if now >= next_status:
                status["count"] = i + 1
                write_status(args.status, status)
                next_status = now + 0.5
        status["t_last_call"] = time.time()
        status["count"] = args.count
        write_status(args.status, status)
        # leaving the with-block flushes: returns only when the broker acknowledged every event
    status["t_acked"] = time.time()
    with args.times.open("wb") as out:
        times.tofile(out)
    status["done"] = True
    write_status(args.status, status)


if __name__ == "__main__":
    main()
