"""sealtrail.chain: seal_batch against a slow reference written from the definition.

    hash_0 = GENESIS (32 zero bytes)
    hash_n = SHA-256(hash_{n-1} || hashed_bytes(chain, n, sealed_at, offset, columns))

per partition (one chain each), in offset order; an input at or below the
offset the chain already consumed is a replay and is skipped; an event whose id
is among the chain's last `window` sealed ids is a duplicate, dropped and
counted; the last record of each chain in each sealed batch carries a head
signature. The reference applies this to the whole input at once, one chain at
a time; seal_batch sees it in arbitrary batches interleaving several chains.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from sealtrail.chain import Accepted, ChainHead, RecentIds, chain_id, seal_batch
from sealtrail.record import GENESIS, RecordKind, SealedRecord, duplicate_columns, hashed_bytes, rejected_columns
from sealtrail.signing import PublicKeys, Signer, head_message

SIGNER = Signer.from_pem(
    Ed25519PrivateKey.from_private_bytes(bytes(range(32))).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
)
KEYS = PublicKeys()
KEYS.add_pem(SIGNER.public_pem)


def columns(n: int, variant: int = 0) -> dict[str, Any]:
    return {
        "event_id": f"00000000-0000-4000-8000-{n:012d}",
        "occurred_at": "2026-11-01T12:00:00.000000Z",
        "category": "auth",
        "action": "auth.login",
        "outcome": "success",
        "actor_id": f"user-{variant}",
        "actor_type": "user",
        "actor_ip": "198.51.100.7" if variant % 2 else None,
        "actor_user_agent": None,
        "resource_type": None,
        "resource_id": None,
        "tenant": "acme",
        "source": "web",
        "request_id": None,
        "before": None,
        "after": None,
        "metadata": '{"v":%d}' % variant,
    }


def sealed_at_of(batch_no: int) -> str:
    return f"2026-11-01T12:00:{batch_no % 60:02d}.{batch_no:06d}Z"


@dataclass(frozen=True)
class Ref:
    chain: str
    seq: int
    sealed_at: str
    src_offset: int
    event_id: str
    hash: bytes
    signed: bool
    duplicate: bool = False


def reference_chain(batches: list[list[Accepted]], window: int) -> tuple[dict[str, list[Ref]], int]:
    """The definition, one chain at a time over the whole input: records per chain, and duplicates dropped."""
    out: dict[str, list[Ref]] = {}
    duplicates = 0
    partitions = sorted({a.partition for batch in batches for a in batch})
    for p in partitions:
        chain = chain_id(p)
        records: list[Ref] = []
        consumed = -1
        prev = GENESIS
        for batch_no, batch in enumerate(batches):
            sealed_at = sealed_at_of(batch_no)
            kept: list[Accepted] = []
            for a in batch:
                if a.partition != p or a.offset <= consumed:
                    continue
                consumed = a.offset
                seen = [r.event_id for r in records if not r.duplicate] + [
                    k.columns["event_id"] for k in kept if "kind" not in k.columns]
                recent = seen[-window:] if window else []
                if a.columns["event_id"] in recent:  # sealed as a duplicate row: every offset is accounted for
                    duplicates += 1
                    a = Accepted(a.partition, a.offset, duplicate_columns(a.columns["event_id"], a.raw))
                kept.append(a)
            for n, a in enumerate(kept):  # the batch's last record names the key under its hash
                signed = n == len(kept) - 1
                seq = len(records) + 1
                key_id = SIGNER.key_id if signed else None
                content = hashed_bytes(chain, seq, sealed_at, a.offset, a.columns, key_id)
                prev = hashlib.sha256(b"\x00" + prev + hashlib.sha256(content).digest()).digest()
                records.append(Ref(chain, seq, sealed_at, a.offset, a.columns["event_id"], prev, signed,
                                   "kind" in a.columns))
        out[chain] = records
    return out, duplicates


def run(batches: list[list[Accepted]], window: int, heads: dict[int, ChainHead] | None = None) -> tuple[dict[int, ChainHead], list[list[SealedRecord]], int]:
    partitions = {a.partition for batch in batches for a in batch}
    heads = heads if heads is not None else {p: ChainHead(chain_id(p), recent=RecentIds(window)) for p in partitions}
    sealed: list[list[SealedRecord]] = []
    duplicates = 0
    for batch_no, batch in enumerate(batches):
        result = seal_batch(heads, batch, SIGNER, sealed_at_of(batch_no))
        sealed.append(result.sealed)
        duplicates += result.duplicates
    return heads, sealed, duplicates


def check_signature(r: SealedRecord) -> None:
    assert r.key_id == SIGNER.key_id
    assert r.signature is not None
    assert KEYS.verify(r.key_id, r.signature, head_message(r.chain, r.seq, r.sealed_at, r.hash))


@st.composite
def inputs(draw: st.DrawFn) -> tuple[list[list[Accepted]], int]:
    partitions = draw(st.lists(st.sampled_from([0, 1, 7, 12]), min_size=1, max_size=3, unique=True))
    next_offset = {p: draw(st.integers(0, 5)) for p in partitions}
    stream: list[Accepted] = []
    for _ in range(draw(st.integers(0, 40))):
        p = draw(st.sampled_from(partitions))
        # a small id pool makes producer retries (same id again) common
        stream.append(Accepted(p, next_offset[p], columns(draw(st.integers(0, 12)), draw(st.integers(0, 3)))))
        next_offset[p] += draw(st.integers(1, 3))  # offsets may have gaps (transaction markers, compaction)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    batches: list[list[Accepted]] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        batch = stream[start:cut]
        if start and draw(st.booleans()):
            # redelivery after a rebalance: some already-sealed input comes again first
            i = draw(st.integers(0, start - 1))
            j = draw(st.integers(i, start))
            batch = stream[i:j] + batch
        batches.append(batch)
        start = cut
    return batches, draw(st.integers(0, 5))


@settings(max_examples=250, deadline=None)
@given(inputs())
def test_seal_batch_matches_reference(case: tuple[list[list[Accepted]], int]) -> None:
    batches, window = case
    want, want_dups = reference_chain(batches, window)
    heads, sealed, dups = run(batches, window)

    assert dups == want_dups
    by_chain: dict[str, list[SealedRecord]] = {}
    for batch_no, records in enumerate(sealed):
        signed_here = [r.chain for r in records if r.signature is not None]
        assert len(signed_here) == len(set(signed_here)), "at most one signed record per chain per batch"
        for r in records:
            assert r.sealed_at == sealed_at_of(batch_no)
            by_chain.setdefault(r.chain, []).append(r)
        for chain in {r.chain for r in records}:
            assert [r for r in records if r.chain == chain][-1].signature is not None, "a batch ends each chain it touches signed"

    for chain, refs in want.items():
        got = by_chain.get(chain, [])
        assert [r.seq for r in got] == list(range(1, len(got) + 1)), "seqs gap-free from 1"
        assert [(r.seq, r.sealed_at, r.src_offset, r.columns["event_id"], r.hash, r.signature is not None) for r in got] == [
            (x.seq, x.sealed_at, x.src_offset, x.event_id, x.hash, x.signed) for x in refs
        ]
        for r in got:
            if r.signature is not None:
                check_signature(r)
            else:
                assert r.key_id is None
        head = heads[int(chain[1:])]
        assert (head.seq, head.hash) == ((got[-1].seq, got[-1].hash) if got else (0, GENESIS))
        assert len(head.recent) <= window
    assert set(by_chain) <= set(want)


# --- vectors ------------------------------------------------------------------------------------


def test_first_record_links_to_genesis() -> None:
    heads = {3: ChainHead("p003")}
    result = seal_batch(heads, [Accepted(3, 17, columns(1))], SIGNER, "S")
    (r,) = result.sealed
    assert (r.chain, r.seq, r.src_offset, r.sealed_at) == ("p003", 1, 17, "S")
    content = hashed_bytes("p003", 1, "S", 17, columns(1), SIGNER.key_id)  # a head: its key id is hashed
    assert r.hash == hashlib.sha256(b"\x00" + bytes(32) + hashlib.sha256(content).digest()).digest()
    assert r.check == int.from_bytes(hashlib.sha256(content).digest()[:4], "big", signed=True)
    check_signature(r)
    assert (heads[3].seq, heads[3].hash, heads[3].src_offset) == (1, r.hash, 17)


def test_only_the_last_record_per_chain_is_signed() -> None:
    heads = {0: ChainHead("p000"), 1: ChainHead("p001")}
    batch = [Accepted(0, 0, columns(1)), Accepted(1, 0, columns(2)), Accepted(0, 1, columns(3)), Accepted(1, 1, columns(4)), Accepted(0, 2, columns(5))]
    sealed = seal_batch(heads, batch, SIGNER, "S").sealed
    assert [(r.chain, r.seq, r.signature is not None) for r in sealed] == [
        ("p000", 1, False), ("p001", 1, False), ("p000", 2, False), ("p001", 2, True), ("p000", 3, True),
    ]


def test_retry_within_window_dropped_and_counted() -> None:
    heads = {0: ChainHead("p000", recent=RecentIds(2))}
    first = seal_batch(heads, [Accepted(0, 0, columns(1)), Accepted(0, 1, columns(2))], SIGNER, "S1")
    assert first.duplicates == 0 and len(first.sealed) == 2
    # producer retry of event 1 (new offset, same id), then a new event
    second = seal_batch(heads, [Accepted(0, 2, columns(1)), Accepted(0, 3, columns(3))], SIGNER, "S2")
    assert second.duplicates == 1
    assert [(r.seq, r.src_offset, r.columns["event_id"], r.kind) for r in second.sealed] == [
        (3, 2, columns(1)["event_id"], RecordKind.DUPLICATE), (4, 3, columns(3)["event_id"], RecordKind.EVENT)]
    assert heads[0].src_offset == 3


def test_retry_within_one_batch_dropped() -> None:
    heads = {0: ChainHead("p000", recent=RecentIds(10))}
    result = seal_batch(heads, [Accepted(0, 0, columns(1)), Accepted(0, 1, columns(1)), Accepted(0, 2, columns(1))], SIGNER, "S")
    assert result.duplicates == 2
    assert [(r.seq, r.kind) for r in result.sealed] == [
        (1, RecordKind.EVENT), (2, RecordKind.DUPLICATE), (3, RecordKind.DUPLICATE)]
    assert result.sealed[-1].signature is not None


def test_retry_outside_window_sealed_again() -> None:
    heads = {0: ChainHead("p000", recent=RecentIds(2))}
    result = seal_batch(heads, [Accepted(0, i, columns(n)) for i, n in enumerate([1, 2, 3, 1])], SIGNER, "S")
    assert result.duplicates == 0
    assert [r.columns["event_id"] for r in result.sealed] == [columns(n)["event_id"] for n in [1, 2, 3, 1]]


def test_duplicate_only_batch_seals_its_accounting_row_signed() -> None:
    heads = {0: ChainHead("p000", recent=RecentIds(5))}
    seal_batch(heads, [Accepted(0, 0, columns(1))], SIGNER, "S1")
    raw = b'{"the": "retried input"}'
    result = seal_batch(heads, [Accepted(0, 1, columns(1), raw)], SIGNER, "S2")
    assert result.duplicates == 1
    [row] = result.sealed
    assert row.kind == RecordKind.DUPLICATE and row.signature is not None
    assert row.columns == duplicate_columns(columns(1)["event_id"], raw)
    assert row.columns["input_sha256"] == hashlib.sha256(raw).hexdigest()
    assert (heads[0].seq, heads[0].src_offset) == (2, 1)


def test_rejected_inputs_are_sealed_in_offset_order_and_never_deduplicated() -> None:
    heads = {0: ChainHead("p000", recent=RecentIds(5))}
    bad = rejected_columns("invalid_json", b"{not json")
    result = seal_batch(heads, [Accepted(0, 0, columns(1)), Accepted(0, 1, bad), Accepted(0, 2, dict(bad)),
                                Accepted(0, 3, columns(2))], SIGNER, "S")
    assert [(r.seq, r.src_offset, r.kind) for r in result.sealed] == [
        (1, 0, RecordKind.EVENT), (2, 1, RecordKind.REJECTED), (3, 2, RecordKind.REJECTED), (4, 3, RecordKind.EVENT)]
    assert "{not json" not in repr(result.sealed[1].columns)  # its size and digest, never its content
    assert all(r.prev == p for r, p in zip(result.sealed[1:], [r.hash for r in result.sealed], strict=False))


def test_replay_after_restart_skipped_and_chain_continues() -> None:
    stream = [Accepted(2, i, columns(i)) for i in range(10)]
    # uninterrupted
    straight, _, _ = run([stream[:6], stream[6:]], window=0)
    # crash after the first batch: a new worker rebuilds the head from the last sealed record
    heads, sealed, _ = run([stream[:6]], window=0)
    last = sealed[0][-1]
    restarted = {2: ChainHead(last.chain, last.seq, last.hash, last.src_offset)}
    redelivered = seal_batch(restarted, stream[:8], SIGNER, sealed_at_of(1))
    assert [r.src_offset for r in redelivered.sealed] == [6, 7]
    assert [r.seq for r in redelivered.sealed] == [7, 8]
    rest = seal_batch(restarted, stream[6:], SIGNER, sealed_at_of(2))
    assert [r.src_offset for r in rest.sealed] == [8, 9]
    assert rest.duplicates == 0
    assert restarted[2].seq == straight[2].seq == 10
    # same records whatever the batching, up to sealed_at; the hash binds sealed_at so they differ
    assert restarted[2].hash != straight[2].hash


def test_replayed_batch_is_a_no_op() -> None:
    heads = {0: ChainHead("p000")}
    batch = [Accepted(0, i, columns(i)) for i in range(3)]
    seal_batch(heads, batch, SIGNER, "S1")
    before = (heads[0].seq, heads[0].hash, heads[0].src_offset)
    again = seal_batch(heads, batch, SIGNER, "S2")
    assert again.sealed == [] and again.duplicates == 0
    assert (heads[0].seq, heads[0].hash, heads[0].src_offset) == before


def test_empty_batch() -> None:
    result = seal_batch({}, [], SIGNER, "S")
    assert result.sealed == [] and result.duplicates == 0


# --- RecentIds ----------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 8), st.lists(st.integers(0, 20), max_size=50))
def test_recent_ids_is_the_last_capacity_distinct_additions(capacity: int, ids: list[int]) -> None:
    recent = RecentIds(capacity)
    for i in ids:
        if str(i) not in recent:  # seal_batch only adds ids it did not find
            recent.add(str(i))
    assert len(recent) <= capacity
    # reference: replay the same rule with a list
    window: list[str] = []
    for i in ids:
        if str(i) not in window and capacity > 0:
            window.append(str(i))
            window = window[-capacity:]
    assert len(recent) == len(window)
    assert all(x in recent for x in window)
    assert not any(str(i) in recent for i in set(ids) if str(i) not in window)


def test_recent_ids_evicts_oldest() -> None:
    recent = RecentIds(3)
    for x in "abcd":
        recent.add(x)
    assert len(recent) == 3
    assert "a" not in recent
    assert all(x in recent for x in "bcd")


def test_recent_ids_zero_capacity_remembers_nothing() -> None:
    recent = RecentIds(0)
    recent.add("a")
    assert len(recent) == 0 and "a" not in recent


@pytest.mark.parametrize(("partition", "chain"), [(0, "p000"), (7, "p007"), (123, "p123"), (1000, "p1000")])
def test_chain_id(partition: int, chain: str) -> None:
    assert chain_id(partition) == chain
