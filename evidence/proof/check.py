"""Checking an inclusion proof with the public keys alone: pure, so any verifier can do what it does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from sealtrail import merkle
from sealtrail.digest import FORMAT as DIGEST_FORMAT
from sealtrail.errors import ConfigError, InvalidEventError
from sealtrail.evidence.checks.digests import digest_signature_problem, head_signature_problem
from sealtrail.layout import parse_data_key
from sealtrail.objects import REQUIRED_FOR_EVENTS, SCHEMA
from sealtrail.printable import printable
from sealtrail.record import EVENT_COLUMNS, JSON_COLUMNS, hashed_bytes, record_hash
from sealtrail.signing import PublicKeys

FORMAT = "sealtrail.proof.v2"  # v2: the record hash rule of record format v2, which v3 (sealtrail.objects.RECORD_FORMAT) keeps
RECORD_FIELDS = frozenset({"seq", "sealed_at", "src_offset", "key_id", *EVENT_COLUMNS})
# Each field's type in a proof: its Parquet column's (integers as int, timestamps as their hashed text).
FIELD_TYPES = {f.name: int if pa.types.is_integer(f.type) else str for f in SCHEMA if f.name in RECORD_FIELDS}
REQUIRED_FIELDS = REQUIRED_FOR_EVENTS & RECORD_FIELDS  # what every sealed event has


# ---------------------------------------------------------------------------
# Checking (pure: the proof and the public keys, nothing else)


@dataclass(frozen=True, slots=True)
class ProofCheck:
    name: str
    ok: bool
    detail: str


@dataclass
class ProofResult:
    event_id: str | None
    chain: str | None
    seq: int | None
    checks: list[ProofCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(ProofCheck(name, ok, detail))

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "event_id": self.event_id, "chain": self.chain, "seq": self.seq,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks]}

    def text(self) -> str:
        """The result for a terminal: what the proof says shown through printable (its event id, key ids
        and values are whatever its sender wrote), check names and the verdict from a fixed vocabulary."""
        lines = [f"event {printable(self.event_id)}, chain {printable(self.chain)} seq {self.seq}"]
        lines += [f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {printable(c.detail)}" for c in self.checks]
        lines.append("proof valid" if self.ok else "proof INVALID")
        return "\n".join(lines) + "\n"


_SHAPE: dict[str, type | tuple[type, ...]] = {
    "event_id": str, "chain": str, "object": dict, "record": dict, "prev_hash": str,
    "leaf_index": int, "tree_size": int, "path": list, "digest": dict,
}
# The digest's fields the checks read, where present (a missing one fails its check; a wrong type is no digest).
_DIGEST_SHAPE: dict[str, type | tuple[type, ...]] = {
    "format": str, "chain": str, "created_at": str, "objects": list, "head": dict, "previous": (dict, type(None)),
    "key_id": str, "signature": str,
}


def proof_shape_problem(doc: Any) -> str | None:
    """Why a document is not a sealtrail proof at all (None: it is one, valid or not)."""
    if not isinstance(doc, dict):
        return "not a JSON object"
    if doc.get("format") != FORMAT:
        return f"format is {doc.get('format')!r}, not {FORMAT!r}"
    missing = [name for name in _SHAPE if name not in doc]
    if missing:
        return f"missing {', '.join(missing)}"
    wrong = [name for name, kind in _SHAPE.items()
             if not isinstance(doc[name], kind) or (kind is int and isinstance(doc[name], bool))]
    digest = doc["digest"] if isinstance(doc["digest"], dict) else {}
    wrong += [f"digest.{name}" for name, kind in _DIGEST_SHAPE.items()
              if name in digest and not isinstance(digest[name], kind)]
    if wrong:
        return f"wrong type for {', '.join(wrong)}"
    return None


def _hex(value: Any, size: int | None = 32) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not hex text")
    raw = bytes.fromhex(value)
    if size is not None and len(raw) != size:
        raise ValueError(f"{value!r} is not {size} bytes")
    return raw


def _check_signatures(result: ProofResult, digest: dict[str, Any], keys: PublicKeys) -> None:
    """The digest's and its checkpoint's signatures, each checked as verify checks them (checks/digests.py)."""
    problem = digest_signature_problem(digest, keys)
    result.add("digest_signature", problem is None,
               f"signed with {digest['key_id']}" if problem is None else problem[1])
    problem = head_signature_problem(digest, keys)
    result.add("checkpoint_signature", problem is None,
               f"seq {digest['head']['seq']} signed with {digest['head']['key_id']}" if problem is None else problem[1])


def _listed_entry(result: ProofResult, doc: dict[str, Any], digest: dict[str, Any]) -> dict[str, Any] | None:
    """The digest's entry for the proof's object, after checking that they agree."""
    chain, obj = doc["chain"], doc["object"]
    if digest.get("format") != DIGEST_FORMAT or digest.get("chain") != chain:
        result.add("digest_chain", False, f"the digest is a {digest.get('format')!r} of chain "
                                          f"{digest.get('chain')!r}, not a {DIGEST_FORMAT} of chain {chain}")
    else:
        result.add("digest_chain", True, f"a {DIGEST_FORMAT} of chain {chain}")
    entry = next((e for e in digest.get("objects") or [] if isinstance(e, dict) and e.get("key") == obj.get("key")),
                 None)
    parsed = parse_data_key(obj.get("key")) if isinstance(obj.get("key"), str) else None
    if entry is None:
        result.add("object_listed", False, f"the digest does not list {obj.get('key')!r}")
        return None
    problems = [name for name in ("version_id", "first", "last") if entry.get(name) != obj.get(name)]
    if parsed is None or parsed.chain != chain or (parsed.first, parsed.last) != (entry.get("first"),
                                                                                  entry.get("last")):
        problems.append("key")
    if not isinstance(entry.get("merkle_root"), str):
        problems.append("merkle_root (none listed)")
    head_seq = (digest.get("head") or {}).get("seq")
    if not isinstance(head_seq, int) or not isinstance(entry.get("last"), int) or entry["last"] > head_seq:
        problems.append("head (the checkpoint does not cover the object)")
    if problems:
        result.add("object_listed", False, f"the digest's entry for {obj.get('key')} differs: {', '.join(problems)}")
        return None
    result.add("object_listed", True, f"{obj['key']} (seqs {entry['first']}..{entry['last']}) is listed, "
                                      f"covered by the checkpoint at seq {head_seq}")
    return entry


def record_problem(record: dict[str, Any]) -> str | None:
    """Why a proof's record is not a sealed event's record as its hash covers it, or None."""
    from sealtrail.evidence.checks.rows import json_text_problem

    unknown = sorted(str(name) for name in set(record) - RECORD_FIELDS)
    if unknown:
        return f"fields that no record hash covers: {', '.join(unknown)}"
    missing = sorted(name for name in REQUIRED_FIELDS if record.get(name) is None)
    if missing:
        return f"fields every sealed event has are missing: {', '.join(missing)}"
    wrong = sorted(name for name, value in record.items() if value is not None  # null: absent, as hashed
                   and (not isinstance(value, FIELD_TYPES[name]) or isinstance(value, bool)))
    if wrong:
        return "fields without their column's type: " + ", ".join(
            f"{name} is {type(record[name]).__name__}, not {FIELD_TYPES[name].__name__}" for name in wrong)
    for name in sorted(JSON_COLUMNS & set(record)):
        why = None if record[name] is None else json_text_problem(record[name], strict=True)
        if why is not None:
            return f"{name} {why}"
    return None


def check_proof(doc: Any, public_key_pems: list[bytes] | tuple[bytes, ...]) -> ProofResult:
    """Check a proof with these public keys (PEM) alone; every check is listed, passed or failed.

    Raises ConfigError when doc is not a proof at all or no usable key is given
    (a usage error, not a failed proof), nested too deeply to check included.
    """
    try:
        return _check_proof(doc, public_key_pems)
    except (RecursionError, TypeError, AttributeError, InvalidEventError) as e:  # beyond what the shape checks
        raise ConfigError("proof", f"not a {FORMAT} document: {type(e).__name__}: {str(e)[:200]}") from e


def _check_proof(doc: Any, public_key_pems: list[bytes] | tuple[bytes, ...]) -> ProofResult:
    problem = proof_shape_problem(doc)
    if problem is not None:
        raise ConfigError("proof", problem)
    if not public_key_pems:
        raise ConfigError("--key", "at least one public key (PEM) is needed to check a proof")
    keys = PublicKeys()
    for pem in public_key_pems:
        try:
            keys.add_pem(pem)
        except (ValueError, TypeError) as e:
            raise ConfigError("--key", f"not an Ed25519 public key (PEM): {e}") from e
    record, chain = doc["record"], doc["chain"]
    seq = record.get("seq") if isinstance(record.get("seq"), int) else None
    result = ProofResult(doc["event_id"], chain, seq)
    digest = doc["digest"]
    _check_signatures(result, digest, keys)
    entry = _listed_entry(result, doc, digest)

    problem = record_problem(record)
    if problem is not None:
        result.add("record_fields", False, problem)
    elif record.get("event_id") != doc["event_id"]:
        result.add("record_fields", False, f"the record's event_id is {record.get('event_id')!r}, "
                                           f"not {doc['event_id']!r}")
    else:
        result.add("record_fields", True, "every field is under the record hash, with its column's type; "
                                          f"{', '.join(sorted(JSON_COLUMNS & set(record)))} canonical JSON")

    first, last = doc["object"].get("first"), doc["object"].get("last")
    if entry is not None:
        first, last = entry["first"], entry["last"]
    if seq is None or not isinstance(first, int) or not isinstance(last, int) or not first <= seq <= last:
        result.add("position", False, f"record seq {record.get('seq')!r} is not within the object's seqs "
                                      f"{first}..{last}")
    elif doc["leaf_index"] != seq - first or doc["tree_size"] != last - first + 1:
        result.add("position", False, f"leaf {doc['leaf_index']} of {doc['tree_size']} is not seq {seq} of "
                                      f"the object's seqs {first}..{last}")
    else:
        result.add("position", True, f"seq {seq} is leaf {seq - first} of {last - first + 1}")

    try:
        content = hashed_bytes(chain, record["seq"], record["sealed_at"], record["src_offset"],
                               {name: record.get(name) for name in EVENT_COLUMNS}, record.get("key_id"))
        leaf = record_hash(_hex(doc["prev_hash"]), content)  # the record hash is its RFC 6962 leaf hash
        path = [_hex(p) for p in doc["path"]]
        got = merkle.root_from_leaf_hash(leaf, doc["leaf_index"], doc["tree_size"], path)
        if entry is None:
            ok, detail = False, "no listed Merkle root to compare with"
        elif got.hex() == entry["merkle_root"]:
            ok, detail = True, f"the record hash {leaf.hex()} leads to the listed root {entry['merkle_root']}"
        else:
            ok, detail = False, (f"the record and path lead to root {got.hex()}, the digest lists "
                                 f"{entry['merkle_root']}: the record, prev_hash or path was changed")
    except (KeyError, TypeError, ValueError, orjson.JSONEncodeError) as e:
        ok, detail = False, f"cannot recompute the record hash and root: {e}"
    result.add("inclusion", ok, detail)
    return result
