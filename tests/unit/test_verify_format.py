"""The stored format's own guarantees: hashes only on signed heads, each object's start hash, windows.

Builds on the unit trail and its tamper helpers in tests.support.builders (three objects
per chain: seqs 1..5, 6..10 and 11..18; signed heads at seqs 7, 12 and 18).
"""

from __future__ import annotations

from pathlib import Path

import click
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sealtrail.evidence.bundle import DirectoryStore
from sealtrail.evidence.findings import FindingKind as K
from sealtrail.objects import (
    FORMAT_META,
    PREV_HASH_META,
    RECORD_FORMAT,
    RECORD_FORMAT_V2,
    SCHEMA,
    SCHEMA_V2,
    format_of,
    read_table,
)
from tests.support.builders import kinds, pristine, rewrite, verify, write_bundle
from tests.support.stores import HistoryStore


def set_metadata(store: DirectoryStore, key: str, name: bytes, value: bytes | None, schema: pa.Schema = SCHEMA
                 ) -> None:
    """Rewrite an object with one metadata entry changed (None: removed), in `schema`'s columns."""
    path = store.root / key
    table = pq.read_table(path)
    meta = dict(table.schema.metadata or {})
    if value is None:
        meta.pop(name, None)
    else:
        meta[name] = value
    rows = [{k: v for k, v in row.items() if k in schema.names} for row in table.to_pylist()]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema.with_metadata(meta)), path)


def set_start_hash(store: DirectoryStore, key: str, value: bytes | None) -> None:
    set_metadata(store, key, PREV_HASH_META, value)


def test_only_signed_heads_store_their_hash() -> None:
    trail = pristine()
    for key, body in trail.objects.items():
        if "/data/" not in key:
            continue
        table = read_table(body)
        hashes, signatures = table.column("hash").to_pylist(), table.column("signature").to_pylist()
        assert [h is not None for h in hashes] == [s is not None for s in signatures]
        assert all(isinstance(c, int) for c in table.column("row_check").to_pylist())


def test_objects_name_their_record_format() -> None:
    trail = pristine()
    data = [body for key, body in trail.objects.items() if "/data/" in key]
    assert data and all(format_of(read_table(body).schema) == RECORD_FORMAT for body in data)


def test_an_unknown_record_format_is_reported_as_such(tmp_path: Path) -> None:
    """Not as a changed row per record: the verifier says it does not know the rules the rows were hashed by."""
    trail = pristine()
    store = write_bundle(tmp_path, trail)
    key = trail.key("p001", 1)
    set_metadata(store, key, FORMAT_META, b"sealtrail.record.v9")
    report = verify(store)
    assert not report.ok
    rows = [f for f in report.findings if f.key == key and f.kind != K.CHECKSUM_MISMATCH]  # the bytes changed too
    assert [f.kind for f in rows] == [K.UNREADABLE_OBJECT]
    assert "'sealtrail.record.v9'" in rows[0].detail and RECORD_FORMAT in rows[0].detail


def as_v2(store: DirectoryStore, key: str, marker: bytes | None) -> None:
    """Rewrite an object as record format v2 wrote it: no accounting columns, event columns required."""
    set_metadata(store, key, FORMAT_META, marker, SCHEMA_V2)


@pytest.mark.parametrize("marker", [RECORD_FORMAT_V2.encode(), None], ids=["v2-marker", "no-marker"])
def test_an_object_of_record_format_v2_stays_readable(tmp_path: Path, marker: bytes | None) -> None:
    """Objects written before input accounting (v2, or before markers existed) verify as they did."""
    trail = pristine()
    store = write_bundle(tmp_path, trail)
    as_v2(store, trail.key("p000", 1), marker)
    assert not {K.CELL_CHANGED, K.UNREADABLE_OBJECT} & kinds(verify(store))


def test_a_v3_object_without_its_marker_is_not_taken_for_v2(tmp_path: Path) -> None:
    trail = pristine()
    store = write_bundle(tmp_path, trail)
    set_metadata(store, trail.key("p000", 1), FORMAT_META, None)
    assert K.CELL_CHANGED in kinds(verify(store))  # its schema is not v2's


def test_changed_start_hash_is_named(tmp_path: Path) -> None:
    trail = pristine()
    store = write_bundle(tmp_path, trail)
    key = trail.key("p001", 1)  # seqs 6..10
    set_start_hash(store, key, bytes(32).hex().encode())
    cells = [f for f in verify(store).findings if f.kind == K.CELL_CHANGED]
    assert [(f.key, f.seq) for f in cells][:1] == [(key, 6)]
    assert "prev_hash" in cells[0].detail


def test_missing_start_hash_is_named(tmp_path: Path) -> None:
    trail = pristine()
    store = write_bundle(tmp_path, trail)
    key = trail.key("p000", 2)
    set_start_hash(store, key, None)
    cells = [f for f in verify(store).findings if f.kind == K.CELL_CHANGED]
    assert [(f.key, f.seq) for f in cells] == [(key, 11)]
    assert "missing" in cells[0].detail


def without_first_objects(tmp_path: Path) -> DirectoryStore:
    """A bundle whose oldest objects are gone, as after lifecycle expiry or an export of a later window."""
    trail = pristine()
    store = write_bundle(tmp_path, trail)
    for chain in ("p000", "p001"):
        (store.root / trail.key(chain, 0)).unlink()
        (store.root / f"{trail.key(chain, 0)}.lock.json").unlink(missing_ok=True)
    return store


def test_a_window_verifies_without_what_precedes_it(tmp_path: Path) -> None:
    store = without_first_objects(tmp_path)
    assert K.OBJECT_DELETED in kinds(verify(store))
    report = verify(store, starts={"p000": 6, "p001": 6})
    # this bundle has no digests, so nothing signed ties seq 6 to the chain before: said, not passed over
    assert {(f.kind, f.seq) for f in report.findings} == {(K.UNANCHORED_START, 6)}, report.findings
    assert not report.intact
    assert report.chains["p000"]["events"] == 13 and report.chains["p000"]["head_seq"] == 18


def test_a_window_still_finds_tampering(tmp_path: Path) -> None:
    store = without_first_objects(tmp_path)
    trail = pristine()
    rewrite(store, trail.key("p000", 2), lambda c: c["actor_id"].__setitem__(3, "mallory"))
    report = verify(store, starts={"p000": 6, "p001": 6})
    assert [(f.kind, f.seq) for f in report.findings if f.kind == K.CELL_CHANGED] == [(K.CELL_CHANGED, 14)]


def test_a_windows_start_hash_is_proven_by_the_next_signed_head(tmp_path: Path) -> None:
    """Nothing precedes the window's first object, so its start hash is checked by the head at seq 7."""
    store = without_first_objects(tmp_path)
    trail = pristine()
    set_start_hash(store, trail.key("p000", 1), bytes(32).hex().encode())
    report = verify(store, starts={"p000": 6, "p001": 6})
    assert [(f.kind, f.seq) for f in report.findings if f.chain == "p000" and f.kind == K.CELL_CHANGED] == [
        (K.CELL_CHANGED, 7)
    ]


# ---------------------------------------------------------------------------
# windows by date, anchored on the checkpoint before them (as after lifecycle expiry)

DAYS = ("2024-03-01", "2024-03-02", "2024-03-03")
CUTS = ((1, 7), (8, 12), (13, 18))  # one object per signed batch, one day each


def daily_trail(tmp_path: Path) -> tuple[DirectoryStore, dict[str, list[str]]]:
    """Two chains sealed in three batches on three days, one object and one digest per batch."""
    import hashlib

    from sealtrail.chain import Accepted, ChainHead, seal_batch
    from sealtrail.digest import DigestLink, ListedObject, build_digest, head_of
    from sealtrail.layout import data_key
    from sealtrail.objects import to_parquet
    from sealtrail.record import GENESIS
    from sealtrail.store import sha256_b64
    from tests.support.builders import BATCHES, CHAINS, PREFIX, Trail, columns_of, event
    from tests.support.signers import new_signer

    signer = new_signer()
    heads = {p: ChainHead(f"p{p:03d}") for p in range(len(CHAINS))}
    trail = Trail(signer, {c: [] for c in CHAINS})
    keys: dict[str, list[str]] = {c: [] for c in CHAINS}
    links: dict[str, DigestLink | None] = {c: None for c in CHAINS}
    offset = 0
    for b, (size, day) in enumerate(zip(BATCHES, DAYS, strict=True)):
        batch = [Accepted(p, offset + i, columns_of(event(p, offset + i))) for i in range(size) for p in range(len(CHAINS))]
        offset += size
        sealed = seal_batch(heads, batch, signer, f"{day}T10:00:0{b}.000000Z").sealed
        for chain in CHAINS:
            part = [r for r in sealed if r.chain == chain]
            prev = trail.records[chain][-1].hash if trail.records[chain] else GENESIS
            trail.records[chain].extend(part)
            key = data_key(PREFIX, day, chain, part[0].seq, part[-1].seq)
            body = to_parquet(part, prev)
            trail.objects[key] = body
            keys[chain].append(key)
            listed = [ListedObject(key, "1", sha256_b64(body), part[0].seq, part[-1].seq, len(body))]
            dkey, dbody = build_digest(PREFIX, chain, listed, head_of(part[-1]), links[chain], signer, f"{day}T12:00:00Z")
            trail.objects[dkey] = dbody
            links[chain] = DigestLink(dkey, hashlib.sha256(dbody).hexdigest(), part[-1].seq)
    return write_bundle(tmp_path, trail), keys


def expire(store: DirectoryStore, key: str) -> None:
    """What a lifecycle rule does once retention has passed: the object is gone, its digest stays."""
    (store.root / key).unlink()
    (store.root / f"{key}.lock.json").unlink()


def test_a_daily_trail_verifies_whole_and_by_window(tmp_path: Path) -> None:
    store, _ = daily_trail(tmp_path)
    assert verify(store).ok
    report = verify(store, since=DAYS[1], until=DAYS[1])
    assert report.ok, report.findings
    assert report.events == 10  # 5 per chain on the middle day
    assert report.chains["p000"]["anchored_on"].endswith("p000-000000000007.json")


def test_after_expiry_a_window_anchors_on_the_checkpoint_before_it(tmp_path: Path) -> None:
    store, keys = daily_trail(tmp_path)
    for chain in CHAINS_:
        expire(store, keys[chain][0])
    assert K.OBJECT_DELETED in kinds(verify(store))
    report = verify(store, since=DAYS[1])
    assert report.ok, report.findings
    assert report.chains["p001"]["first_seq"] == 8 and report.chains["p001"]["head_seq"] == 18


def test_a_window_that_does_not_continue_its_checkpoint_is_named(tmp_path: Path) -> None:
    """The day-2 object replaced by one starting from another hash: the day-1 checkpoint disagrees."""
    store, keys = daily_trail(tmp_path)
    key = keys["p000"][1]
    set_start_hash(store, key, bytes(32).hex().encode())
    report = verify(store, since=DAYS[1])
    anchored = [f for f in report.findings if f.kind == K.CELL_CHANGED and f.key.endswith("p000-000000000007.json")]
    assert anchored and anchored[0].seq == 8


def test_a_window_ending_early_is_not_truncation(tmp_path: Path) -> None:
    store, _ = daily_trail(tmp_path)
    report = verify(store, until=DAYS[0])
    assert report.ok, report.findings
    assert report.chains["p000"]["head_seq"] == 7


CHAINS_ = ("p000", "p001")


def test_verify_command_windows_chains_and_tenant(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`sealtrail verify --path --from --to --chain --tenant` on a trail whose first day expired."""
    import json

    from click.testing import CliRunner

    from sealtrail.cli.main import cli
    from tests.support.builders import PREFIX, RETENTION_DAYS

    monkeypatch.setenv("SEALTRAIL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SEALTRAIL_RETENTION__DAYS", str(RETENTION_DAYS))
    monkeypatch.setenv("SEALTRAIL_S3__PREFIX", PREFIX)
    store, keys = daily_trail(tmp_path / "trail")
    for chain in CHAINS_:
        expire(store, keys[chain][0])

    def run(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(cli, ["verify", "--path", str(store.root), "--json", *args], standalone_mode=False,
                                  catch_exceptions=False)

    whole = run()  # seqs 1..7 are gone: the chains are verified from seq 8, on the signed checkpoint of seq 7
    assert whole.return_value == 0, whole.output
    assert {c: (s["first_seq"], bool(s["anchored_on"])) for c, s in json.loads(whole.output)["chains"].items()} == \
        dict.fromkeys(CHAINS_, (8, True))
    result = run("--from", DAYS[1], "--chain", "p001", "--tenant", "acme")
    assert result.return_value == 0, result.output
    doc = json.loads(result.output)
    assert set(doc["chains"]) == {"p001"}
    assert doc["chains"]["p001"]["tenant_events"] == 11 and doc["chains"]["p001"]["anchored_on"]
    with pytest.raises(click.BadParameter, match="--from is after --to"):  # main() turns it into exit 2
        run("--from", DAYS[2], "--to", DAYS[1])


def test_after_expiry_the_delete_markers_before_a_window_are_not_blamed(tmp_path: Path) -> None:
    """Lifecycle expiry in a versioned bucket leaves a delete marker on each expired object."""
    store, keys = daily_trail(tmp_path)
    marked = HistoryStore(store.root, {keys[chain][0]: [("dm", None)] for chain in CHAINS_})
    assert K.DELETE_MARKER in kinds(verify(marked))
    report = verify(marked, since=DAYS[1])
    assert report.ok, report.findings
    inside = HistoryStore(store.root, {keys["p000"][1]: [("dm", None)]})  # a marker inside the window still counts
    assert K.DELETE_MARKER in kinds(verify(inside, since=DAYS[1]))
