"""Evidence bundles offline: export from a bundle-shaped source, the manifest, anchors.

The source trail is built the way the pipeline builds it (validate ->
seal_batch -> to_parquet -> digests), spread over two days, and laid out as a
folder read through DirectoryStore (export reads any store with versions/get).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import uuid
from datetime import date, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from sealtrail.chain import Accepted, ChainHead, seal_batch
from sealtrail.cli.main import cli
from sealtrail.config import RetentionSettings, S3Settings, Settings
from sealtrail.digest import DigestLink, ListedObject, build_digest, head_of
from sealtrail.errors import ConfigError
from sealtrail.evidence.anchor import check_anchor, digest_sha256, read_anchor, save_anchor
from sealtrail.evidence.bundle import DirectoryStore
from sealtrail.evidence.export import export_bundle, oldest_version, select_objects, tenant_span
from sealtrail.evidence.findings import FindingKind as K
from sealtrail.evidence.findings import Report
from sealtrail.evidence.manifest import MANIFEST, build_manifest, check_manifest, write_manifest
from sealtrail.evidence.walk import verify_store
from sealtrail.layout import data_key, public_key_key
from sealtrail.objects import to_parquet
from sealtrail.signing import Signer
from sealtrail.store import ObjectVersion, sha256_b64
from tests.support.builders import columns_of
from tests.support.signers import new_signer
from tests.support.stores import NOW, put_file

PREFIX = "trail/"
DAYS = ("2024-03-01", "2024-03-02", "2024-03-02")  # the sealing day of each batch
BATCHES = (7, 5, 6)  # one object per batch: seqs 1..7, 8..12, 13..18, each ending on a signed head
CHAINS = ("p000", "p001")
TENANTS = ("acme", "globex", "initech")
SETTINGS = Settings(s3=S3Settings(prefix=PREFIX), retention=RetentionSettings(days=30))


def event(chain_no: int, i: int) -> dict[str, Any]:
    # tenant "initech" only in chain p001's second batch (seqs 8..12)
    tenant = "initech" if (chain_no == 1 and 7 <= i < 12 and i % 2) else TENANTS[i % 2]
    return {
        "event_id": str(uuid.UUID(int=(chain_no << 64) | i, version=4)),
        "occurred_at": f"2024-03-01T09:00:{i:02d}.000000+00:00",
        "category": "auth", "action": "auth.login", "actor": {"id": f"user-{i % 3}"},
        "tenant": tenant, "source": "web", "metadata": {"n": i},
    }


@cache
def source_objects() -> tuple[Signer, dict[str, bytes]]:
    signer = new_signer()
    heads = {p: ChainHead(f"p{p:03d}") for p in range(len(CHAINS))}
    objects: dict[str, bytes] = {}
    previous: dict[str, DigestLink | None] = dict.fromkeys(CHAINS)
    offset = 0
    for b, (size, day) in enumerate(zip(BATCHES, DAYS, strict=True)):
        batch = []
        for i in range(size):
            for p in range(len(CHAINS)):
                batch.append(Accepted(p, offset + i, columns_of(event(p, offset + i))))
        offset += size
        prevs = {c: heads[p].hash for p, c in enumerate(CHAINS)}
        sealed = seal_batch(heads, batch, signer, f"{day}T10:00:0{b}.000000Z").sealed
        for chain in CHAINS:
            records = [r for r in sealed if r.chain == chain]
            prev = prevs[chain]
            body = to_parquet(records, prev)
            prev = records[-1].hash
            key = data_key(PREFIX, day, chain, records[0].seq, records[-1].seq)
            objects[key] = body
            listed = [ListedObject(key, "v1", sha256_b64(body), records[0].seq, records[-1].seq, len(body))]
            dkey, dbody = build_digest(PREFIX, chain, listed, head_of(records[-1]), previous[chain], signer,
                                       f"{day}T10:00:09.000000Z")
            objects[dkey] = dbody
            previous[chain] = DigestLink(dkey, hashlib.sha256(dbody).hexdigest(), records[-1].seq)
    objects[public_key_key(PREFIX, signer.key_id)] = signer.public_pem
    return signer, objects


def write_source(root: Path, drop: tuple[str, ...] = ()) -> DirectoryStore:
    _, objects = source_objects()
    for key, body in objects.items():
        if key in drop:
            continue
        put_file(root, key, body, version_id="v1")
    return DirectoryStore(root)


@pytest.fixture
def source(tmp_path: Path) -> DirectoryStore:
    return write_source(tmp_path / "bucket")


@pytest.fixture
def bundle(tmp_path: Path, source: DirectoryStore) -> Path:
    out = tmp_path / "bundle"
    export_bundle(source, SETTINGS, out, date(2024, 3, 1), date(2024, 3, 2))
    return out


# ---------------------------------------------------------------------------
# export


def test_export_of_the_whole_trail_verifies_and_lists_every_file(source: DirectoryStore, tmp_path: Path) -> None:
    assert verify_store(source, SETTINGS).ok
    result = export_bundle(source, SETTINGS, tmp_path / "out", date(2024, 3, 1), date(2024, 3, 2))
    assert result.report.ok, result.report.findings
    assert result.report.events == 2 * sum(BATCHES)
    m = result.manifest
    assert m["chains"] == {c: {"first_seq": 1, "last_seq": 18, "objects": 3, "digests": 3} for c in CHAINS}
    files = {f["path"] for f in m["files"]}
    _, objects = source_objects()
    assert set(objects) <= files
    assert {f"{k}.lock.json" for k in objects} <= files
    assert {"verification.json", "verification.txt"} <= files and MANIFEST not in files
    sidecar = json.loads((tmp_path / "out" / next(k for k in objects if k.endswith(".parquet"))
                          ).with_name(Path(next(k for k in objects if k.endswith(".parquet"))).name + ".lock.json")
                         .read_text())
    assert sidecar["version_id"] == "v1" and sidecar["mode"] == "COMPLIANCE"
    assert json.loads((tmp_path / "out/verification.json").read_text())["ok"] is True
    assert check_manifest(tmp_path / "out") == (m, [])


def test_exported_digests_name_the_buckets_version_ids(bundle: Path) -> None:
    """The digests list S3 version ids; the bundle must present the same ones, or every object is NEWER_VERSION."""
    versions = {v.version_id for v in DirectoryStore(bundle).versions(PREFIX)}
    assert versions == {"v1"}


def test_export_into_a_non_empty_folder_needs_force(source: DirectoryStore, bundle: Path) -> None:
    with pytest.raises(ConfigError, match="not empty"):
        export_bundle(source, SETTINGS, bundle, date(2024, 3, 1), date(2024, 3, 2))
    (bundle / "mine.txt").write_text("not the bundle's")
    result = export_bundle(source, SETTINGS, bundle, date(2024, 3, 2), date(2024, 3, 2), force=True)
    assert not (bundle / data_key(PREFIX, "2024-03-01", "p000", 1, 7)).exists()  # the old bundle's object is gone
    assert (bundle / "mine.txt").exists()  # what the export did not write is left alone...
    _, findings = check_manifest(bundle)
    assert [(f.kind, f.key) for f in findings] == [(K.MANIFEST_MISMATCH, "mine.txt")]  # ...and is not evidence
    assert result.manifest["chains"]["p000"]["first_seq"] == 8


def test_an_empty_window_is_an_error(source: DirectoryStore, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no data objects"):
        export_bundle(source, SETTINGS, tmp_path / "out", date(2024, 4, 1), date(2024, 4, 2))
    with pytest.raises(ConfigError, match="before"):
        export_bundle(source, SETTINGS, tmp_path / "out2", date(2024, 3, 2), date(2024, 3, 1))


def test_tenant_export_keeps_whole_segments_from_first_to_last_holding_it(source: DirectoryStore,
                                                                           tmp_path: Path) -> None:
    result = export_bundle(source, SETTINGS, tmp_path / "out", date(2024, 3, 1), date(2024, 3, 2), tenant="initech")
    assert result.manifest["chains"] == {"p001": {"first_seq": 8, "last_seq": 12, "objects": 1, "digests": 1}}
    extract = pq.read_table(tmp_path / "out/extracts/tenant-initech.parquet")
    assert set(extract.column("tenant").to_pylist()) == {"initech"}
    assert extract.num_rows == 3  # offsets 7, 9, 11 of p001: seqs 8, 10, 12
    assert sorted(extract.column("seq").to_pylist()) == [8, 10, 12]
    assert "extracts/tenant-initech.parquet" in {f["path"] for f in result.manifest["files"]}


def test_window_after_the_chains_beginning(source: DirectoryStore, tmp_path: Path) -> None:
    result = export_bundle(source, SETTINGS, tmp_path / "out", date(2024, 3, 2), date(2024, 3, 2))
    assert {c: (i["first_seq"], i["last_seq"]) for c, i in result.manifest["chains"].items()} == {
        "p000": (8, 18), "p001": (8, 18)}
    assert result.manifest["verification"]["windowed"] is True
    assert result.report.ok, result.report.findings


# ---------------------------------------------------------------------------
# selection (pure)


def version(key: str, vid: str, second: int, latest: bool, marker: bool = False) -> ObjectVersion:
    return ObjectVersion(key, vid, latest, marker, 0 if marker else 10, datetime(2024, 3, 1, 10, 0, second, tzinfo=timezone.utc))


def test_the_oldest_version_is_the_sinks_and_newer_ones_are_noted() -> None:
    key = data_key(PREFIX, "2024-03-01", "p000", 1, 7)
    history = [version(key, "new", 5, True), version(key, "orig", 1, False)]
    assert oldest_version(list(enumerate(history))) == (history[1], False, 1)
    sel = select_objects(history, PREFIX, date(2024, 3, 1), date(2024, 3, 1))
    assert sel.objects[key][1].version_id == "orig"
    assert "newer version" in sel.notes[0]
    hidden = [version(key, "dm", 5, True, marker=True), version(key, "orig", 1, False)]
    sel = select_objects(hidden, PREFIX, date(2024, 3, 1), date(2024, 3, 1))
    assert sel.objects[key][1].version_id == "orig" and "delete marker" in sel.notes[0]


def test_selection_by_dt_and_chain_ignores_foreign_names() -> None:
    a = data_key(PREFIX, "2024-03-01", "p000", 1, 7)
    b = data_key(PREFIX, "2024-03-02", "p000", 8, 9)
    c = data_key(PREFIX, "2024-03-02", "p001", 1, 9)
    listing = [version(k, "1", 1, True) for k in (a, b, c, f"{PREFIX}data/dt=2024-03-02/chain=p000/evil.parquet")]
    sel = select_objects(listing, PREFIX, date(2024, 3, 2), date(2024, 3, 2), chains=["p000"])
    assert {ch: [o.key for o in objs] for ch, objs in sel.window.items()} == {"p000": [b]}
    assert set(sel.objects) == {a, b}


def test_tenant_span_fills_the_gaps_between_hits() -> None:
    objs = [data_key(PREFIX, "2024-03-01", "p000", i * 10 + 1, i * 10 + 10) for i in range(5)]
    parsed = [select_objects([version(k, "1", 1, True)], PREFIX, date(2024, 3, 1), date(2024, 3, 1)).window["p000"][0]
              for k in objs]
    holds = {objs[1]: True, objs[3]: True}
    assert [o.key for o in tenant_span(parsed, holds)] == objs[1:4]
    assert tenant_span(parsed, {}) == []


# ---------------------------------------------------------------------------
# manifest


def test_manifest_names_a_changed_a_missing_and_an_added_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a/one.bin").write_bytes(b"one")
    (tmp_path / "two.txt").write_bytes(b"two")
    (tmp_path / "three.txt").write_bytes(b"three")
    write_manifest(tmp_path, build_manifest(tmp_path, {"created_at": "now"}))
    assert check_manifest(tmp_path)[1] == []
    (tmp_path / "a/one.bin").write_bytes(b"onE")
    (tmp_path / "two.txt").unlink()
    (tmp_path / "a/stray").write_bytes(b"")
    findings = check_manifest(tmp_path)[1]
    assert {(f.kind, f.key) for f in findings} == {
        (K.MANIFEST_MISMATCH, "a/one.bin"), (K.MANIFEST_MISMATCH, "two.txt"), (K.MANIFEST_MISMATCH, "a/stray")}
    detail = {f.key: f.detail for f in findings}
    assert "changed" in detail["a/one.bin"] and "missing" in detail["two.txt"] and "not listed" in detail["a/stray"]


def test_a_folder_without_manifest_has_no_manifest_findings(tmp_path: Path) -> None:
    assert check_manifest(tmp_path) == (None, [])


def test_an_unreadable_or_escaping_manifest_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / MANIFEST).write_text("{not json")
    assert check_manifest(tmp_path)[1][0].kind == K.MANIFEST_MISMATCH
    (tmp_path / MANIFEST).write_text(json.dumps({"format": "sealtrail.bundle.v1", "files": [
        {"path": "../etc/passwd", "sha256": "x", "size": 1}]}))
    [f] = check_manifest(tmp_path)[1]
    assert "outside the bundle" in f.detail


# ---------------------------------------------------------------------------
# verify --path through the CLI


@pytest.fixture(autouse=True)
def auditor_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's settings: no running stack, and the retention the source trail was locked under."""
    monkeypatch.setenv("SEALTRAIL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SEALTRAIL_RETENTION__DAYS", "30")


def run_verify(*args: str) -> Any:
    return CliRunner().invoke(cli, ["verify", *args], standalone_mode=False, catch_exceptions=False)


def test_verify_path_is_intact_then_names_an_edited_object(bundle: Path) -> None:
    assert run_verify("--path", str(bundle)).return_value == 0
    key = data_key(PREFIX, "2024-03-02", "p001", 8, 12)
    path = bundle / key
    body = bytearray(path.read_bytes())
    body[len(body) // 2] ^= 0x01
    path.write_bytes(bytes(body))
    result = run_verify("--path", str(bundle), "--json")
    assert result.return_value == 1
    found = {(f["kind"], f["key"]) for f in json.loads(result.output)["findings"]}
    assert ("manifest_mismatch", key) in found and ("checksum_mismatch", key) in found


def test_verify_path_uses_the_bundles_prefix(tmp_path: Path, bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALTRAIL_S3__PREFIX", "elsewhere/")
    result = run_verify("--path", str(bundle))
    assert result.return_value == 0, result.output
    assert "36 events" in result.output


# ---------------------------------------------------------------------------
# anchors


def test_anchor_finds_a_tail_removed_with_its_digest(tmp_path: Path, source: DirectoryStore) -> None:
    anchor = save_anchor(source, SETTINGS)
    assert {c: a["head"]["seq"] for c, a in anchor["chains"].items()} == {"p000": 18, "p001": 18}
    report = verify_store(source, SETTINGS)
    assert check_anchor(anchor, report, lambda k: digest_sha256(source, k)) == []

    # the insider removes p000's newest object and its digest: the rest verifies intact on its own
    _, objects = source_objects()
    tail = [k for k in objects if "p000-000000000013" in k or "p000-000000000018" in k]
    assert len(tail) == 2
    cut = write_source(tmp_path / "cut", drop=tuple(tail))
    report = verify_store(cut, SETTINGS)
    assert report.ok, report.findings
    findings = check_anchor(anchor, report, lambda k: digest_sha256(cut, k))
    assert {(f.kind, f.chain) for f in findings} == {(K.TRUNCATED_TAIL, "p000")}
    assert min(f.seq for f in findings) == 13


def test_anchor_finds_an_altered_digest() -> None:
    anchor = {"format": "sealtrail.anchor.v1", "created_at": "t", "chains": {
        "p000": {"digest": "d", "sha256": "aa", "head": {"seq": 5, "hash": "ff"}}}}
    report = Report(chains={"p000": {"head_seq": 5, "head_hash": "ff"}})
    [f] = check_anchor(anchor, report, lambda k: "bb")
    assert f.kind == K.DIGEST_ALTERED
    report = Report(chains={"p000": {"head_seq": 5, "head_hash": "ee"}})
    assert [f.kind for f in check_anchor(anchor, report, lambda k: "aa")] == [K.CELL_CHANGED]
    assert {f.kind for f in check_anchor(anchor, Report(), lambda k: None)} == {K.TRUNCATED_TAIL}


class _Counting(DirectoryStore):
    """A DirectoryStore that records which prefixes are listed."""

    listed: list[str]

    def versions(self, prefix: str, start_after: str | None = None):  # type: ignore[no-untyped-def]
        self.listed.append(prefix)
        return super().versions(prefix, start_after)


def _anchored_at_12(tmp_path: Path) -> dict[str, Any]:
    """An anchor saved when each chain ended at seq 12 (its newest object and digest not yet written)."""
    _, objects = source_objects()
    newest = tuple(k for k in objects if "-000000000013-" in k or k.endswith("-000000000018.json"))
    assert len(newest) == 4
    return save_anchor(write_source(tmp_path / "yesterday", drop=newest), SETTINGS)


def test_verify_continued_from_an_anchor_reads_only_what_is_new(tmp_path: Path) -> None:
    anchor = _anchored_at_12(tmp_path)
    store = _Counting(write_source(tmp_path / "today").root)
    store.listed = []
    report = verify_store(store, SETTINGS, continued={c: a["head"]["seq"] for c, a in anchor["chains"].items()})
    assert report.intact and report.complete, report.findings
    assert report.objects == 2 and report.events == 12  # seqs 13..18 of both chains, nothing before
    assert {c: s["head_seq"] for c, s in report.chains.items()} == {"p000": 18, "p001": 18}
    assert all(s.get("anchored_on") for s in report.chains.values())  # each continues the anchored digest
    assert PREFIX + "data/" not in store.listed and PREFIX + "digests/" not in store.listed  # no whole listing
    assert check_anchor(anchor, report, lambda k: digest_sha256(store, k)) == []
    assert report.as_dict()["continued_from"] == {"p000": 12, "p001": 12}


def test_verify_continued_from_an_anchor_finds_what_changed_since(tmp_path: Path) -> None:
    anchor = _anchored_at_12(tmp_path)
    heads = {c: a["head"]["seq"] for c, a in anchor["chains"].items()}
    _, objects = source_objects()
    new = data_key(PREFIX, "2024-03-02", "p000", 13, 18)
    removed = write_source(tmp_path / "removed", drop=(new,))
    report = verify_store(removed, SETTINGS, continued=heads)
    assert not report.complete and K.OBJECT_DELETED in {f.kind for f in report.findings}

    forged = write_source(tmp_path / "forged")
    table = pq.read_table(forged.root / new)
    metadata = table.column("metadata").to_pylist()
    metadata[0] = '{"n":999}'
    import pyarrow as pa

    pq.write_table(table.set_column(table.schema.get_field_index("metadata"), "metadata",
                                    pa.array(metadata, table.schema.field("metadata").type)).replace_schema_metadata(
        table.schema.metadata), forged.root / new)
    report = verify_store(forged, SETTINGS, continued=heads)
    assert not report.intact


def test_verify_continued_with_nothing_new_stands_on_the_anchor(tmp_path: Path, source: DirectoryStore) -> None:
    anchor = save_anchor(source, SETTINGS)
    report = verify_store(source, SETTINGS, continued={c: a["head"]["seq"] for c, a in anchor["chains"].items()})
    assert report.objects == 0 and report.intact and report.complete, report.findings
    assert check_anchor(anchor, report, lambda k: digest_sha256(source, k)) == []


@pytest.mark.parametrize("text", ["[" * 100_000, "{\"a\":" * 100_000, "not json", "[1, 2]"])
def test_a_malformed_anchor_file_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "anchor.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        read_anchor(path)
    assert str(path) in str(raised.value)


def test_verify_with_a_deeply_nested_anchor_exits_2_with_a_message(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from sealtrail.cli.main import main

    path = tmp_path / "anchor.json"
    path.write_text("[" * 100_000)
    monkeypatch.setattr("sys.argv", ["sealtrail", "--home", str(tmp_path), "verify", "--anchor", str(path)])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "unreadable anchor file" in err and "nested too deeply" in err and "Traceback" not in err


def test_verify_new_needs_an_anchor() -> None:
    result = CliRunner().invoke(cli, ["verify", "--new"], standalone_mode=False)
    assert result.exception is not None and "--anchor" in str(result.exception)


# ---------------------------------------------------------------------------
# M3: a bucket writer's key names cannot make export write outside the bundle

EVIL = "trail/keys/../../../escaped-by-export.pem"
PLANTED = b"# written outside the bundle folder by sealtrail export\n"


class BucketWithPlantedKey(DirectoryStore):
    """A genuine trail as the "bucket", plus one planted object under keys/ (AWS S3 stores `..` literally)."""

    def __init__(self, root: Path, planted: str = EVIL) -> None:
        super().__init__(root)
        self.planted = planted

    def versions(self, prefix: str, start_after: str | None = None):  # type: ignore[no-untyped-def]
        yield from super().versions(prefix, start_after)
        if self.planted.startswith(prefix):
            yield ObjectVersion(self.planted, "v1", True, False, len(PLANTED), NOW)

    def get(self, key: str, version_id: str | None = None):  # type: ignore[no-untyped-def]
        if key == self.planted:
            from sealtrail.store import StoredObject

            return StoredObject(key, "v1", PLANTED, sha256_b64(PLANTED), "COMPLIANCE", NOW + timedelta(days=31))
        return super().get(key, version_id)


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("planted", [
    EVIL,  # the review's key: up and out of the bundle
    "trail/keys/%2e%2e/x.pem",  # what SeaweedFS accepts: a literal name, still not a key the trail writes
    "trail/keys/sub\\..\\..\\x.pem",  # backslashes
    "trail/keys/ed25519-0123456789abcdef.pem.lock.json.pem",
])
def test_export_copies_only_key_names_the_trail_writes_and_names_the_others(tmp_path: Path, planted: str) -> None:
    write_source(tmp_path / "exports" / "bucket")
    before = _files(tmp_path)
    out = tmp_path / "exports" / "bundle-1"
    result = export_bundle(BucketWithPlantedKey(tmp_path / "exports" / "bucket", planted), SETTINGS, out,
                           date(2024, 3, 1), date(2024, 3, 1))
    written = _files(tmp_path) - before
    assert written and all(p.resolve().is_relative_to(out.resolve()) for p in written), written
    assert not (tmp_path / "escaped-by-export.pem").exists() and not (tmp_path / "exports/escaped-by-export.pem").exists()
    assert all(PLANTED not in p.read_bytes() for p in written)
    assert [n for n in result.manifest["notes"] if repr(planted) in n and "not exported" in n]
    signer, _ = source_objects()
    assert (out / public_key_key(PREFIX, signer.key_id)).is_file()  # the real key is still exported
    assert result.report.ok, result.report.findings


@pytest.mark.parametrize("rel", ["../x", "a/../../x", "/etc/x", "a\\..\\x", "", "a/\x00", "."])
def test_the_bundle_writer_refuses_names_outside_the_bundle(tmp_path: Path, rel: str) -> None:
    from sealtrail.evidence.export import contained

    with pytest.raises(ConfigError):
        contained(tmp_path / "out", rel)
    assert contained(tmp_path / "out", "trail/keys/a.pem") == (tmp_path / "out/trail/keys/a.pem").resolve()


def test_the_bundle_writer_does_not_follow_a_symlink_out(tmp_path: Path) -> None:
    from sealtrail.evidence.export import contained

    (tmp_path / "out" / "trail").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "trail" / "keys").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError):
        contained(tmp_path / "out", "trail/keys/ed25519-0123456789abcdef.pem")


# ---------------------------------------------------------------------------
# L8: verify --path on malformed JSON in a bundle: a finding or a ConfigError, never a traceback


@pytest.mark.parametrize("text", ["[" * 100_000, '{"format": "sealtrail.bundle.v1", "files": [], "chains": 5}',
                                  '{"format": "sealtrail.bundle.v1", "files": [], "source": "bucket"}'],
                         ids=["deep", "chains-5", "source-text"])
def test_verify_path_names_a_malformed_manifest(bundle: Path, text: str) -> None:
    (bundle / MANIFEST).write_text(text)
    result = run_verify("--path", str(bundle), "--json")
    assert result.return_value == 1
    found = [f for f in json.loads(result.output)["findings"] if f["key"] == MANIFEST]
    assert found and found[0]["kind"] == "manifest_mismatch" and "unreadable manifest" in found[0]["detail"]


@pytest.mark.parametrize("text", ["[" * 100_000, "[1]", '{"last_modified": 5}', '{"retain_until": "soon"}',
                                  '{"version_id": ["v1"]}'], ids=["deep", "list", "int-time", "bad-time", "list-id"])
def test_verify_path_refuses_a_malformed_lock_sidecar(bundle: Path, text: str) -> None:
    key = data_key(PREFIX, "2024-03-02", "p001", 8, 12)
    (bundle / f"{key}.lock.json").write_text(text)
    with pytest.raises(ConfigError, match="unreadable lock sidecar"):
        run_verify("--path", str(bundle))


def test_cli_verify_path_exits_2_on_a_deeply_nested_sidecar(bundle: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    key = data_key(PREFIX, "2024-03-02", "p001", 8, 12)
    (bundle / f"{key}.lock.json").write_text("[" * 100_000)
    done = subprocess.run([sys.executable, "-m", "sealtrail.cli", "verify", "--path", str(bundle)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "SEALTRAIL_HOME": str(tmp_path / "home"),
                               "SEALTRAIL_RETENTION__DAYS": "30"})
    assert done.returncode == 2 and "nested too deeply" in done.stderr and "Traceback" not in done.stderr, done.stderr


# ---------------------------------------------------------------------------
# M8: a bundle's file names cannot drive the terminal or print a verdict of their own

ANSI_NAME = "x\x1b[2K\rintact\n\x1b[8m"


def test_verify_path_shows_a_file_name_with_escapes_escaped(bundle: Path) -> None:
    (bundle / PREFIX / "data" / ANSI_NAME).write_text("planted")
    shown = run_verify("--path", str(bundle))
    assert shown.return_value == 1
    assert not {c for c in shown.output if c in "\x1b\r"}
    lines = shown.output.splitlines()
    escaped = f"{PREFIX}data/x\\x1b[2K\\rintact\\n\\x1b[8m"
    assert [line for line in lines if line.startswith("FAIL ")] == [
        f"FAIL manifest_mismatch: chain None seq None object {escaped} version None: "
        "in the bundle but not listed in the manifest: added after export",
        f"FAIL object_injected: chain None seq None object {escaped} version 1: not a data object name the sink writes"]
    assert "intact" not in lines and lines[-3:] == ["2 problems found", "intact: no (1 manifest_mismatch, "
                                                    "1 object_injected)", "complete: yes"]
    as_json = json.loads(run_verify("--path", str(bundle), "--json").output)
    assert {f["key"] for f in as_json["findings"]} == {f"{PREFIX}data/{ANSI_NAME}"}  # --json stays exact


def test_an_error_naming_a_file_with_escapes_is_printed_escaped(bundle: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    key = data_key(PREFIX, "2024-03-02", "p001", 8, 12)
    (bundle / f"{key}.lock.json").unlink()
    odd = bundle / PREFIX / "data" / f"{ANSI_NAME}.lock.json"
    odd.write_text("[1]")  # a malformed sidecar of the planted name: the error quotes the path
    (bundle / PREFIX / "data" / ANSI_NAME).write_text("planted")
    done = subprocess.run([sys.executable, "-m", "sealtrail.cli", "verify", "--path", str(bundle)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "SEALTRAIL_HOME": str(tmp_path / "home"),
                               "SEALTRAIL_RETENTION__DAYS": "30"})
    assert done.returncode == 2 and "unreadable lock sidecar" in done.stderr, done.stderr
    assert "x\\x1b[2K\\rintact\\n\\x1b[8m" in done.stderr and not {c for c in done.stderr if c in "\x1b\r"}


def test_export_names_a_planted_key_with_escapes_escaped(tmp_path: Path) -> None:
    write_source(tmp_path / "bucket")
    planted = f"{PREFIX}keys/{ANSI_NAME}.pem"
    result = export_bundle(BucketWithPlantedKey(tmp_path / "bucket", planted), SETTINGS, tmp_path / "out",
                           date(2024, 3, 1), date(2024, 3, 2))
    text = (tmp_path / "out" / "verification.txt").read_text()
    assert not {c for c in text if c in "\x1b\r"} and text.endswith("intact\nintact: yes\ncomplete: yes\n")
    assert [n for n in result.manifest["notes"] if "not exported" in n and "\\x1b[2K\\rintact\\n" in n]


@pytest.mark.parametrize("edit", [
    lambda d: d.update(objects=5),
    lambda d: d["objects"].__setitem__(0, [1]),
    lambda d: d["objects"][0].update(key=1.5),
    lambda d: d["objects"][0].update(first="1"),
    lambda d: d.update(previous=5),
    lambda d: d.update(head=[]),
], ids=["objects-5", "entry-list", "key-float", "first-text", "previous-int", "head-list"])
def test_verify_path_names_a_digest_of_the_wrong_shape(bundle: Path, edit: Any) -> None:
    key = f"{PREFIX}digests/chain=p000/p000-000000000012.json"
    doc = json.loads((bundle / key).read_text())
    edit(doc)
    (bundle / key).write_text(json.dumps(doc))
    result = run_verify("--path", str(bundle), "--json")
    assert result.return_value == 1
    found = [f for f in json.loads(result.output)["findings"] if f["key"] == key and f["kind"] == "digest_altered"]
    assert found and "unreadable digest" in found[0]["detail"], json.loads(result.output)["findings"]
    source = DirectoryStore(bundle)  # and an export from such a bucket does not crash either
    export_bundle(source, SETTINGS, bundle.parent / "again", date(2024, 3, 1), date(2024, 3, 2))


def test_verify_path_names_a_digest_that_cannot_be_canonicalised(bundle: Path) -> None:
    """An integer beyond JSON's safe range: the digest's signed bytes cannot be built, which is a finding."""
    key = f"{PREFIX}digests/chain=p000/p000-000000000012.json"
    doc = json.loads((bundle / key).read_text())
    doc["head"]["note"] = 2**60
    (bundle / key).write_text(json.dumps(doc))
    result = run_verify("--path", str(bundle), "--json")
    assert result.return_value == 1
    found = [f for f in json.loads(result.output)["findings"] if f["key"] == key and f["kind"] == "digest_altered"]
    assert found and "signature missing or malformed" in found[0]["detail"], json.loads(result.output)["findings"]


# ---------------------------------------------------------------------------
# report --path and verify --path agree on a bundle


FINDING_ROW = re.compile(r'<tr><td><code>([^<]+)</code></td><td>[^<]*</td><td class="n">[^<]*</td>'
                         r'<td class="wrap"><code>([^<]*)</code>')


def verdicts(bundle: Path, out: Path) -> tuple[tuple[int, set[tuple[str, str]]], tuple[int, set[tuple[str, str]]]]:
    """(exit code, {(finding kind, key)}) of `verify --path` and of `report --path` on the same bundle."""
    verified = run_verify("--path", str(bundle), "--json")
    found = {(f["kind"], f["key"] or "") for f in json.loads(verified.output)["findings"]}
    reported = CliRunner().invoke(cli, ["report", "--from", "2024-03-02", "--to", "2024-03-02", "--out", str(out),
                                        "--path", str(bundle)], standalone_mode=False, catch_exceptions=False)
    shown = {(kind, html.unescape(key)) for kind, key in FINDING_ROW.findall(out.read_text())}
    return (verified.return_value, found), (reported.return_value, shown)


def test_report_and_verify_agree_on_a_windowed_bundle(source: DirectoryStore, tmp_path: Path) -> None:
    """A window after the chains' first object: both start each chain at seq 8, on the checkpoint before it
    (a report verifying from seq 1 would call the missing seqs 1..7 deleted), and both see a file added later."""
    bundle = tmp_path / "windowed"
    result = export_bundle(source, SETTINGS, bundle, date(2024, 3, 2), date(2024, 3, 2))
    assert {c["first_seq"] for c in result.manifest["chains"].values()} == {8}
    verify, report = verdicts(bundle, tmp_path / "report.html")
    assert verify == report == (0, set())

    copied = data_key(PREFIX, "2024-03-02", "p000", 8, 12)
    planted = data_key(PREFIX, "2024-03-02", "p000", 19, 23)  # where the chain's next object would go
    (bundle / planted).write_bytes((bundle / copied).read_bytes())
    verify, report = verdicts(bundle, tmp_path / "report.html")
    assert verify == report
    assert verify[0] == 1 and ("manifest_mismatch", planted) in verify[1], verify
