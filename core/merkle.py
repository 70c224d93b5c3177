"""RFC 6962 Merkle trees over record hashes: roots, inclusion paths, and path verification.

A digest lists, for every data object, the Merkle Tree Hash of its rows in
sequence order, whose leaf hashes are the rows' record hashes
(sealtrail.record.chain_hash is SHA-256(0x00 || leaf), the leaf being the
previous hash and the content's digest). One row can then be shown to hold a place
in a signed digest with a path of log2(rows) hashes, without the rest of the
object: the auditor's inclusion proof (sealtrail.evidence.proof).

The hashing is RFC 6962's (section 2.1), so any Certificate Transparency
verifier agrees with it: a leaf is SHA-256(0x00 || leaf), an inner node
SHA-256(0x01 || left || right), the tree of no leaves SHA-256(""). Trees are
built level by level, pairing neighbours and carrying a lone last node up
unchanged, which gives the same root as the recursive definition (split at
the largest power of two below n) without recursion. Verification follows
RFC 9162 section 2.1.3.2.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256

EMPTY_ROOT = sha256(b"").digest()
LEAF_PREFIX = b"\x00"  # RFC 6962: a leaf hash is SHA-256(0x00 || leaf); record hashes are built the same way
_NODE = b"\x01"


def leaf_hash(leaf: bytes) -> bytes:
    return sha256(LEAF_PREFIX + leaf).digest()


def _parents(level: list[bytes]) -> list[bytes]:
    up = [sha256(_NODE + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        up.append(level[-1])
    return up


def root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of the leaves (RFC 6962 MTH)."""
    return root_of_hashes([leaf_hash(leaf) for leaf in leaves])


def root_of_hashes(hashed_leaves: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of leaves given by their leaf hashes (a trail's record hashes are those)."""
    if not hashed_leaves:
        return EMPTY_ROOT
    level = list(hashed_leaves)
    while len(level) > 1:
        level = _parents(level)
    return level[0]


def inclusion_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, leaves): the sibling hashes from the leaf up to the root (RFC 6962 2.1.1)."""
    return inclusion_path_of_hashes([leaf_hash(leaf) for leaf in leaves], index)


def inclusion_path_of_hashes(hashed_leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, ...) for leaves given by their leaf hashes."""
    if not 0 <= index < len(hashed_leaves):
        raise ValueError(f"leaf index {index} outside a tree of {len(hashed_leaves)} leaves")
    level = list(hashed_leaves)
    path: list[bytes] = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):  # a lone last node is carried up and has no sibling at this level
            path.append(level[sibling])
        level = _parents(level)
        index >>= 1
    return path


def root_from_leaf_hash(hashed_leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """The root a path leads to from an already hashed leaf (RFC 9162 2.1.3.2, steps 1-5).

    Raises ValueError when the index lies outside the tree or the path has the
    wrong length for (index, size): such a path proves nothing whatever root
    it would give.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} outside a tree of {size} leaves")
    if len(hashed_leaf) != 32:
        raise ValueError("leaf hash is not a 32-byte hash")
    fn, sn, r = index, size - 1, hashed_leaf
    for p in path:
        if len(p) != 32:
            raise ValueError("path element is not a 32-byte hash")
        if sn == 0:
            raise ValueError("path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = sha256(_NODE + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(_NODE + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("path is shorter than the tree is deep")
    return r


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """The root that `path` leads to from `leaf` at `index` in a tree of `size` leaves."""
    return root_from_leaf_hash(leaf_hash(leaf), index, size, path)
