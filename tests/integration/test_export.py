"""Evidence bundles and anchors on the real embedded stack, through the `sealtrail` command.

A trail goes through real stream and sink workers into the locked bucket;
`sealtrail export` copies it out; `sealtrail verify --path` checks the copy
with no access to the bucket; tampering with the copy is named by file.
`sealtrail anchor save` keeps the latest heads outside the bucket, so an
insider who removes a chain's newest object together with its digest (which
GOVERNANCE mode allows) is caught by `verify --anchor`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from sealtrail.layout import data_prefix, digest_key, parse_data_key
from sealtrail.objects import read_table
from sealtrail.producers.client import AuditClient
from sealtrail.stack.workload import generate

# the sealing day of the objects: today in UTC, with a day either side for a run across midnight
FROM, TO = (date.today() - timedelta(days=1)).isoformat(), (date.today() + timedelta(days=1)).isoformat()


def sealtrail(trail, *args: str) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return subprocess.run([sys.executable, "-m", "sealtrail.cli", *args], env={**os.environ, **trail.env}, check=False,
                          capture_output=True, text=True, timeout=300)


def fill(trail, waves: list[list[dict]]) -> None:  # type: ignore[no-untyped-def]
    """Each wave stored before the next is sent, so each wave is its own objects."""
    trail.start("stream")
    trail.start("sink")
    total = 0
    for wave in waves:
        with AuditClient(trail.settings) as client:
            for e in wave:
                client.emit(e)
        total += len(wave)
        trail.wait_stored(total)
    for proc in trail.procs:
        trail.stop(proc)


def findings(result: subprocess.CompletedProcess) -> set[tuple[str, str]]:
    return {(f["kind"], f["key"]) for f in json.loads(result.stdout)["findings"]}


def test_exported_bundle_verifies_offline_and_names_every_tampered_file(trail, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fill(trail, [list(generate(400, seed=61)), list(generate(400, seed=62))])
    bundle = tmp_path / "bundle"
    exported = sealtrail(trail, "export", "--from", FROM, "--to", TO, "--out", str(bundle))
    assert exported.returncode == 0, exported.stderr + exported.stdout
    assert "800 events" in exported.stdout and "intact" in exported.stdout

    manifest = json.loads((bundle / "MANIFEST.json").read_text())
    assert manifest["format"] == "sealtrail.bundle.v1"
    assert manifest["source"] == {"bucket": trail.store.bucket, "prefix": trail.settings.s3.prefix,
                                  "endpoint": trail.settings.s3.endpoint}
    in_bucket = sorted(trail.store.keys(data_prefix(trail.settings.s3.prefix)))
    listed = {f["path"] for f in manifest["files"]}
    assert set(in_bucket) <= listed and {f"{k}.lock.json" for k in in_bucket} <= listed
    assert sum(c["objects"] for c in manifest["chains"].values()) == len(in_bucket)
    assert all(c["first_seq"] == 1 for c in manifest["chains"].values())
    assert json.loads((bundle / "verification.json").read_text())["ok"] is True
    sidecar = json.loads((bundle / f"{in_bucket[0]}.lock.json").read_text())
    stored = trail.store.get(in_bucket[0])
    assert (sidecar["mode"], sidecar["version_id"], sidecar["checksum_sha256"]) == (
        "COMPLIANCE", stored.version_id, stored.checksum_sha256)

    intact = sealtrail(trail, "verify", "--path", str(bundle), "--json")
    assert intact.returncode == 0, intact.stdout
    assert json.loads(intact.stdout)["events"] == 800

    again = sealtrail(trail, "export", "--from", FROM, "--to", TO, "--out", str(bundle))
    assert again.returncode == 2 and "not empty" in again.stderr

    # one byte of one exported Parquet object
    edited = tmp_path / "edited"
    shutil.copytree(bundle, edited)
    victim = in_bucket[-1]
    body = bytearray((edited / victim).read_bytes())
    body[len(body) // 2] ^= 0xFF
    (edited / victim).write_bytes(bytes(body))
    result = sealtrail(trail, "verify", "--path", str(edited), "--json")
    assert result.returncode == 1
    assert {("manifest_mismatch", victim), ("checksum_mismatch", victim)} <= findings(result)

    # a file removed (the newest digest of a chain: the bundle alone would then look complete)
    removed = tmp_path / "removed"
    shutil.copytree(bundle, removed)
    chain = parse_data_key(victim).chain
    last = manifest["chains"][chain]["last_seq"]
    gone = digest_key(trail.settings.s3.prefix, chain, last)
    (removed / gone).unlink()
    result = sealtrail(trail, "verify", "--path", str(removed), "--json")
    assert result.returncode == 1
    assert ("manifest_mismatch", gone) in findings(result)

    # a file added
    added = tmp_path / "added"
    shutil.copytree(bundle, added)
    stray = f"{trail.settings.s3.prefix}data/notes.txt"
    (added / stray).write_text("added later")
    result = sealtrail(trail, "verify", "--path", str(added))
    assert result.returncode == 1
    assert f"manifest_mismatch: chain None seq None object {stray}" in result.stdout


def test_tenant_export_holds_every_event_of_the_tenant(trail, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def only(tenant: str, events: list[dict]) -> list[dict]:
        return [{**e, "tenant": tenant} for e in events]

    # initech's events only in the middle wave: the objects of the waves around it hold none
    fill(trail, [only("acme", list(generate(300, seed=71))), list(generate(300, seed=72)),
                 only("globex", list(generate(300, seed=73)))])
    want = set()
    for key in trail.store.keys(data_prefix(trail.settings.s3.prefix)):
        table = read_table(trail.store.get(key).body)
        want |= {i for i, t in zip(table.column("event_id").to_pylist(), table.column("tenant").to_pylist(),
                                   strict=True) if t == "initech"}
    assert 0 < len(want) < 300

    bundle = tmp_path / "bundle"
    exported = sealtrail(trail, "export", "--from", FROM, "--to", TO, "--tenant", "initech", "--out", str(bundle))
    assert exported.returncode == 0, exported.stderr + exported.stdout
    manifest = json.loads((bundle / "MANIFEST.json").read_text())
    got, objects = set(), 0
    for entry in manifest["files"]:
        if parse_data_key(entry["path"]):
            objects += 1
            table = pq.read_table(bundle / entry["path"])
            got |= {i for i, t in zip(table.column("event_id").to_pylist(), table.column("tenant").to_pylist(),
                                      strict=True) if t == "initech"}
    assert got == want
    assert objects < len(list(trail.store.keys(data_prefix(trail.settings.s3.prefix))))  # acme's objects left out
    assert any(c["first_seq"] > 1 for c in manifest["chains"].values())  # so the bundle starts mid-chain
    extract = pq.read_table(bundle / "extracts/tenant-initech.parquet")
    assert set(extract.column("event_id").to_pylist()) == want
    assert manifest["verification"]["ok"], (bundle / "verification.txt").read_text()

    result = sealtrail(trail, "verify", "--path", str(bundle))
    assert result.returncode == 0, result.stdout + result.stderr


def test_anchor_catches_a_tail_removed_with_its_digest(make_trail, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trail = make_trail(retention_mode="GOVERNANCE")  # so the test can play an insider who bypasses it
    fill(trail, [list(generate(300, seed=81 + wave)) for wave in range(3)])
    anchor = tmp_path / "anchor.json"
    saved = sealtrail(trail, "anchor", "save", "--out", str(anchor), "--to-postgres")
    assert saved.returncode == 0, saved.stderr
    doc = json.loads(anchor.read_text())
    assert len(doc["chains"]) == trail.partitions
    from_db = tmp_path / "from-db.json"
    assert sealtrail(trail, "anchor", "latest", "--out", str(from_db)).returncode == 0
    assert json.loads(from_db.read_text()) == doc
    assert sealtrail(trail, "verify", "--anchor", str(anchor)).returncode == 0

    # the insider removes the newest object of the chain with most objects, and the digest that lists it
    prefix = trail.settings.s3.prefix
    objects = [o for o in map(parse_data_key, trail.store.keys(data_prefix(prefix))) if o]
    chain = max({o.chain for o in objects}, key=lambda c: sum(o.chain == c for o in objects))
    newest = max((o for o in objects if o.chain == chain), key=lambda o: o.last)
    assert newest.first > 1
    client, bucket = trail.store.client, trail.store.bucket
    for key in (newest.key, digest_key(prefix, chain, newest.last)):
        for v in list(trail.store.versions(key)):
            client.delete_object(Bucket=bucket, Key=key, VersionId=v.version_id, BypassGovernanceRetention=True)

    plain = sealtrail(trail, "verify", "--json")
    assert plain.returncode == 0, plain.stdout  # the shorter trail is consistent on its own
    for path in (anchor, from_db):
        result = sealtrail(trail, "verify", "--anchor", str(path), "--json")
        assert result.returncode == 1
        report = json.loads(result.stdout)
        truncated = [f for f in report["findings"] if f["kind"] == "truncated_tail"]
        assert truncated and {f["chain"] for f in report["findings"]} == {chain}
        assert min(f["seq"] for f in truncated) == newest.first


def test_verify_new_checks_only_what_was_sealed_after_the_anchor(make_trail, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A daily run on the real bucket: anchor, more events, `verify --anchor --new` reads only the new objects,
    and a new object removed after the anchor is named."""
    trail = make_trail(retention_mode="GOVERNANCE")
    fill(trail, [list(generate(300, seed=91 + wave)) for wave in range(2)])
    anchor = tmp_path / "anchor.json"
    assert sealtrail(trail, "anchor", "save", "--out", str(anchor)).returncode == 0
    heads = {c: a["head"]["seq"] for c, a in json.loads(anchor.read_text())["chains"].items()}

    nothing_new = sealtrail(trail, "verify", "--anchor", str(anchor), "--new", "--json")
    assert nothing_new.returncode == 0, nothing_new.stdout
    assert json.loads(nothing_new.stdout)["objects"] == 0

    trail.start("stream")
    trail.start("sink")
    for wave in range(2):  # two waves, so each chain has new objects with a later one after them
        with AuditClient(trail.settings) as client:
            for e in generate(150, seed=99 + wave):
                client.emit(e)
        trail.wait_stored(sum(heads.values()) + 150 * (wave + 1))
    for proc in trail.procs:
        trail.stop(proc)
    full = json.loads(sealtrail(trail, "verify", "--json").stdout)
    result = sealtrail(trail, "verify", "--anchor", str(anchor), "--new", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["intact"] and report["complete"] and report["continued_from"] == heads
    assert report["events"] == 300 and 0 < report["objects"] < full["objects"]
    assert "only what was sealed since the anchor" in sealtrail(trail, "verify", "--anchor", str(anchor),
                                                                 "--new").stdout

    # an object sealed after the anchor is removed, every version (GOVERNANCE bypass): the new run names it
    prefix = trail.settings.s3.prefix
    new = [o for o in map(parse_data_key, trail.store.keys(data_prefix(prefix))) if o and o.first > heads[o.chain]
           and o.last < max(x.last for x in map(parse_data_key, trail.store.keys(data_prefix(prefix)))
                            if x and x.chain == o.chain)]
    assert new, "no new object with a later one after it"
    victim = new[0]
    for v in list(trail.store.versions(victim.key)):
        trail.store.client.delete_object(Bucket=trail.store.bucket, Key=victim.key, VersionId=v.version_id,
                                         BypassGovernanceRetention=True)
    result = sealtrail(trail, "verify", "--anchor", str(anchor), "--new", "--json")
    assert result.returncode == 1
    kinds = {(f["kind"], f["chain"]) for f in json.loads(result.stdout)["findings"]}
    assert ("object_deleted", victim.chain) in kinds, kinds
