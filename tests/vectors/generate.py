"""Writes the trail's format test vectors: tests/vectors/<kind>/<case>.json, for any verifier in any language.

    .venv/bin/python tests/vectors/generate.py [--out FOLDER]

Every expected value is computed by the product's own functions (sealtrail.record, sealtrail.chain,
sealtrail.signing, sealtrail.digest, sealtrail.merkle, sealtrail.evidence.proof,
sealtrail.evidence.check) from fixed inputs: a fixed seed, an Ed25519 key derived from fixed bytes
and fixed timestamps, so two runs write byte-identical files (tests/unit/test_vectors.py checks it).
Verify cases are named after the change made to an intact trail, as transparency-dev/merkle names its
testdata; each holds a whole bundle folder (object name -> base64 of its bytes) and the public key to pin
(the key rotation cases: both versions of the key, or none, to verify with the bundle's own keys).
docs/format.md is the specification the vectors illustrate.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sealtrail.chain import Accepted, ChainHead, RecentIds, seal_batch
from sealtrail.config import RetentionSettings, S3Settings, Settings
from sealtrail.digest import DigestLink, ListedObject, build_digest, head_of, signed_bytes, signed_message
from sealtrail.encoding import format_ts, parse_ts
from sealtrail.evidence.bundle import DirectoryStore
from sealtrail.evidence.check import verify_evidence
from sealtrail.evidence.proof import build_proof, check_proof
from sealtrail.layout import data_key, digest_key, public_key_key, rotation_key
from sealtrail.merkle import root_of_hashes
from sealtrail.objects import WRITE_OPTIONS, read_table, to_parquet
from sealtrail.record import GENESIS, ROW_COLUMNS, SealedRecord, content_digest, rejected_columns, row_check_of
from sealtrail.signing import PublicKeys, Signer, head_message, key_id_of, rotation_statement
from sealtrail.store import sha256_b64
from sealtrail.stream.validate import Rejection, validate

HERE = Path(__file__).resolve().parent
KINDS = ("record", "head", "digest", "proof", "verify")
SEED = 20260302
PRIVATE_SEED = hashlib.sha256(b"sealtrail format test vectors: not a production key").digest()
# the key's second version, what `sealtrail keys rotate` would have made: the rotation vectors only
ROTATED_SEED = hashlib.sha256(b"sealtrail format test vectors: not a production key, version 2").digest()
ROTATED_AT = "2026-03-02T10:00:01Z"  # the rotation statement's time: after the first batch, before the second
PREFIX = "trail/"
DAY = "2026-03-02"
RETENTION_DAYS = 365
WRITTEN = datetime.fromisoformat(f"{DAY}T10:05:00+00:00")  # when the bundle's objects were stored
MAX_EVENT_BYTES = 1 << 20


def signer(seed: bytes = PRIVATE_SEED) -> Signer:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    return Signer(key, key_id_of(key.public_key()))


def sealed_at(batch: int) -> str:
    return f"{DAY}T10:00:{batch:02d}.{batch * 250001 % 1000000:06d}Z"


def fixed_uuid(n: int) -> str:
    return str(uuid.UUID(int=(0x0195_5A00_0000_7000_8000 << 48) | n))


def event(rng: random.Random, n: int, **fields: Any) -> dict[str, Any]:
    """An ordinary event, its variable parts drawn from rng (fixed seed), overridden by fields."""
    action = rng.choice(("auth.login", "data.read", "data.update"))
    ev: dict[str, Any] = {
        "event_id": fixed_uuid(n),
        "occurred_at": f"{DAY}T09:{n % 60:02d}:{rng.randrange(60):02d}.{rng.randrange(10**6):06d}Z",
        "category": {"auth.login": "auth", "data.read": "access", "data.update": "change"}[action],
        "action": action,
        "actor": {"id": f"user-{rng.randrange(5)}", "ip": f"192.0.2.{rng.randrange(1, 255)}"},
        "tenant": rng.choice(("acme", "globex")),
        "source": "billing",
        "metadata": {"n": n},
    }
    if action != "auth.login":
        ev["resource"] = {"type": "invoice", "id": f"inv-{rng.randrange(1000)}"}
        ev["request_id"] = f"req-{n:04d}"
    if action == "data.update":
        ev["before"] = {"status": "draft", "amount": rng.randrange(100)}
        ev["after"] = {"status": "sent", "amount": rng.randrange(100, 200)}
    ev.update(fields)
    return ev


def raw(ev: dict[str, Any]) -> bytes:
    return orjson.dumps(ev)


def accepted(partition: int, offset: int, body: bytes) -> Accepted:
    """An input as the stream turns it into a row (stream/worker.py): an event's columns or a rejection's."""
    result = validate(body, MAX_EVENT_BYTES)
    if isinstance(result, Rejection):
        return Accepted(partition, offset, rejected_columns(result.reason.value, body))
    return Accepted(partition, offset, result, body)


def b64(body: bytes) -> str:
    return base64.b64encode(body).decode("ascii")


def write(out: Path, kind: str, case: str, doc: dict[str, Any]) -> None:
    path = out / kind / f"{case}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def all_columns(columns: dict[str, Any]) -> dict[str, Any]:
    """Every hashed column by name, null where the row has none (nulls are left out of the content)."""
    return {name: columns.get(name) for name in ROW_COLUMNS}


# ---------------------------------------------------------------------------
# record: one row's content, row_check and chain hash


def record_vectors(out: Path, rng: random.Random, s: Signer) -> None:
    login = raw(event(rng, 1, category="auth", action="auth.login", outcome="success",
                      actor={"id": "alice", "type": "user", "ip": "2001:DB8::1",
                             "user_agent": "Mozilla/5.0 (X11; Linux x86_64)"}))
    change = raw(event(rng, 2, category="change", action="data.update",
                       resource={"type": "invoice", "id": "inv-42"},
                       before={"status": "draft", "amount": 1250, "lines": [{"sku": "A-1", "qty": 2}], "paid": False},
                       after={"status": "sent", "amount": 1250, "lines": [{"sku": "A-1", "qty": 2}], "paid": None},
                       request_id="req-0002"))
    unicode = raw(event(rng, 3, category="admin", action="admin.user_renamed",
                        actor={"id": "Zoë 🦊", "ip": "192.0.2.9", "user_agent": "tab\there \"quoted\" back\\slash"},
                        resource={"type": "user", "id": "名前-\u2028-\u007f-\u0001"},
                        metadata={"é": "grüße ✓", "\u0000key": "nul\u0000", "ß": ["\u001f", "😀"], "a": {"z": 1, "b": 2}}))
    nulls = raw({"event_id": fixed_uuid(4), "occurred_at": "2026-03-02T11:00:00+02:00", "category": "security",
                 "action": "security.alert_raised", "actor": {"id": "ids", "type": "system"}, "tenant": "acme",
                 "source": "ids"})
    invalid = b'{"event_id": "not-a-uuid", "category": "auth", "password": "hunter2"}'
    head = raw(event(rng, 6, category="auth", action="auth.login_failed", outcome="failure",
                     actor={"id": "mallory", "ip": "198.51.100.7"}))
    inputs = [login, change, unicode, nulls, invalid, login, head]  # the sixth repeats the first: a producer retry
    chain_no = 3
    heads = {chain_no: ChainHead(f"p{chain_no:03d}", seq=40, hash=hashlib.sha256(b"seq 40").digest(),
                                 src_offset=99, recent=RecentIds(1000))}
    batch = [accepted(chain_no, 100 + i, body) for i, body in enumerate(inputs)]
    records = seal_batch(heads, batch, s, sealed_at(1)).sealed
    cases = [
        ("login", "An auth.login event with an actor IP (normalised) and user agent; not a signed head.", login),
        ("data-change-before-after", "A data.update event whose before and after are stored and hashed as their "
         "RFC 8785 text (keys sorted, false and null kept).", change),
        ("unicode-and-control-characters", "Non-ASCII text (outside the BMP too), quotes, backslashes and control "
         "characters in strings and in metadata keys, escaped as RFC 8785 escapes them.", unicode),
        ("null-optional-fields", "An event with no resource, actor IP, user agent, request id, before or after: "
         "null columns are left out of the content; occurred_at is stored in UTC.", nulls),
        ("rejected-input", "An input that is not a valid event: its row keeps the reason, size and SHA-256 of the "
         "input bytes, never the bytes, and no event column.", invalid),
        ("duplicate-input", "An input repeating an event id the chain sealed before (a producer retry): its row "
         "names that event id, with the input's size and SHA-256.", login),
        ("signed-head", "The record that ends a sealed batch: key_id is part of its content; its signature and "
         "hash are stored, and are not part of the content.", head),
    ]
    for record, (case, desc, body) in zip(records, cases, strict=True):
        content = record.content()
        digest = content_digest(content)
        doc: dict[str, Any] = {
            "desc": desc,
            "chain": record.chain,
            "seq": record.seq,
            "sealed_at": record.sealed_at,
            "src_offset": record.src_offset,
            "key_id": record.key_id,
            "columns": all_columns(record.columns),
            "prev_hash": record.prev.hex(),
        }
        if record.columns.get("kind") is not None:
            doc["input_hex"] = body.hex()
        doc["want"] = {
            "content": content.decode("utf-8"),
            "content_hex": content.hex(),
            "content_sha256": digest.hex(),
            "row_check": row_check_of(digest),
            "hash": record.hash.hex(),
        }
        write(out, "record", case, doc)


# ---------------------------------------------------------------------------
# the verify trail: chain p000, three sealed batches, one object and one digest per batch


BATCHES = (3, 5, 4)  # records per sealed batch: objects p000 seqs 1..3, 4..8, 9..12, each ending on a signed head
CHAIN = "p000"


@dataclass
class Trail:
    signer: Signer
    records: list[SealedRecord]
    objects: list[tuple[str, bytes]] = field(default_factory=list)  # (key, Parquet bytes), in seq order
    digests: list[tuple[str, bytes]] = field(default_factory=list)  # (key, digest bytes), in seq order

    def files(self) -> dict[str, bytes]:
        files = dict(self.objects + self.digests)
        files[public_key_key(PREFIX, self.signer.key_id)] = self.signer.public_pem
        return files


def build_trail(s: Signer, offset_gap_at: int | None = None, heads_by: tuple[Signer, ...] | None = None,
                digests_by: tuple[Signer, ...] | None = None) -> Trail:
    """The pristine trail, sealed and stored as the stream and the sink do; offset_gap_at: the seq from which
    input offsets skip one (the input before it never became a row). heads_by and digests_by name the key
    that signs each batch's head and each digest (s for all by default): a key rotation between batches."""
    heads_by = heads_by or (s,) * len(BATCHES)
    digests_by = digests_by or (s,) * len(BATCHES)
    rng = random.Random(SEED)
    heads = {0: ChainHead(CHAIN, recent=RecentIds(1000))}
    inputs: list[bytes] = []
    for n in range(1, sum(BATCHES) + 1):
        if n == 7:
            inputs.append(b'{"event_id": 7, "category": "auth"')  # not JSON: a rejected row
        elif n == 10:
            inputs.append(inputs[8])  # seq 9's event again: a duplicate row
        else:
            inputs.append(raw(event(rng, n, actor={"id": f"user-{n % 3}", "ip": f"192.0.2.{n}"})))
    records: list[SealedRecord] = []
    n = 0
    for b, size in enumerate(BATCHES):
        batch = []
        for _ in range(size):
            offset = 500 + n + (1 if offset_gap_at is not None and n + 1 >= offset_gap_at else 0)
            batch.append(accepted(0, offset, inputs[n]))
            n += 1
        records += seal_batch(heads, batch, heads_by[b], sealed_at(b)).sealed
    trail = Trail(s, records)
    first, previous = 1, None
    for b, size in enumerate(BATCHES):
        last = first + size - 1
        rows = records[first - 1:last]
        prev = records[first - 2].hash if first > 1 else GENESIS
        body = to_parquet(rows, prev)
        key = data_key(PREFIX, rows[0].sealed_at[:10], CHAIN, first, last)
        trail.objects.append((key, body))
        listed = ListedObject(key, "1", sha256_b64(body), first, last, len(body),
                              root_of_hashes([r.hash for r in rows]).hex(), rows[0].src_offset, rows[-1].src_offset)
        dkey, dbody = build_digest(PREFIX, CHAIN, [listed], head_of(rows[-1]), previous, digests_by[b],
                                   f"{DAY}T10:01:{b:02d}.000000Z")
        trail.digests.append((dkey, dbody))
        previous = DigestLink(dkey, hashlib.sha256(dbody).hexdigest(), last)
        first = last + 1
    return trail


def sidecar(body: bytes) -> bytes:
    """The Object Lock state an export writes next to each file (sealtrail.evidence.bundle)."""
    return json.dumps({
        "mode": "COMPLIANCE",
        "retain_until": (WRITTEN + timedelta(days=RETENTION_DAYS + 1)).isoformat(),
        "last_modified": WRITTEN.isoformat(),
        "checksum_sha256": sha256_b64(body),
    }).encode()


def bundle(files: dict[str, bytes], locks: bool = True) -> dict[str, bytes]:
    """The files plus a lock sidecar for each (computed from the files as they are: only the trail's own
    checks can see a change)."""
    out = dict(files)
    if locks:
        for key, body in files.items():
            if not key.endswith(".lock.json"):
                out[f"{key}.lock.json"] = sidecar(body)
    return dict(sorted(out.items()))


def settings() -> Settings:
    return Settings(s3=S3Settings(prefix=PREFIX), retention=RetentionSettings(days=RETENTION_DAYS))


def materialise(root: Path, files: dict[str, bytes]) -> None:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


def rewrite(body: bytes, edit: Any, metadata: dict[bytes, bytes] | None = None) -> bytes:
    """A Parquet object rewritten after edit(rows) changed its rows, as someone with write access would."""
    table = read_table(body)
    rows = table.to_pylist()
    edit(rows)
    schema = table.schema.with_metadata(metadata if metadata is not None else table.schema.metadata)
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), sink, **WRITE_OPTIONS)
    return sink.getvalue().to_pybytes()


def flip_hex_bit(text: str) -> str:
    raw_bytes = bytearray(bytes.fromhex(text))
    raw_bytes[0] ^= 1
    return raw_bytes.hex()


def flip_bit(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


def row_at(rows: list[dict[str, Any]], seq: int) -> dict[str, Any]:
    return next(r for r in rows if r["seq"] == seq)


def verify_cases(s: Signer) -> dict[str, tuple[str, dict[str, bytes]]]:
    trail = build_trail(s)
    files = trail.files()
    (k1, o1), (k2, o2), (k3, o3) = trail.objects
    (d1, g1), (d2, g2), (d3, g3) = trail.digests
    cases: dict[str, tuple[str, dict[str, bytes]]] = {}

    def case(name: str, desc: str, changed: dict[str, bytes | None], locks: bool = True) -> None:
        result = dict(files)
        for key, body in changed.items():
            if body is None:
                result.pop(key)
            else:
                result[key] = body
        cases[name] = (desc, bundle(result, locks))

    case("intact", "The trail as the stream and the sink wrote it: three objects of chain p000 (seqs 1..3, 4..8, "
         "9..12, each ending on a signed head, with a rejected row at seq 7 and a duplicate row at seq 10), one "
         "signed digest per object, the public key.", {})

    def set_ip(rows: list[dict[str, Any]]) -> None:
        row_at(rows, 3)["actor_ip"] = "203.0.113.66"

    case("cell-changed-actor_ip-@3", "The actor_ip cell of seq 3 (a signed head) was changed in the first object.",
         {k1: rewrite(o1, set_ip)})
    case("row-removed-@5", "The row of seq 5 was removed from the second object.",
         {k2: rewrite(o2, lambda rows: rows.remove(row_at(rows, 5)))})

    def swap(rows: list[dict[str, Any]]) -> None:
        i = rows.index(row_at(rows, 5))
        rows[i], rows[i + 1] = rows[i + 1], rows[i]

    case("rows-swapped-@5", "The rows of seqs 5 and 6 were swapped in the second object.", {k2: rewrite(o2, swap)})

    def head_sig(rows: list[dict[str, Any]]) -> None:
        row = row_at(rows, 8)
        row["signature"] = flip_bit(row["signature"])

    case("head-signature-bit-flipped", "One bit of the head signature stored on seq 8 (the second object's last "
         "row) was flipped.", {k2: rewrite(o2, head_sig)})
    meta = dict(read_table(o2).schema.metadata)
    meta[b"sealtrail.prev_hash"] = flip_hex_bit(meta[b"sealtrail.prev_hash"].decode()).encode()
    case("prev-hash-metadata-changed-p000-2", "One bit of the second object's sealtrail.prev_hash metadata was "
         "flipped.", {k2: rewrite(o2, lambda rows: None, meta)})
    case("object-removed-p000-2", "The second data object (seqs 4..8) was removed.", {k2: None})
    case("object-removed-p000-3", "The last data object (seqs 9..12) was removed; its digest remains.", {k3: None})
    case("object-removed-p000-1", "The first data object (seqs 1..3) was removed: the bundle then starts at seq 4, "
         "like an export of a window, anchored on the digest whose signed head is seq 3.", {k1: None})
    case("digest-removed-p000-2", "The second digest (head seq 8) was removed; the third still links to it.",
         {d2: None})
    doc = orjson.loads(g3)
    doc["signature"] = flip_hex_bit(doc["signature"])
    case("digest-signature-bit-flipped", "One bit of the last digest's signature was flipped.", {d3: orjson.dumps(doc)})
    doc = orjson.loads(g1)
    doc["objects"][0]["last"] = 2
    case("digest-changed-p000-1", "The first digest's entry was edited (last seq 3 -> 2) and its signature kept.",
         {d1: orjson.dumps(doc)})
    case("object-injected", "A Parquet file under a name the sink never writes was added next to the first object.",
         {k1.replace(".parquet", "-extra.parquet"): o1})
    gapped = build_trail(s, offset_gap_at=4)
    case("input-offset-gap-@4", "Sealed, stored and signed honestly, but input offset 503 became no row: seq 3 "
         "holds input offset 502 and seq 4 holds 504.",
         {**dict(gapped.objects), **dict(gapped.digests)})
    unlocked = bundle(files)
    unlocked.pop(f"{k1}.lock.json")
    cases["lock-missing-p000-1"] = ("The first object has no Object Lock retention (its lock sidecar is absent).",
                                    unlocked)
    return cases


def rotation_cases(s: Signer) -> dict[str, tuple[str, dict[str, bytes]]]:
    """One chain signed by two versions of the key: s until the rotation after the first batch, then its
    successor; both public keys and the old key's rotation statement naming the new one are published."""
    v2 = signer(ROTATED_SEED)
    published = {public_key_key(PREFIX, v2.key_id): v2.public_pem,
                 rotation_key(PREFIX, s.key_id, v2.key_id): rotation_statement(s, v2.key_id, ROTATED_AT)}
    rotated = build_trail(s, heads_by=(s, v2, v2), digests_by=(s, v2, v2))
    stale = build_trail(s, heads_by=(s, v2, v2), digests_by=(s, v2, s))
    both = ("Key rotation after the first batch: seqs 1..3 and the first digest are signed by version 1 of the "
            "key, seqs 4..12 and the later digests by version 2; both public keys and version 1's rotation "
            "statement naming version 2 (keys/rotations/) are published.")
    no_statement = ("The same rotation with both public keys published, but without version 1's rotation "
                    "statement.")
    old_key = ("The same rotation, but the last digest (head seq 12) is signed with version 1, the rotated-out "
               "key, while seq 12's head is signed by version 2.")
    pinned, unpinned = " Both keys pinned.", " Keys read from the bundle (none pinned)."
    return {
        "key-rotated-p000-2": (both + pinned, bundle({**rotated.files(), **published})),
        "key-rotated-p000-2-keys-from-bundle": (both + unpinned, bundle({**rotated.files(), **published})),
        "key-rotated-p000-2-no-statement-keys-from-bundle": (
            no_statement + unpinned, bundle({**rotated.files(), public_key_key(PREFIX, v2.key_id): v2.public_pem})),
        "rotated-out-key-signs-digest-p000-3": (old_key + pinned, bundle({**stale.files(), **published})),
        "rotated-out-key-signs-digest-p000-3-keys-from-bundle": (old_key + unpinned,
                                                                 bundle({**stale.files(), **published})),
    }


def verify_vectors(out: Path, s: Signer) -> Trail:
    for name, (desc, files) in verify_cases(s).items():
        write_verify(out, name, desc, files, [s.public_pem])
    v2 = signer(ROTATED_SEED)
    for name, (desc, files) in rotation_cases(s).items():
        pinned = None if name.endswith("-keys-from-bundle") else [s.public_pem, v2.public_pem]
        write_verify(out, name, desc, files, pinned)
    return build_trail(s)


def write_verify(out: Path, name: str, desc: str, files: dict[str, bytes], pinned: list[bytes] | None) -> None:
    """A verify vector: the bundle, the keys to pin (public_key_pem, or public_keys_pem when there are several;
    keys_from_bundle when none is pinned), and what verify finds."""
    with tempfile.TemporaryDirectory() as tmp:
        materialise(Path(tmp), files)
        report = verify_evidence(settings(), bundle=Path(tmp), trusted_keys=pinned).report
    if pinned is None:
        keys: dict[str, Any] = {"keys_from_bundle": True}
    elif len(pinned) == 1:
        keys = {"public_key_pem": pinned[0].decode("ascii")}
    else:
        keys = {"public_keys_pem": [pem.decode("ascii") for pem in pinned]}
    write(out, "verify", name, {
        "desc": desc,
        "settings": {"prefix": PREFIX, "retention_days": RETENTION_DAYS},
        **keys,
        "files": {key: b64(body) for key, body in files.items()},
        "want_findings": [{"kind": f.kind.value, "chain": f.chain, "seq": f.seq} for f in report.findings],
        "want": {"intact": report.intact, "complete": report.complete, "events": report.events},
    })


# ---------------------------------------------------------------------------
# head: the signed head message


def head_vectors(out: Path, trail: Trail) -> None:
    s = trail.signer
    head = trail.records[7]  # seq 8, the second batch's signed head
    assert head.signature is not None and head.key_id is not None
    good = {"chain": head.chain, "seq": head.seq, "sealed_at": head.sealed_at, "hash": head.hash.hex(),
            "signature": head.signature.hex(), "public_key_pem": s.public_pem.decode("ascii")}
    cases = [
        ("valid", "A signed head as stored on the record that ends a sealed batch; the test key's private seed is "
                  "given so the (deterministic) Ed25519 signature can be reproduced.",
         {**good, "private_key_seed": PRIVATE_SEED.hex()}),
        ("signature-bit-flipped", "The signature with one bit flipped.", {**good, "signature": flip_hex_bit(good["signature"])}),
        ("hash-bit-flipped", "The head's hash with one bit flipped, signature unchanged.",
         {**good, "hash": flip_hex_bit(good["hash"])}),
        ("seq-changed", "The same signature claimed for the next seq.", {**good, "seq": head.seq + 1}),
        ("sealed_at-changed", "The same signature with sealed_at one microsecond later.",
         {**good, "sealed_at": format_ts(parse_ts(head.sealed_at) + timedelta(microseconds=1))}),
        ("other-chain", "The same signature claimed for chain p001.", {**good, "chain": "p001"}),
    ]
    keys = PublicKeys()
    key_id = keys.add_pem(s.public_pem)
    for case, desc, doc in cases:
        message = head_message(doc["chain"], doc["seq"], doc["sealed_at"], bytes.fromhex(doc["hash"]))
        want = {"message_hex": message.hex(), "key_id": key_id,
                "valid": keys.verify(key_id, bytes.fromhex(doc["signature"]), message)}
        write(out, "head", case, {"desc": desc, **doc, "want": want})


# ---------------------------------------------------------------------------
# digest: the signed digest document and the Merkle roots it lists


def digest_want(body: bytes, keys: PublicKeys) -> dict[str, Any]:
    doc = orjson.loads(body)
    head = doc["head"]
    message = signed_message(doc)
    return {
        "signed_bytes": signed_bytes(doc).decode("utf-8"),
        "signed_message_hex": message.hex(),
        "signature_valid": keys.verify(doc["key_id"], bytes.fromhex(doc["signature"]), message),
        "head_signature_valid": keys.verify(head["key_id"], bytes.fromhex(head["signature"]),
                                            head_message(doc["chain"], head["seq"], head["sealed_at"],
                                                         bytes.fromhex(head["hash"]))),
        "key": digest_key(PREFIX, doc["chain"], head["seq"]),
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }


def digest_vectors(out: Path, trail: Trail) -> None:
    s = trail.signer
    keys = PublicKeys()
    keys.add_pem(s.public_pem)
    pem = s.public_pem.decode("ascii")
    (d1, g1), (d2, g2), _ = trail.digests
    leaves_1 = [r.hash.hex() for r in trail.records[0:3]]
    leaves_2 = [r.hash.hex() for r in trail.records[3:8]]

    def vector(case: str, desc: str, body: bytes, **extra: Any) -> None:
        want = digest_want(body, keys)
        if "leaf_hashes" in extra:
            want["merkle_root"] = root_of_hashes([bytes.fromhex(h) for h in extra["leaf_hashes"]]).hex()
        if "previous_body_base64" in extra:
            want["previous_sha256"] = hashlib.sha256(base64.b64decode(extra["previous_body_base64"])).hexdigest()
        write(out, "digest", case, {"desc": desc, "prefix": PREFIX, "body_base64": b64(body), **extra,
                                    "public_key_pem": pem, "want": want})

    vector("first-of-chain", "The chain's first digest (previous null), listing one object of 3 rows; "
           "leaf_hashes are the object's record hashes in seq order, whose RFC 6962 root the digest lists.",
           g1, leaf_hashes=leaves_1)
    vector("links-previous", "The chain's second digest: previous names the first digest's key, last seq and the "
           "SHA-256 of its stored bytes; it lists an object of 5 rows.", g2, leaf_hashes=leaves_2,
           previous_body_base64=b64(g1))
    doc = orjson.loads(g1)
    doc["signature"] = flip_hex_bit(doc["signature"])
    vector("signature-bit-flipped", "The first digest with one bit of its signature flipped.", orjson.dumps(doc))
    doc = orjson.loads(g1)
    doc["objects"][0]["sha256"] = sha256_b64(b"another object")
    vector("object-sha256-changed", "The first digest with its object's SHA-256 replaced and the signature kept.",
           orjson.dumps(doc))
    doc = orjson.loads(g1)
    doc["head"]["signature"] = flip_hex_bit(doc["head"]["signature"])
    doc.pop("signature")
    doc["signature"] = s.sign(signed_message(doc)).hex()
    vector("head-signature-bit-flipped-resigned", "The first digest with one bit of its head's signature flipped, "
           "then signed again with the digest key: the digest signature holds, the head's does not.",
           orjson.dumps(doc))
    doc = orjson.loads(g1)
    vector("reformatted", "The first digest re-serialised with indentation and keys in another order: the signature "
           "(over the RFC 8785 form) still holds, the body's SHA-256, which the next digest links to, differs.",
           json.dumps(dict(reversed(list(doc.items()))), indent=1).encode())


# ---------------------------------------------------------------------------
# proof: inclusion proofs of one event


def proof_vectors(out: Path, trail: Trail) -> None:
    s = trail.signer
    pem = s.public_pem.decode("ascii")
    event_seq = 6  # leaf 2 of the 5-row object 4..8
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        materialise(root, bundle(trail.files()))
        store = DirectoryStore(root)
        good = build_proof(store, settings(), trail.records[event_seq - 1].columns["event_id"], bundle=root)
        first = build_proof(store, settings(), trail.records[3].columns["event_id"], bundle=root)
        last = build_proof(store, settings(), trail.records[11].columns["event_id"], bundle=root)

    def changed(edit: Any, doc: dict[str, Any] | None = None) -> dict[str, Any]:
        copy = orjson.loads(orjson.dumps(doc or good))
        edit(copy)
        return copy

    def metadata_swallows(d: dict[str, Any]) -> None:
        outcome = d["record"].pop("outcome")
        d["record"]["metadata"] = d["record"]["metadata"] + f',"outcome":"{outcome}"'

    cases = [
        ("valid", "The inclusion proof of seq 6, leaf 2 of the 5-row object holding seqs 4..8.", good),
        ("valid-first-leaf", "The inclusion proof of seq 4, leaf 0 of the same object.", first),
        ("valid-signed-head", "The inclusion proof of seq 12, the last object's signed head (its record names "
                              "key_id).", last),
        ("record-cell-changed-actor_id", "The record's actor_id was changed.",
         changed(lambda d: d["record"].__setitem__("actor_id", "mallory"))),
        ("path@0-bit-flipped", "One bit of the first path hash was flipped.",
         changed(lambda d: d["path"].__setitem__(0, flip_hex_bit(d["path"][0])))),
        ("prev_hash-bit-flipped", "One bit of prev_hash was flipped.",
         changed(lambda d: d.__setitem__("prev_hash", flip_hex_bit(d["prev_hash"])))),
        ("leaf_index-changed", "The leaf index was changed (2 -> 3).", changed(lambda d: d.__setitem__("leaf_index", 3))),
        ("tree_size-changed", "The tree size was changed (5 -> 6).", changed(lambda d: d.__setitem__("tree_size", 6))),
        ("digest-signature-bit-flipped", "One bit of the enclosed digest's signature was flipped.",
         changed(lambda d: d["digest"].__setitem__("signature", flip_hex_bit(d["digest"]["signature"])))),
        ("metadata-swallows-outcome", "outcome moved into the metadata text (same hashed bytes): rejected, since "
                                      "metadata must be one canonical JSON object.", changed(metadata_swallows)),
    ]
    for case, desc, doc in cases:
        result = check_proof(doc, [s.public_pem])
        write(out, "proof", case, {"desc": desc, "proof": doc, "public_key_pem": pem,
                                   "want": {"ok": result.ok, "checks": {c.name: c.ok for c in result.checks}}})


def generate(out: Path) -> None:
    for kind in KINDS:
        shutil.rmtree(out / kind, ignore_errors=True)
    s = signer()
    record_vectors(out, random.Random(SEED), s)
    trail = verify_vectors(out, s)
    head_vectors(out, trail)
    digest_vectors(out, trail)
    proof_vectors(out, trail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write <kind>/<case>.json into")
    args = parser.parse_args(argv)
    generate(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
