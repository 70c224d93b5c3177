"""Inclusion proofs end to end: events -> stream -> sink -> `sealtrail prove` -> `sealtrail check-proof`
with the public key the stream published, on the real embedded stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sealtrail.layout import KEYS


def cli(trail, *args: str) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return subprocess.run([sys.executable, "-m", "sealtrail.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **trail.env}, timeout=120)


def test_a_proof_from_the_bucket_checks_with_the_published_key_and_fails_when_edited(  # type: ignore[no-untyped-def]
        trail, tmp_path: Path) -> None:
    ids = trail.emit(400, seed=41)
    trail.start("stream")
    trail.start("sink")
    trail.wait_stored(400)

    out = tmp_path / "proof.json"
    deadline = time.monotonic() + 60
    while True:  # the digest is written just after the object it lists
        made = cli(trail, "prove", ids[123], "--out", str(out))
        if made.returncode == 0 or time.monotonic() > deadline:
            break
        assert made.returncode == 1 and "no digest lists" in made.stderr, made.stderr
        time.sleep(0.5)
    assert made.returncode == 0, made.stderr + trail.log_tail()
    proof = json.loads(out.read_text())
    assert proof["event_id"] == ids[123] and proof["record"]["event_id"] == ids[123]

    prefix = trail.settings.s3.prefix
    [published] = [k for k in trail.store.keys(f"{prefix}{KEYS}") if k.endswith(".pem")]
    key = tmp_path / "published.pem"
    key.write_bytes(trail.store.get(published).body)
    assert published.endswith(f"{proof['digest']['key_id']}.pem")

    checked = cli(trail, "check-proof", str(out), "--key", str(key), "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["ok"] is True

    proof["record"]["actor_id"] = "someone-else"
    out.write_text(json.dumps(proof))
    checked = cli(trail, "check-proof", str(out), "--key", str(key))
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "FAIL inclusion" in checked.stdout and "proof INVALID" in checked.stdout

    unknown = cli(trail, "prove", "0190a000-0000-7000-8000-000000000000")
    assert unknown.returncode == 1 and "not in the trail" in unknown.stderr


def test_prove_says_where_each_acknowledged_input_went(make_trail) -> None:  # type: ignore[no-untyped-def]
    """A producer holding (partition, offset) asks: sealed at seq N, rejected with reason R, or a duplicate."""
    from sealtrail.kafka import read_to_end

    trail = make_trail(partitions=1)
    ids = trail.emit(50, seed=43)
    [first] = [m.value() for batch in read_to_end(trail.settings, trail.settings.kafka.topics.events, [0])
               for m in batch if m.offset() == 0]
    trail.emit_raw([b"{not json", first])  # offsets 50 and 51: a rejected input, then a retry of offset 0's event
    trail.start("stream")
    trail.start("sink")
    trail.wait_stored(52)

    def where(offset: int) -> dict:
        deadline = time.monotonic() + 60
        while True:  # an event's proof needs its digest, written just after its object
            made = cli(trail, "prove", "--partition", "0", "--offset", str(offset))
            if made.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert made.returncode == 0, made.stderr
        return json.loads(made.stdout)

    sealed = where(7)
    assert sealed["input"]["kind"] == "event" and sealed["input"]["seq"] == 8
    assert sealed["event_id"] == ids[7] and sealed["record"]["src_offset"] == 7  # and its inclusion proof
    rejected = where(50)["input"]
    assert (rejected["kind"], rejected["reason"], rejected["input_bytes"]) == ("rejected", "invalid_json", 9)
    duplicate = where(51)["input"]
    assert duplicate["kind"] == "duplicate" and duplicate["seq"] == 52
    assert duplicate["duplicate_of"] == {"event_id": ids[0], "chain": "p000", "seq": 1, "src_offset": 0}
    missing = cli(trail, "prove", "--partition", "0", "--offset", "999")
    assert missing.returncode == 1 and "not in the trail" in missing.stderr
    half = cli(trail, "prove", "--partition", "0")
    assert half.returncode == 2 and "Traceback" not in half.stderr
