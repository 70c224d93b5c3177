"""Inclusion proofs: a proof built from a bundle checks with the public key alone, and every
part of it that is tampered with (record cell, prev_hash, path, index, digest, signature) or
checked with the wrong key fails, naming the check that failed.

The trail is built the way the pipeline builds it (validate -> seal_batch -> to_parquet -> a
digest per chain listing each object's Merkle root), as an exported bundle (DirectoryStore).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest

from sealtrail import merkle
from sealtrail.config import S3Settings, Settings
from sealtrail.errors import ConfigError, NotProvableError
from sealtrail.evidence.bundle import DirectoryStore
from sealtrail.evidence.checks.digests import VerifiedObject, check_digest_chain
from sealtrail.evidence.findings import FindingKind as K
from sealtrail.evidence.proof import FORMAT, build_proof, check_proof
from sealtrail.layout import data_key
from sealtrail.record import SealedRecord
from sealtrail.signing import PublicKeys, Signer
from sealtrail.store import sha256_b64
from tests.support import builders
from tests.support.builders import CHAINS, DAY, OBJECTS, PREFIX, Trail, build_trail, columns_of, event_id
from tests.support.signers import new_signer

SETTINGS = Settings(s3=S3Settings(prefix=PREFIX))
# the unit trail (seqs 1..5, 6..10, 11..18 per chain; signed heads at seqs 7, 12, 18, so the first two
# objects end on unsigned records), with these events and a Merkle root per object in the digests


@cache
def built() -> Trail:
    return build_trail(inputs=lambda p, n: columns_of(builders.event(p, n)), roots=True)


def trail() -> tuple[Signer, dict[str, bytes], dict[str, list[SealedRecord]]]:
    t = built()
    return t.signer, t.objects, t.records


def write_bundle(root: Path) -> DirectoryStore:
    """The trail as a bundle folder, without lock sidecars."""
    return builders.write_bundle(root, built(), locked=False)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    write_bundle(tmp_path / "bundle")
    return tmp_path / "bundle"


@cache
def proof_of(chain_no: int, i: int) -> dict[str, Any]:
    """A proof built once from a fresh bundle (tests get deep copies to tamper with)."""
    import tempfile

    root = Path(tempfile.mkdtemp()) / "bundle"
    store = write_bundle(root)
    return build_proof(store, SETTINGS, event_id(chain_no, i), root)


@pytest.fixture
def proof() -> dict[str, Any]:
    return copy.deepcopy(proof_of(1, 7))  # chain p001 seq 8: mid-object, object 2 (seqs 6..10)


def pems() -> list[bytes]:
    return [trail()[0].public_pem]


def failed(doc: dict[str, Any], keys: list[bytes] | None = None) -> set[str]:
    return {c.name for c in check_proof(doc, pems() if keys is None else keys).checks if not c.ok}


# ---------------------------------------------------------------------------
# an intact proof


@pytest.mark.parametrize("chain_no,i", [(0, 0), (0, 4), (0, 5), (1, 7), (1, 11), (1, 17)],
                         ids=["seq1-genesis", "seq5-object-end", "seq6-object-start", "seq8-middle",
                              "seq12-signed-head", "seq18-last"])
def test_a_proof_of_any_record_checks_with_the_public_key(chain_no: int, i: int) -> None:
    doc = proof_of(chain_no, i)
    result = check_proof(doc, pems())
    assert result.ok, result.as_dict()
    assert result.seq == i + 1 and result.chain == CHAINS[chain_no] and result.event_id == event_id(chain_no, i)
    assert {c.name for c in result.checks} == {"digest_signature", "checkpoint_signature", "digest_chain",
                                               "object_listed", "record_fields", "position", "inclusion"}
    first = next(f for f, last in OBJECTS if f <= i + 1 <= last)
    assert doc["leaf_index"] == i + 1 - first and doc["object"]["first"] == first
    assert doc["format"] == FORMAT and doc["digest"]["head"]["seq"] == 18


def test_the_proof_holds_the_record_as_hashed_and_its_real_prev_hash(proof: dict[str, Any]) -> None:
    _, _, records = trail()
    chain = records["p001"]
    assert proof["prev_hash"] == chain[6].hash.hex()  # seq 7, the record seq 8 links to
    assert proof["record"]["event_id"] == event_id(1, 7)
    assert proof["record"]["metadata"] == '{"n":7,"note":"grüße ✓"}'
    assert all(v is not None for v in proof["record"].values())
    genesis = proof_of(0, 0)
    assert genesis["prev_hash"] == "00" * 32
    # the first record of an object links to the last record of the object before
    assert proof_of(0, 5)["prev_hash"] == records["p000"][4].hash.hex()


def test_a_proof_is_compact(proof: dict[str, Any]) -> None:
    assert len(proof["path"]) == 3  # 5 leaves
    assert len(json.dumps(proof)) < 6000


# ---------------------------------------------------------------------------
# tampering, one change per test


def test_a_changed_record_cell_fails_inclusion(proof: dict[str, Any]) -> None:
    proof["record"]["actor_id"] = "mallory"
    assert failed(proof) == {"inclusion"}


@pytest.mark.parametrize("name", ["sealed_at", "src_offset", "metadata", "occurred_at", "severity_id"])
def test_any_changed_field_fails_inclusion(proof: dict[str, Any], name: str) -> None:
    value = proof["record"][name]
    proof["record"][name] = value + 1 if isinstance(value, int) else value.replace("7", "8", 1).replace("0", "1", 1)
    assert proof["record"][name] != value
    assert "inclusion" in failed(proof)


def test_a_removed_field_fails_inclusion(proof: dict[str, Any]) -> None:
    del proof["record"]["resource_id"]  # an optional one
    assert failed(proof) == {"inclusion"}
    del proof["record"]["tenant"]  # one every sealed event has
    assert failed(proof) == {"inclusion", "record_fields"}


def test_an_added_field_no_hash_covers_fails(proof: dict[str, Any]) -> None:
    proof["record"]["approved_by"] = "cfo"
    assert "record_fields" in failed(proof)


def test_a_different_event_id_on_the_proof_fails(proof: dict[str, Any]) -> None:
    proof["event_id"] = event_id(1, 8)
    assert failed(proof) == {"record_fields"}


def test_a_changed_prev_hash_fails_inclusion(proof: dict[str, Any]) -> None:
    proof["prev_hash"] = "00" * 32
    assert failed(proof) == {"inclusion"}


@pytest.mark.parametrize("which", [0, 1, 2])
def test_a_flipped_bit_in_a_path_element_fails(proof: dict[str, Any], which: int) -> None:
    raw = bytearray(bytes.fromhex(proof["path"][which]))
    raw[3] ^= 0x08
    proof["path"][which] = raw.hex()
    assert failed(proof) == {"inclusion"}


def test_a_removed_path_element_fails(proof: dict[str, Any]) -> None:
    proof["path"].pop()
    assert failed(proof) == {"inclusion"}


def test_a_shifted_leaf_index_fails(proof: dict[str, Any]) -> None:
    proof["leaf_index"] += 1
    assert {"position", "inclusion"} <= failed(proof)


def test_a_record_moved_to_another_seq_fails(proof: dict[str, Any]) -> None:
    """Claiming the record sits at seq 9 (index and seq changed together) breaks its hash."""
    proof["record"]["seq"] += 1
    proof["leaf_index"] += 1
    assert "inclusion" in failed(proof)


def test_a_different_tree_size_fails(proof: dict[str, Any]) -> None:
    proof["tree_size"] += 1
    assert "position" in failed(proof)


@pytest.mark.parametrize("edit", [
    lambda d: d["objects"][1].update(merkle_root="00" * 32),
    lambda d: d["objects"][1].update(last=11),
    lambda d: d["head"].update(seq=17),
    lambda d: d.update(created_at="2030-01-01T00:00:00.000000Z"),
    lambda d: d.update(chain="p000"),
], ids=["merkle_root", "object_range", "head_seq", "created_at", "chain"])
def test_a_changed_digest_field_fails_its_signature(proof: dict[str, Any], edit: Callable[[dict], None]) -> None:
    edit(proof["digest"])
    assert "digest_signature" in failed(proof)


def test_a_changed_digest_signature_fails(proof: dict[str, Any]) -> None:
    sig = bytearray(bytes.fromhex(proof["digest"]["signature"]))
    sig[0] ^= 1
    proof["digest"]["signature"] = sig.hex()
    assert failed(proof) == {"digest_signature"}


def test_a_changed_checkpoint_signature_fails(proof: dict[str, Any]) -> None:
    """The head inside the digest is under the digest's signature and carries its own."""
    sig = bytearray(bytes.fromhex(proof["digest"]["head"]["signature"]))
    sig[0] ^= 1
    proof["digest"]["head"]["signature"] = sig.hex()
    assert failed(proof) == {"digest_signature", "checkpoint_signature"}


def test_a_digest_re_signed_by_another_key_fails(proof: dict[str, Any]) -> None:
    """Someone with their own key forges a digest for a tampered record: not one of the auditor's keys."""
    from sealtrail.digest import signed_message

    forger = new_signer()
    proof["record"]["actor_id"] = "mallory"
    proof["digest"]["key_id"] = forger.key_id
    proof["digest"]["signature"] = forger.sign(signed_message(proof["digest"])).hex()
    assert "digest_signature" in failed(proof)


def test_the_wrong_key_fails_both_signatures(proof: dict[str, Any]) -> None:
    assert failed(proof, [new_signer().public_pem]) == {"digest_signature", "checkpoint_signature"}


def test_an_object_the_digest_does_not_list_fails(proof: dict[str, Any]) -> None:
    proof["object"]["key"] = data_key(PREFIX, DAY, "p001", 6, 11)
    assert "object_listed" in failed(proof)


def test_another_chains_record_does_not_pass_as_this_chains(proof: dict[str, Any]) -> None:
    proof["chain"] = "p000"
    assert {"digest_chain", "object_listed", "inclusion"} <= failed(proof)


# ---------------------------------------------------------------------------
# usage errors and what prove refuses


def test_not_a_proof_and_no_key_are_usage_errors(proof: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        check_proof({"format": "something.else"}, pems())
    with pytest.raises(ConfigError):
        check_proof([1, 2], pems())
    with pytest.raises(ConfigError):
        check_proof({**proof, "path": "abc"}, pems())
    with pytest.raises(ConfigError):
        check_proof(proof, [])
    with pytest.raises(ConfigError):
        check_proof(proof, [b"not a pem"])


def test_an_unknown_event_is_not_provable(bundle: Path) -> None:
    with pytest.raises(NotProvableError, match="not in the trail"):
        build_proof(DirectoryStore(bundle), SETTINGS, str(uuid.uuid4()), bundle)


def test_an_object_no_digest_lists_is_not_provable(bundle: Path) -> None:
    for path in (bundle / PREFIX / "digests").rglob("*.json"):
        path.unlink()
    with pytest.raises(NotProvableError, match="no digest lists"):
        build_proof(DirectoryStore(bundle), SETTINGS, event_id(0, 3), bundle)


def test_prove_refuses_an_object_whose_rows_were_changed(bundle: Path) -> None:
    import pyarrow.parquet as pq

    key = data_key(PREFIX, DAY, "p000", 6, 10)
    table = pq.read_table(bundle / key)
    columns = {n: table.column(n).to_pylist() for n in table.column_names}
    columns["actor_id"][2] = "mallory"
    pq.write_table(table.from_pydict(columns, schema=table.schema), bundle / key)
    with pytest.raises(NotProvableError, match="Merkle root"):
        build_proof(DirectoryStore(bundle), SETTINGS, event_id(0, 5), bundle)


def test_prove_refuses_an_object_in_a_record_format_it_does_not_know(bundle: Path) -> None:
    import pyarrow.parquet as pq

    path = bundle / data_key(PREFIX, DAY, "p000", 6, 10)
    table = pq.read_table(path)
    meta = {**(table.schema.metadata or {}), b"sealtrail.format": b"sealtrail.record.v9"}
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(NotProvableError, match="'sealtrail.record.v9'"):
        build_proof(DirectoryStore(bundle), SETTINGS, event_id(0, 5), bundle)


def test_prove_finds_the_start_hash_from_earlier_objects_when_the_object_does_not_record_it(bundle: Path) -> None:
    """Without the prev_hash metadata, the start is recomputed from the object before (which has no
    signed head here, so from the chain's start)."""
    import pyarrow.parquet as pq

    for seqs in ((1, 5), (6, 10)):
        path = bundle / data_key(PREFIX, DAY, "p000", *seqs)
        pq.write_table(pq.read_table(path).replace_schema_metadata(None), path)
    doc = build_proof(DirectoryStore(bundle), SETTINGS, event_id(0, 5), bundle)  # seq 6, first of (6, 10)
    assert doc["prev_hash"] == trail()[2]["p000"][4].hash.hex()
    assert check_proof(doc, pems()).ok


# ---------------------------------------------------------------------------
# the digest chain check: a listed root must match the recomputed one


def _digest_findings(root: bytes | None) -> list:
    _, objects, records = trail()
    key = data_key(PREFIX, DAY, "p000", 1, 5)
    digest_key = next(k for k in objects if k.startswith(f"{PREFIX}digests/chain=p000/"))
    from sealtrail.evidence.checks.digests import StoredDigest

    verified = [VerifiedObject(data_key(PREFIX, DAY, "p000", f, last), "1",
                               sha256_b64(objects[data_key(PREFIX, DAY, "p000", f, last)]), f, last,
                               merkle.root_of_hashes([r.hash for r in records["p000"][f - 1 : last]]))
                for f, last in OBJECTS]
    if root is not None:
        verified[0] = VerifiedObject(key, "1", verified[0].sha256, 1, 5, root)
    keys = PublicKeys()
    keys.add_pem(trail()[0].public_pem)
    findings, _ = check_digest_chain("p000", [StoredDigest(digest_key, "1", 18, objects[digest_key])], verified,
                                     18, records["p000"][-1].hash.hex(), keys)
    return findings


def test_verify_accepts_matching_roots_and_names_a_differing_one() -> None:
    assert _digest_findings(None) == []
    [finding] = _digest_findings(bytes(32))
    assert finding.kind == K.CELL_CHANGED and "Merkle root" in finding.detail
    assert finding.key == data_key(PREFIX, DAY, "p000", 1, 5)


def test_verify_store_checks_the_listed_roots_against_the_rows(bundle: Path) -> None:
    """A digest whose listed root is not the rows' (re-signed, as a sink bug or a key holder would)
    is named by verify, so a proof can only be checked against a root verify agrees with."""
    from sealtrail.digest import signed_message
    from sealtrail.evidence.walk import verify_store

    signer = trail()[0]

    def roots_findings() -> tuple[set[str], list]:
        report = verify_store(DirectoryStore(bundle), SETTINGS, trusted_keys=[signer.public_pem])
        kinds = {f.kind.value for f in report.findings} - {"not_locked"}  # the bundle has no lock sidecars
        return kinds, [f for f in report.findings if "Merkle root" in f.detail]

    assert roots_findings() == (set(), [])
    [path] = (bundle / PREFIX / "digests" / "chain=p001").glob("*.json")
    doc = orjson.loads(path.read_bytes())
    doc["objects"][1]["merkle_root"] = merkle.root([b"x" * 32] * 5).hex()
    doc["signature"] = signer.sign(signed_message(doc)).hex()
    path.write_bytes(orjson.dumps(doc))
    kinds, [finding] = roots_findings()
    assert kinds == {"cell_changed"}
    assert finding.key == data_key(PREFIX, DAY, "p001", 6, 10) and finding.chain == "p001"


# ---------------------------------------------------------------------------
# the CLI: exit codes and messages, never a traceback


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sealtrail.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={"PATH": "/usr/bin:/bin", "SEALTRAIL_HOME": str(cwd / "home"),
                               "SEALTRAIL_S3__PREFIX": PREFIX}, timeout=120)


def test_cli_prove_then_check_proof(bundle: Path, tmp_path: Path) -> None:
    key = tmp_path / "auditor.pem"
    key.write_bytes(trail()[0].public_pem)
    out = tmp_path / "proof.json"
    made = run("prove", event_id(1, 9), "--path", str(bundle), "--out", str(out), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    checked = run("check-proof", str(out), "--key", str(key), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "proof valid" in checked.stdout
    doc = json.loads(out.read_text())
    doc["record"]["outcome"] = "failure" if doc["record"]["outcome"] != "failure" else "success"
    out.write_text(json.dumps(doc))
    checked = run("check-proof", str(out), "--key", str(key), "--json", cwd=tmp_path)
    assert checked.returncode == 1
    result = json.loads(checked.stdout)
    assert result["ok"] is False and [c["name"] for c in result["checks"] if not c["ok"]] == ["inclusion"]

    for args, message in [
        ((str(tmp_path / "missing.json"), "--key", str(key)), "cannot read"),
        ((str(key), "--key", str(key)), "not JSON"),
        ((str(out),), "Missing option '--key'"),
    ]:
        bad = run("check-proof", *args, cwd=tmp_path)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    unknown = run("prove", str(uuid.uuid4()), "--path", str(bundle), cwd=tmp_path)
    assert unknown.returncode == 1 and "not in the trail" in unknown.stderr and "Traceback" not in unknown.stderr


# ---------------------------------------------------------------------------
# M4: fields moved between columns keep the hashed bytes; they must not keep "proof valid"

MOVED = ("occurred_at", "outcome", "request_id", "resource_id", "resource_type")  # hashed right after metadata


def moved_fields(record: dict[str, Any]) -> dict[str, Any]:
    """The review's forgery: later fields spliced into the metadata text, before into the after text."""
    f = dict(record)
    f["metadata"] = record["metadata"] + "".join(f",{json.dumps(k)}:{json.dumps(record[k])}"
                                                 for k in MOVED if k in record)
    f["after"] = record["after"] + ',"before":' + record["before"]
    for k in (*MOVED, "before"):
        f.pop(k, None)
    return f


def test_the_moved_fields_forgery_hashes_the_same_and_fails(proof: dict[str, Any]) -> None:
    from sealtrail.record import EVENT_COLUMNS, hashed_bytes

    record = proof["record"]
    assert {"before", "after", "resource_id", "occurred_at"} <= set(record)
    forged = moved_fields(record)

    def content(r: dict[str, Any]) -> bytes:
        return hashed_bytes(proof["chain"], r["seq"], r["sealed_at"], r["src_offset"],
                            {n: r.get(n) for n in EVENT_COLUMNS}, r.get("key_id"))

    assert content(forged) == content(record)  # the attack: the same bytes under the hash
    proof["record"] = forged
    result = check_proof(proof, pems())
    assert not result.ok and {c.name for c in result.checks if not c.ok} == {"record_fields"}
    assert "missing: occurred_at, outcome" in next(c.detail for c in result.checks if c.name == "record_fields")


@pytest.mark.parametrize("name,text", [
    ("metadata", '{"n":7,"note":"grüße ✓"},"outcome":"success"'),  # fields moved in, nothing removed
    ("metadata", '{"note":"grüße ✓","n":7}'),  # one object, not in canonical (sorted) form
    ("metadata", '{"n": 7, "note": "grüße ✓"}'),  # whitespace
    ("metadata", '[7]'),  # not an object
    ("metadata", '{"n":7,"n":7,"note":"grüße ✓"}'),  # a repeated key
    ("after", '{"amount":8},"before":{"amount":7}'),
])
def test_a_json_column_that_is_not_one_canonical_object_fails(proof: dict[str, Any], name: str, text: str) -> None:
    proof["record"][name] = text
    assert "record_fields" in failed(proof)


@pytest.mark.parametrize("name,value", [("seq", "8"), ("src_offset", 7.0), ("class_uid", True), ("metadata", {"n": 7}),
                                        ("actor_id", 4), ("key_id", 1), ("occurred_at", 1709283607)])
def test_a_field_without_its_columns_type_fails(proof: dict[str, Any], name: str, value: Any) -> None:
    proof["record"][name] = value
    assert "record_fields" in failed(proof)


def test_verify_names_a_json_cell_that_is_not_one_object_though_every_hash_matches() -> None:
    """Defence in depth: an object rewritten with the forgery above (schema v3 lets event columns be null)."""
    import io

    import pyarrow.parquet as pq

    from sealtrail.evidence.checks.rows import check_body
    from sealtrail.layout import parse_data_key

    signer, objects, _ = trail()
    key = data_key(PREFIX, DAY, "p001", 6, 10)
    table = pq.read_table(io.BytesIO(objects[key]))
    rows = table.to_pylist()
    i = next(i for i, r in enumerate(rows) if r["before"] is not None)
    rows[i]["after"] = rows[i]["after"] + ',"before":' + rows[i]["before"]
    rows[i]["before"] = None
    out = io.BytesIO()
    pq.write_table(type(table).from_pylist(rows, schema=table.schema), out)
    obj = parse_data_key(key)
    assert obj is not None
    checked, problem, unreadable = check_body("p001", obj, out.getvalue(), (signer.public_pem,))
    assert checked is not None and problem is None and unreadable is None
    findings = checked.check.findings
    assert [(f.kind, f.seq) for f in findings] == [(K.CELL_CHANGED, rows[i]["seq"])]  # nothing else: same bytes
    assert "after is not the text of one JSON value" in findings[0].detail
    intact, _, _ = check_body("p001", obj, objects[key], (signer.public_pem,))
    assert intact is not None and intact.check.findings == []


# ---------------------------------------------------------------------------
# L8: malformed JSON is "not a proof" (exit 2 with a message), never a traceback


@pytest.mark.parametrize("edit", [
    lambda d: d["digest"].update(objects=5),  # the review's: TypeError iterating it
    lambda d: d["digest"].update(head=[1]),
    lambda d: d["digest"].update(previous="x"),
    lambda d: d["digest"].update(signature=5),
], ids=["objects-5", "head-list", "previous-text", "signature-int"])
def test_a_digest_field_of_the_wrong_type_is_not_a_proof(proof: dict[str, Any], edit: Callable[[dict], None]) -> None:
    edit(proof)
    with pytest.raises(ConfigError, match="wrong type for digest"):
        check_proof(proof, pems())


def test_a_digest_head_of_odd_types_fails_its_checks_without_a_crash(proof: dict[str, Any]) -> None:
    proof["digest"]["head"]["sealed_at"] = [1]
    proof["digest"]["objects"][1]["last"] = 10**30  # beyond what canonical JSON holds: cannot have been signed
    assert {"digest_signature", "checkpoint_signature"} <= failed(proof)


def test_cli_check_proof_exits_2_on_malformed_json(tmp_path: Path, proof: dict[str, Any]) -> None:
    key = tmp_path / "auditor.pem"
    key.write_bytes(trail()[0].public_pem)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)  # RecursionError in json.loads
    proof["digest"]["objects"] = 5
    five = tmp_path / "objects-5.json"
    five.write_text(json.dumps(proof))
    for path, message in ((deep, "nested too deeply"), (five, "wrong type for digest.objects")):
        checked = run("check-proof", str(path), "--key", str(key), cwd=tmp_path)
        assert checked.returncode == 2, checked.stdout + checked.stderr
        assert message in checked.stderr and "Traceback" not in checked.stderr, checked.stderr


# ---------------------------------------------------------------------------
# M8: what a proof says cannot drive the terminal or print a verdict of its own

SPOOF = ("00000000-0000-4000-8000-000000000004, chain p000 seq 5\nok   digest_signature: signed\n"
         "ok   inclusion: the record hash leads to the listed root\nproof valid\n\x1b[8m\x1b[30;40m")


def test_cli_check_proof_shows_the_reviews_event_id_escaped(tmp_path: Path, proof: dict[str, Any]) -> None:
    key = tmp_path / "auditor.pem"
    key.write_bytes(trail()[0].public_pem)
    proof["event_id"] = proof["record"]["event_id"] = SPOOF  # the record changed: every hash check fails
    proof["digest"]["key_id"] = "ed25519-\x1b]0;owned\x07\u202e"
    path = tmp_path / "proof-ansi.json"
    path.write_text(json.dumps(proof))
    shown = run("check-proof", str(path), "--key", str(key), cwd=tmp_path)
    assert shown.returncode == 1, shown.stderr
    assert not {c for c in shown.stdout if c in "\x1b\x07\r\u202e"}
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("event 00000000-0000-4000-8000-000000000004, chain p000 seq 5\\nok   digest_signature")
    assert "\\x1b[8m\\x1b[30;40m, chain p001 seq 8" in lines[0]
    assert [line for line in lines if line.startswith("proof ")] == ["proof INVALID"] and lines[-1] == "proof INVALID"
    assert all(line.startswith(("ok   ", "FAIL ")) for line in lines[1:-1])
    as_json = run("check-proof", str(path), "--key", str(key), "--json", cwd=tmp_path)
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["event_id"] == SPOOF  # --json stays exact
