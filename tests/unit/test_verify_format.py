"""The stored format's own guarantees: hashes only on signed heads, each object's start hash, windows.

Builds on the trail and tamper helpers of test_verify (three objects per
chain: seqs 1..5, 6..10 and 11..18; signed heads at seqs 7, 12 and 18).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sealtrail.evidence.findings import FindingKind as K
from sealtrail.sinks.parquet import PREV_HASH_META, read_table

from .test_verify import SCHEMA, DirectoryStore, kinds, pristine, verify, write_bundle


def set_start_hash(store: DirectoryStore, key: str, value: bytes | None) -> None:
    path = store.root / key
    table = pq.read_table(path)
    meta = dict(table.schema.metadata or {})
    if value is None:
        meta.pop(PREV_HASH_META, None)
    else:
        meta[PREV_HASH_META] = value
    pq.write_table(pa.Table.from_pylist(table.to_pylist(), schema=SCHEMA.with_metadata(meta)), path)


def test_only_signed_heads_store_their_hash() -> None:
    trail = pristine()
    for key, body in trail.objects.items():
        if "/data/" not in key:
            continue
        table = read_table(body)
        hashes, signatures = table.column("hash").to_pylist(), table.column("signature").to_pylist()
        assert [h is not None for h in hashes] == [s is not None for s in signatures]
        assert all(isinstance(c, int) for c in table.column("row_check").to_pylist())


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
    assert report.ok, report.findings
    assert report.chains["p000"]["events"] == 13 and report.chains["p000"]["head_seq"] == 18


def test_a_window_still_finds_tampering(tmp_path: Path) -> None:
    store = without_first_objects(tmp_path)
    trail = pristine()
    from .test_verify import rewrite

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
