"""The sink worker: audit.chained -> locked Parquet objects in S3, offsets committed after.

Order of operations per flush of a chain: name the object from its content,
HEAD it (a locked bucket keeps every re-upload as another retained version, so
a replay must not PUT again), PUT with checksum and retention, write the
chain's next digest (core/digest.py), and only then commit the offsets. On
every partition assignment the last stored sequence and the last digest of
each chain are read from the bucket itself (a few requests per chain however old
the trail is, core/index.py), and data objects that a crash left
without a digest get one, so a crash anywhere between those steps leaves
neither a gap, an overlap nor an undigested object. S3 outages are retried with
backoff for as long as they last; nothing is committed meanwhile.

A record that does not continue its chain (another record at a seq the bucket
holds, a non-linking prev, a gap, an old seq the sink cannot check; see
sinks/buffer.py) is never dropped silently: its wire bytes go to the
quarantine topic with headers naming chain, seq, reason and where it was read,
and offsets are committed only after the broker acknowledged them.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from sealtrail import index, merkle
from sealtrail.chain import chain_id
from sealtrail.config import Settings
from sealtrail.contents import object_hashes
from sealtrail.digest import DigestLink, ListedObject, build_digest, head_of
from sealtrail.encoding import format_ts
from sealtrail.errors import SealtrailError, ServiceUnavailable
from sealtrail.kafka import located, make_consumer, make_producer
from sealtrail.layout import DataObject, data_prefix, parse_data_key
from sealtrail.objects import ObjectWriter, prev_hash_of, read_table, text_columns
from sealtrail.record import GENESIS, SealedRecord
from sealtrail.retention import policy_for
from sealtrail.retry import STORE_BACKOFF, call_with_retry
from sealtrail.signing import KeySource, Signer
from sealtrail.sinks.buffer import Added, ChainBuffer, ForkReason, Pending, Verdict, object_key_for
from sealtrail.sinks.metrics import SinkMetrics
from sealtrail.sinks.s3 import S3Store
from sealtrail.store import ObjectStore, WritableStore, sha256_b64
from sealtrail.versions import get_sinks

log = logging.getLogger("sealtrail.sink")
T = TypeVar("T")


def stored_merkle_root(chain: str, table: pa.Table) -> str | None:
    """The digest's Merkle root for a stored object (RFC 6962 over its records' hashes in seq order).

    Only signed heads keep their hash, so the rest are recomputed from the
    rows and the object's start hash, as verify does; None if that fails.
    """

    hashes = object_hashes(chain, text_columns(table), prev_hash_of(table.schema))
    if not hashes or any(h is None for h in hashes):
        return None
    return merkle.root_of_hashes(hashes).hex()  # type: ignore[arg-type]


def stored_objects(store: ObjectStore, prefix: str) -> dict[str, list[DataObject]]:
    """The data objects in the bucket per chain, in sequence order, from object names alone."""
    chains: dict[str, list[DataObject]] = {}
    for key in store.keys(data_prefix(prefix)):
        obj = parse_data_key(key)
        if obj is not None:
            chains.setdefault(obj.chain, []).append(obj)
    return {chain: sorted(objs, key=lambda o: o.first) for chain, objs in chains.items()}


def last_stored_seqs(store: ObjectStore, prefix: str) -> dict[str, int]:
    """The highest sequence number in the bucket for each chain."""
    return {chain: objs[-1].last for chain, objs in stored_objects(store, prefix).items()}


def last_hash(store: ObjectStore, obj: DataObject | None) -> bytes:
    """The hash of an object's last record (a signed head, so it is stored); GENESIS before the first object."""
    if obj is None:
        return GENESIS
    table = read_table(get_sinks(store, obj.key).body)
    value = table.column("hash")[table.num_rows - 1].as_py()
    if value is None:  # the sink cuts objects at signed heads only, and heads keep their hash
        raise SealtrailError(f"{obj.key} does not end at a signed head; the sink cannot link the next object")
    return value


def stored_hashes(store: ObjectStore, obj: DataObject | None) -> tuple[bytes, dict[int, bytes]]:
    """The hash of an object's last record (GENESIS before the first object) and every record hash
    of it that can be recomputed, by seq: what tells a replay of it after a crash from a fork."""
    if obj is None:
        return GENESIS, {}

    table = read_table(get_sinks(store, obj.key).body)
    head = table.column("hash")[table.num_rows - 1].as_py()
    if head is None:  # the sink cuts objects at signed heads only, and heads keep their hash
        raise SealtrailError(f"{obj.key} does not end at a signed head; the sink cannot link the next object")
    try:
        hashes = object_hashes(obj.chain, text_columns(table), prev_hash_of(table.schema))
    except Exception as e:  # noqa: BLE001 - an unreadable object costs only the replay check, which then quarantines
        log.warning("%s: record hashes not recomputed (%r); replays of it will be quarantined as unverifiable",
                    obj.key, e)
        hashes = []
    seqs = table.column("seq").to_pylist()
    known = {seq: h for seq, h in zip(seqs, hashes, strict=False) if h is not None}
    known[obj.last] = head
    return head, known


def committed_hints(consumer: Consumer, partitions: list[TopicPartition], timeout: float = 10.0) -> dict[int, int]:
    """Where the digest search starts, per partition: the group's committed audit.chained offset.

    The sink commits only after a flush's digest is durable, and audit.chained
    holds one record per seq from its first offset, so the offset is near the
    newest digest's seq on a trail of any age (a re-created topic puts it below;
    the search then climbs). A hint only says where to look first: the result
    is what the listing shows, so a wrong hint costs requests, never a head.
    """
    try:
        committed = consumer.committed(partitions, timeout=timeout)
    except (KafkaException, RuntimeError) as e:
        log.warning("committed offsets unavailable (%s); searching the digests without a hint", e)
        return {}
    return {tp.partition: tp.offset for tp in committed if tp.offset >= 0 and tp.error is None}


def latest_digest(store: ObjectStore, prefix: str, chain: str, newest: index.NewestDigest | None = None
                  ) -> DigestLink | None:
    """The chain's newest digest, which the next one links to (found by core/index.py, not by a listing)."""
    newest = newest if newest is not None else index.newest_digest(store, prefix, chain)
    if newest is None:
        return None
    return DigestLink(newest.key, hashlib.sha256(newest.body).hexdigest(), newest.last)


class OpenObject:
    """A chain's data object while row groups are added to it: what its PUT, digest and commit need."""

    def __init__(self, chain: str, prev_hash: bytes, opened_at: float, track_events: bool) -> None:
        self.chain, self.opened_at, self.track_events = chain, opened_at, track_events
        self.writer = ObjectWriter(prev_hash)
        self.first: SealedRecord = None  # type: ignore[assignment]  # set by the first append
        self.last: SealedRecord = None  # type: ignore[assignment]
        self.last_offset = -1
        self.count = 0
        self.hashes: list[bytes] = []  # the digest's Merkle root is over these
        # (category, action, tenant) for the retention policy; read only when it has rules beyond the default
        self.events: set[tuple[str, str, str]] = set()

    def append(self, taken: list[Pending]) -> None:
        records = [p.record for p in taken]
        self.writer.append(records)
        self.first = self.first or records[0]
        self.last, self.last_offset = records[-1], taken[-1].offset
        self.count += len(records)
        self.hashes.extend(r.hash for r in records)
        if self.track_events:
            self.events.update((r.columns["category"], r.columns["action"], r.columns["tenant"]) for r in records)


class SinkWorker:
    def __init__(
        self,
        settings: Settings,
        keys: Signer | KeySource,
        store: WritableStore | None = None,
        metrics: SinkMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.retention = policy_for(settings)  # a bad policy stops the sink at start, not at its first flush
        self.store = store or S3Store(settings)
        self.metrics = metrics or SinkMetrics()
        self.buffers: dict[int, ChainBuffer] = {}
        self.open: dict[int, OpenObject] = {}
        self.digests: dict[int, DigestLink | None] = {}
        # the objects beyond each partition's newest digest at assignment (a crash left them undigested)
        self.stored: dict[int, list[DataObject]] = {}
        self._looked_up: dict[int, tuple[DataObject, dict[int, bytes]]] = {}  # the last object read back for a replay
        self.quarantine: Producer | None = None  # made at the first fork
        self.quarantined = 0  # sent since offsets were last committed (acknowledged or failed)
        self._quarantine_errors: list[str] = []
        self.events_written = 0
        self.objects_written = 0
        self._stop = threading.Event()

    def _retry(self, call: Callable[..., T], *args: Any) -> T:
        """call(*args), retried while S3 is unavailable, until the worker stops."""

        def count(error: BaseException, wait: float) -> None:
            self.metrics.retries.inc()
            log.warning("S3 unavailable (%s); retrying", error)

        return call_with_retry(call, *args, backoff=STORE_BACKOFF, stop=self._stop, on_retry=count)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Read each chain's head back from the bucket: a few requests per chain, however old the trail."""
        retry = self._retry
        prefix = self.settings.s3.prefix
        stored = {}
        hints = committed_hints(consumer, partitions)
        for tp in partitions:
            chain = chain_id(tp.partition)
            newest = retry(index.newest_digest, self.store, prefix, chain, hints.get(tp.partition))
            undigested = retry(index.objects_after, self.store, prefix, chain, newest)
            head = undigested[-1] if undigested else (newest.last_object() if newest is not None else None)
            stored[chain] = head.last if head else 0
            head_hash, known = retry(stored_hashes, self.store, head)
            self.buffers[tp.partition] = ChainBuffer(chain, stored[chain], head_hash, known=known)
            self.stored[tp.partition] = undigested
            self.digests[tp.partition] = retry(self._catch_up, chain, newest, undigested)
            self.metrics.stored_seq.labels(chain).set(stored[chain])
        consumer.assign(partitions)
        log.info("assigned %s; stored heads %s", [tp.partition for tp in partitions], stored)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:  # an open object is dropped unwritten: its offsets were never committed
            self.buffers.pop(tp.partition, None)
            self.stored.pop(tp.partition, None)
            self._looked_up.pop(tp.partition, None)
            self.open.pop(tp.partition, None)
            self.digests.pop(tp.partition, None)

    def _catch_up(self, chain: str, newest: index.NewestDigest | None, pending: list[DataObject]
                  ) -> DigestLink | None:
        """Digest the data objects a crash left undigested (written, but the digest PUT never happened)."""
        link = latest_digest(self.store, self.settings.s3.prefix, chain, newest)
        if not pending:
            return link
        listed = []
        for obj in pending:
            stored = get_sinks(self.store, obj.key)
            table = read_table(stored.body)
            offsets = table.column("src_offset")
            listed.append(ListedObject(obj.key, stored.version_id, sha256_b64(stored.body), obj.first, obj.last,
                                       len(stored.body), stored_merkle_root(chain, table),
                                       offsets[0].as_py(), offsets[table.num_rows - 1].as_py()))
        last = {name: table.column(name)[table.num_rows - 1].as_py()
                for name in ("seq", "hash", "src_offset", "key_id", "signature")}
        sealed_at = format_ts(table.column("sealed_at")[table.num_rows - 1].as_py())
        head = {"seq": last["seq"], "hash": last["hash"].hex(), "sealed_at": sealed_at, "src_offset": last["src_offset"],
                "key_id": last["key_id"], "signature": last["signature"].hex() if last["signature"] else None}
        log.info("chain %s: digesting %d object(s) left undigested by a crash", chain, len(pending))
        return self._put_digest(chain, listed, head, link)

    def _put_digest(
        self, chain: str, listed: list[ListedObject], head: dict, previous: DigestLink | None
    ) -> DigestLink:
        now = format_ts(datetime.now(timezone.utc))
        key, body = build_digest(self.settings.s3.prefix, chain, listed, head, previous, self.keys.current(), now)
        if self._retry(self.store.head, key) is not None:  # written before a crash: link to what is there
            body = self._retry(get_sinks, self.store, key).body
        else:
            self._put_locked(key, body)
            self.metrics.digests.inc()
        return DigestLink(key, hashlib.sha256(body).hexdigest(), head["seq"])

    def _put_locked(self, key: str, body: bytes, events: set[tuple[str, str, str]] | None = None) -> str | None:
        """PUT locked as the retention policy demands: the longest any of the events needs (None, a
        digest: the policy's longest). Computed at each attempt, so a long outage cannot shorten the lock."""

        def put() -> str | None:
            now = datetime.now(timezone.utc)
            lock = self.retention.longest_lock(now) if events is None else self.retention.lock_for_events(events, now)
            return self.store.put_locked(key, body, lock.mode, lock.retain_until)

        return self._retry(put)

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        topic = self.settings.kafka.topics.chained
        consumer = make_consumer(
            self.settings, self.settings.sink.group, **{"enable.partition.eof": False, "max.poll.interval.ms": 900_000},
            **self.metrics.broker.client_config(),
        )
        consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while not self._stop.is_set():
                messages = consumer.consume(5000, timeout=0.2)
                now = time.monotonic()
                for m in messages:
                    err = m.error()
                    if err is not None:
                        if err.code() != KafkaError._PARTITION_EOF:
                            log.warning("consume error: %s", err.str())
                        continue
                    partition, offset = located(m)
                    buffer = self.buffers.get(partition)
                    if buffer is not None:
                        record = SealedRecord.from_wire(m.value() or b"")
                        added = buffer.add(record, offset, now)
                        if added.reason is ForkReason.UNVERIFIABLE:
                            added = self._check_in_bucket(partition, record, added)
                        if added.verdict is Verdict.FORK:
                            self._quarantine(m, record, added)
                self._await_quarantine()  # before any commit moves the group past a quarantined record
                self._flush_due(consumer, force=False)
            self._await_quarantine()
            self._flush_due(consumer, force=True)
        finally:
            consumer.close()
            if self.quarantine is not None:
                self.quarantine.flush(10)

    def _check_in_bucket(self, partition: int, record: SealedRecord, added: Added) -> Added:
        """An old seq the buffer no longer remembers: read the stored object that holds it back from the
        bucket (several uncommitted objects are replayed after crashes between PUT and commit)."""
        cached = self._looked_up.get(partition)
        if cached is None or not cached[0].first <= record.seq <= cached[0].last:
            undigested = [o for o in self.stored.get(partition, []) if o.first <= record.seq <= o.last]
            obj = undigested[0] if undigested else self._retry(
                index.object_holding, self.store, self.settings.s3.prefix, record.chain, record.seq)
            if obj is None:
                return added
            _, hashes = self._retry(stored_hashes, self.store, obj)
            cached = self._looked_up[partition] = (obj, hashes)
        known = cached[1].get(record.seq)
        if known is None:
            return added
        if known == record.hash:
            return Added(Verdict.REPLAY, added.expected, known=known)
        return Added(Verdict.FORK, added.expected, ForkReason.FORK, known)

    def _quarantine(self, m: Message, record: SealedRecord, added: Added) -> None:
        """Send a record that does not continue its chain to the quarantine topic, as it was read."""
        assert added.reason is not None
        topic = self.settings.kafka.topics.quarantine
        known = added.known.hex() if added.known is not None else None
        if added.reason == "gap":
            why = f"seq {added.expected} was expected next"
        elif added.reason == "unverifiable":
            why = f"the sink no longer knows the hash it stored at seq {record.seq}"
        elif record.seq == added.expected:
            why = f"prev {record.prev.hex() if record.prev else None} does not link to the chain's last hash {known}"
        else:
            why = f"the sink holds hash {known} at that seq"
        log.error("chain %s seq %d: %s record, hash %s, known hash %s (%s); quarantined to %s "
                  "(audit.chained partition %d offset %d)", record.chain, record.seq, added.reason, record.hash.hex(),
                  known, why, topic, m.partition(), m.offset())
        if self.quarantine is None:
            self.quarantine = make_producer(self.settings)

        def delivered(err, _msg) -> None:
            if err is not None:
                self._quarantine_errors.append(err.str())

        headers = {
            "chain": record.chain, "seq": str(record.seq), "reason": str(added.reason), "expected": str(added.expected),
            "hash": record.hash.hex(), "known_hash": known or "", "topic": m.topic() or "",
            "partition": str(m.partition()), "offset": str(m.offset()),
        }
        self.quarantine.produce(topic, m.value(), key=record.chain.encode(), headers=list(headers.items()),
                                on_delivery=delivered)
        self.quarantine.poll(0)
        self.quarantined += 1
        self.metrics.forks.labels(str(added.reason)).inc()

    def _await_quarantine(self) -> None:
        """Wait until the broker acknowledged every quarantined record; raise if it refused one."""
        if self.quarantine is None or not self.quarantined:
            return
        while (left := self.quarantine.flush(5.0)) > 0:
            if self._stop.is_set():
                raise ServiceUnavailable("kafka", f"{left} quarantined records not acknowledged; nothing committed")
            log.warning("%d quarantined records not yet acknowledged by the broker; not committing", left)
        if self._quarantine_errors:
            errors, self._quarantine_errors = self._quarantine_errors, []
            raise SealtrailError(f"quarantine topic {self.settings.kafka.topics.quarantine} refused records "
                                 f"({errors[0]}); nothing committed past them")
        self.quarantined = 0

    def _flush_due(self, consumer: Consumer, force: bool) -> None:
        """Move flushable records into each chain's open object; PUT the objects that are big or old enough.

        Records wait in the chain's buffer for at most flush_records or
        flush_interval_s and then become a row group of the open object; the
        object is written once it reaches object_bytes, or flush_interval_s
        after its first record arrived, so quiet chains still reach S3.
        """
        cfg = self.settings.sink
        now = time.monotonic()
        commits: list[TopicPartition] = []
        for partition, buffer in self.buffers.items():
            building = self.open.get(partition)
            old = building is not None and now - building.opened_at >= cfg.flush_interval_s
            if force or old or buffer.due(now, cfg.flush_records, cfg.flush_interval_s):
                n = buffer.cut()
                if n:
                    prev_hash = buffer.stored_hash
                    taken = buffer.take(n, now)
                    if building is None:
                        building = self.open[partition] = OpenObject(buffer.chain, prev_hash, taken[0].arrived,
                                                                          bool(self.retention.rules))
                    building.append(taken)
            if building is None or not (force or building.writer.size >= cfg.object_bytes
                                        or now - building.opened_at >= cfg.flush_interval_s):
                continue
            del self.open[partition]
            listed = self._write(building)
            self.digests[partition] = self._put_digest(
                buffer.chain, [listed], head_of(building.last), self.digests.get(partition)
            )
            commits.append(TopicPartition(self.settings.kafka.topics.chained, partition, building.last_offset + 1))
        if commits:
            consumer.commit(offsets=commits, asynchronous=False)

    def _write(self, building: OpenObject) -> ListedObject:
        first, last = building.first.seq, building.last.seq
        key = object_key_for(self.settings.s3.prefix, [building.first, building.last])
        root = merkle.root_of_hashes(building.hashes).hex()
        existing = self._retry(self.store.head, key)
        if existing is not None:
            self.metrics.skipped.inc()
            log.info("%s already stored; not writing it again", key)
            listed = ListedObject(key, existing.version_id, existing.checksum_sha256, first, last, existing.size, root,
                                  building.first.src_offset, building.last.src_offset)
        else:
            body = building.writer.close()
            version = self._put_locked(key, body, building.events)
            listed = ListedObject(key, version, sha256_b64(body), first, last, len(body), root,
                                  building.first.src_offset, building.last.src_offset)
            self.metrics.objects.inc()
            self.metrics.bytes.inc(len(body))
            self.objects_written += 1
        self.metrics.events.inc(building.count)
        self.metrics.stored_seq.labels(building.chain).set(last)
        self.events_written += building.count
        return listed
