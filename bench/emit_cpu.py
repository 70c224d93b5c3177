"""CPU per event that `AuditClient.emit` costs a service, with and without the broker.

Takes the benchmark's workload (stack/workload.py) as the dicts a service
passes and times, on the calling thread's CPU clock, what emit does before
librdkafka takes over: the reference path (prepare: the Event model, the
redactor, the value checks; then encode) against the fast path beside it
(producers.outbound.prepared_bytes, held equal by tests/unit/test_fast_paths.py),
and ``orjson.dumps`` of the same dicts as the floor any JSON producer pays.

With ``--broker`` it also starts an embedded stack in a temporary folder and
emits the events through a real AuditClient until flush() returns (every
event acknowledged), reporting the CPU of the whole process, librdkafka's
threads included, per event: what a service's process pays in all; once with
the fast path and once with it switched off. Then it times the call a request
handler of examples/starlette_app.py makes for its audit event, in the context
the example's middleware sets, with the real client and with a no-op emit.

    .venv/bin/python bench/emit_cpu.py [--events 100000] [--repeat 3] [--broker]

Target (docs/benchmarks.md): at most 8 us of CPU per event, validation included.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from typing import Any

import orjson

from sealtrail.producers.outbound import encode, prepare, prepared_bytes
from sealtrail.stack.workload import generate

TARGET_US = 8.0


def per_event_us(fn: Callable[[Any], Any], items: list[Any], repeat: int) -> float:
    """The best of ``repeat`` runs, in microseconds of this thread's CPU per item."""
    best = float("inf")
    for _ in range(repeat):
        began = time.thread_time()
        for item in items:
            fn(item)
        best = min(best, time.thread_time() - began)
    return best / len(items) * 1e6


def emit_all(client: Any, events: list[dict[str, Any]]) -> tuple[float, float]:
    """(process CPU us per event, events/s) from the first emit until flush() says every event is acknowledged."""
    cpu, wall = time.process_time(), time.perf_counter()
    for event in events:
        client.emit(event)
    client.flush(300)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu / len(events) * 1e6, len(events) / wall


def request_cost(settings: Any, requests: int) -> tuple[float, float]:
    """What one audit event costs a request handler of examples/starlette_app.py: CPU us per
    ``await audit.auth.login_failed(...)`` (the Auditor builds the event from the request's context, then
    AsyncAuditClient.emit), inside the context AuditMiddleware gives each request; with the real client,
    and with a no-op emit (the Auditor's own share)."""
    import asyncio

    from sealtrail.producers import AsyncAuditClient, Auditor, audit_context

    async def nothing(event: dict[str, Any]) -> str:
        return ""

    async def run(emit: Any) -> float:
        audit = Auditor(emit, source="example-starlette", tenant="demo")
        with audit_context(request_id="req-0123456789ab", ip="203.0.113.7", user_agent="curl/8.5.0"):
            for _ in range(500):
                await audit.auth.login_failed(user="alice", reason="bad_password")
            began = time.process_time()
            for _ in range(requests):
                await audit.auth.login_failed(user="alice", reason="bad_password")
            return (time.process_time() - began) / requests * 1e6

    async def both() -> tuple[float, float]:
        client = AsyncAuditClient(settings, spool=False)
        try:
            return await run(client.emit), await run(nothing)
        finally:
            await client.aclose()

    return asyncio.run(both())


def with_broker(events: list[dict[str, Any]], requests: int, **producer: Any) -> dict[str, tuple[float, float]]:
    """The real client against an embedded stack in a temporary folder: the fast path, the reference path
    (the fast path switched off), and the Starlette example's request with and without its audit event."""
    from sealtrail.config import load_settings
    from sealtrail.producers import AuditClient, outbound
    from sealtrail.stack.stack import start, stop

    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="sealtrail-bench-emit-") as home:
        overrides = {"home": home}
        start(load_settings(overrides), progress=lambda m: print(f"  {m}", flush=True))
        try:
            settings = load_settings(overrides)
            with AuditClient(settings, spool=False, **producer) as client:
                for event in events[:2000]:  # connect, and warm up the topic's partitions
                    client.emit(event)
                client.flush(60)
                results["fast"] = emit_all(client, events)
                fast_path = outbound.prepared_bytes
                outbound.prepared_bytes = lambda event, redactor=None: None  # type: ignore[assignment]
                try:
                    results["reference"] = emit_all(client, events)
                finally:
                    outbound.prepared_bytes = fast_path
            results["request"] = request_cost(settings, requests)
        finally:
            stop(load_settings(overrides))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--broker", action="store_true", help="also emit through a real client to an embedded broker")
    ap.add_argument("--compression", help="the producer's compression.type instead of the client's (zstd)")
    ap.add_argument("--requests", type=int, default=20_000, help="audit calls as the Starlette example makes them")
    args = ap.parse_args()
    events = list(generate(args.events, seed=11))
    fallbacks = sum(prepared_bytes(e) is None for e in events)
    floor = per_event_us(orjson.dumps, events, args.repeat)
    reference = per_event_us(lambda e: encode(prepare(e)), events, args.repeat)
    fast = per_event_us(prepared_bytes, events, args.repeat)
    print(f"{len(events):,} workload events, {fallbacks} fell back to the reference path")
    print(f"  orjson.dumps (the floor)          {floor:6.2f} us/event")
    print(f"  reference: prepare + encode       {reference:6.2f} us/event  ({reference / floor:.1f}x the floor)")
    print(f"  fast path: prepared_bytes         {fast:6.2f} us/event  ({fast / floor:.1f}x the floor, "
          f"{reference / fast:.2f}x faster than the reference)")
    if args.broker:
        results = with_broker(events, args.requests,
                              **({"compression.type": args.compression} if args.compression else {}))
        for label, key in (("AuditClient.emit, fast path", "fast"), ("AuditClient.emit, reference path", "reference")):
            cpu, rate = results[key]
            verdict = "meets it" if cpu <= TARGET_US else f"misses it by {cpu / TARGET_US:.2f}x"
            print(f"  {label:<33} {cpu:6.2f} us/event of process CPU (librdkafka's threads included), "
                  f"{rate:,.0f} events/s; target {TARGET_US:g} us: {verdict}")
        with_audit, auditor = results["request"]
        print(f"  one audit event in a request      {with_audit:6.2f} us of CPU per `await audit.auth.login_failed(...)` "
              f"(examples/starlette_app.py), {auditor:.2f} us of it the Auditor's, the rest emit")

if __name__ == "__main__":
    main()
