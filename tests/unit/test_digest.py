"""Digests name the input offsets their objects and head account for (record format v3)."""

from __future__ import annotations

from sealtrail.digest import ListedObject, head_of
from sealtrail.record import GENESIS, SealedRecord


def test_the_signed_head_names_its_input_offset() -> None:
    head = SealedRecord("p002", 7, "2026-12-03T00:00:00.000000Z", 41, {}, GENESIS, "ed25519-00", bytes(64))
    assert head_of(head)["src_offset"] == 41


def test_a_listed_object_names_its_input_range_only_when_known() -> None:
    known = ListedObject("k", "v", "s", 1, 5, 10, None, 100, 104).as_dict()
    assert known["input"] == {"first": 100, "last": 104}
    assert "input" not in ListedObject("k", "v", "s", 1, 5, 10).as_dict()  # older digests keep their bytes
