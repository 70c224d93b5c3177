"""Verifying the trail: pure checks over rows and objects, then one thin I/O function.

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

The hot loop is check_object_rows: per row, the canonical content, its
row_check, the chain link and (in check_object_alone) the Merkle leaf and node.
Contents are built column-wise with Arrow (sealtrail.evidence.canonical: string
columns read as dictionaries, each distinct value formatted once, a chunk of
rows joined per call, never a Python value per cell); a chunk where a string
needs JSON escaping or the schema is not the sink's goes through a dict path
that builds hashed_bytes' document in its sorted key order, and every chunk's
first row is checked against hashed_bytes itself, falling back to the
reference if they ever disagree; tests/unit/test_verify_fast.py compares the
paths with hypothesis. Row checks are compared a chunk at a time (one bytes
comparison when all match) and the chain is linked in a tight loop between
signed heads. The four SHA-256 calls per row are now most of the cost (about
2.5 of the 5 us a row takes on one core here, for 600-byte events, mostly
OpenSSL's per-call overhead; the column-wise contents about 1.6).

verify_store fetches chains in parallel threads and, for trails large enough
to repay starting them, hashes objects in worker processes
(sealtrail.evidence.workers): they start in the background from a forkserver
that imports this module once, and objects are checked in the calling thread
until they are up. Measured here on 2 cores (bench/verify_speed.py, 600,000
events from a bundle folder, each run a fresh interpreter, best of 6, the
machine otherwise idle): 180,000 events/s in one process (workers=0; the
Arrow work runs outside the GIL) and 264,000 with two workers (runs ranged
from 203,000), at 7.3 CPU us per event in all; the design before this one
did 90,000 and 148,000 on the same bundle and host. Two workers run
each row at about 6.5 us against 5 us for one alone, and the forkserver's
imports cost about half a CPU second per run. Objects are checked
independently and stitched in order (ChainWalk links each object's first row
to the last stored hash before it), so the order in which workers finish does
not matter.
"""

from __future__ import annotations

import os
import struct
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import (
    Future,
    ThreadPoolExecutor,
    as_completed,
)
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import lru_cache
from hashlib import sha256
from itertools import repeat
from typing import Any, NamedTuple

import orjson
import pyarrow as pa
from sealtrail import merkle
from sealtrail.config import Settings
from sealtrail.errors import ConfigError, KeyNotFoundError
from sealtrail.evidence.canonical import HASHED_ORDER, TableColumns, read_object
from sealtrail.evidence.digests import (
    ChainWindow,
    StoredDigest,
    VerifiedObject,
    check_digest_chain,
)
from sealtrail.evidence.findings import Finding, FindingKind, Report
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
)
from sealtrail.record import EVENT_COLUMNS, GENESIS, JSON_COLUMNS, hashed_bytes
from sealtrail.signing import PublicKeys, head_message
from sealtrail.sinks.parquet import SCHEMA, prev_hash_of
from sealtrail.sinks.retention import policy_for, required_lock
from sealtrail.sinks.store import ObjectVersion, StoredObject, sha256_b64

K = FindingKind
ROW_COLUMNS = tuple(SCHEMA.names)
_HASHED_ORDER = HASHED_ORDER
Columns = Mapping[str, list]  # a dict of lists, or TableColumns (lists on first use)
_TIMESTAMPS = ("sealed_at", "occurred_at")
_Fragment = orjson.Fragment
_dumps = orjson.dumps
HASH_CHUNK_ROWS = 4096  # rows canonicalised at a time: column-wise, 4096 measured faster than 1024 or 16384
RETENTION_SLACK = timedelta(days=1)
MAX_PARALLEL_CHAINS = 8
PREFETCH_PER_CHAIN = 2  # objects a chain thread keeps in the process pool while it fetches the next
PROCESS_POOL_MIN_BYTES = 16 << 20  # about 100,000 events: below that, starting processes costs more


# ---------------------------------------------------------------------------
# Parquet -> the column lists the checks read


def schema_problem(schema: pa.Schema) -> str | None:
    """Why a table's schema is not the sink's, or None. Column names, order, types and nullability."""
    got = [(f.name, f.type, f.nullable) for f in schema]
    want = [(f.name, f.type, f.nullable) for f in SCHEMA]
    if got == want:
        return None
    names, want_names = [g[0] for g in got], [w[0] for w in want]
    extra = [n for n in names if n not in want_names]
    missing = [n for n in want_names if n not in names]
    if extra or missing:
        return f"columns differ from the sink's schema (extra {extra}, missing {missing})"
    if names != want_names:
        return "columns are in a different order than the sink's schema"
    changed = [f"{g[0]}: {g[1]}{'' if g[2] else ' not null'}" for g, w in zip(got, want, strict=True) if g != w]
    return f"column types differ from the sink's schema ({', '.join(changed)})"


# ---------------------------------------------------------------------------
# Pure checks


class ObjectCheck(NamedTuple):
    findings: list[Finding]
    last_hash: bytes | None
    last_seq: int
    signed_count: int
    last_row_signed: bool
    hashes: list[bytes | None]


def _finding(kind: FindingKind, obj: DataObject | None, chain: str, seq: int | None, detail: str,
             version: str | None = None) -> Finding:
    return Finding(kind, obj.key if obj else None, version, chain, seq, detail)


def _order_problem(seqs: list[int], first: int, last: int) -> tuple[FindingKind, int, str] | None:
    """How the row numbering departs from first..last, naming the first offending seq."""
    want = last - first + 1
    if len(seqs) == want and seqs == list(range(first, last + 1)):
        return None
    i = next((i for i, s in enumerate(seqs) if s != first + i), len(seqs))
    expected = first + i
    if len(seqs) > want:
        claimed = seqs[i] if i < len(seqs) else seqs[-1]
        where = f"where seq {expected} belongs" if expected <= last else f"after seq {last}"
        return K.ROW_INSERTED, claimed, f"{len(seqs) - want} extra row(s): a row claiming seq {claimed} sits {where}"
    if len(seqs) < want:
        return K.ROW_REMOVED, expected, f"{want - len(seqs)} row(s) missing, the first is seq {expected}"
    if sorted(seqs) == list(range(first, last + 1)):
        return K.ROWS_REORDERED, expected, f"rows out of order: seq {seqs[i]} stands where seq {expected} belongs"
    return K.CELL_CHANGED, expected, f"seq column changed: the row where seq {expected} belongs says {seqs[i]}"


def _null_rows(sources: Sequence[Sequence[Any]], n: int) -> set[int]:
    rows: set[int] = set()
    for values in sources:
        if None in values:
            rows.update(i for i in range(n) if values[i] is None)
    return rows


def _contents_fast(chain: str, columns: Columns, lo: int, hi: int) -> Iterator[bytes]:
    """hashed_bytes of rows lo..hi-1 without a per-row sort (see the module docstring)."""
    n = hi - lo
    sources: list[Sequence[Any]] = []
    for name in _HASHED_ORDER:
        if name == "chain":
            sources.append(list(repeat(chain, n)))
        elif name in JSON_COLUMNS:
            sources.append([None if v is None else _Fragment(v) for v in columns[name][lo:hi]])
        else:
            sources.append(columns[name][lo:hi])
    nulls = _null_rows(sources, n)
    order = _HASHED_ORDER
    for i, values in enumerate(zip(*sources, strict=True)):
        if i in nulls:  # hashed_bytes omits nulls
            yield _dumps({k: v for k, v in zip(order, values) if v is not None})
        else:
            yield _dumps(dict(zip(order, values)))


def _content_ref(chain: str, columns: Columns, i: int) -> bytes:
    row = columns.row(i) if isinstance(columns, TableColumns) else {name: columns[name][i] for name in columns}
    return hashed_bytes(chain, row["seq"], row["sealed_at"], row["src_offset"],
                        {name: row[name] for name in EVENT_COLUMNS}, row["key_id"])


def _contents(chain: str, columns: Columns, lo: int, hi: int) -> list[bytes]:
    """Rows lo..hi-1 by a fast path (Arrow column-wise, or the dict path), checked against hashed_bytes
    on the first row; by hashed_bytes itself where no fast path applies or the two ever disagree."""
    if hi <= lo:
        return []
    built = columns.contents(chain, lo, hi) if isinstance(columns, TableColumns) else None
    if built is None:
        built = list(_contents_fast(chain, columns, lo, hi))
    if built[0] == _content_ref(chain, columns, lo):
        return built
    return [_content_ref(chain, columns, i) for i in range(lo, hi)]


def _failed_checks(contents: list[bytes], checks: Sequence[int], lo: int) -> list[int]:
    """Rows (from lo) whose content does not hash to their row_check; one comparison when all match."""
    got = b"".join([sha256(c).digest()[:4] for c in contents])
    n = len(contents)
    try:
        want = struct.pack(f">{n}i", *checks[lo:lo + n])
    except struct.error:  # a value outside int32 cannot match
        want = b""
    if got == want:
        return []
    return [lo + i for i in range(n) if got[4 * i:4 * i + 4] != _int32(checks[lo + i])]


def _int32(value: Any) -> bytes:
    try:
        return struct.pack(">i", value)
    except struct.error:
        return b""


def _link(current: bytes, contents: Sequence[bytes], out: list[bytes | None]) -> bytes:
    """Chain contents onto current (hash_n = SHA-256(hash_{n-1} || content_n)), appending each hash."""
    append = out.append
    for content in contents:
        current = sha256(current + content).digest()
        append(current)
    return current


def _row_mismatches(chain: str, columns: Columns, start_hash: bytes | None,
                    head_ok: Callable[[int, bytes], bool] | None = None
                    ) -> tuple[list[tuple[int, str]], list[bytes | None]]:
    """Rows that fail their own row_check, signed heads whose stored hash the rows before do not reach,
    and every row's recomputed chain hash.

    Each row_check covers its row's content alone, so every changed row is
    named, however many there are. The chain is recomputed from start_hash
    (None: unknown, so nothing is linked until the first stored hash); where a
    stored hash (a signed head) differs from the recomputed one without a
    failed row_check since the last head, the hash cell, the start hash, or a
    row_check together with its row was changed. The walk carries on from the
    stored hash when the rows were changed or the head's signature vouches for
    it (head_ok), and from the recomputed one otherwise (the hash cell was
    what changed), so one change is reported once and a second altered batch
    is still found. Rows go in chunks so a large object's canonical forms are
    never all in memory at once; between stored hashes the chain is a tight loop.
    """
    checks, stored_hashes = columns["row_check"], columns["hash"]
    n = len(checks)
    heads = [i for i, h in enumerate(stored_hashes) if h is not None]
    bad: list[tuple[int, str]] = []
    hashes: list[bytes | None] = []
    current = start_hash
    segment_bad = False
    h = 0  # next entry of heads
    for lo in range(0, n, HASH_CHUNK_ROWS):
        hi = min(n, lo + HASH_CHUNK_ROWS)
        contents = _contents(chain, columns, lo, hi)
        failed = _failed_checks(contents, checks, lo)
        bad += [(i, "content") for i in failed]
        row = lo
        while row < hi:
            end = heads[h] + 1 if h < len(heads) and heads[h] < hi else hi  # up to and with the next head
            segment = contents[row - lo:end - lo]
            if current is None:
                hashes += [None] * len(segment)
            else:
                current = _link(current, segment, hashes)
            segment_bad = segment_bad or any(row <= i < end for i in failed)
            if end <= hi and h < len(heads) and heads[h] == end - 1:
                i, stored = end - 1, stored_hashes[end - 1]
                if current is not None and current != stored and not segment_bad:
                    bad.append((i, "hash"))  # the rows are intact: the stored hash or the start changed
                    if head_ok is None or head_ok(i, stored):
                        current = stored  # signed as stored: what came before it changed
                else:
                    current = stored
                hashes[-1] = current
                segment_bad = False
                h += 1
            row = end
    bad.sort(key=lambda b: b[0])
    return bad, hashes


def object_hashes(chain: str, columns: Columns, start_hash: bytes | None) -> list[bytes | None]:
    """Every row's chain hash, recomputed from content (None until a hash is known)."""
    return _row_mismatches(chain, columns, start_hash)[1]


def _hash_findings(chain: str, obj: DataObject, seqs: list[int], bad: list[tuple[int, str]]) -> list[Finding]:
    """One CELL_CHANGED per run of consecutive bad rows with the same cause."""
    findings: list[Finding] = []
    run: list[tuple[int, str]] = []

    def close() -> None:
        if not run:
            return
        lo, hi, why = seqs[run[0][0]], seqs[run[-1][0]], run[0][1]
        span = f"seq {lo}" if lo == hi else f"seqs {lo}..{hi}"
        if why == "hash":
            detail = (f"the records before {span} do not hash to its stored hash: that hash, the object's "
                      "start hash (prev_hash), or a row together with its row_check was altered")
        else:
            detail = f"{span}: content does not match its row_check (a cell was changed)"
        findings.append(_finding(K.CELL_CHANGED, obj, chain, lo, detail))

    for i, why in bad:
        if run and (i != run[-1][0] + 1 or why != run[-1][1]):
            close()
            run = []
        run.append((i, why))
    close()
    return findings


def _signature_findings(chain: str, obj: DataObject, columns: Columns, keys: PublicKeys,
                        hashes: list[bytes | None]) -> tuple[list[Finding], int, set[int]]:
    """Check every row that carries a key id or a signature; returns findings, valid count, signed rows.

    A head's signature is checked over its stored hash, or over the recomputed
    one if the hash cell is empty (a signed head without its hash).
    """
    findings: list[Finding] = []
    signatures, key_ids = columns["signature"], columns["key_id"]
    seqs, sealed_at, stored = columns["seq"], columns["sealed_at"], columns["hash"]
    if isinstance(columns, TableColumns):
        rows = columns.sealed_rows()
    else:
        rows = [i for i, (s, k) in enumerate(zip(signatures, key_ids, strict=True)) if s is not None or k is not None]
    valid = 0
    carried: set[int] = set()
    for i in rows:
        sig, kid, seq = signatures[i], key_ids[i], seqs[i]
        if sig is None:
            detail = f"seq {seq} names key {kid} but has no signature"
            findings.append(_finding(K.BAD_SIGNATURE, obj, chain, seq, detail))
            continue
        carried.add(i)
        if kid is None:
            findings.append(_finding(K.BAD_SIGNATURE, obj, chain, seq, f"seq {seq} has a signature but no key id"))
            continue
        if kid not in keys:
            findings.append(_finding(K.UNKNOWN_KEY, obj, chain, seq, f"seq {seq} is signed with unknown key {kid}"))
            continue
        head_hash = stored[i] if stored[i] is not None else hashes[i]
        if head_hash is None:
            findings.append(_finding(K.BAD_SIGNATURE, obj, chain, seq,
                                     f"seq {seq} is signed but its hash is neither stored nor computable"))
            continue
        try:
            good = keys.verify(kid, sig, head_message(chain, seq, sealed_at[i], head_hash))
        except KeyNotFoundError:
            good = False
        if good:
            valid += 1
        else:
            findings.append(_finding(K.BAD_SIGNATURE, obj, chain, seq,
                                     f"the head signature of seq {seq} does not verify with key {kid}"))
    return findings, valid, carried


def check_object_rows(
    chain: str,
    obj: DataObject,
    columns: Columns,
    start_hash: bytes | None,
    keys: PublicKeys,
) -> ObjectCheck:
    """Check one object's rows: numbering, row checks, hash links to the signed heads, head signatures.

    start_hash is the hash the first row links to (the object's
    ``sealtrail.prev_hash`` metadata; None when unknown). Returns the
    findings, the hash and seq of the last row, how many head signatures
    verified, whether the last row carries a signature, and every row's hash.
    """
    seqs = columns["seq"]
    n = len(seqs)
    findings: list[Finding] = []
    order = _order_problem(seqs, obj.first, obj.last)
    if order is not None:
        kind, seq, detail = order
        findings.append(_finding(kind, obj, chain, seq, detail))
    if n and obj.dt != str(columns["sealed_at"][0])[:10]:
        findings.append(_finding(K.CELL_CHANGED, obj, chain, seqs[0],
                                 f"the object's dt={obj.dt} partition differs from the sealing date of its "
                                 f"first record ({str(columns['sealed_at'][0])[:10]})"))
    def head_ok(i: int, head_hash: bytes) -> bool:
        sig, kid = columns["signature"][i], columns["key_id"][i]
        if sig is None or kid is None or kid not in keys:
            return False
        return keys.verify(kid, sig, head_message(chain, seqs[i], columns["sealed_at"][i], head_hash))

    bad, hashes = _row_mismatches(chain, columns, start_hash, head_ok)
    if order is None:  # with broken numbering, row findings would only echo the finding above
        findings.extend(_hash_findings(chain, obj, seqs, bad))
    sig_findings, valid, carried = _signature_findings(chain, obj, columns, keys, hashes)
    findings.extend(sig_findings)
    if n == 0:
        return ObjectCheck(findings, start_hash, obj.first - 1, valid, False, [])
    return ObjectCheck(findings, hashes[-1], seqs[-1], valid, (n - 1) in carried, hashes)


class ObjectRows(NamedTuple):
    """What one object's rows say on their own, without its predecessor.

    Objects are checked independently (in parallel processes when it pays)
    and stitched together in sequence order by ChainWalk, which compares each
    object's start hash with the previous object's last hash.
    """

    check: ObjectCheck
    count: int
    first_seq: int | None
    start_hash: bytes | None
    last_signed_seq: int | None
    merkle_root: bytes | None = None
    tenant_events: int = 0  # rows of the tenant asked about (verify --tenant)


def check_object_alone(chain: str, obj: DataObject, columns: Columns, keys: PublicKeys,
                       start_hash: bytes | None) -> ObjectRows:
    check = check_object_rows(chain, obj, columns, start_hash, keys)
    n = len(columns["seq"])
    if not n:
        return ObjectRows(check, 0, None, start_hash, None)
    signatures = columns["signature"]
    last = next((i for i in range(n - 1, -1, -1) if signatures[i] is not None), None)
    return ObjectRows(check, n, columns["seq"][0], start_hash, columns["seq"][last] if last is not None else None,
                      _merkle_root(check.hashes))


def _merkle_root(hashes: list[bytes | None]) -> bytes | None:
    """RFC 6962 root over the object's record hashes (what digests list), if every hash is known."""
    if not hashes or None in hashes:
        return None
    return merkle.root(hashes)  # type: ignore[arg-type]


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

    def covers(self, obj: DataObject) -> bool:
        """False for an object overlapping what earlier objects hold (reported, not fed)."""
        if obj.first >= self.next_seq:
            return True
        self.findings.append(_finding(
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
            return
        check = rows.check
        self.findings.extend(check.findings)
        if self.window_start_hash is None and self.start_seq > 1 and rows.first_seq == self.start_seq:
            self.window_start_hash = rows.start_hash
        if rows.count and rows.start_hash is None:
            self.findings.append(_finding(
                K.CELL_CHANGED, obj, self.chain, rows.first_seq,
                "the object's sealtrail.prev_hash metadata is missing or malformed: its first records "
                "cannot be linked",
            ))
        elif (rows.count and self.prev_hash is not None and self.prev_seq + 1 == rows.first_seq
                and rows.start_hash != self.prev_hash):
            where = f"seq {self.prev_seq}" + (f" in {prev_key}" if prev_key else "")
            self.findings.append(_finding(
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
    events needs, a digest the policy's longest (sinks/retention.py).
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


class ParsedObject(NamedTuple):
    columns: Columns | None
    start_hash: bytes | None  # what the first row links to, from the metadata
    problem: str | None  # the schema differs from the sink's
    unreadable: str | None


def parse_columns(body: bytes) -> ParsedObject:
    """Parquet bytes -> columns as hashed, the start hash, a schema problem, an unreadable reason."""
    try:
        table, schema = read_object(body)
        problem = schema_problem(schema)
        missing = [name for name in ROW_COLUMNS if name not in table.column_names]
        if missing:
            return ParsedObject(None, None, problem, f"cannot check rows without columns {missing}")
        return ParsedObject(TableColumns(table, problem is None), prev_hash_of(schema), problem, None)
    except (pa.ArrowException, OSError, ValueError) as e:
        return ParsedObject(None, None, None, f"not readable as Parquet: {e}")


# ---------------------------------------------------------------------------
# I/O: one bucket (or bundle) in


@dataclass(frozen=True, slots=True)
class _Planned:
    obj: DataObject
    version: ObjectVersion
    newer: tuple[ObjectVersion, ...]


def _sorted_versions(entries: list[tuple[int, ObjectVersion]]) -> list[ObjectVersion]:
    """Oldest first. LastModified has second resolution in listings, so ties fall back to
    is_latest and then to listing order (S3 lists a key's versions newest first)."""
    return [v for _, v in sorted(entries, key=lambda e: (e[1].last_modified, e[1].is_latest, -e[0]))]


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


def _in_window(finding: Finding, starts: dict[str, int], ends: dict[str, int]) -> bool:
    """Whether a listing finding concerns the window: lifecycle expiry leaves delete markers on the
    objects before it (and versioned buckets keep them), which a window starting later must not blame."""
    obj = parse_data_key(finding.key) if finding.key else None
    if finding.kind != K.DELETE_MARKER or obj is None:
        return True
    end = ends.get(obj.chain)
    return obj.last >= starts.get(obj.chain, 1) and (end is None or obj.first <= end)


def load_keys(store: Any, prefix: str) -> tuple[list[bytes], list[Finding]]:
    """PEMs of the public keys published in the bucket; a key file must be named after its key id."""
    pems: list[bytes] = []
    findings: list[Finding] = []
    for key in sorted(store.keys(f"{prefix}{KEYS}")):
        if not key.endswith(".pem"):
            continue
        stored = store.get(key)
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


@lru_cache(maxsize=4)
def public_keys(pems: tuple[bytes, ...]) -> PublicKeys:
    """PublicKeys from PEMs, once per process (the keys themselves cannot be pickled to a worker)."""
    keys = PublicKeys()
    for pem in pems:
        keys.add_pem(pem)
    return keys


def check_body(chain: str, obj: DataObject, body: bytes, pems: tuple[bytes, ...], tenant: str | None = None
               ) -> tuple[ObjectRows | None, str | None, str | None]:
    """One object's bytes -> (its rows checked alone, schema problem, unreadable reason).

    Top-level and free of I/O so a process pool can run it.
    """
    columns, start_hash, problem, unreadable = parse_columns(body)
    if columns is None:
        return None, problem, unreadable
    try:
        rows = check_object_alone(chain, obj, columns, public_keys(pems), start_hash)
        rows = rows._replace(check=rows.check._replace(hashes=[]))  # used up in the Merkle root; not sent back
        if tenant is not None:
            rows = rows._replace(tenant_events=sum(1 for t in columns["tenant"] if t == tenant))
        return rows, problem, None
    except (ValueError, TypeError, orjson.JSONEncodeError) as e:
        return None, problem, f"cannot check rows: {e}"


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


def _verify_planned_chain(store: Any, chain: str, items: list[_Planned], pems: tuple[bytes, ...],
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
    verified = [replace(v, merkle_root=roots.get(v.key)) for v in verified]
    return findings + extra, summary, len(items), verified


def _process_pool(workers: int | None, planned: dict[str, list[_Planned]]) -> BackgroundPool | None:
    """Processes for the hashing when the trail is big enough to repay starting them."""
    cpus = os.cpu_count() or 1
    if workers is None:
        size = sum(item.version.size for items in planned.values() for item in items)
        workers = cpus if cpus > 1 and size >= PROCESS_POOL_MIN_BYTES else 0
    if workers <= 0:
        return None
    return BackgroundPool(workers, preload=__name__)


def _check_digests(store: Any, settings: Settings, report: Report, verified: dict[str, list[VerifiedObject]],
                   keys: PublicKeys, chains: Iterable[str] | None, starts: dict[str, int],
                   ends: dict[str, int]) -> list[Finding]:
    """The digest chains against the data verified; adds digest counts to each chain's summary."""
    prefix = settings.s3.prefix
    wanted = set(chains) if chains is not None else None
    by_key: dict[str, list[tuple[int, ObjectVersion]]] = defaultdict(list)
    for i, v in enumerate(store.versions(digest_prefix(prefix))):
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
    return findings


def verify_store(
    store: Any,
    settings: Settings,
    progress: Callable[[int, int], None] | None = None,
    chains: Iterable[str] | None = None,
    trusted_keys: Sequence[bytes] | None = None,
    workers: int | None = None,
    starts: dict[str, int] | None = None,
    since: str | None = None,
    until: str | None = None,
    tenant: str | None = None,
) -> Report:
    """Verify every chain in the bucket (or bundle) and return a Report.

    store needs keys(prefix), versions(prefix) and get(key, version_id):
    sinks.store.S3Store or evidence.bundle.DirectoryStore. Public keys come
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
    """
    starts = dict(starts or {})
    ends: dict[str, int] = {}
    prefix = settings.s3.prefix
    findings: list[Finding] = []
    if trusted_keys is None:
        pems, key_findings = load_keys(store, prefix)
        findings += key_findings
    else:
        pems = list(trusted_keys)
        try:
            public_keys(tuple(pems))
        except (ValueError, TypeError) as e:
            raise ConfigError("--key", f"not an Ed25519 public key (PEM): {e}") from e
    versions = list(store.versions(data_prefix(prefix)))
    planned, listing_findings = plan(versions, prefix, chains)
    if since is not None or until is not None:
        _window_by_dates(versions, since, until, starts, ends)
        planned = {chain: items for chain, items in planned.items() if chain in starts or chain in ends}
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
    findings += _check_digests(store, settings, report, verified_by_chain, public_keys(tuple(pems)), chains, starts,
                               ends)
    report.findings = sorted(findings, key=Finding.sort_key)
    return report
