"""verify: an intact trail passes, and every tamper we can make offline is found and named.

The trail is built the way the pipeline builds it (validate -> seal_batch ->
to_parquet), laid out as an exported bundle (DirectoryStore), then tampered
with one change per test. Each test is named after the tamper it represents.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from sealtrail import contents as contents_module
from sealtrail.chain import Accepted, seal_batch
from sealtrail.errors import ConfigError
from sealtrail.evidence import walk as walk_module
from sealtrail.evidence.bundle import DirectoryStore
from sealtrail.evidence.checks import rows as rows_module
from sealtrail.evidence.checks.chain import verify_chain
from sealtrail.evidence.checks.listing import plan
from sealtrail.evidence.checks.rows import check_object_rows
from sealtrail.evidence.findings import Finding, Report
from sealtrail.evidence.findings import FindingKind as K
from sealtrail.evidence.walk import verify_store
from sealtrail.layout import data_key, digest_key, parse_data_key, public_key_key
from sealtrail.objects import prev_hash_of, read_table, text_columns, to_parquet
from sealtrail.record import EVENT_COLUMNS, GENESIS, SealedRecord, duplicate_columns, rejected_columns
from sealtrail.signing import PublicKeys, Signer, head_message
from sealtrail.store import ObjectVersion, sha256_b64
from tests.support.builders import (
    BATCHES,
    CHAINS,
    DAY,
    OBJECTS,
    PREFIX,
    RETENTION_DAYS,
    SETTINGS,
    Trail,
    build_trail,
    columns_of,
    event,
    kinds,
    pristine,
    rewrite,
    verify,
    write_bundle,
)
from tests.support.signers import new_signer
from tests.support.stores import NOW, HistoryStore, lock_sidecar, set_sidecar

ROW_KINDS = {K.CELL_CHANGED, K.ROW_REMOVED, K.ROW_INSERTED, K.ROWS_REORDERED}


@pytest.fixture
def trail() -> Trail:
    return pristine()


@pytest.fixture
def store(tmp_path: Path, trail: Trail) -> DirectoryStore:
    return write_bundle(tmp_path, trail)


def changed(name: str, value: Any) -> Any:
    """A different value for one cell, of the column's type."""
    if isinstance(value, datetime):
        return value + timedelta(microseconds=1)
    if isinstance(value, bool):
        raise AssertionError(name)
    if isinstance(value, int):
        return value + 1
    if isinstance(value, bytes):
        return bytes([value[0] ^ 1]) + value[1:]
    if name in ("before", "after", "metadata"):
        return '{"tampered":true}' if value != '{"tampered":true}' else "{}"
    return "x" if value is None else value + "x"


def assert_first_bad(report: Report, allowed: set[K], key: str | None, chain: str, seq: int) -> None:
    """A finding of an allowed kind names key and seq, and nothing earlier in that chain is blamed."""
    assert not report.ok
    hits = [f for f in report.findings if f.kind in allowed and f.key == key and f.seq == seq]
    assert hits, report.findings
    earlier = [f for f in report.findings if f.chain == chain and f.seq is not None and f.seq < seq]
    assert not earlier, earlier


# ---------------------------------------------------------------------------
# intact


def test_intact_trail_has_no_findings(store: DirectoryStore) -> None:
    progress: list[tuple[int, int]] = []
    report = verify(store, progress=lambda done, total: progress.append((done, total)))
    assert report.findings == []
    assert report.ok
    assert report.objects == len(CHAINS) * len(OBJECTS)
    assert report.events == len(CHAINS) * sum(BATCHES)
    trail = pristine()
    for chain in CHAINS:
        head = trail.records[chain][-1]
        assert report.chains[chain] == {
            "events": sum(BATCHES),
            "head_seq": head.seq,
            "head_hash": head.hash.hex(),
            "signed_heads": len(BATCHES),
            "digests": 1,
            "digested_seq": head.seq,
            "undigested_objects": 0,
            "input_first": 0,
            "input_last": sum(BATCHES) - 1,
            "rejected": 0,
            "duplicates": 0,
        }
    assert report.intact and report.complete
    assert report.as_dict()["intact"] is True and report.as_dict()["complete"] is True
    assert sorted(progress)[-1] == (6, 6)
    assert len(progress) == 6


def test_verify_chain_over_columns_in_memory() -> None:
    trail = pristine()
    keys = PublicKeys()
    keys.add_pem(trail.signer.public_pem)
    objects = []
    for key, body in trail.objects.items():
        obj = parse_data_key(key)
        if obj is not None and obj.chain == "p001":
            table = read_table(body)
            objects.append((obj, text_columns(table), prev_hash_of(table.schema)))
    findings, summary = verify_chain("p001", list(reversed(objects)), keys)
    assert findings == []
    assert summary["head_seq"] == 18 and summary["signed_heads"] == 3


def test_process_pool_finds_the_same(store: DirectoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    trail = pristine()
    rewrite(store, trail.key("p001", 2), lambda c: c["actor_id"].__setitem__(3, "mallory"))
    (store.root / trail.key("p000", 1)).unlink()
    inline = verify(store, workers=0)
    started: list[bool] = []

    class Started(walk_module.BackgroundPool):  # every object goes to the workers, none to the caller
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self.wait_started())

    monkeypatch.setattr(walk_module, "BackgroundPool", Started)
    pooled = verify(store, workers=2)
    assert started == [True]
    assert [f.as_dict() for f in pooled.findings] == [f.as_dict() for f in inline.findings]
    assert pooled.chains == inline.chains
    assert {(f.kind, f.seq) for f in inline.findings} >= {(K.CELL_CHANGED, 14), (K.OBJECT_DELETED, 6)}


def test_a_bad_trusted_key_is_an_error(store: DirectoryStore) -> None:
    with pytest.raises(ConfigError):
        verify(store, trusted_keys=[b"not a key"])


def test_only_the_chains_asked_for(store: DirectoryStore) -> None:
    key = pristine().key("p000", 1)
    rewrite(store, key, lambda c: c["actor_id"].__setitem__(0, "mallory"))
    report = verify(store, chains=["p001"])
    assert report.ok and set(report.chains) == {"p001"}
    assert not verify(store, chains=["p000"]).ok


# ---------------------------------------------------------------------------
# one changed cell, in every column under the hash


@pytest.mark.parametrize("column", [*EVENT_COLUMNS, "seq", "sealed_at", "src_offset", "row_check"])
@hsettings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_changed_cell_is_named(column: str, data: st.DataObject) -> None:
    trail = pristine()
    chain = data.draw(st.sampled_from(CHAINS), label="chain")
    index = data.draw(st.integers(0, len(OBJECTS) - 1), label="object")
    first, last = OBJECTS[index]
    row = data.draw(st.integers(0, last - first), label="row")
    same_checksum = data.draw(st.booleans(), label="same_checksum")
    key = trail.key(chain, index)
    with tempfile.TemporaryDirectory() as tmp:
        store = write_bundle(Path(tmp), trail)
        edit = lambda c: c[column].__setitem__(row, changed(column, c[column][row]))  # noqa: E731
        rewrite(store, key, edit, same_checksum=same_checksum)
        report = verify(store)
    assert_first_bad(report, ROW_KINDS, key, chain, first + row)
    # the digest recorded the SHA-256 the sink wrote, whatever the object's own checksum now says
    assert K.CHECKSUM_MISMATCH in kinds(report)


def test_changed_hash_cell_is_told_apart_from_changed_content(store: DirectoryStore) -> None:
    key = pristine().key("p000", 1)  # seqs 6..10
    rewrite(store, key, lambda c: c["hash"].__setitem__(1, bytes(32)))
    report = verify(store)
    [cell] = [f for f in report.findings if f.kind == K.CELL_CHANGED]
    assert (cell.key, cell.seq) == (key, 7)
    assert "do not hash to its stored hash" in cell.detail
    assert K.BAD_SIGNATURE in kinds(report)  # seq 7 is a signed head


def test_changed_cells_in_two_places_are_both_named(store: DirectoryStore) -> None:
    key = pristine().key("p001", 2)  # seqs 11..18

    def edit(c: dict[str, list]) -> None:
        c["action"][0] = "data.delete"
        c["tenant"][5] = "evil"

    rewrite(store, key, edit)
    cells = [f.seq for f in verify(store).findings if f.kind == K.CELL_CHANGED]
    assert cells == [11, 16]


@pytest.mark.parametrize("chunk", [1, 2, 3, 1024])
@pytest.mark.parametrize("row", range(8))
@pytest.mark.parametrize("cell", ["row_check", "tenant"])
def test_link_check_across_chunk_boundaries(monkeypatch: pytest.MonkeyPatch, chunk: int, row: int, cell: str) -> None:
    """check_object_rows with a known predecessor: exactly one CELL_CHANGED, at the right seq, whatever the chunking."""
    monkeypatch.setattr(contents_module, "HASH_CHUNK_ROWS", chunk)
    records = pristine().records["p000"]
    obj = parse_data_key(data_key(PREFIX, DAY, "p000", 11, 18))
    columns = text_columns(read_table((to_parquet(records[10:18], records[9].hash))))
    columns[cell][row] = changed(cell, columns[cell][row])
    keys = PublicKeys()
    keys.add_pem(pristine().signer.public_pem)
    check = check_object_rows("p000", obj, columns, records[9].hash, keys)
    cells = [f for f in check.findings if f.kind == K.CELL_CHANGED]
    assert [f.seq for f in cells] == [11 + row]
    assert "row_check" in cells[0].detail
    assert check.last_hash == records[17].hash and check.last_seq == 18
    if cell == "row_check":  # the content is intact: every recomputed hash is the sealed one
        assert check.hashes == [r.hash for r in records[10:18]]


# ---------------------------------------------------------------------------
# rows


def test_row_removed(store: DirectoryStore) -> None:
    key = pristine().key("p000", 1)  # seqs 6..10

    def edit(c: dict[str, list]) -> None:
        for values in c.values():
            del values[2]

    rewrite(store, key, edit)
    report = verify(store)
    assert_first_bad(report, {K.ROW_REMOVED}, key, "p000", 8)


def test_last_row_removed(store: DirectoryStore) -> None:
    key = pristine().key("p000", 1)

    def edit(c: dict[str, list]) -> None:
        for values in c.values():
            values.pop()

    rewrite(store, key, edit)
    assert_first_bad(verify(store), {K.ROW_REMOVED}, key, "p000", 10)


def test_row_inserted_as_a_duplicate(store: DirectoryStore) -> None:
    key = pristine().key("p001", 0)  # seqs 1..5

    def edit(c: dict[str, list]) -> None:
        for values in c.values():
            values.insert(3, values[2])  # a second copy of seq 3

    rewrite(store, key, edit)
    assert_first_bad(verify(store), {K.ROW_INSERTED}, key, "p001", 3)


def test_rows_reordered(store: DirectoryStore) -> None:
    key = pristine().key("p001", 2)  # seqs 11..18

    def edit(c: dict[str, list]) -> None:
        for values in c.values():
            values[1], values[4] = values[4], values[1]

    rewrite(store, key, edit)
    assert_first_bad(verify(store), {K.ROWS_REORDERED}, key, "p001", 12)


@pytest.mark.parametrize(
    ("seqs", "kind", "seq"),
    [
        ([1, 2, 3, 4], K.ROW_REMOVED, 5),
        ([2, 3, 4, 5], K.ROW_REMOVED, 1),
        ([1, 2, 2, 3, 4, 5], K.ROW_INSERTED, 2),
        ([1, 2, 3, 4, 5, 5], K.ROW_INSERTED, 5),
        ([1, 3, 2, 4, 5], K.ROWS_REORDERED, 2),
        ([5, 4, 3, 2, 1], K.ROWS_REORDERED, 1),
        ([1, 2, 9, 4, 5], K.CELL_CHANGED, 3),
    ],
)
def test_row_numbering_vectors(seqs: list[int], kind: K, seq: int) -> None:
    """The numbering check alone: which kind, and which seq is named first."""
    records = pristine().records["p000"]
    by_seq = {r.seq: r for r in records}
    obj = parse_data_key(data_key(PREFIX, DAY, "p000", 1, 5))
    columns = text_columns(read_table((to_parquet([by_seq[min(s, 5)] for s in seqs], GENESIS))))
    columns["seq"] = list(seqs)
    keys = PublicKeys()
    keys.add_pem(pristine().signer.public_pem)
    findings = check_object_rows("p000", obj, columns, GENESIS, keys).findings
    assert (findings[0].kind, findings[0].seq) == (kind, seq)


# ---------------------------------------------------------------------------
# objects


def test_object_deleted_from_the_middle(store: DirectoryStore) -> None:
    key = pristine().key("p001", 1)  # seqs 6..10
    (store.root / key).unlink()
    report = verify(store)
    assert_first_bad(report, {K.OBJECT_DELETED}, None, "p001", 6)
    # once as a gap in the chain, once as an object the digest lists and the bucket lacks
    assert {(f.kind, f.key, f.seq) for f in report.findings} == {
        (K.OBJECT_DELETED, None, 6),
        (K.OBJECT_DELETED, key, 6),
        (K.INPUT_GAP, pristine().key("p001", 2), 11),  # the input offsets that went with it
    }
    assert any("6..10" in f.detail for f in report.findings)
    [gap] = [f for f in report.findings if f.kind == K.INPUT_GAP]
    assert gap.detail == ("input offsets 5..9 of partition 1 are not in the trail "
                          "(between seq 5 and seq 11; no object holds seqs 6..10)")
    assert report.intact and not report.complete


def test_first_object_deleted(store: DirectoryStore) -> None:
    (store.root / pristine().key("p000", 0)).unlink()
    assert_first_bad(verify(store), {K.OBJECT_DELETED}, None, "p000", 1)


def test_object_injected_with_a_foreign_name(store: DirectoryStore) -> None:
    key = f"{PREFIX}data/dt={DAY}/chain=p000/extra.parquet"
    (store.root / key).write_bytes(pristine().objects[pristine().key("p000", 0)])
    report = verify(store)
    assert [(f.kind, f.key) for f in report.findings] == [(K.OBJECT_INJECTED, key)]


def test_object_injected_outside_the_layout(store: DirectoryStore) -> None:
    key = f"{PREFIX}data/notes.txt"
    (store.root / key).write_text("hello")
    assert [(f.kind, f.key) for f in verify(store).findings] == [(K.OBJECT_INJECTED, key)]


def test_object_injected_over_a_held_range(store: DirectoryStore) -> None:
    trail = pristine()
    key = data_key(PREFIX, DAY, "p000", 4, 8)
    (store.root / key).parent.mkdir(parents=True, exist_ok=True)
    (store.root / key).write_bytes(to_parquet(trail.records["p000"][3:8], trail.records["p000"][2].hash))
    report = verify(store)
    assert_first_bad(report, {K.ROW_INSERTED}, key, "p000", 4)


def test_object_moved_to_another_day(store: DirectoryStore) -> None:
    trail = pristine()
    old = trail.key("p001", 1)
    new = data_key(PREFIX, "2024-02-29", "p001", 6, 10)
    (store.root / new).parent.mkdir(parents=True)
    shutil.move(store.root / old, store.root / new)
    shutil.move(store.root / f"{old}.lock.json", store.root / f"{new}.lock.json")
    assert_first_bad(verify(store), {K.CELL_CHANGED}, new, "p001", 6)


def test_unreadable_object(store: DirectoryStore) -> None:
    key = pristine().key("p000", 1)
    (store.root / key).write_bytes(b"PAR1 not really")
    report = verify(store)
    assert kinds(report) == {K.UNREADABLE_OBJECT, K.CHECKSUM_MISMATCH}
    assert {f.key for f in report.findings} == {key}


def test_extra_column_is_a_changed_schema(store: DirectoryStore) -> None:
    key = pristine().key("p000", 2)
    path = store.root / key
    table = pq.read_table(path)
    table = table.append_column("note", pa.array(["hi"] * table.num_rows))
    pq.write_table(table, path)
    report = verify(store)
    assert any(f.kind == K.CELL_CHANGED and f.key == key and "extra ['note']" in f.detail for f in report.findings)


# ---------------------------------------------------------------------------
# signatures


def _resign(store: DirectoryStore, key: str, signer: Signer, key_id: str) -> None:
    def edit(c: dict[str, list]) -> None:
        for i, sig in enumerate(c["signature"]):
            if sig is not None:
                sealed_at = c["sealed_at"][i].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                c["signature"][i] = signer.sign(head_message("p000", c["seq"][i], sealed_at, c["hash"][i]))
                c["key_id"][i] = key_id

    rewrite(store, key, edit)


def test_signature_made_with_another_key_under_the_real_key_id(store: DirectoryStore) -> None:
    key = pristine().key("p000", 2)  # seq 12 and 18 are heads
    _resign(store, key, new_signer(), pristine().signer.key_id)
    report = verify(store)
    assert_first_bad(report, {K.BAD_SIGNATURE}, key, "p000", 12)
    assert [f.seq for f in report.findings if f.kind == K.BAD_SIGNATURE] == [12, 18]


def test_signature_made_with_an_unknown_key(store: DirectoryStore) -> None:
    key = pristine().key("p000", 2)
    other = new_signer()
    _resign(store, key, other, other.key_id)
    assert_first_bad(verify(store), {K.UNKNOWN_KEY}, key, "p000", 12)


def test_signature_cell_changed(store: DirectoryStore) -> None:
    key = pristine().key("p001", 1)  # seq 7 is a head

    def edit(c: dict[str, list]) -> None:
        c["signature"][1] = bytes(64)

    rewrite(store, key, edit)
    assert_first_bad(verify(store), {K.BAD_SIGNATURE}, key, "p001", 7)


def test_key_id_set_on_an_unsigned_row(store: DirectoryStore) -> None:
    key = pristine().key("p001", 1)
    rewrite(store, key, lambda c: c["key_id"].__setitem__(0, pristine().signer.key_id))
    assert_first_bad(verify(store), {K.BAD_SIGNATURE}, key, "p001", 6)


def test_forged_tail_signed_with_a_key_planted_in_the_bucket(store: DirectoryStore) -> None:
    """Keys read from the bucket prove only that someone who could write there signed: pin the keys."""
    trail = build_trail(pristine().signer)
    mallory = new_signer()
    more = [Accepted(0, sum(BATCHES) + i, columns_of(event(0, 100 + i))) for i in range(2)]  # the next offsets
    forged = seal_batch(trail.heads, more, mallory, f"{DAY}T11:00:00.000000Z").sealed
    key = data_key(PREFIX, DAY, "p000", 19, 20)
    body = to_parquet(forged, trail.records["p000"][-1].hash)
    (store.root / key).write_bytes(body)
    (store.root / f"{key}.lock.json").write_text(json.dumps(lock_sidecar(body)))
    planted = public_key_key(PREFIX, mallory.key_id)
    (store.root / planted).write_bytes(mallory.public_pem)
    report = verify(store)  # a planted key without a lock is seen for what it is
    assert {(f.kind, f.key) for f in report.findings} == {(K.NOT_LOCKED, planted), (K.KEY_CHANGE_UNEXPLAINED, key)}
    assert report.keys["pinned"] is False and mallory.key_id in report.keys["trusted"]
    (store.root / f"{planted}.lock.json").write_text(json.dumps(lock_sidecar(mallory.public_pem)))
    report = verify(store)  # locked too: the chain's key history gives it away (no rotation statement)
    assert [(f.kind, f.key, f.chain, f.seq) for f in report.findings] == [
        (K.KEY_CHANGE_UNEXPLAINED, key, "p000", 20)]
    assert mallory.key_id in report.findings[0].detail and pristine().signer.key_id in report.findings[0].detail
    assert report.keys == {"pinned": False, "source": "bucket", "trusted": sorted([mallory.key_id,
                           pristine().signer.key_id]), "note": report.keys["note"]}
    assert "self-consistency only" in report.text()  # ...and the report says the keys were not pinned
    pinned = [pristine().signer.public_pem]
    report = verify(store, trusted_keys=pinned)
    assert_first_bad(report, {K.UNKNOWN_KEY}, key, "p000", 20)
    assert report.keys["pinned"] is True


def _tail_signed_by(store: DirectoryStore, successor: Signer) -> str:
    """Two more records on p000 sealed and signed by successor; returns the new object's key."""
    trail = build_trail(pristine().signer)
    more = [Accepted(0, sum(BATCHES) + i, columns_of(event(0, 100 + i))) for i in range(2)]
    forged = seal_batch(trail.heads, more, successor, f"{DAY}T11:00:00.000000Z").sealed
    key = data_key(PREFIX, DAY, "p000", 19, 20)
    body = to_parquet(forged, trail.records["p000"][-1].hash)
    (store.root / key).write_bytes(body)
    (store.root / f"{key}.lock.json").write_text(json.dumps(lock_sidecar(body)))
    pem = public_key_key(PREFIX, successor.key_id)
    (store.root / pem).write_bytes(successor.public_pem)
    (store.root / f"{pem}.lock.json").write_text(json.dumps(lock_sidecar(successor.public_pem)))
    return key


def _statement(store: DirectoryStore, signer: Signer, old: str, new: str, name: tuple[str, str] | None = None) -> str:
    """A rotation statement old -> new, signed by signer, under the name of name (old, new by default)."""
    from sealtrail.layout import rotation_key
    from sealtrail.signing import ROTATION_FORMAT, rotation_message

    at = f"{DAY}T10:30:00Z"
    doc = {"format": ROTATION_FORMAT, "old": old, "new": new, "at": at,
           "signature": signer.sign(rotation_message(old, new, at)).hex()}
    key = rotation_key(PREFIX, *(name or (old, new)))
    (store.root / key).parent.mkdir(parents=True, exist_ok=True)
    (store.root / key).write_bytes(orjson.dumps(doc))
    return key


def test_a_rotation_statement_signed_by_the_old_key_explains_the_change(store: DirectoryStore) -> None:
    successor = new_signer()
    _tail_signed_by(store, successor)
    _statement(store, pristine().signer, pristine().signer.key_id, successor.key_id)
    assert verify(store).ok


@pytest.mark.parametrize("forgery", ["signed by the new key", "renamed", "bytes altered"])
def test_a_rotation_statement_the_old_key_did_not_sign_explains_nothing(store: DirectoryStore, forgery: str) -> None:
    mallory = new_signer()
    tail = _tail_signed_by(store, mallory)
    old, new = pristine().signer.key_id, mallory.key_id
    if forgery == "signed by the new key":
        statement = _statement(store, mallory, old, new)
    elif forgery == "renamed":  # a genuine statement for another rotation, copied under this one's name
        statement = _statement(store, pristine().signer, old, new_signer().key_id, name=(old, new))
    else:
        statement = _statement(store, pristine().signer, old, new)
        doc = orjson.loads((store.root / statement).read_bytes())
        doc["at"] = f"{DAY}T10:31:00Z"
        (store.root / statement).write_bytes(orjson.dumps(doc))
    report = verify(store)
    assert {(f.kind, f.key) for f in report.findings} == {(K.OBJECT_INJECTED, statement),
                                                          (K.KEY_CHANGE_UNEXPLAINED, tail)}, report.findings


def test_pinned_keys_need_no_rotation_statement(store: DirectoryStore) -> None:
    successor = new_signer()
    _tail_signed_by(store, successor)
    assert verify(store, trusted_keys=[pristine().signer.public_pem, successor.public_pem]).ok


def test_a_key_that_signed_before_it_was_published(store: DirectoryStore) -> None:
    """With keys.check_publication on, a head sealed before its key's file first appeared is a finding."""
    successor = new_signer()
    tail = _tail_signed_by(store, successor)  # sealed on DAY; its key (and the first one) published NOW
    _statement(store, pristine().signer, pristine().signer.key_id, successor.key_id)
    settings = SETTINGS.model_copy(update={"keys": SETTINGS.keys.model_copy(update={"check_publication": True})})
    first_pem = public_key_key(PREFIX, pristine().signer.key_id)
    early = {**lock_sidecar(pristine().signer.public_pem), "last_modified": f"{DAY}T09:00:00+00:00"}
    (store.root / f"{first_pem}.lock.json").write_text(json.dumps(early))
    report = verify_store(store, settings)
    assert [(f.kind, f.key, f.seq) for f in report.findings] == [(K.KEY_BEFORE_PUBLICATION, tail, 20)]
    assert successor.key_id in report.findings[0].detail
    published = public_key_key(PREFIX, successor.key_id)
    on_time = {**lock_sidecar(successor.public_pem), "last_modified": f"{DAY}T10:59:00+00:00"}
    (store.root / f"{published}.lock.json").write_text(json.dumps(on_time))
    assert verify_store(store, settings).ok
    assert verify(store).ok  # off by default: a restored trail has every key published after it signed


def test_the_trusted_keys_setting_pins_them_for_every_caller(store: DirectoryStore, tmp_path: Path) -> None:
    mallory = new_signer()
    (store.root / public_key_key(PREFIX, mallory.key_id)).write_bytes(mallory.public_pem)
    pem = tmp_path / "trusted.pem"
    pem.write_bytes(pristine().signer.public_pem)
    settings = SETTINGS.model_copy(update={"keys": SETTINGS.keys.model_copy(update={"trusted": [pem]})})
    report = verify_store(store, settings)
    assert report.ok and report.keys == {"pinned": True, "source": "keys.trusted",
                                         "trusted": [pristine().signer.key_id]}
    missing = SETTINGS.model_copy(update={"keys": SETTINGS.keys.model_copy(update={"trusted": [tmp_path / "x"]})})
    with pytest.raises(ConfigError, match="keys.trusted"):
        verify_store(store, missing)


def test_key_file_named_after_another_key(store: DirectoryStore) -> None:
    other = new_signer()
    (store.root / public_key_key(PREFIX, "ed25519-0000000000000000")).write_bytes(other.public_pem)
    report = verify(store)
    assert {(f.kind, f.key) for f in report.findings} == {
        (K.OBJECT_INJECTED, public_key_key(PREFIX, "ed25519-0000000000000000")),
        (K.NOT_LOCKED, public_key_key(PREFIX, "ed25519-0000000000000000")),
    }


def test_tail_removed_is_truncation_against_the_digest(store: DirectoryStore) -> None:
    gone = pristine().key("p001", 2)
    (store.root / gone).unlink()  # the chain now ends at seq 10; seq 7 is its last head
    report = verify(store)
    assert {(f.kind, f.key, f.seq) for f in report.findings} == {
        (K.UNSIGNED_TAIL, pristine().key("p001", 1), 8),
        (K.OBJECT_DELETED, gone, 11),
        (K.TRUNCATED_TAIL, digest_key(PREFIX, "p001", 18), 11),
    }


def test_tail_cut_at_a_signed_head_is_truncation(tmp_path: Path) -> None:
    """Re-cut so the data ends on the signed head at seq 12: the chain alone looks whole."""
    trail = pristine()
    store = write_bundle(tmp_path, trail)
    (store.root / trail.key("p000", 2)).unlink()
    key = data_key(PREFIX, DAY, "p000", 11, 12)
    body = to_parquet(trail.records["p000"][10:12], trail.records["p000"][9].hash)
    (store.root / key).write_bytes(body)
    (store.root / f"{key}.lock.json").write_text(json.dumps(lock_sidecar(body)))
    report = verify(store)
    assert K.TRUNCATED_TAIL in kinds(report)
    assert K.UNSIGNED_TAIL not in kinds(report)


def test_signature_stripped_from_a_head_inside_the_chain(store: DirectoryStore) -> None:
    key = pristine().key("p000", 1)  # seq 7 is a head

    def edit(c: dict[str, list]) -> None:
        c["signature"][1] = None
        c["key_id"][1] = None

    rewrite(store, key, edit, same_checksum=True)
    assert not verify(store).ok


# ---------------------------------------------------------------------------
# versions, delete markers, Object Lock

def test_newer_version_is_reported_and_the_original_verified(store: DirectoryStore) -> None:
    trail = pristine()
    key = trail.key("p000", 1)
    records = trail.records["p000"][5:10]
    forged = [SealedRecord(r.chain, r.seq, r.sealed_at, r.src_offset, {**r.columns, "actor_id": "nobody"}, r.hash,
                           r.key_id, r.signature) for r in records]
    history = HistoryStore(store.root, {key: [("v2", to_parquet(forged, trail.records["p000"][4].hash))]})
    report = verify(history)
    assert [(f.kind, f.key, f.version) for f in report.findings] == [(K.NEWER_VERSION, key, "v2")]
    assert "different bytes" in report.findings[0].detail


def test_delete_marker_hides_an_object(store: DirectoryStore) -> None:
    key = pristine().key("p001", 1)
    report = verify(HistoryStore(store.root, {key: [("dm1", None)]}))
    assert {(f.kind, f.key, f.seq) for f in report.findings} == {
        (K.DELETE_MARKER, key, 6),
        (K.OBJECT_DELETED, None, 6),
        (K.OBJECT_DELETED, key, 6),  # listed by the digest
        (K.INPUT_GAP, pristine().key("p001", 2), 11),
    }


def test_plan_verifies_the_oldest_version() -> None:
    key = data_key(PREFIX, DAY, "p000", 1, 5)
    t = NOW
    listing = [  # as S3 lists them: newest first, same second
        ObjectVersion(key, "b", True, False, 10, t),
        ObjectVersion(key, "a", False, False, 10, t),
    ]
    planned, findings = plan(listing, PREFIX)
    [item] = planned["p000"]
    assert item.version.version_id == "a" and [v.version_id for v in item.newer] == ["b"]
    assert findings == []


def test_plan_reports_a_latest_delete_marker() -> None:
    key = data_key(PREFIX, DAY, "p000", 1, 5)
    listing = [
        ObjectVersion(key, "a", False, False, 10, NOW),
        ObjectVersion(key, "dm", True, True, 0, NOW + timedelta(seconds=1)),
    ]
    planned, findings = plan(listing, PREFIX)
    assert planned == {"p000": []}
    assert [(f.kind, f.version) for f in findings] == [(K.DELETE_MARKER, "dm")]


def test_plan_rejects_a_data_key_under_another_prefix() -> None:
    key = data_key(f"{PREFIX}data/x/", DAY, "p000", 1, 5)
    _, findings = plan([ObjectVersion(key, "a", True, False, 10, NOW)], PREFIX)
    assert [f.kind for f in findings] == [K.OBJECT_INJECTED]


def test_object_not_locked(store: DirectoryStore) -> None:
    key = pristine().key("p000", 0)
    (store.root / f"{key}.lock.json").unlink()
    assert [(f.kind, f.key) for f in verify(store).findings] == [(K.NOT_LOCKED, key)]


def test_governance_lock_under_a_compliance_policy(store: DirectoryStore) -> None:
    key = pristine().key("p000", 0)
    set_sidecar(store, key, mode="GOVERNANCE")
    assert [(f.kind, f.key) for f in verify(store).findings] == [(K.NOT_LOCKED, key)]


def test_retention_short(store: DirectoryStore) -> None:
    key = pristine().key("p001", 2)
    set_sidecar(store, key, retain_until=(NOW + timedelta(days=3)).isoformat())
    assert [(f.kind, f.key) for f in verify(store).findings] == [(K.RETENTION_SHORT, key)]


def test_retention_within_a_day_of_the_policy_is_accepted(store: DirectoryStore) -> None:
    key = pristine().key("p001", 2)
    set_sidecar(store, key, retain_until=(NOW + timedelta(days=RETENTION_DAYS, hours=-12)).isoformat())
    assert verify(store).ok


def test_checksum_mismatch_alone(store: DirectoryStore) -> None:
    key = pristine().key("p001", 0)
    set_sidecar(store, key, checksum_sha256=sha256_b64(b"something else"))
    assert [(f.kind, f.key) for f in verify(store).findings] == [(K.CHECKSUM_MISMATCH, key)]


def test_empty_store_verifies_empty(tmp_path: Path) -> None:
    report = verify(DirectoryStore(tmp_path))
    assert report.ok and report.chains == {} and report.objects == 0


def test_finding_wire_format() -> None:
    f = Finding(K.CELL_CHANGED, "k", "v1", "p000", 7, "why")
    assert f.as_dict() == {"kind": "cell_changed", "key": "k", "version": "v1", "chain": "p000", "seq": 7,
                           "detail": "why"}
    assert {k.value for k in K} >= {"cell_changed", "object_injected", "unsigned_tail", "unreadable_object"}
    assert Report(findings=[f]).as_dict()["ok"] is False


# ---------------------------------------------------------------------------
# completeness: one row per input offset


def test_skipped_input_offsets_are_an_input_gap(tmp_path: Path) -> None:
    """Sealed as such (so every hash holds): chain p001 skips offsets 8..9 inside its second object
    and 15 at the start of its third; the trail is intact but not complete."""
    skip = lambda p, n: n + (2 if p == 1 and n >= 8 else 0) + (1 if p == 1 and n >= 13 else 0)  # noqa: E731
    trail = build_trail(src_offset=skip)
    assert [r.src_offset for r in trail.records["p001"]][6:12] == [6, 7, 10, 11, 12, 13]
    report = verify(write_bundle(tmp_path, trail))
    gaps = [f for f in report.findings if f.kind == K.INPUT_GAP]
    assert kinds(report) == {K.INPUT_GAP}
    assert [(f.chain, f.key, f.seq, f.detail) for f in gaps] == [
        ("p001", trail.key("p001", 1), 9,
         "input offsets 8..9 of partition 1 are not in the trail (between seq 8 and seq 9)"),
        ("p001", trail.key("p001", 2), 14,
         "input offset 15 of partition 1 is not in the trail (between seq 13 and seq 14)"),
    ]
    assert report.intact and not report.complete and not report.ok
    doc = report.as_dict()
    assert (doc["intact"], doc["complete"]) == (True, False)
    assert (doc["chains"]["p001"]["input_first"], doc["chains"]["p001"]["input_last"]) == (0, 20)
    assert report.verdict_lines() == ["intact: yes", "complete: no (2 input gaps)"]


def test_input_offsets_across_an_object_boundary(tmp_path: Path) -> None:
    skip = lambda p, n: n + (4 if p == 0 and n >= 10 else 0)  # noqa: E731  # seq 11 starts the third object
    trail = build_trail(src_offset=skip)
    report = verify(write_bundle(tmp_path, trail))
    assert [(f.kind, f.key, f.seq, f.detail) for f in report.findings] == [
        (K.INPUT_GAP, trail.key("p000", 2), 11,
         "input offsets 10..13 of partition 0 are not in the trail (between seq 10 and seq 11)"),
    ]


def test_a_repeated_or_backward_input_offset_is_named() -> None:
    obj = parse_data_key(data_key(PREFIX, DAY, "p003", 38, 43))
    seqs = [38, 39, 40, 41, 42, 43]
    findings = rows_module.input_findings("p003", obj, seqs, [16, 17, 17, 18, 12, 19])
    assert [(f.kind, f.seq, f.detail) for f in findings] == [
        (K.INPUT_GAP, 40, "input offset 17 of partition 3 appears again at seq 40"),
        (K.INPUT_GAP, 42, "input offset 12 of partition 3 appears again at seq 42 "
                          "(after input offset 18 at or before seq 41: the offsets go backwards)"),
    ]
    assert rows_module.input_findings("p003", obj, seqs, list(range(5, 11))) == []


def test_no_input_gap_before_a_window_start(tmp_path: Path) -> None:
    """A window (starts > 1) starts wherever its first object's offsets do."""
    trail = pristine()
    store = write_bundle(tmp_path, trail)
    report = verify(store, starts={"p000": 6, "p001": 11})
    assert K.INPUT_GAP not in kinds(report)
    assert report.chains["p001"]["input_first"] == 10


def test_accounting_rows_verify_intact_and_complete(tmp_path: Path) -> None:
    """Rejected inputs and repeated event ids each take their offset's row: nothing is missing."""
    def inputs(p: int, n: int) -> dict[str, Any]:
        if n % 5 == 3:
            return rejected_columns("invalid_json", b"{not json %d" % n)
        if n % 5 == 4:
            return duplicate_columns(str(uuid.UUID(int=(p << 64) | (n - 2), version=4)), b"{}")
        return columns_of(event(p, n))

    trail = build_trail(inputs=inputs)
    kinds_sealed = [r.columns.get("kind") for r in trail.records["p000"]]
    assert kinds_sealed.count("rejected") == 3 and kinds_sealed.count("duplicate") == 3
    report = verify(write_bundle(tmp_path, trail))
    assert report.findings == []
    assert report.intact and report.complete and report.ok
    summary = report.chains["p000"]
    assert (summary["input_first"], summary["input_last"], summary["rejected"], summary["duplicates"]) == (0, 17, 3, 3)
    assert summary["events"] == sum(BATCHES)  # rows, as before: accounting rows are in the chain


def test_verdicts() -> None:
    gap = Finding(K.INPUT_GAP, None, None, "p000", 3, "gap")
    cell = Finding(K.CELL_CHANGED, "k", None, "p000", 4, "cell")
    assert (Report(objects=1).intact, Report(objects=1).complete) == (True, True)
    assert (Report(objects=1, findings=[gap]).intact, Report(objects=1, findings=[gap]).complete) == (True, False)
    both = Report(objects=1, findings=[gap, cell])
    assert (both.intact, both.complete) == (False, False)
    assert both.verdict_lines() == ["intact: no (1 cell_changed)", "complete: no (1 input gap)"]
    empty = Report()
    assert empty.ok and not empty.intact and not empty.complete
    assert empty.verdict_lines() == ["intact: no (no objects verified)", "complete: no (no objects verified)"]
