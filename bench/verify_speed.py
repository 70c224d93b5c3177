"""Events per second of `sealtrail verify` over a bundle folder, without a broker or S3.

Builds a trail of N events (stack/workload.py's realistic mix) the way the
pipeline does: sealed in 5,000-event batches over six chains, written as
objects of about 50,000 records per chain (each ending on a signed head), with
Object Lock sidecars, a linked digest per object and the public key. The
bundle is cached under /tmp, keyed by N and by a fingerprint of the stored
format, so reruns only time the verification:

    .venv/bin/python bench/verify_speed.py [--events 600000] [--workers N] [--repeat 3] [--profile]

Each timed run is a fresh interpreter (bench/verify_once.py), as `sealtrail
verify` is, so the worker processes' start-up is counted every time; the best
run is reported (other work on the machine only ever slows a run down). Each
run also gives the CPU seconds of verify's processes (workers included) and
how many cores other work took meanwhile, since the machine is shared. Then
the whole `sealtrail verify --path` command is timed from outside, start-up,
imports and the manifest and listing included.

--profile runs the verification in this process, chains one after another
(workers=0, chain threads replaced by an inline executor), under cProfile, so
the hashing shows up in the breakdown rather than in threads or pool workers.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import pstats
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import Executor, Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from verify_once import PREFIX, timed  # bench/ is this script's folder

from sealtrail import merkle
from sealtrail.chain import Accepted, ChainHead, seal_batch
from sealtrail.config import Settings
from sealtrail.digest import FORMAT as DIGEST_FORMAT
from sealtrail.digest import DigestLink, ListedObject, build_digest, head_of
from sealtrail.encoding import format_ts
from sealtrail.event import Event
from sealtrail.evidence import walk
from sealtrail.flatten import flatten
from sealtrail.layout import data_key, public_key_key
from sealtrail.objects import SCHEMA, to_parquet
from sealtrail.record import GENESIS, SealedRecord, hashed_bytes, record_hash
from sealtrail.retention import policy_for
from sealtrail.signing import Signer, key_id_of
from sealtrail.stack.workload import generate
from sealtrail.store import sha256_b64

CHAINS = 6
BATCH = 5000
OBJECT_RECORDS = 50_000


def bundle_dir(events: int) -> Path:
    """/tmp/sealtrail-verify-bench/<N>-<fingerprint of the stored format>: rebuilt when the format changes."""
    sample = hashed_bytes("p000", 1, "2026-11-01T00:00:00.000000Z", 0, {"event_id": "e", "metadata": "{}"}, "k")
    fingerprint = hashlib.sha256(f"{SCHEMA}|{DIGEST_FORMAT}|".encode() + record_hash(GENESIS, sample)).hexdigest()[:12]
    return Path("/tmp/sealtrail-verify-bench") / f"{events}-{fingerprint}"


def seal(events: int) -> tuple[Signer, dict[str, list[list[SealedRecord]]]]:
    """Each chain's records, in sealed batches (each batch ends on a signed head)."""
    key = Ed25519PrivateKey.generate()
    signer = Signer(key, key_id_of(key.public_key()))
    heads = {p: ChainHead(f"p{p:03d}") for p in range(CHAINS)}
    batches: dict[str, list[list[SealedRecord]]] = defaultdict(list)
    raw = list(generate(events))
    for lo in range(0, len(raw), BATCH):
        parsed = [Event.model_validate(e) for e in raw[lo:lo + BATCH]]
        batch = [Accepted(i % CHAINS, i // CHAINS, flatten(e)) for i, e in enumerate(parsed, start=lo)]
        sealed = seal_batch(heads, batch, signer, format_ts(parsed[0].occurred_at)).sealed
        per_chain: dict[str, list[SealedRecord]] = defaultdict(list)
        for r in sealed:
            per_chain[r.chain].append(r)
        for chain, records in per_chain.items():
            batches[chain].append(records)
    return signer, batches


def write(path: Path, body: bytes, now: datetime, mode: str = "COMPLIANCE", retain_until: datetime | None = None
          ) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    until = retain_until or now + timedelta(days=Settings().retention.days + 2)
    lock = {"mode": mode, "retain_until": until.isoformat(),
            "last_modified": now.isoformat(), "checksum_sha256": sha256_b64(body)}
    path.with_name(path.name + ".lock.json").write_text(json.dumps(lock))


def build(root: Path, events: int) -> None:
    """Objects of whole sealed batches, up to about OBJECT_RECORDS records each, and a digest per object."""
    signer, batches = seal(events)
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    now = datetime.now(UTC).replace(microsecond=0)
    for chain, chain_batches in batches.items():
        prev, link = GENESIS, None
        part: list[SealedRecord] = []
        for i, records in enumerate(chain_batches):
            part.extend(records)
            if len(part) < OBJECT_RECORDS and i < len(chain_batches) - 1:
                continue
            key = data_key(PREFIX, part[0].sealed_at[:10], chain, part[0].seq, part[-1].seq)
            body = to_parquet(part, prev)
            write(tmp / key, body, now)
            listed = ListedObject(key, "1", sha256_b64(body), part[0].seq, part[-1].seq, len(body),
                                  merkle.root_of_hashes([r.hash for r in part]).hex())
            dkey, dbody = build_digest(PREFIX, chain, [listed], head_of(part[-1]), link, signer, now.isoformat())
            write(tmp / dkey, dbody, now)
            link = DigestLink(dkey, hashlib.sha256(dbody).hexdigest(), part[-1].seq)
            prev, part = part[-1].hash, []
    # locked as the product publishes it (sealtrail.publication.publish_public_key): the policy's longest lock
    lock = policy_for(Settings()).longest_lock(now)
    write(tmp / public_key_key(PREFIX, signer.key_id), signer.public_pem, now, lock.mode, lock.retain_until)
    tmp.rename(root)


class InlineExecutor(Executor):
    """Runs each task at submit, in the caller's thread, so cProfile sees it."""

    def __init__(self, max_workers: int | None = None) -> None:
        pass

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def cold_run(root: Path, workers: int | None) -> dict[str, Any]:
    """One timed verification in a fresh interpreter, as `sealtrail verify` runs (no forkserver left warm)."""
    command = [sys.executable, str(Path(__file__).with_name("verify_once.py")), str(root)]
    if workers is not None:
        command.append(str(workers))
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    run = json.loads(out.splitlines()[-1])
    if not run["ok"]:
        raise SystemExit(f"the benchmark trail does not verify: {run['findings']}")
    return run


def whole_command(root: Path) -> tuple[float, dict[str, Any]]:
    """Wall seconds of `sealtrail verify --path ROOT --json`: interpreter start, imports and listing included."""
    start = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).with_name("sealtrail")), "verify", "--path", str(root), "--json"],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"sealtrail verify --path {root} exited {done.returncode}: {done.stderr[-500:]}")
    return seconds, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=600_000)
    parser.add_argument("--workers", type=int, default=None, help="process pool size (default: verify's own choice)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is reported")
    parser.add_argument("--profile", action="store_true", help="one run in this process under cProfile")
    args = parser.parse_args()

    root = bundle_dir(args.events)
    if not root.is_dir():
        start = time.perf_counter()
        build(root, args.events)
        print(f"built {root} in {time.perf_counter() - start:.1f} s")
    size = sum(p.stat().st_size for p in root.rglob("*.parquet"))
    objects = sum(1 for _ in root.rglob("*.parquet"))
    print(f"bundle {root}: {args.events:,} events, {objects} objects, {size / 1e6:.1f} MB of Parquet")

    if args.profile:
        walk.ThreadPoolExecutor = InlineExecutor  # type: ignore[misc]
        profiler = cProfile.Profile()
        profiler.enable()
        run = timed(root, 0)
        profiler.disable()
        if not run["ok"]:
            raise SystemExit(f"the benchmark trail does not verify: {run['findings']}")
        print(f"in-process, profiled: {run['events']:,} events in {run['seconds']:.2f} s "
              f"= {run['events'] / run['seconds']:,.0f} events/s")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    runs = [cold_run(root, args.workers) for _ in range(args.repeat)]
    for run in runs:
        print(f"  {run['events']:,} events in {run['seconds']:.2f} s = {run['events'] / run['seconds']:,.0f} events/s"
              f"  ({run['cpu']:.2f} CPU s, {run['cpu'] / run['events'] * 1e6:.2f} us/event; "
              f"other work took {run['other_cores']:.2f} cores)")
    best = min(runs, key=lambda r: r["seconds"])
    print(f"verify: {best['events'] / best['seconds']:,.0f} events/s "
          f"(best of {len(runs)} cold runs, workers={'auto' if args.workers is None else args.workers})")
    commands = [whole_command(root) for _ in range(args.repeat)]
    seconds = min(c[0] for c in commands)
    events = commands[0][1]["events"]
    print(f"whole command `sealtrail verify --path`: {events:,} events in {seconds:.2f} s = "
          f"{events / seconds:,.0f} events/s (best of {len(commands)}; interpreter start, imports and listing "
          "included)")

if __name__ == "__main__":
    main()
