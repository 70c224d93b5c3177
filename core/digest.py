"""Digest objects: the sink's signed account of what it wrote, in the style of CloudTrail's digest files.

Object Lock stops no one from adding a newer version of a key, hiding a key
behind a delete marker, or putting a new object under the prefix; and a chain
whose newest objects are gone still verifies up to where it stops. So after
every flush the sink writes, also locked, one digest per chain listing each
data object it wrote (key, version id, SHA-256, sequence range, and the
RFC 6962 Merkle root over its rows' record hashes, which lets one record be
proven against the digest without the rest of the object), the chain's
signed head, and the SHA-256 of the chain's previous digest, signed with an
Ed25519 key whose public half is published under keys/. A verifier can then
tell a removed, replaced, hidden or injected object, and a truncated tail.

The signature covers a domain tag and the SHA-256 of the RFC 8785 bytes of the
digest without its "signature" field (signed_message); the stored object is
the document with the field added.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from sealtrail.encoding import canonical
from sealtrail.layout import digest_key
from sealtrail.record import SealedRecord
from sealtrail.signing import Signer

FORMAT = "sealtrail.digest.v1"


@dataclass(frozen=True, slots=True)
class ListedObject:
    key: str
    version_id: str | None
    sha256: str | None  # base64, as S3's ChecksumSHA256
    first: int
    last: int
    size: int
    merkle_root: str | None = None  # hex RFC 6962 root over the rows' record hashes in seq order
    input_first: int | None = None  # the audit.events offsets its rows account for (record format v3)
    input_last: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The digest entry; merkle_root and the input range only when known, so older digests keep their bytes."""
        entry: dict[str, Any] = {"key": self.key, "version_id": self.version_id, "sha256": self.sha256,
                                 "first": self.first, "last": self.last, "size": self.size}
        if self.merkle_root is not None:
            entry["merkle_root"] = self.merkle_root
        if self.input_first is not None and self.input_last is not None:
            entry["input"] = {"first": self.input_first, "last": self.input_last}
        return entry


@dataclass(frozen=True, slots=True)
class DigestLink:
    """The previous digest of a chain, as the next one names it."""

    key: str
    sha256: str  # hex of the stored digest bytes
    last: int


def head_of(record: SealedRecord) -> dict[str, Any]:
    if record.signature is None or record.key_id is None:
        raise ValueError(f"digest head {record.chain}/{record.seq} is not a signed record")
    return {"seq": record.seq, "hash": record.hash.hex(), "sealed_at": record.sealed_at,
            "src_offset": record.src_offset, "key_id": record.key_id, "signature": record.signature.hex()}


DIGEST_DOMAIN = b"sealtrail.digest.v1|"


def signed_bytes(doc: dict[str, Any]) -> bytes:
    """The document without its signature, canonical."""
    return canonical({k: v for k, v in doc.items() if k != "signature"})


def signed_message(doc: dict[str, Any]) -> bytes:
    """What the digest signature covers: a domain tag and the SHA-256 of signed_bytes.

    Fixed-size, so a digest listing many objects can still be signed by a KMS
    key (KMS signs messages of at most 4 KiB).
    """
    return DIGEST_DOMAIN + hashlib.sha256(signed_bytes(doc)).digest()


def build_digest(
    prefix: str,
    chain: str,
    objects: list[ListedObject],
    head: dict[str, Any],
    previous: DigestLink | None,
    signer: Signer,
    created_at: str,
) -> tuple[str, bytes]:
    """(key, body) of the digest for these objects; a pure function of its inputs."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "chain": chain,
        "created_at": created_at,
        "objects": [o.as_dict() for o in objects],
        "head": head,
        "previous": {"key": previous.key, "sha256": previous.sha256, "last": previous.last} if previous else None,
        "key_id": signer.key_id,
    }
    doc["signature"] = signer.sign(signed_message(doc)).hex()
    return digest_key(prefix, chain, head["seq"]), orjson.dumps(doc)
