"""Verifying the trail: objects stitched into chains, the listing, locks and digests, and the I/O.

What is checked, and why it is enough (DESIGN.md, invariant 3):

- Every stored column but the signature is under the record's hash
  (sealtrail.record.hashed_bytes; key_id only on signed heads), and the chain id is the object's chain=
  folder, so recomputing each hash from exactly what Athena reads finds any
  changed cell; linking each record to its predecessor's hash finds rows
  added, removed or reordered; object names carry their first and last
  sequence numbers, so a missing object is a gap in the numbering.
- Signed heads (the last record of each chain in each sealed batch) cover
  every earlier record through the chain; a verifier needs the public keys
  only. The chain's last record must be signed, or its tail is not covered.
- Object Lock does not stop a new version of a key or a delete marker, so
  every version is listed: the oldest version of a key is the one the sink
  wrote and is the one verified; anything newer, or a delete marker, is a
  finding.

Each object's rows are checked on their own (sealtrail.evidence.rows, the
hot, pure half) and the results stitched here in sequence order.

verify_store fetches chains in parallel threads and, for trails large enough
to repay starting them, hashes objects in worker processes
(sealtrail.evidence.workers): they start in the background from a forkserver
that imports sealtrail.evidence.rows (and the caller's small __main__) once,
and objects are checked in the calling thread until they are up. Measured
here on 2 cores (bench/verify_speed.py, 600,000 events from a bundle folder,
each run a fresh interpreter, the machine otherwise idle): 378,000 events/s
best of 6 with two workers (runs ranged from 252,000, at 4.6 to 7.3 CPU us
per event in all: the same work costs more when both cores are busy), and
171,000 in one process (workers=0). Through the embedded S3 server, in
bench/run.py, 312,000 events/s for 1,000,000 events. Objects are checked
independently and stitched in order (ChainWalk links each object's first row
to the last stored hash before it), so the order in which workers finish does
not matter.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from sealtrail.config import Settings
from sealtrail.encoding import parse_ts
from sealtrail.errors import ConfigError
from sealtrail.evidence import rows
from sealtrail.evidence import rows as rows_module
from sealtrail.evidence.digests import ChainWindow, StoredDigest, VerifiedObject, check_digest_chain
from sealtrail.evidence.findings import Finding, FindingKind, Report
from sealtrail.evidence.key_history import KeyUse, key_history_findings
from sealtrail.evidence.rows import Columns, ObjectRows, check_body, check_object_alone, object_finding, public_keys
from sealtrail.evidence.workers import BackgroundPool
from sealtrail.layout import (
    KEYS,
    DataObject,
    data_key,
    data_prefix,
    digest_key,
    digest_prefix,
    parse_data_key,
    parse_digest_key,
    parse_rotation_key,
)
from sealtrail.record import GENESIS
from sealtrail.retention import policy_for, required_lock
from sealtrail.signing import PublicKeys, read_rotation
from sealtrail.store import ObjectStore, ObjectVersion, StoredObject, sha256_b64
from sealtrail.versions import history, oldest_first

K = FindingKind
RETENTION_SLACK = timedelta(days=1)
MAX_PARALLEL_CHAINS = 8
PREFETCH_PER_CHAIN = 2  # objects a chain thread keeps in the process pool while it fetches the next
PROCESS_POOL_MIN_BYTES = 16 << 20  # about 100,000 events: below that, starting processes costs more


@dataclass
class ChainWalk:
    """Feeds a chain's objects in sequence order; what verify_chain and verify_store share.

    Keeping the walk incremental lets verify_store drop each object's rows as
    soon as they are checked, so memory is bounded by a few objects per chain.
    """

    chain: str
    keys: PublicKeys
    start_seq: int = 1  # > 1: a window; what precedes it is neither read nor missed

    def __post_init__(self) -> None:
        self.findings: list[Finding] = []
        self.next_seq = self.start_seq
        # A window's first object is anchored by its own start hash, proven by the signed heads after it.
        self.prev_hash: bytes | None = GENESIS if self.start_seq == 1 else None
        self.prev_seq = self.start_seq - 1
        self.window_start_hash: bytes | None = None
        self.tenant_events = 0
        self.prev_key: str | None = None
        self.events = 0
        self.signed = 0
        self.head_seq = 0
        self.head_hash: bytes | None = None
        self.last_signed_seq = 0
        self.tail_known = True
        self.tail_signed = True
        self.tail_key: str | None = None
        # Input accounting: the highest input offset so far and the seq it was at (None: unknown, as
        # before a chain's first row, at a window's start, or after an unreadable object).
        self.prev_src_offset: int | None = None
        self.prev_src_seq = 0
        self.missing: str | None = None  # the seqs no object holds since the last row seen
        self.input_first: int | None = None
        self.input_last: int | None = None
        self.rejected = 0
        self.duplicates = 0

    def covers(self, obj: DataObject) -> bool:
        """False for an object overlapping what earlier objects hold (reported, not fed)."""
        if obj.first >= self.next_seq:
            return True
        self.findings.append(object_finding(
            K.ROW_INSERTED, obj, self.chain, obj.first,
            f"object holds seqs {obj.first}..{obj.last}, overlapping seqs up to {self.next_seq - 1} "
            f"already held by {self.prev_key}",
        ))
        return False

    def _gap(self, obj: DataObject) -> None:
        if obj.first > self.next_seq:
            lo, hi = self.next_seq, obj.first - 1
            span = f"seq {lo}" if lo == hi else f"seqs {lo}..{hi}"
            self.findings.append(Finding(
                K.OBJECT_DELETED, None, None, self.chain, lo,
                f"no object holds {span} (the next object is {obj.key})",
            ))
            self.prev_hash = None
            self.missing = f"; no object holds {span}" if self.missing is None else self.missing + f", {span}"

    def _inputs(self, obj: DataObject, rows: ObjectRows) -> None:
        """The input offsets between the last row seen and this object's first: one per seq."""
        if rows.first_src_offset is None or rows.first_seq is None:
            return
        if self.input_first is None:
            self.input_first = rows.first_src_offset
        prev = self.prev_src_offset
        if prev is not None and rows.inputs and rows.first_src_offset != prev + 1:
            self.findings.append(rows_module.offset_finding(
                self.chain, obj.key, prev + 1, rows.first_src_offset, self.prev_src_seq, rows.first_seq, prev,
                self.missing or ""))
        if rows.last_src_offset is not None and (prev is None or rows.last_src_offset > prev):
            self.prev_src_offset, self.prev_src_seq = rows.last_src_offset, rows.check.last_seq
            self.input_last = rows.last_src_offset
        self.missing = None
        if not rows.inputs:  # a v2 object's offsets may skip: nothing to hold the next object to
            self.prev_src_offset = None
        self.rejected += rows.rejected
        self.duplicates += rows.duplicates

    def feed(self, obj: DataObject, columns: Columns | None, start_hash: bytes | None) -> None:
        """One object in sequence order; columns None means present but unreadable (already reported)."""
        rows = None if columns is None else check_object_alone(self.chain, obj, columns, self.keys, start_hash)
        self.feed_rows(obj, rows)

    def feed_rows(self, obj: DataObject, rows: ObjectRows | None) -> None:
        if not self.covers(obj):
            return
        self._gap(obj)
        prev_key, self.prev_key, self.tail_key = self.prev_key, obj.key, obj.key
        self.next_seq = obj.last + 1
        if rows is None:
            self.prev_hash, self.prev_seq = None, obj.last
            self.tail_known = False
            self.prev_src_offset, self.missing = None, None  # its offsets are unknown
            return
        self._inputs(obj, rows)
        check = rows.check
        self.findings.extend(check.findings)
        if self.window_start_hash is None and self.start_seq > 1 and rows.first_seq == self.start_seq:
            self.window_start_hash = rows.start_hash
        if rows.count and rows.start_hash is None:
            self.findings.append(object_finding(
                K.CELL_CHANGED, obj, self.chain, rows.first_seq,
                "the object's sealtrail.prev_hash metadata is missing or malformed: its first records "
                "cannot be linked",
            ))
        elif (rows.count and self.prev_hash is not None and self.prev_seq + 1 == rows.first_seq
                and rows.start_hash != self.prev_hash):
            where = f"seq {self.prev_seq}" + (f" in {prev_key}" if prev_key else "")
            self.findings.append(object_finding(
                K.CELL_CHANGED, obj, self.chain, rows.first_seq,
                f"the object links its first record (seq {rows.first_seq}) to a hash other than that of {where}: "
                "its prev_hash metadata or that record was altered",
            ))
        self.events += rows.count
        self.tenant_events += rows.tenant_events
        self.signed += check.signed_count
        if rows.count:
            self.prev_hash, self.prev_seq = check.last_hash, check.last_seq
            self.head_seq, self.head_hash = check.last_seq, check.last_hash
            if rows.last_signed_seq is not None:
                self.last_signed_seq = rows.last_signed_seq
            self.tail_known, self.tail_signed = True, check.last_row_signed
        else:
            self.prev_hash, self.prev_seq = None, obj.last

    def finish(self) -> tuple[list[Finding], dict[str, Any]]:
        if self.tail_known and not self.tail_signed:
            lo = self.last_signed_seq + 1
            self.findings.append(Finding(
                K.UNSIGNED_TAIL, self.tail_key, None, self.chain, lo,
                f"seqs {lo}..{self.head_seq} are not covered by a signed head",
            ))
        summary = {
            "events": self.events,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash.hex() if self.head_hash else None,
            "signed_heads": self.signed,
            "input_first": self.input_first,
            "input_last": self.input_last,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
        }
        if self.tenant_events:
            summary["tenant_events"] = self.tenant_events
        if self.start_seq > 1:
            summary["first_seq"] = self.start_seq
            summary["start_hash"] = self.window_start_hash.hex() if self.window_start_hash else None
        return sorted(self.findings, key=Finding.sort_key), summary


def verify_chain(
    chain: str, objects: Iterable[tuple[DataObject, Columns | None, bytes | None]], keys: PublicKeys,
    start_seq: int = 1,
) -> tuple[list[Finding], dict[str, Any]]:
    """Check one chain from its objects: (object, columns or None if unreadable, start hash), any order."""
    walk = ChainWalk(chain, keys, start_seq)
    for obj, columns, start_hash in sorted(objects, key=lambda item: (item[0].first, item[0].last, item[0].key)):
        walk.feed(obj, columns, start_hash)
    return walk.finish()


def lock_findings(stored: StoredObject, version: ObjectVersion, chain: str | None, settings: Settings
                  ) -> list[Finding]:
    """Object Lock: set, and as strong and as long as the retention policy demands of what the object holds.

    A data object needs the longest period (and strongest mode) any of its
    events needs, a digest the policy's longest (core/retention.py).
    """
    key, vid = stored.key, version.version_id
    if not stored.lock_mode:
        return [Finding(K.NOT_LOCKED, key, vid, chain, None, "the object has no Object Lock retention")]
    need = required_lock(policy_for(settings), key, stored.body, version.last_modified)
    rules = ", ".join(need.rules)
    findings = []
    if need.mode == "COMPLIANCE" and stored.lock_mode != "COMPLIANCE":
        findings.append(Finding(K.NOT_LOCKED, key, vid, chain, None,
                                f"locked in {stored.lock_mode} mode, which privileged users can lift; "
                                "the policy asks COMPLIANCE for what it holds"))
    if stored.retain_until is None or stored.retain_until < need.retain_until - RETENTION_SLACK:
        until = stored.retain_until.isoformat() if stored.retain_until else "none"
        findings.append(Finding(K.RETENTION_SHORT, key, vid, chain, None,
                                f"retained until {until}, the policy asks until {need.retain_until.isoformat()} "
                                f"(rule {rules}, from {version.last_modified.isoformat()})"))
    return findings


def checksum_findings(stored: StoredObject, chain: str | None) -> list[Finding]:
    if stored.checksum_sha256 is None:
        return []
    actual = sha256_b64(stored.body)
    if actual == stored.checksum_sha256:
        return []
    return [Finding(K.CHECKSUM_MISMATCH, stored.key, stored.version_id, chain, None,
                    f"body SHA-256 {actual} differs from the stored checksum {stored.checksum_sha256}")]


# ---------------------------------------------------------------------------
# I/O: one bucket (or bundle) in


@dataclass(frozen=True, slots=True)
class _Planned:
    obj: DataObject
    version: ObjectVersion
    newer: tuple[ObjectVersion, ...]


def _sorted_versions(entries: list[tuple[int, ObjectVersion]]) -> list[ObjectVersion]:
    """Oldest first, by the one rule of which version is the sink's (sealtrail.versions)."""
    return oldest_first(v for _, v in sorted(entries, key=lambda e: e[0]))


def plan(versions: Iterable[ObjectVersion], prefix: str, chains: Iterable[str] | None = None
         ) -> tuple[dict[str, list[_Planned]], list[Finding]]:
    """Which version of which key to verify, per chain, and what the listing alone shows."""
    wanted = set(chains) if chains is not None else None
    by_key: dict[str, list[tuple[int, ObjectVersion]]] = defaultdict(list)
    for i, v in enumerate(versions):
        by_key[v.key].append((i, v))
    planned: dict[str, list[_Planned]] = defaultdict(list)
    findings: list[Finding] = []
    for key in sorted(by_key):
        history = _sorted_versions(by_key[key])
        latest = next((v for v in history if v.is_latest), history[-1])
        obj = parse_data_key(key)
        if obj is None or key != data_key(prefix, obj.dt, obj.chain, obj.first, obj.last):
            if wanted is None or (obj is not None and obj.chain in wanted):
                findings.append(Finding(K.OBJECT_INJECTED, key, latest.version_id, obj.chain if obj else None,
                                        None, "not a data object name the sink writes"))
            continue
        if wanted is not None and obj.chain not in wanted:
            continue
        data = [v for v in history if not v.is_delete_marker]
        if latest.is_delete_marker:
            findings.append(Finding(K.DELETE_MARKER, key, latest.version_id, obj.chain, obj.first,
                                    f"a delete marker hides seqs {obj.first}..{obj.last} from readers"))
            planned.setdefault(obj.chain, [])  # the chain exists even if all its objects are hidden
            continue
        if not data:
            continue
        planned[obj.chain].append(_Planned(obj, data[0], tuple(data[1:])))
    return dict(planned), findings


def _window_by_dates(versions: list[ObjectVersion], since: str | None, until: str | None,
                     starts: dict[str, int], ends: dict[str, int]) -> None:
    """Each chain's first and last seq among the data keys whose dt= lies in [since, until] (in place).

    Every listed key counts, a key behind a delete marker too: a hidden object
    inside the window must start the window (and be reported), not move it.
    """
    spans: dict[str, tuple[int, int]] = {}
    for v in versions:
        obj = parse_data_key(v.key)
        if obj is None or (since is not None and obj.dt < since) or (until is not None and obj.dt > until):
            continue
        lo, hi = spans.get(obj.chain, (obj.first, obj.last))
        spans[obj.chain] = (min(lo, obj.first), max(hi, obj.last))
    for chain, (lo, hi) in spans.items():
        if since is not None:
            starts[chain] = max(starts.get(chain, 1), lo)
        if until is not None:
            ends[chain] = hi


def _outside(versions: list[ObjectVersion], prefix: str, planned: dict[str, list[_Planned]],
             starts: dict[str, int], ends: dict[str, int], chains: Iterable[str] | None) -> list[dict[str, str]]:
    """The well-named data objects this run leaves unchecked, and why: what "intact" does not cover."""
    wanted = set(chains) if chains is not None else None
    out: list[dict[str, str]] = []
    for chain, items in sorted(planned.items()):
        for i in items:
            if i.obj.last < starts.get(chain, 1):
                out.append({"key": i.obj.key, "why": f"before the window (chain {chain} from seq {starts[chain]})"})
            elif chain in ends and i.obj.first > ends[chain]:
                out.append({"key": i.obj.key, "why": f"after the window (chain {chain} to seq {ends[chain]})"})
    if wanted is not None:
        seen = {v.key for v in versions if not v.is_delete_marker}
        for key in sorted(seen):
            obj = parse_data_key(key)
            if obj is not None and obj.chain not in wanted:
                out.append({"key": key, "why": f"chain {obj.chain} not asked for"})
    return out


def _in_window(finding: Finding, starts: dict[str, int], ends: dict[str, int]) -> bool:
    """Whether a listing finding concerns the window: lifecycle expiry leaves delete markers on the
    objects before it (and versioned buckets keep them), which a window starting later must not blame."""
    obj = parse_data_key(finding.key) if finding.key else None
    if finding.kind != K.DELETE_MARKER or obj is None:
        return True
    end = ends.get(obj.chain)
    return obj.last >= starts.get(obj.chain, 1) and (end is None or obj.first <= end)


def _read_trusted(paths: Sequence[Path]) -> list[bytes]:
    pems = []
    for path in paths:
        try:
            pems.append(Path(path).read_bytes())
        except OSError as e:
            raise ConfigError("keys.trusted", f"cannot read trusted key {path}: {e.strerror or e}") from e
    return pems


def _key_versions(store: ObjectStore, prefix: str) -> dict[str, list[ObjectVersion]]:
    by_key: dict[str, list[ObjectVersion]] = defaultdict(list)
    for v in store.versions(f"{prefix}{KEYS}"):
        by_key[v.key].append(v)
    return by_key


def load_keys(store: ObjectStore, prefix: str, settings: Settings | None = None) -> tuple[list[bytes], list[Finding]]:
    """PEMs of the public keys published in the bucket, each the sink's (oldest) version of its file.

    A key file must be named after its key id; a newer version planted over one is a finding and is
    never read as the key; given settings, the file must be locked as long as the policy's longest
    period (a planted unlocked key is a finding).
    """
    pems: list[bytes] = []
    findings: list[Finding] = []
    by_key = _key_versions(store, prefix)
    for key in sorted(by_key):
        if not key.endswith(".pem"):
            continue
        judged = history(by_key[key])
        if judged.sinks is None:
            continue
        stored = store.get(key, judged.sinks.version_id)
        for newer in judged.newer:  # two workers starting at once may both publish the same key: not a finding
            if store.get(key, newer.version_id).body != stored.body:
                findings.append(Finding(K.NEWER_VERSION, key, newer.version_id, None, None,
                                        f"a newer version with other bytes over the published key (version "
                                        f"{judged.sinks.version_id}); the published one is used"))
        if settings is not None:
            findings += lock_findings(stored, judged.sinks, None, settings)
        try:
            kid = PublicKeys().add_pem(stored.body)
        except (ValueError, TypeError) as e:
            findings.append(Finding(K.UNREADABLE_OBJECT, key, stored.version_id, None, None,
                                    f"not an Ed25519 public key: {e}"))
            continue
        pems.append(stored.body)
        if key.rsplit("/", 1)[-1] != f"{kid}.pem":
            findings.append(Finding(K.OBJECT_INJECTED, key, stored.version_id, None, None,
                                    f"holds key {kid}, not the key its name says"))
    return pems, findings


class _Progress:
    def __init__(self, total: int, callback: Callable[[int, int], None] | None) -> None:
        self.total, self.callback, self.done = total, callback, 0
        self.lock = threading.Lock()

    def step(self) -> None:
        if self.callback is None:
            return
        with self.lock:
            self.done += 1
            self.callback(self.done, self.total)


def _admitted(items: list[_Planned], start_seq: int = 1) -> list[bool]:
    """Which objects in sequence order add to the chain (the rest overlap and are not fetched)."""
    next_seq, out = start_seq, []
    for item in items:
        out.append(item.obj.first >= next_seq)
        if out[-1]:
            next_seq = item.obj.last + 1
    return out


def _verify_planned_chain(store: ObjectStore, chain: str, items: list[_Planned], pems: tuple[bytes, ...],
                          settings: Settings, progress: _Progress, pool: BackgroundPool | None, start_seq: int = 1,
                          tenant: str | None = None
                          ) -> tuple[list[Finding], dict[str, Any], int, list[VerifiedObject]]:
    """GET a chain's objects in order, check them (inline or in the pool), stitch them in order."""
    walk = ChainWalk(chain, public_keys(pems), start_seq)
    extra: list[Finding] = []
    ordered = sorted(items, key=lambda p: (p.obj.first, p.obj.last, p.obj.key))
    pending: deque[tuple[_Planned, Any]] = deque()
    verified: list[VerifiedObject] = []
    roots: dict[str, bytes] = {}  # key -> Merkle root over the recomputed hashes, for the digests' roots
    signers: dict[str, tuple[tuple[int, str, str], ...]] = {}  # key -> where its heads' key changes

    def settle(limit: int) -> None:
        while len(pending) > limit:
            item, outcome = pending.popleft()
            if isinstance(outcome, Future):
                outcome = outcome.result()
            rows, problem, unreadable = outcome if outcome is not None else (None, None, None)
            vid = item.version.version_id
            if problem:
                extra.append(Finding(K.CELL_CHANGED, item.obj.key, vid, chain, item.obj.first, problem))
            if unreadable:
                extra.append(Finding(K.UNREADABLE_OBJECT, item.obj.key, vid, chain, item.obj.first, unreadable))
            walk.feed_rows(item.obj, rows)
            if rows is not None and rows.merkle_root is not None:
                roots[item.obj.key] = rows.merkle_root
            if rows is not None:
                signers[item.obj.key] = rows.signers
            progress.step()

    for item, admitted in zip(ordered, _admitted(ordered, start_seq), strict=True):
        if not admitted:
            pending.append((item, None))  # the walk reports the overlap
            continue
        obj, version = item.obj, item.version
        stored = store.get(obj.key, version.version_id)
        verified.append(VerifiedObject(obj.key, version.version_id, sha256_b64(stored.body), obj.first, obj.last))
        extra += checksum_findings(stored, chain)
        extra += lock_findings(stored, version, chain, settings)
        for newer in item.newer:
            body = store.get(obj.key, newer.version_id).body
            same = "identical bytes" if body == stored.body else "different bytes"
            extra.append(Finding(K.NEWER_VERSION, obj.key, newer.version_id, chain, obj.first,
                                 f"a newer version ({same}) replaces the sink's version {version.version_id} "
                                 "for readers; the original was verified"))
        if pool is None:
            pending.append((item, check_body(chain, obj, stored.body, pems, tenant)))
        else:
            pending.append((item, pool.run(check_body, chain, obj, stored.body, pems, tenant)))
        del stored
        settle(PREFETCH_PER_CHAIN if pool is not None else 0)
    settle(0)
    findings, summary = walk.finish()
    # Findings from the rows carry no version; name the one that was verified.
    versions = {i.obj.key: i.version.version_id for i in items}
    findings = [
        Finding(f.kind, f.key, versions.get(f.key), f.chain, f.seq, f.detail) if f.version is None and f.key else f
        for f in findings
    ]
    verified = [replace(v, merkle_root=roots.get(v.key), signers=signers.get(v.key, ())) for v in verified]
    return findings + extra, summary, len(items), verified


def _process_pool(workers: int | None, planned: dict[str, list[_Planned]]) -> BackgroundPool | None:
    """Processes for the hashing when the trail is big enough to repay starting them."""
    cpus = os.cpu_count() or 1
    if workers is None:
        size = sum(item.version.size for items in planned.values() for item in items)
        workers = cpus if cpus > 1 and size >= PROCESS_POOL_MIN_BYTES else 0
    if workers <= 0:
        return None
    return BackgroundPool(workers, preload=rows.__name__)


def _digest_versions(store: ObjectStore, prefix: str, continued: dict[str, int] | None, seen: set[str]
                     ) -> Iterable[ObjectVersion]:
    """Every digest version; when continuing from heads already verified, only each chain's from the
    head's digest on (and every digest of a chain seen in the data but not in the heads: a new one)."""
    if continued is None:
        yield from store.versions(digest_prefix(prefix))
        return
    for chain in sorted(set(continued) | seen):
        after = digest_key(prefix, chain, continued[chain] - 1) if continued.get(chain, 0) > 0 else None
        yield from store.versions(digest_prefix(prefix, chain), after)


def _data_versions_after(store: ObjectStore, prefix: str, continued: dict[str, int]) -> list[ObjectVersion] | None:
    """The data versions of the dt= folders from the day before the oldest object holding a head on,
    instead of the whole bucket's; None when a head's object cannot be found (the full listing then says why)."""
    from sealtrail.index import object_holding

    days = []
    for chain, seq in continued.items():
        obj = object_holding(store, prefix, chain, seq) if seq > 0 else None
        if obj is None:
            return None
        days.append(obj.dt)
    if not days:
        return None
    first = (date.fromisoformat(min(days)) - timedelta(days=1)).isoformat()
    data = data_prefix(prefix)
    return [v for folder in store.folders(data, f"{data}dt={first}") for v in store.versions(folder)]


def _check_digests(store: ObjectStore, settings: Settings, report: Report, verified: dict[str, list[VerifiedObject]],
                   keys: PublicKeys, chains: Iterable[str] | None, starts: dict[str, int],
                   ends: dict[str, int], continued: dict[str, int] | None = None) -> list[Finding]:
    """The digest chains against the data verified; adds digest counts to each chain's summary."""
    prefix = settings.s3.prefix
    wanted = set(chains) if chains is not None else None
    by_key: dict[str, list[tuple[int, ObjectVersion]]] = defaultdict(list)
    for i, v in enumerate(_digest_versions(store, prefix, continued, set(verified))):
        by_key[v.key].append((i, v))
    findings: list[Finding] = []
    digests: dict[str, list[StoredDigest]] = defaultdict(list)
    for key in sorted(by_key):
        history = _sorted_versions(by_key[key])
        latest = next((v for v in history if v.is_latest), history[-1])
        parsed = parse_digest_key(key)
        if parsed is None or key != digest_key(prefix, *parsed):
            findings.append(Finding(K.OBJECT_INJECTED, key, latest.version_id, None, None,
                                    "not a digest name the sink writes"))
            continue
        chain, last = parsed
        if wanted is not None and chain not in wanted:
            continue
        if latest.is_delete_marker:
            findings.append(Finding(K.DELETE_MARKER, key, latest.version_id, chain, last,
                                    "a delete marker hides this digest from readers"))
        data = [v for v in history if not v.is_delete_marker]
        if not data:
            continue
        for newer in data[1:]:
            findings.append(Finding(K.NEWER_VERSION, key, newer.version_id, chain, last,
                                    f"a newer version replaces the sink's digest version {data[0].version_id}"))
        stored = store.get(key, data[0].version_id)
        findings += checksum_findings(stored, chain)
        findings += lock_findings(stored, data[0], chain, settings)
        digests[chain].append(StoredDigest(key, data[0].version_id, last, stored.body))
    for chain in sorted(set(digests) | set(verified)):
        summary = report.chains.setdefault(chain, {"events": 0, "head_seq": 0, "head_hash": None, "signed_heads": 0})
        chain_findings, digest_summary = check_digest_chain(
            chain, digests.get(chain, []), verified.get(chain, []), summary["head_seq"], summary["head_hash"], keys,
            ChainWindow(starts.get(chain, 1), ends.get(chain),
                        bytes.fromhex(summary["start_hash"]) if summary.get("start_hash") else None),
        )
        findings += chain_findings
        summary.update(digest_summary)
    return findings, dict(digests)


def _key_uses(verified: dict[str, list[VerifiedObject]], digests: dict[str, list[StoredDigest]]) -> list[KeyUse]:
    """Who signed the chains' heads (from the rows verified) and their digests, and when.

    Malformed timestamps and digests are findings of their own already; they are left out here.
    """
    uses: list[KeyUse] = []
    for chain, objects in verified.items():
        for obj in objects:
            for seq, kid, sealed_at in obj.signers:
                try:
                    uses.append(KeyUse(chain, "head", seq, kid, parse_ts(sealed_at), obj.key))
                except ValueError:
                    continue
    for chain, stored in digests.items():
        for d in stored:
            try:
                doc = orjson.loads(d.body)
                uses.append(KeyUse(chain, "digest", d.last, str(doc["key_id"]), parse_ts(doc["created_at"]), d.key))
            except (ValueError, KeyError, TypeError, RecursionError):
                continue
    return uses


def key_record(store: ObjectStore, prefix: str, keys: PublicKeys) -> tuple[dict[str, datetime], set[tuple[str, str]],
                                                                     list[Finding]]:
    """When each key was first published (its file's sink's version) and the rotations the old keys signed.

    A rotation statement that does not verify explains nothing, and is a finding.
    """
    by_key = _key_versions(store, prefix)
    published: dict[str, datetime] = {}
    rotations: set[tuple[str, str]] = set()
    findings: list[Finding] = []
    for key, listed in sorted(by_key.items()):
        sinks = history(listed).sinks
        if sinks is None:
            continue
        name = key[len(prefix) + len(KEYS):]
        if name.endswith(".pem") and "/" not in name:
            published[name[:-len(".pem")]] = sinks.last_modified
            continue
        named = parse_rotation_key(key)
        if named is None:
            continue
        try:
            said = read_rotation(store.get(key, sinks.version_id).body, keys)
        except ValueError as e:
            findings.append(Finding(K.OBJECT_INJECTED, key, sinks.version_id, None, None,
                                    f"a key rotation statement that does not hold: {e}"))
            continue
        if said != named:
            findings.append(Finding(K.OBJECT_INJECTED, key, sinks.version_id, None, None,
                                    f"a key rotation statement for {said[0]} -> {said[1]} under another name"))
            continue
        rotations.add(said)
    return published, rotations, findings


def verify_store(
    store: ObjectStore,
    settings: Settings,
    progress: Callable[[int, int], None] | None = None,
    chains: Iterable[str] | None = None,
    trusted_keys: Sequence[bytes] | None = None,
    workers: int | None = None,
    starts: dict[str, int] | None = None,
    since: str | None = None,
    until: str | None = None,
    tenant: str | None = None,
    continued: dict[str, int] | None = None,
) -> Report:
    """Verify every chain in the bucket (or bundle) and return a Report.

    store needs keys(prefix), versions(prefix) and get(key, version_id):
    sinks.s3.S3Store or evidence.bundle.DirectoryStore. Public keys come
    from the bucket unless trusted_keys (PEMs) are given, which an auditor
    should do: keys read from the bucket prove only that someone who could
    write to the bucket signed. Chains are fetched in parallel threads; rows
    are hashed in a process pool of `workers` processes (0: in the threads;
    None: one per CPU when the trail is large enough to repay starting them).
    starts maps a chain to the first seq to verify (a window, an exported
    bundle, or a trail whose oldest objects lifecycle rules have expired):
    objects before it are neither read nor reported missing, and the first
    object is anchored by its own start hash, which the next signed head proves,
    and on the signed checkpoint before it when that digest is there. since
    and until ('YYYY-MM-DD', inclusive) pick objects by their dt= partition
    and set each chain's window from them. Chains are shared by tenants, so a
    tenant's events are verified by verifying whole objects; with tenant set,
    each chain's summary counts that tenant's events among them.

    continued maps a chain to a head seq an earlier run verified (an anchor's):
    only what follows is read, each chain anchored on that head's digest, and
    only the dt= folders and digests from there are listed, so checking a
    day's new objects costs the same on a trail of any age. What lies before
    the heads is not checked again (a full run does that).
    """
    starts = dict(starts or {})
    ends: dict[str, int] = {}
    prefix = settings.s3.prefix
    findings: list[Finding] = []
    source = "--key"
    if trusted_keys is None and settings.keys.trusted:
        trusted_keys, source = _read_trusted(settings.keys.trusted), "keys.trusted"
    if trusted_keys is None:
        pems, key_findings = load_keys(store, prefix, settings)
        findings += key_findings
    else:
        pems = list(trusted_keys)
        try:
            public_keys(tuple(pems))
        except (ValueError, TypeError) as e:
            raise ConfigError(source, f"not an Ed25519 public key (PEM): {e}") from e
    bounded = None
    if continued:
        starts.update({chain: seq + 1 for chain, seq in continued.items()})
        bounded = _data_versions_after(store, prefix, continued)
        if bounded is None:
            continued = None  # a head's object is not where its digest says: list everything
    versions = bounded if bounded is not None else list(store.versions(data_prefix(prefix)))
    planned, listing_findings = plan(versions, prefix, chains)
    if since is not None or until is not None:
        _window_by_dates(versions, since, until, starts, ends)
        planned = {chain: items for chain, items in planned.items() if chain in starts or chain in ends}
    unverified = _outside(versions, prefix, planned, starts, ends, chains)
    planned = {chain: [i for i in items if i.obj.last >= starts.get(chain, 1)
                       and (chain not in ends or i.obj.first <= ends[chain])] for chain, items in planned.items()}
    findings += [f for f in listing_findings if _in_window(f, starts, ends)]
    tracker = _Progress(sum(len(items) for items in planned.values()), progress)
    report = Report()
    verified_by_chain: dict[str, list[VerifiedObject]] = {}
    if planned:
        pool = _process_pool(workers, planned)
        try:
            with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_CHAINS, len(planned))) as threads:
                futures = {
                    threads.submit(_verify_planned_chain, store, chain, items, tuple(pems), settings, tracker,
                                   pool, starts.get(chain, 1), tenant): chain
                    for chain, items in planned.items()
                }
                for future in as_completed(futures):
                    chain_findings, summary, count, verified = future.result()
                    findings += chain_findings
                    report.chains[futures[future]] = summary
                    verified_by_chain[futures[future]] = verified
                    report.objects += count
                    report.events += summary["events"]
        finally:
            if pool is not None:
                pool.shutdown()
    digest_findings, digests = _check_digests(store, settings, report, verified_by_chain, public_keys(tuple(pems)),
                                              chains, starts, ends, continued)
    findings += digest_findings
    published, rotations, rotation_findings = key_record(store, prefix, public_keys(tuple(pems)))
    findings += rotation_findings
    findings += key_history_findings(_key_uses(verified_by_chain, digests), published if settings.keys.check_publication else {},
                                     rotations, pinned=trusted_keys is not None,
                                     skew=timedelta(seconds=settings.keys.publication_skew_s))
    report.unverified = unverified
    ids = sorted(PublicKeys().add_pem(pem) for pem in pems)
    report.keys = ({"pinned": True, "source": source, "trusted": ids} if trusted_keys is not None
                   else {"pinned": False, "source": "bucket", "trusted": ids,
                         "note": "keys read from the bucket: this proves self-consistency only; pin the keys you "
                                 "were given (--key, or keys.trusted)"})
    report.verified = sorted(o.key for objs in verified_by_chain.values() for o in objs)
    for chain, summary in report.chains.items():
        start = starts.get(chain, 1)
        if start > 1 and verified_by_chain.get(chain) and not summary.get("anchored_on"):
            findings.append(Finding(K.UNANCHORED_START, None, None, chain, start,
                                    f"the chain is verified from seq {start}, and no signed checkpoint (the digest "
                                    f"of seq {start - 1}) ties it to the chain before: it could start anywhere"))
    if continued:
        report.continued = dict(continued)
        for chain, seq in continued.items():  # nothing new on it: it stands where the earlier run left it
            summary = report.chains.setdefault(chain, {"events": 0, "head_seq": 0, "head_hash": None})
            if not verified_by_chain.get(chain) and not summary.get("head_seq"):
                summary["head_seq"] = seq
    report.findings = sorted(findings, key=Finding.sort_key)
    return report
