"""Where each chain stands, from durable state: the bucket's stored head and what audit.chained holds beyond it.

Kafka's retention (7 days by default) ages audit.chained out, so it cannot be
the only witness of a chain head: a worker that recovered from an empty
topic once restarted every chain at seq 0, and the sink dropped what followed
as replays. So a worker that starts, restarts after kill -9, or takes over
partitions resumes each chain from the newer of

- the bucket's head: the last record of the chain's newest data object,
  locked and signed, and
- the last record audit.chained holds, provided it continues the bucket's
  chain: the record at the bucket's seq has the bucket's hash, or the first
  record beyond it links to that hash (its prev).

When the two disagree the chain has forked (a second writer, or a topic that
holds another trail): ChainForkError names the chain and both heads and the
worker seals nothing. Input at or before the head's source offset is skipped,
so nothing is sealed twice. Event ids for the dedupe window come from the
records read (audit.chained, and the bucket's newest object when the topic
holds less than the bucket).

Neither read grows with the trail's age: the bucket's head is found from the
digest names by a search (core/index.py), and audit.chained is read from
dedupe_window records before that head (a binary search on seq) to its end.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from sealtrail.chain import ChainHead, RecentIds, chain_id
from sealtrail.config import Settings
from sealtrail.errors import ChainForkError, ConfigError
from sealtrail.kafka import TopicProbe, located, read_to_end
from sealtrail.retry import STORE_BACKOFF, call_with_retry
from sealtrail.store import ObjectStore
from sealtrail.versions import get_sinks

log = logging.getLogger("sealtrail.stream")


@dataclass(frozen=True, slots=True)
class StoredHead:
    """The last record of a chain in the bucket, and the event ids of the object that holds it."""

    seq: int
    hash: bytes
    src_offset: int
    key: str
    event_ids: tuple[str, ...] = ()


def bucket_heads(store: ObjectStore, prefix: str, chains: list[str], hints: dict[str, int] | None = None
                 ) -> dict[str, StoredHead]:
    """Each chain's stored head: the last record of its newest data object, found without listing the trail.

    hints are seqs near each chain's head (what audit.chained ends with), where the search starts.
    """
    from sealtrail.index import newest_digest, objects_after
    from sealtrail.objects import read_table

    heads: dict[str, StoredHead] = {}
    for chain in chains:
        newest = newest_digest(store, prefix, chain, (hints or {}).get(chain))
        after = objects_after(store, prefix, chain, newest)  # written, but a crash came before their digest
        obj = after[-1] if after else (newest.last_object() if newest is not None else None)
        if obj is None:
            continue
        table = read_table(get_sinks(store, obj.key).body)
        last = table.num_rows - 1
        value = table.column("hash")[last].as_py()
        if value is None:  # the sink cuts objects at signed heads only, and heads keep their hash
            raise ConfigError("s3.prefix", f"{obj.key} does not end at a signed head")
        ids = tuple(i for i in table.column("event_id").to_pylist() if i is not None)
        heads[chain] = StoredHead(table.column("seq")[last].as_py(), value, table.column("src_offset")[last].as_py(),
                                  obj.key, ids)
    return heads


def resume_from(chain: str, stored: StoredHead | None, tail: list[dict[str, Any]]
                ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The record a chain resumes after, and the tail records on the chain; a pure decision.

    tail is what audit.chained holds for the chain, in offset order (wire records). The chain is
    followed by hash links from the bucket's head (or from the tail's first record when the bucket
    has none): a record is on it if it has the next seq and links to the record before (its prev).
    Records that do not link were written by a writer that lost the chain (a worker frozen past its
    session and thawed after another took over) and are passed over, as the sink passes them over.
    Returns (None, []) for a new chain; the start is the last linked tail record, or a dict with the
    stored head's seq, hash and src_offset. ChainForkError when the tail goes beyond the bucket but
    nothing in it continues the bucket's chain, or holds the bucket's last seq with other content only.
    """
    bucket: dict[str, Any] | None = (
        {"seq": stored.seq, "hash": stored.hash.hex(), "src_offset": stored.src_offset} if stored else None)
    current = bucket
    linked: list[dict[str, Any]] = []
    for d in tail:
        if current is None:
            current = d  # no bucket head: the oldest record the topic holds starts the chain
            linked.append(d)
        elif d["seq"] == current["seq"] + 1 and (not d.get("prev") or d["prev"] == current["hash"]):
            current = d
            linked.append(d)
    if stored is not None and bucket is not None:
        at = [d["hash"] for d in tail if d["seq"] == stored.seq]
        beyond = [d for d in tail if d["seq"] > stored.seq]
        if (at and bucket["hash"] not in at) or (beyond and current is bucket):
            theirs = f"seq {stored.seq} {at[0][:16]}" if at and bucket["hash"] not in at else (
                f"seq {beyond[0]['seq']} linking to {str(beyond[0].get('prev'))[:16]}")
            raise ChainForkError(chain, f"seq {stored.seq} {bucket['hash'][:16]} in {stored.key}", theirs)
    return current, linked


def _with_retries(call: Any, *args: Any) -> Any:
    """An S3 outage delays recovery, as it delays the sink; it never makes a worker guess a head."""

    def warn(error: BaseException, wait: float) -> None:
        log.warning("S3 unavailable while reading the chain heads (%s); retrying", error)

    return call_with_retry(call, *args, backoff=STORE_BACKOFF, give_up_after_s=600, on_retry=warn)


def _seq_of(m: Any) -> int:
    try:
        return int(orjson.loads(m.value())["seq"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return -1  # not a sealed record: the search steps over it, recovery's own checks judge it


def _read_tails(settings: Settings, partitions: list[int], starts: dict[int, int]
                ) -> tuple[dict[int, list[dict[str, Any]]], dict[int, int]]:
    tails: dict[int, list[dict[str, Any]]] = {p: [] for p in partitions}
    ends: dict[int, int] = {}
    for records in read_to_end(settings, settings.kafka.topics.chained, partitions, starts=starts):
        for m in records:
            partition, offset = located(m)
            tails[partition].append(orjson.loads(m.value() or b""))
            ends[partition] = offset + 1
    return tails, ends


def recover_heads(settings: Settings, partitions: list[int], store: ObjectStore | None = None) -> dict[int, ChainHead]:
    """Each partition's chain head, reading a bounded tail of audit.chained and a few objects of the bucket.

    The tail starts dedupe_window records before the bucket's head (found by a binary search on seq),
    so a restart costs the same on a trail of a day and of seven years: a few dozen S3 requests per
    chain, about log2(records) fetch rounds, and at most dedupe_window + what lies beyond the head
    records read per chain. The records before the tail are in the bucket, and their event ids older
    than the window are what the window forgets anyway.
    """
    heads = {p: ChainHead(chain_id(p), recent=RecentIds(settings.stream.dedupe_window)) for p in partitions}
    if not partitions:
        return heads
    topic, window = settings.kafka.topics.chained, settings.stream.dedupe_window
    with TopicProbe(settings, topic) as probe:
        extent = probe.ends(partitions)
        last_seqs = {p: _seq_of(m) for p, (_lo, _end, m) in extent.items() if m is not None}
        hints = {chain_id(p): seq for p, seq in last_seqs.items() if seq >= 0}
        stored = _with_retries(bucket_heads, store, settings.s3.prefix, [h.chain for h in heads.values()], hints) \
            if store is not None else {}
        targets = {}
        for p, head in heads.items():
            base = stored[head.chain].seq if head.chain in stored else last_seqs.get(p)
            if base is not None:
                targets[p] = max(0, base - window)
        starts = probe.first_at_least(targets, _seq_of, extent) if targets else {}
        rounds = probe.rounds
    tails, ends = _read_tails(settings, partitions, starts)
    log.info("recovery read %d record(s) of %s from offsets %s (%d probe rounds)",
             sum(len(t) for t in tails.values()), topic, {p: starts.get(p, 0) for p in partitions}, rounds)
    for p, head in heads.items():
        mine = stored.get(head.chain)
        if tails[p] and tails[p][-1]["chain"] != head.chain:
            raise ConfigError("kafka.topics.chained", f"partition {p} holds chain {tails[p][-1]['chain']}, "
                                                      f"expected {head.chain}")
        try:
            start, linked = resume_from(head.chain, mine, tails[p])
        except ChainForkError:
            if not starts.get(p):
                raise
            log.warning("chain %s: the tail read from offset %d does not continue the bucket's head; "
                        "reading the whole partition before deciding", head.chain, starts[p])
            whole, whole_ends = _read_tails(settings, [p], {p: 0})
            tails[p], ends[p] = whole[p], whole_ends.get(p, ends.get(p, -1))
            start, linked = resume_from(head.chain, mine, tails[p])
        tail = tails[p]
        # Where this worker's first record must land: past the tail read, or the partition's end when
        # the tail was empty (an unknown place would let a frozen worker's first batch through unfenced).
        head.next_out = ends.get(p, extent[p][1])
        if start is None:
            continue
        on_chain = {id(d) for d in linked}
        below = [d for d in tail if mine is not None and d["seq"] <= mine.seq]  # already in the bucket
        passed = len(tail) - len(linked) - len(below)
        if passed:
            log.warning("chain %s: %d record(s) on audit.chained do not link to the chain (written by a worker "
                        "that had lost it); passed over", head.chain, passed)
        if mine is not None and not any(d["seq"] == mine.seq for d in below) and not linked:
            log.warning("chain %s: audit.chained holds %s; resuming from the bucket's head at seq %d (%s)",
                        head.chain, f"up to seq {tail[-1]['seq']}" if tail else "nothing", mine.seq, mine.key)
        if mine is not None and len(below) < window:
            for event_id in mine.event_ids:  # the topic holds less than the window: the bucket's newest ids
                head.recent.add(event_id)
        for d in below + [d for d in tail if id(d) in on_chain]:
            if d.get("kind") is None and d.get("event_id"):
                head.recent.add(d["event_id"])
        head.seq, head.hash, head.src_offset = start["seq"], bytes.fromhex(start["hash"]), start["src_offset"]
    return heads
