"""H1: an unsigned manifest must not decide what `verify --path` checks.

The security review built four bundles full of forged events that verified
intact with the auditor's key pinned: the manifest's prefix pointing
elsewhere, its chain starts moved past the data, forged objects below a start
with genuine ones above, and nothing verified at all. Each is rebuilt here
with the unit tests' own trail builder (tests.support.builders) and must now fail, naming why.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sealtrail.cli.main import cli
from sealtrail.evidence.manifest import build_manifest, write_manifest
from sealtrail.evidence.scope import bundle_scope
from tests.support import builders
from tests.support.builders import build_trail, columns_of, event
from tests.support.signers import new_signer

SOURCE = {"bucket": "b", "prefix": builders.PREFIX, "endpoint": None}


def chains(first: int) -> dict[str, Any]:
    return {c: {"first_seq": first, "last_seq": 18} for c in builders.CHAINS}


def bundle(root: Path, trail: builders.Trail, header: dict[str, Any]) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    builders.write_bundle(root, trail)
    write_manifest(root, build_manifest(root, header))  # unsigned: anyone can write one that matches the files
    return root


@pytest.fixture(scope="module")
def forged() -> builders.Trail:
    def forged_columns(chain_no: int, i: int) -> dict[str, Any]:
        ev = event(chain_no, i)
        ev["actor"]["id"], ev["tenant"] = "mallory-was-never-here", "forged"
        return columns_of(ev)

    return build_trail(new_signer(), inputs=forged_columns)  # forged rows, signed with a key nobody trusts


def verify_path(root: Path, key: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, dict[str, Any]]:
    monkeypatch.setenv("SEALTRAIL_RETENTION__DAYS", str(builders.RETENTION_DAYS))
    monkeypatch.setenv("SEALTRAIL_S3__PREFIX", builders.PREFIX)
    result = CliRunner().invoke(cli, ["verify", "--path", str(root), "--key", str(key), "--json"],
                                standalone_mode=False, catch_exceptions=False)
    return result.return_value, json.loads(result.output)


@pytest.fixture
def real_key(tmp_path: Path) -> Path:
    path = tmp_path / "real.pem"
    path.write_bytes(builders.pristine().signer.public_pem)
    return path


def test_the_genuine_bundle_verifies(tmp_path: Path, real_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, doc = verify_path(bundle(tmp_path / "b", builders.pristine(), {"source": SOURCE, "chains": chains(1)}), real_key,
                            monkeypatch)
    assert code == 0 and doc["intact"] and doc["complete"] and doc["events"] == 36, doc["findings"]


def test_a_manifest_prefix_pointing_elsewhere_does_not_hide_the_data(
        tmp_path: Path, real_key: Path, forged: builders.Trail, monkeypatch: pytest.MonkeyPatch) -> None:
    root = bundle(tmp_path / "b", forged, {"source": {**SOURCE, "prefix": "elsewhere/"}, "chains": chains(1)})
    code, doc = verify_path(root, real_key, monkeypatch)
    assert code == 1 and not doc["intact"] and doc["objects"] == 6
    kinds = {f["kind"] for f in doc["findings"]}
    assert "manifest_mismatch" in kinds and kinds & {"unknown_key", "bad_signature"}


def test_manifest_starts_past_the_data_do_not_skip_it(
        tmp_path: Path, real_key: Path, forged: builders.Trail, monkeypatch: pytest.MonkeyPatch) -> None:
    code, doc = verify_path(bundle(tmp_path / "b", forged, {"source": SOURCE, "chains": chains(10**9)}), real_key,
                            monkeypatch)
    assert code == 1 and not doc["intact"] and doc["objects"] == 6
    assert {f["kind"] for f in doc["findings"]} & {"unknown_key", "bad_signature"}


def test_forged_objects_below_a_manifest_start_are_verified(
        tmp_path: Path, real_key: Path, forged: builders.Trail, monkeypatch: pytest.MonkeyPatch) -> None:
    real = builders.pristine()
    mixed = builders.Trail(real.signer, real.records, dict(real.objects))  # seqs 1..10 forged, 11..18 genuine
    for c in builders.CHAINS:
        for i in (0, 1):
            mixed.objects[real.key(c, i)] = forged.objects[forged.key(c, i)]
    code, doc = verify_path(bundle(tmp_path / "b", mixed, {"source": SOURCE, "chains": chains(11)}), real_key,
                            monkeypatch)
    assert code == 1 and not doc["intact"]
    bad = {(f["kind"], f["key"]) for f in doc["findings"]}
    assert any(key == real.key("p000", 0) for _, key in bad), bad
    assert {c: s.get("first_seq", 1) for c, s in doc["chains"].items()} == dict.fromkeys(builders.CHAINS, 1)


def test_a_bundle_with_nothing_to_verify_is_neither_intact_nor_complete(
        tmp_path: Path, real_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    write_manifest(root, build_manifest(root, {"source": SOURCE, "chains": chains(1)}))
    code, doc = verify_path(root, real_key, monkeypatch)
    assert code == 1 and not doc["intact"] and not doc["complete"] and doc["objects"] == 0


def test_scope_comes_from_the_data_and_other_prefixes_are_reported() -> None:
    keys = [builders.pristine().key("p000", 1), "other/" + builders.pristine().key("p001", 0).removeprefix(builders.PREFIX)]
    scope = bundle_scope(keys, builders.PREFIX, {"source": {"prefix": "x/"}, "chains": {"p000": {"first_seq": 1}}})
    assert scope.prefix == builders.PREFIX and scope.starts == {"p000": 6}
    assert scope.foreign == [keys[1]]
    assert [f.chain for f in scope.findings] == [None, "p000"]  # the manifest's prefix, and its start for p000


def test_query_and_report_read_only_what_verified_unchanged(
        tmp_path: Path, forged: builders.Trail, monkeypatch: pytest.MonkeyPatch) -> None:
    """`query --path` once showed the forged rows verify had skipped; now rows come only from trusted objects."""
    real = builders.pristine()
    mixed = builders.Trail(real.signer, real.records, dict(real.objects))
    for c in builders.CHAINS:
        mixed.objects[real.key(c, 0)] = forged.objects[forged.key(c, 0)]
    root = bundle(tmp_path / "b", mixed, {"source": SOURCE, "chains": chains(6)})
    monkeypatch.setenv("SEALTRAIL_RETENTION__DAYS", str(builders.RETENTION_DAYS))
    monkeypatch.setenv("SEALTRAIL_S3__PREFIX", builders.PREFIX)
    result = CliRunner().invoke(cli, ["query", "--path", str(root), "--format", "json", "--count-by", "tenant"],
                                standalone_mode=False, catch_exceptions=False)
    rows = json.loads(result.stdout)
    assert "forged" not in {r["tenant"] for r in rows} and sum(r["events"] for r in rows) > 0
    assert "verified unchanged" in result.stderr

    from sealtrail.config import load_settings
    from sealtrail.evidence.check import verify_evidence

    checked = verify_evidence(load_settings(), bundle=root)
    assert not checked.report.intact
    assert real.key("p000", 0) not in checked.trusted and real.key("p000", 2) in checked.trusted
