"""Checking the sink's digests against each other and against the data objects.

The data chains alone cannot show an object that is gone from the tail, or
one that was never the sink's; the digests can. Per chain, every digest must
carry a valid signature, link to the one before it (by key and SHA-256, from
the chain's first digest on), and list objects that are exactly the versions
verified, with the same SHA-256 and, where the digest lists one, the same
Merkle root over the rows' record hashes (the root inclusion proofs are
checked against; digests written before roots were listed have none, which is
not a finding). Every data object must be listed by some
digest, except objects after the last digest that continue the chain (a flush
whose digest is still being written). The newest digest's head must not lie
beyond the data, or the tail was truncated.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from sealtrail.digest import FORMAT, signed_message
from sealtrail.errors import InvalidEventError, KeyNotFoundError
from sealtrail.evidence.findings import Finding, FindingKind
from sealtrail.signing import PublicKeys, head_message

K = FindingKind


@dataclass(frozen=True, slots=True)
class StoredDigest:
    key: str
    version_id: str | None
    last: int  # from the key name
    body: bytes


@dataclass(frozen=True, slots=True)
class VerifiedObject:
    """A data object as verify read it: the version it verified, that version's SHA-256 (base64),
    and the RFC 6962 root over its recomputed record hashes (None when the rows could not be read)."""

    key: str
    version_id: str | None
    sha256: str
    first: int
    last: int
    merkle_root: bytes | None = None
    signers: tuple[tuple[int, str, str], ...] = ()  # (seq, key id, sealed_at) where its heads' key changes


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def shape_problem(doc: dict[str, Any]) -> str | None:
    """Which of a digest's fields the checks read has the wrong JSON type, or None (a digest is anyone's
    text until its signature is checked, and that check reads these fields first)."""
    head, objects, previous = doc.get("head"), doc.get("objects", []), doc.get("previous")
    if not isinstance(head, dict) or not _int(head.get("seq")):
        return "head is not an object with an integer seq"
    if not isinstance(previous, (dict, type(None))):
        return "previous is not an object"
    if not isinstance(objects, list):
        return "objects is not a list"
    for entry in objects:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) \
                or any(name in entry and not _int(entry[name]) for name in ("first", "last")) \
                or any(not isinstance(entry.get(name), (str, type(None))) for name in ("version_id", "sha256",
                                                                                       "merkle_root")):
            return "objects lists an entry that is not a key with integer first and last"
    return None


def _parse(d: StoredDigest, chain: str) -> tuple[dict[str, Any] | None, Finding | None]:
    try:
        doc = orjson.loads(d.body)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("chain") != chain:
            raise ValueError("not a digest of this chain")
        problem = shape_problem(doc)
        if problem is not None:
            raise ValueError(problem)
        if doc["head"]["seq"] != d.last:
            raise ValueError(f"names head seq {doc['head']['seq']} but its key says {d.last}")
        return doc, None
    except (ValueError, KeyError, TypeError) as e:
        return None, Finding(K.DIGEST_ALTERED, d.key, d.version_id, chain, d.last, f"unreadable digest: {e}")


def digest_signature_problem(doc: dict[str, Any], keys: PublicKeys) -> tuple[FindingKind, str] | None:
    """Why the sink's signature over a digest does not hold (None: it does); proof/check.py asks the same."""
    try:
        ok = keys.verify(doc["key_id"], bytes.fromhex(doc["signature"]), signed_message(doc))
    except KeyNotFoundError as e:
        return K.UNKNOWN_KEY, f"digest signed with unknown key {e.key_id}"
    except (KeyError, TypeError, ValueError, InvalidEventError) as e:  # InvalidEventError: not canonicalisable
        return K.DIGEST_ALTERED, f"digest signature missing or malformed: {e}"
    if not ok:
        return K.DIGEST_ALTERED, "digest signature does not verify: its content was changed"
    return None


def head_signature_problem(doc: dict[str, Any], keys: PublicKeys) -> tuple[FindingKind, str] | None:
    """Why the stream's signature over the chain head a digest carries does not hold (None: it does)."""
    try:
        head = doc["head"]
        message = head_message(doc["chain"], head["seq"], head["sealed_at"], bytes.fromhex(head["hash"]))
        head_ok = keys.verify(head["key_id"], bytes.fromhex(head["signature"]), message)
    except KeyNotFoundError as e:
        return K.UNKNOWN_KEY, f"digest head signed with unknown key {e.key_id}"
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        return K.DIGEST_ALTERED, f"digest head malformed: {e}"
    if not head_ok:
        return K.BAD_SIGNATURE, f"the chain head seq {head['seq']} in the digest does not verify"
    return None


def _signature_problem(doc: dict[str, Any], keys: PublicKeys) -> tuple[FindingKind, str] | None:
    return digest_signature_problem(doc, keys) or head_signature_problem(doc, keys)


def check_digest_chain(
    chain: str,
    digests: list[StoredDigest],
    objects: list[VerifiedObject],
    head_seq: int,
    head_hash: str | None,
    keys: PublicKeys,
    window: ChainWindow | None = None,
) -> tuple[list[Finding], dict[str, Any]]:
    """Findings for one chain's digests against the data objects verify read; plus a summary.

    In a window, digests and listed objects outside it are not checked, the
    first digest's link to its predecessor is taken as it is, and a missing
    tail is not truncation. The window's first object is anchored on the
    signed checkpoint just before it: the digest whose head is seq start-1
    (digests outlive the data they list, so it is there after lifecycle
    expiry) must sign the very hash the object starts from.
    """
    window = window or ChainWindow()
    start_seq, end_seq = window.start_seq, window.end_seq
    findings: list[Finding] = []
    by_key = {o.key: o for o in objects}
    listed: set[str] = set()
    previous: StoredDigest | None = None
    covered = 0
    last_doc: dict[str, Any] | None = None
    first_in_window = True
    anchored_on: str | None = None
    for d in sorted(digests, key=lambda d: d.last):
        if d.last < start_seq:
            if d.last == start_seq - 1 and window.start_hash is not None:
                anchored_on = _anchor_problem(d, chain, keys, window.start_hash, findings)
            continue
        if end_seq is not None and _first_listed(d) > end_seq:
            continue
        doc, problem = _parse(d, chain)
        if problem is not None:
            findings.append(problem)
            previous = d
            continue
        assert doc is not None
        sig = _signature_problem(doc, keys)
        if sig is not None:
            findings.append(Finding(sig[0], d.key, d.version_id, chain, d.last, sig[1]))
        # a window's first digest links to one before the window: taken as it is
        link = _link_finding(d, doc, previous, chain, trust_link=start_seq > 1 and first_in_window)
        first_in_window = False
        if link is not None:
            findings.append(link)
        findings += _listing_findings(d, doc, by_key, listed, chain, start_seq)
        covered = max(covered, d.last)
        previous, last_doc = d, doc
    findings += _undigested(objects, listed, covered, chain)
    if last_doc is not None and end_seq is None:
        findings += _tail_findings(last_doc, previous, head_seq, head_hash, chain)
    pending = sum(1 for o in objects if o.key not in listed and o.last > covered)
    summary: dict[str, Any] = {"digests": len(digests), "digested_seq": covered, "undigested_objects": pending}
    if start_seq > 1:
        summary["anchored_on"] = anchored_on
    return findings, summary


def _link_finding(d: StoredDigest, doc: dict[str, Any], previous: StoredDigest | None, chain: str,
                  trust_link: bool) -> Finding | None:
    """Whether digest d links to the digest before it (by key and SHA-256); trust_link takes its link as it is."""
    link = doc.get("previous")
    got = None if link is None else (link.get("key"), link.get("sha256"))
    want = None if previous is None else (previous.key, hashlib.sha256(previous.body).hexdigest())
    if trust_link or got == want:
        return None
    if want is None:
        detail = f"links to {got[0] if got else None}, which is not in the bucket: a digest was removed"
    elif got is not None and got[0] == want[0]:
        detail = f"links to {want[0]} by a different SHA-256: that digest was altered"
    else:
        detail = f"links to {got[0] if got else 'nothing'} instead of {want[0]}: a digest was removed or injected"
    return Finding(K.DIGEST_ALTERED, d.key, d.version_id, chain, d.last, detail)


def _listing_findings(d: StoredDigest, doc: dict[str, Any], by_key: dict[str, VerifiedObject], listed: set[str],
                      chain: str, start_seq: int) -> list[Finding]:
    """The objects digest d lists against the versions verified (adds their keys to listed)."""
    findings: list[Finding] = []
    for entry in doc.get("objects", []):
        key = entry.get("key")
        listed.add(key)
        if isinstance(entry.get("last"), int) and entry["last"] < start_seq:
            continue
        obj = by_key.get(key)
        if obj is None:
            findings.append(Finding(K.OBJECT_DELETED, key, entry.get("version_id"), chain, entry.get("first"),
                                    f"listed by digest {d.key} but not in the bucket (or hidden)"))
            continue
        if entry.get("version_id") and obj.version_id and entry["version_id"] != obj.version_id:
            findings.append(Finding(K.NEWER_VERSION, key, obj.version_id, chain, None,
                                    f"digest {d.key} lists version {entry['version_id']}; the sink's "
                                    "version is gone and another stands in its place"))
        elif entry.get("sha256") != obj.sha256:
            findings.append(Finding(K.CHECKSUM_MISMATCH, key, obj.version_id, chain, None,
                                    f"SHA-256 differs from the one digest {d.key} recorded"))
        elif (listed_root := entry.get("merkle_root")) is not None and obj.merkle_root is not None \
                and listed_root != obj.merkle_root.hex():
            findings.append(Finding(K.CELL_CHANGED, key, obj.version_id, chain, obj.first,
                                    f"the Merkle root of the rows' hashes differs from the one digest {d.key} "
                                    "recorded: inclusion proofs against that digest would not hold"))
    return findings


def _undigested(objects: list[VerifiedObject], listed: set[str], covered: int, chain: str) -> list[Finding]:
    """Objects no digest lists, up to the last digested seq (after it: a flush whose digest is still coming)."""
    return [Finding(K.UNDIGESTED_OBJECT, obj.key, obj.version_id, chain, obj.first,
                    "no digest lists this object: it was not written by the sink")
            for obj in objects if obj.key not in listed and obj.last <= covered]


def _tail_findings(last_doc: dict[str, Any], previous: StoredDigest | None, head_seq: int, head_hash: str | None,
                   chain: str) -> list[Finding]:
    """The newest digest's head against the data's: beyond it is a truncated tail, at it the hashes must agree."""
    head = last_doc["head"]
    where = previous.key if previous else None
    if head["seq"] > head_seq:
        return [Finding(K.TRUNCATED_TAIL, where, None, chain, head_seq + 1,
                        f"the latest digest covers the chain up to seq {head['seq']}, the bucket "
                        f"holds records only up to seq {head_seq}")]
    if head["seq"] == head_seq and head_hash is not None and head["hash"] != head_hash:
        return [Finding(K.CELL_CHANGED, where, None, chain, head_seq,
                        "the chain's last hash differs from the head its latest digest signed")]
    return []


@dataclass(frozen=True, slots=True)
class ChainWindow:
    """The part of a chain being verified: seqs start_seq..end_seq (None: to the end)."""

    start_seq: int = 1
    end_seq: int | None = None
    start_hash: bytes | None = None  # what the window's first object links to


def _first_listed(d: StoredDigest) -> int:
    """The first seq a digest lists (its key names only the last); unreadable digests sort as 0."""
    try:
        return min(int(o["first"]) for o in orjson.loads(d.body)["objects"])
    except (ValueError, KeyError, TypeError):
        return 0


def _anchor_problem(d: StoredDigest, chain: str, keys: PublicKeys, start_hash: bytes,
                    findings: list[Finding]) -> str | None:
    """Check the window's start against the signed checkpoint in digest d; its key if it anchors the window."""
    doc, problem = _parse(d, chain)
    if problem is not None:
        findings.append(problem)
        return None
    assert doc is not None
    sig = _signature_problem(doc, keys)
    if sig is not None:
        findings.append(Finding(sig[0], d.key, d.version_id, chain, d.last, sig[1]))
        return None
    if doc["head"]["hash"] != start_hash.hex():
        findings.append(Finding(K.CELL_CHANGED, d.key, d.version_id, chain, d.last + 1,
                                f"the window's first object does not continue from the checkpoint at seq "
                                f"{d.last} that this digest signed: records between them were changed or removed"))
        return None
    return d.key
