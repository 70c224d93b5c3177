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
