"""The trail's format test vectors (tests/vectors/<kind>/<case>.json) against the product's own code.

Each vector is recomputed from its inputs and compared with its want: a record's content, row_check
and hash; a head's signed message and signature; a digest's signed bytes, signature and Merkle root;
a proof's checks; a bundle's findings and verdicts through the real verification entry point. A
second test regenerates the vectors and compares them byte for byte, so they cannot drift from the
code they describe (docs/format.md is their specification).
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sealtrail.config import RetentionSettings, S3Settings, Settings
from sealtrail.digest import signed_bytes, signed_message
from sealtrail.evidence.check import verify_evidence
from sealtrail.evidence.proof import check_proof
from sealtrail.layout import digest_key
from sealtrail.merkle import root_of_hashes
from sealtrail.record import (
    ACCOUNT_COLUMNS,
    content_digest,
    duplicate_columns,
    hashed_bytes,
    record_hash,
    rejected_columns,
    row_check,
)
from sealtrail.signing import PublicKeys, head_message, key_id_of

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
KINDS = ("record", "head", "digest", "proof", "verify")
FILES = sorted(path.relative_to(VECTORS).as_posix() for kind in KINDS for path in (VECTORS / kind).glob("*.json"))


def keys_of(pem: str) -> tuple[PublicKeys, str]:
    keys = PublicKeys()
    return keys, keys.add_pem(pem.encode("ascii"))


def check_record(v: dict[str, Any], tmp_path: Path) -> None:
    want = v["want"]
    content = hashed_bytes(v["chain"], v["seq"], v["sealed_at"], v["src_offset"], v["columns"], v["key_id"])
    assert content.hex() == want["content_hex"]
    assert content.decode("utf-8") == want["content"]
    assert content_digest(content).hex() == want["content_sha256"]
    assert row_check(content) == want["row_check"]
    prev = bytes.fromhex(v["prev_hash"])
    assert record_hash(prev, content).hex() == want["hash"]
    if "input_hex" in v:  # an accounting row: its columns are the input's size and SHA-256, never its bytes
        columns, data = v["columns"], bytes.fromhex(v["input_hex"])
        accounting = {name: columns[name] for name in ACCOUNT_COLUMNS if columns[name] is not None}
        if columns["kind"] == "rejected":
            assert accounting == rejected_columns(columns["reason"], data)
        else:
            assert {**accounting, "event_id": columns["event_id"]} == duplicate_columns(columns["event_id"], data)


def check_head(v: dict[str, Any], tmp_path: Path) -> None:
    want = v["want"]
    message = head_message(v["chain"], v["seq"], v["sealed_at"], bytes.fromhex(v["hash"]))
    assert message.hex() == want["message_hex"]
    keys, key_id = keys_of(v["public_key_pem"])
    assert key_id == want["key_id"]
    assert keys.verify(key_id, bytes.fromhex(v["signature"]), message) is want["valid"]
    if "private_key_seed" in v:  # the test key itself, so a signer can be checked too (Ed25519 is deterministic)
        private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["private_key_seed"]))
        assert key_id_of(private.public_key()) == want["key_id"]


def check_digest(v: dict[str, Any], tmp_path: Path) -> None:
    want = v["want"]
    body = base64.b64decode(v["body_base64"])
    doc = orjson.loads(body)
    keys, _ = keys_of(v["public_key_pem"])
    assert signed_bytes(doc).decode("utf-8") == want["signed_bytes"]
    message = signed_message(doc)
    assert message.hex() == want["signed_message_hex"]
    assert keys.verify(doc["key_id"], bytes.fromhex(doc["signature"]), message) is want["signature_valid"]
    head = doc["head"]
    head_ok = keys.verify(head["key_id"], bytes.fromhex(head["signature"]),
                          head_message(doc["chain"], head["seq"], head["sealed_at"], bytes.fromhex(head["hash"])))
    assert head_ok is want["head_signature_valid"]
    assert digest_key(v["prefix"], doc["chain"], head["seq"]) == want["key"]
    assert hashlib.sha256(body).hexdigest() == want["body_sha256"]
    if "leaf_hashes" in v:
        root = root_of_hashes([bytes.fromhex(h) for h in v["leaf_hashes"]]).hex()
        assert root == want["merkle_root"] == doc["objects"][0]["merkle_root"]
    if "previous_body_base64" in v:
        previous = hashlib.sha256(base64.b64decode(v["previous_body_base64"])).hexdigest()
        assert previous == want["previous_sha256"] == doc["previous"]["sha256"]


def check_proof_vector(v: dict[str, Any], tmp_path: Path) -> None:
    result = check_proof(v["proof"], [v["public_key_pem"].encode("ascii")])
    assert {c.name: c.ok for c in result.checks} == v["want"]["checks"]
    assert result.ok is v["want"]["ok"]


def check_verify(v: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "bundle"
    for name, data in v["files"].items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
    settings = Settings(s3=S3Settings(prefix=v["settings"]["prefix"]),
                        retention=RetentionSettings(days=v["settings"]["retention_days"]))
    if v.get("keys_from_bundle"):  # none pinned: the bundle's keys and rotation statements decide
        pinned = None
    else:
        pinned = [pem.encode("ascii") for pem in v.get("public_keys_pem", [v.get("public_key_pem")])]
    report = verify_evidence(settings, bundle=root, trusted_keys=pinned).report
    assert [{"kind": f.kind.value, "chain": f.chain, "seq": f.seq} for f in report.findings] == v["want_findings"]
    assert (report.intact, report.complete, report.events) == (
        v["want"]["intact"], v["want"]["complete"], v["want"]["events"])


CHECKS = {"record": check_record, "head": check_head, "digest": check_digest, "proof": check_proof_vector,
          "verify": check_verify}


@pytest.mark.parametrize("name", FILES)
def test_vector(name: str, tmp_path: Path) -> None:
    v = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    assert isinstance(v["desc"], str) and v["desc"]
    CHECKS[name.split("/", 1)[0]](v, tmp_path)


def _parquet_writers(files: dict[str, bytes]) -> set[str]:
    """The created_by of every Parquet object inside the verify vectors (the writer's version is in the bytes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writers = set()
    for name, body in files.items():
        if name.startswith("verify/"):
            for key, value in orjson.loads(body)["files"].items():
                if key.endswith(".parquet"):
                    writers.add(pq.ParquetFile(pa.BufferReader(base64.b64decode(value))).metadata.created_by)
    return writers


def _meaning(body: bytes) -> dict[str, Any]:
    """A vector without the bytes a Parquet writer's version decides (object bodies, and what hashes them)."""
    doc = orjson.loads(body)
    return {k: v for k, v in doc.items() if k not in ("files",)} | {"names": sorted(doc.get("files", {}))}


def test_generate_reproduces_the_committed_vectors(tmp_path: Path) -> None:
    """Byte for byte; where this pyarrow writes Parquet under another created_by than the committed vectors
    (a pyarrow release), the verify vectors must still mean the same (files, findings, verdicts): rerun
    tests/vectors/generate.py and commit to refresh the bytes."""
    subprocess.run([sys.executable, str(VECTORS / "generate.py"), "--out", str(tmp_path)], check=True)

    def files(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for kind in KINDS for p in (root / kind).glob("*.json")}

    committed, regenerated = files(VECTORS), files(tmp_path)
    assert sorted(regenerated) == sorted(committed)
    same_writer = _parquet_writers(committed) == _parquet_writers(regenerated)
    changed = [name for name in committed if committed[name] != regenerated[name]
               and (same_writer or not name.startswith("verify/") or _meaning(committed[name]) != _meaning(regenerated[name]))]
    assert changed == []
