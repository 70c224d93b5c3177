"""Verifying a bucket (or bundle): the I/O and the scheduling around the pure checks in checks/.

verify_store lists the store, plans which versions to read
(checks/listing.py), fetches chains in parallel threads and, for trails
large enough to repay starting them, hashes objects in worker processes
(sealtrail.evidence.workers): they start in the background from a forkserver
that imports sealtrail.evidence.checks.rows (and the caller's small __main__)
once, and objects are checked in the calling thread until they are up.
Objects are checked independently and stitched in order (checks/chain.py),
so the order in which workers finish does not matter. bench/verify_speed.py
measures it.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from sealtrail.config import Settings
from sealtrail.errors import ConfigError
from sealtrail.evidence.checks import rows
from sealtrail.evidence.checks.chain import ChainWalk
from sealtrail.evidence.checks.digests import ChainWindow, StoredDigest, VerifiedObject, check_digest_chain
from sealtrail.evidence.checks.listing import Planned, in_window, left_out, plan, sorted_versions, window_by_dates
from sealtrail.evidence.checks.locks import checksum_findings, lock_findings
from sealtrail.evidence.checks.rows import check_body, public_keys
from sealtrail.evidence.findings import Finding, FindingKind, Report
from sealtrail.evidence.key_history import key_history_findings, key_uses
from sealtrail.evidence.keys import key_record, load_keys, read_trusted
from sealtrail.evidence.workers import BackgroundPool
from sealtrail.layout import data_prefix, digest_key, digest_prefix, parse_digest_key
from sealtrail.signing import PublicKeys
from sealtrail.store import ObjectStore, ObjectVersion, sha256_b64

K = FindingKind
MAX_PARALLEL_CHAINS = 8
PREFETCH_PER_CHAIN = 2  # objects a chain thread keeps in the process pool while it fetches the next
PROCESS_POOL_MIN_BYTES = 16 << 20  # about 100,000 events: below that, starting processes costs more


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


def _admitted(items: list[Planned], start_seq: int = 1) -> list[bool]:
    """Which objects in sequence order add to the chain (the rest overlap and are not fetched)."""
    next_seq, out = start_seq, []
    for item in items:
        out.append(item.obj.first >= next_seq)
        if out[-1]:
            next_seq = item.obj.last + 1
    return out


def _verify_planned_chain(store: ObjectStore, chain: str, items: list[Planned], pems: tuple[bytes, ...],
                          settings: Settings, progress: _Progress, pool: BackgroundPool | None, start_seq: int = 1,
                          tenant: str | None = None
                          ) -> tuple[list[Finding], dict[str, Any], int, list[VerifiedObject]]:
    """GET a chain's objects in order, check them (inline or in the pool), stitch them in order."""
    walk = ChainWalk(chain, public_keys(pems), start_seq)
    extra: list[Finding] = []
    ordered = sorted(items, key=lambda p: (p.obj.first, p.obj.last, p.obj.key))
    pending: deque[tuple[Planned, Any]] = deque()
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


def _process_pool(workers: int | None, planned: dict[str, list[Planned]]) -> BackgroundPool | None:
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
                   ends: dict[str, int], continued: dict[str, int] | None = None
                   ) -> tuple[list[Finding], dict[str, list[StoredDigest]]]:
    """The digest chains against the data verified, and the digests read; adds digest counts to each chain's summary."""
    prefix = settings.s3.prefix
    wanted = set(chains) if chains is not None else None
    by_key: dict[str, list[tuple[int, ObjectVersion]]] = defaultdict(list)
    for i, v in enumerate(_digest_versions(store, prefix, continued, set(verified))):
        by_key[v.key].append((i, v))
    findings: list[Finding] = []
    digests: dict[str, list[StoredDigest]] = defaultdict(list)
    for key in sorted(by_key):
        history = sorted_versions(by_key[key])
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
        trusted_keys, source = read_trusted(settings.keys.trusted), "keys.trusted"
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
        window_by_dates(versions, since, until, starts, ends)
        planned = {chain: items for chain, items in planned.items() if chain in starts or chain in ends}
    unverified = left_out(versions, prefix, planned, starts, ends, chains)
    planned = {chain: [i for i in items if i.obj.last >= starts.get(chain, 1)
                       and (chain not in ends or i.obj.first <= ends[chain])] for chain, items in planned.items()}
    findings += [f for f in listing_findings if in_window(f, starts, ends)]
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
    findings += key_history_findings(key_uses(verified_by_chain, digests), published if settings.keys.check_publication else {},
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
