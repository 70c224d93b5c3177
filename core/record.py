"""The sealed record: one row of the trail, as Kafka carries it and Parquet stores it.

A sealed record is the event flattened into Athena-friendly columns plus its
place in a chain. Its hash covers every stored column but the seal columns
(the chain id comes from the object's path, which is what puts it under the
hash there), so a verifier recomputes the hash from exactly what Athena reads:
nothing stored escapes it.

Only what verification cannot recompute is stored per row. The 32-byte chain
hash is recomputable from the content, so Parquet keeps it only on signed
heads (the anchors signatures are checked against); every row instead keeps a
4-byte ``row_check``, the first bytes of SHA-256 of its own content, which is
not chained: it names each changed row on its own, where a chained value
would only show the first. It proves nothing by itself (anyone can recompute
it); the signed heads do.
Nested values (before, after, metadata) are stored as their RFC 8785 text and
spliced into the hashed bytes verbatim, which keeps verification free of a
parse-and-reserialise step and makes any re-formatting of them visible.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from sealtrail.columns import COLUMNS, Group, names
from sealtrail.merkle import LEAF_PREFIX

GENESIS = bytes(32)

EVENT_COLUMNS = names(Group.EVENT, Group.OCSF)  # the OCSF ones derived from category, action and outcome
OCSF_COLUMNS = names(Group.OCSF)
# Input accounting (record format v3): every input offset of a chain's partition is one record of the
# chain. A sealed event leaves these null; a rejected input or a repeated event id names what it was,
# never the input's content (no secret a producer let slip is locked away for years).
ACCOUNT_COLUMNS = names(Group.ACCOUNT)
ROW_COLUMNS = (*EVENT_COLUMNS, *ACCOUNT_COLUMNS)  # what hashed_bytes covers besides the chain columns
JSON_COLUMNS = frozenset(c.name for c in COLUMNS if c.json)
CHAIN_COLUMNS = names(Group.CHAIN)
SEAL_COLUMNS = names(Group.SEAL)
ALL_COLUMNS = ("chain", *CHAIN_COLUMNS, *ROW_COLUMNS, *SEAL_COLUMNS)


class RecordKind(StrEnum):
    """What an input offset became. Stored in the kind column; null there means EVENT, so event rows
    hash exactly as they did in record format v2."""

    EVENT = "event"
    REJECTED = "rejected"  # not a valid event: the reason, its size and SHA-256 are kept, not the bytes
    DUPLICATE = "duplicate"  # an event id the chain already sealed: event_id names the one it repeats


def kind_of(columns: dict[str, Any]) -> RecordKind:
    kind = columns.get("kind")
    return RecordKind(kind) if kind else RecordKind.EVENT


def rejected_columns(reason: str, raw: bytes | None) -> dict[str, Any]:
    """The columns of a rejected input: why, how big, and the SHA-256 a producer can match its bytes to."""
    raw = raw or b""
    return {"kind": RecordKind.REJECTED.value, "reason": reason, "input_bytes": len(raw),
            "input_sha256": hashlib.sha256(raw).hexdigest()}


def duplicate_columns(event_id: str, raw: bytes | None) -> dict[str, Any]:
    """The columns of an input that repeats an event id the chain sealed before."""
    raw = raw or b""
    return {"kind": RecordKind.DUPLICATE.value, "event_id": event_id, "input_bytes": len(raw),
            "input_sha256": hashlib.sha256(raw).hexdigest()}


def hashed_bytes(
    chain: str, seq: int, sealed_at: str, src_offset: int, columns: dict[str, Any], key_id: str | None = None
) -> bytes:
    """RFC 8785 bytes of the record's content: every column but the signature, nulls omitted.

    The accounting columns (ACCOUNT_COLUMNS) are null on sealed events, so an
    event's content is the same in record formats v2 and v3.

    ``key_id`` is set on the records that end a sealed batch (the signed
    heads): hashing it makes a stripped signature visible, since the record
    then names a key but carries nothing to check. Keys are fixed ASCII names
    and values are strings or integers, so orjson's sorted output is the
    canonical form; the nested JSON columns are already canonical text and go
    in as fragments.
    """
    doc: dict[str, Any] = {"chain": chain, "seq": seq, "sealed_at": sealed_at, "src_offset": src_offset}
    if key_id is not None:
        doc["key_id"] = key_id
    get = columns.get  # the stream runs this once per event: no per-column membership test
    for name in ROW_COLUMNS:
        value = get(name)
        if value is not None:
            doc[name] = value
    for name in JSON_COLUMNS:
        if name in doc:
            doc[name] = orjson.Fragment(doc[name])
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


RECORD_HASH_PREFIX = LEAF_PREFIX  # so a record hash is its own leaf hash in the object's Merkle tree


def content_digest(content: bytes) -> bytes:
    """SHA-256 of a record's content: what row_check and the chain link are both made from."""
    return hashlib.sha256(content).digest()


def row_check_of(digest: bytes) -> int:
    """The first four bytes of the content digest, as a signed big-endian int32 (an Athena INT)."""
    return int.from_bytes(digest[:4], "big", signed=True)


def row_check(content: bytes) -> int:
    return row_check_of(content_digest(content))


def chain_hash(prev: bytes, digest: bytes) -> bytes:
    """hash_n = SHA-256(0x00 || hash_{n-1} || SHA-256(content_n)); the first record links to GENESIS.

    The content is hashed once, and that digest serves row_check and the link
    alike. The 0x00 prefix makes hash_n, as it stands, the RFC 6962 leaf hash
    of the 64-byte leaf (hash_{n-1} || SHA-256(content_n)), so an object's
    Merkle tree is built straight on its record hashes: no hash per row for
    the leaves, and any RFC 6962 verifier agrees on the root. Inner nodes are
    prefixed 0x01, so a record hash never passes for a node.
    """
    return hashlib.sha256(RECORD_HASH_PREFIX + prev + digest).digest()


def record_hash(prev: bytes, content: bytes) -> bytes:
    """The hash of a record with this content that links to prev (chain_hash of its content digest)."""
    return chain_hash(prev, content_digest(content))


@dataclass(slots=True)
class SealedRecord:
    """One sealed row. Not frozen: the stream builds one per event, a frozen dataclass's __init__
    costs four times as much, and nothing changes a record once sealed."""

    chain: str
    seq: int
    sealed_at: str
    src_offset: int
    columns: dict[str, Any]
    hash: bytes
    key_id: str | None = None
    signature: bytes | None = None
    check: int | None = None  # row_check(content); None: computed when written
    prev: bytes | None = None  # the hash this record links to: on the wire only, so the sink and head
    # recovery can follow hash links (a zombie writer's record does not link to the chain it lost)

    def content(self) -> bytes:
        return hashed_bytes(self.chain, self.seq, self.sealed_at, self.src_offset, self.columns, self.key_id)

    def check_value(self) -> int:
        return self.check if self.check is not None else row_check(self.content())

    @property
    def partition(self) -> int:
        """The audit.chained partition of this chain (chain pNNN lives in partition NNN)."""
        return int(self.chain[1:])

    @property
    def kind(self) -> RecordKind:
        return kind_of(self.columns)

    def to_wire(self) -> bytes:
        """JSON for audit.chained (binary fields as hex; accounting columns only where set)."""
        return orjson.dumps(
            {
                "chain": self.chain,
                "seq": self.seq,
                "sealed_at": self.sealed_at,
                "src_offset": self.src_offset,
                **self.columns,
                "hash": self.hash.hex(),
                "key_id": self.key_id,
                "signature": self.signature.hex() if self.signature else None,
                "row_check": self.check,
                "prev": self.prev.hex() if self.prev is not None else None,
            }
        )

    @classmethod
    def from_wire(cls, raw: bytes) -> SealedRecord:
        d = orjson.loads(raw)
        sig = d.get("signature")
        prev = d.get("prev")
        columns = {name: d.get(name) for name in EVENT_COLUMNS}
        for name in ACCOUNT_COLUMNS:  # only where set, as the stream built them
            if d.get(name) is not None:
                columns[name] = d[name]
        return cls(
            chain=d["chain"],
            seq=d["seq"],
            sealed_at=d["sealed_at"],
            src_offset=d["src_offset"],
            columns=columns,
            hash=bytes.fromhex(d["hash"]),
            key_id=d.get("key_id"),
            signature=bytes.fromhex(sig) if sig else None,
            check=d.get("row_check"),
            prev=bytes.fromhex(prev) if prev else None,
        )
