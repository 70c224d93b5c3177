"""sealtrail.merkle against published RFC 6962 vectors and a reference written from the definition."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealtrail import merkle

VECTORS = json.loads((Path(__file__).parent / "data" / "rfc6962_vectors.json").read_text())
LEAVES = [bytes.fromhex(h) for h in VECTORS["leaves"]]


def reference_mth(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 6962 section 2.1: split at the largest power of two below n."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + reference_mth(leaves[:k]) + reference_mth(leaves[k:])).digest()


@pytest.mark.parametrize("size", range(len(VECTORS["roots_by_size"])))
def test_root_matches_published_roots(size: int) -> None:
    assert merkle.root(LEAVES[:size]).hex() == VECTORS["roots_by_size"][size]


def test_empty_tree_and_empty_leaf_differ() -> None:
    assert merkle.root([]) == merkle.EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert merkle.root([b""]).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"


@pytest.mark.parametrize("case", VECTORS["paths"], ids=lambda c: f"{c['index']}:{c['size']}")
def test_inclusion_path_matches_published_paths(case: dict) -> None:
    leaves = LEAVES[: case["size"]]
    path = merkle.inclusion_path(leaves, case["index"])
    assert [p.hex() for p in path] == case["path"]
    assert merkle.root_from_path(leaves[case["index"]], case["index"], case["size"], path) == merkle.root(leaves)


@pytest.mark.parametrize("probe", VECTORS["inclusion_probes"], ids=lambda p: p["name"])
def test_published_inclusion_probes(probe: dict) -> None:
    try:
        got = merkle.root_from_leaf_hash(
            bytes.fromhex(probe["leaf_hash"]), probe["leaf_index"], probe["tree_size"],
            [bytes.fromhex(p) for p in probe["path"]],
        )
        ok = got == bytes.fromhex(probe["root"])
    except ValueError:
        ok = False
    assert ok is not probe["want_err"], probe["desc"]


def test_index_outside_tree_is_refused() -> None:
    with pytest.raises(ValueError):
        merkle.inclusion_path(LEAVES[:3], 3)
    with pytest.raises(ValueError):
        merkle.root_from_path(LEAVES[0], 3, 3, [])


hashes = st.binary(min_size=32, max_size=32)


@given(st.lists(hashes, max_size=70))
def test_root_equals_the_recursive_definition(leaves: list[bytes]) -> None:
    assert merkle.root(leaves) == reference_mth(leaves)


@given(st.lists(hashes, min_size=1, max_size=70), st.data())
def test_every_index_verifies_and_a_flipped_bit_fails(leaves: list[bytes], data: st.DataObject) -> None:
    size, want = len(leaves), merkle.root(leaves)
    for index in range(size):
        path = merkle.inclusion_path(leaves, index)
        assert merkle.root_from_path(leaves[index], index, size, path) == want
    index = data.draw(st.integers(0, size - 1))
    path = merkle.inclusion_path(leaves, index)
    bit = data.draw(st.integers(0, 32 * 8 - 1))
    flipped = bytearray(leaves[index])
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert merkle.root_from_path(bytes(flipped), index, size, path) != want
    if path:
        which = data.draw(st.integers(0, len(path) - 1))
        bad = bytearray(path[which])
        bad[bit // 8] ^= 1 << (bit % 8)
        tampered = [*path[:which], bytes(bad), *path[which + 1:]]
        assert merkle.root_from_path(leaves[index], index, size, tampered) != want


@given(st.lists(hashes, min_size=2, max_size=70, unique=True), st.data())
def test_a_path_proves_no_other_index(leaves: list[bytes], data: st.DataObject) -> None:
    """The index is bound by the path; the size is not always (index 0 of 3 leaves and of 4 walk
    the same way), which is why a proof takes the tree size from the signed digest."""
    size, want = len(leaves), merkle.root(leaves)
    index = data.draw(st.integers(0, size - 1))
    path = merkle.inclusion_path(leaves, index)
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
    try:
        assert merkle.root_from_path(leaves[index], other, size, path) != want
    except ValueError:
        pass


@given(st.lists(hashes, max_size=70), st.data())
def test_trees_built_on_leaf_hashes_equal_trees_built_on_leaves(leaves: list[bytes], data: st.DataObject) -> None:
    """The sink and verify build objects' trees on record hashes, which are leaf hashes already."""
    hashed = [merkle.leaf_hash(leaf) for leaf in leaves]
    assert merkle.root_of_hashes(hashed) == merkle.root(leaves)
    if leaves:
        index = data.draw(st.integers(0, len(leaves) - 1))
        assert merkle.inclusion_path_of_hashes(hashed, index) == merkle.inclusion_path(leaves, index)
