"""core/index.py: a chain's head found in a few requests, on a trail of ten objects or of a hundred thousand."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealtrail import index
from sealtrail.layout import data_key, digest_key
from sealtrail.store import ObjectVersion

PREFIX = "trail/"
CHAIN = "p000"
WRITTEN = datetime(2026, 12, 1, tzinfo=timezone.utc)


@dataclass
class _Body:
    body: bytes


class MemoryStore:
    """The listing calls of S3Store over a sorted list of names, counting requests."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.names = sorted(objects)
        self.requests = 0

    def page(self, prefix, start_after=None, max_keys=1000):  # type: ignore[no-untyped-def]
        self.requests += 1
        i = bisect.bisect_right(self.names, start_after) if start_after else bisect.bisect_left(self.names, prefix)
        out = []
        while i < len(self.names) and len(out) <= max_keys:
            name = self.names[i]
            if not name.startswith(prefix):
                if name > prefix:
                    break
            else:
                out.append(name)
            i += 1
        return out[:max_keys], len(out) > max_keys

    def folders(self, prefix, start_after=None):  # type: ignore[no-untyped-def]
        self.requests += 1
        found = {prefix + n[len(prefix):].split("/", 1)[0] + "/" for n in self.names
                 if n.startswith(prefix) and "/" in n[len(prefix):]}
        return iter(sorted(f for f in found if start_after is None or f > start_after))

    def keys(self, prefix):  # type: ignore[no-untyped-def]
        self.requests += 1
        return iter([n for n in self.names if n.startswith(prefix)])

    def versions(self, prefix, start_after=None):  # type: ignore[no-untyped-def]
        """One version per name, as an unversioned copy of the bucket lists them."""
        self.requests += 1
        return iter([ObjectVersion(n, "v1", True, False, len(self.objects[n]), WRITTEN)
                     for n in self.names if n.startswith(prefix) and (start_after is None or n > start_after)])

    def get(self, key, version_id=None):  # type: ignore[no-untyped-def]
        self.requests += 1
        return _Body(self.objects[key])


def trail(lasts: list[int], dt: str = "2026-12-01", chain: str = CHAIN) -> dict[str, bytes]:
    """Data objects ending at each of lasts, one digest each, listing its object."""
    objects: dict[str, bytes] = {}
    first = 1
    for last in sorted(set(lasts)):
        key = data_key(PREFIX, dt, chain, first, last)
        objects[key] = b"parquet"
        objects[digest_key(PREFIX, chain, last)] = orjson.dumps({"objects": [{"key": key, "first": first,
                                                                              "last": last}]})
        first = last + 1
    return objects


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 10**7), min_size=0, max_size=3000), st.one_of(st.none(), st.integers(-5, 2 * 10**7)))
def test_newest_digest_is_the_highest_seq_whatever_the_hint(lasts: list[int], hint: int | None) -> None:
    store = MemoryStore({**trail(lasts), **trail([5, 9], chain="p001")})
    found = index.newest_digest_name(store, PREFIX, CHAIN, hint)
    assert (found[0] if found else None) == (max(lasts) if lasts else None)
    assert store.requests <= 2 * 40 + 2


def test_requests_do_not_grow_with_the_trails_age() -> None:
    young = MemoryStore(trail(list(range(300, 3001, 300))))  # 10 objects
    old = MemoryStore(trail(list(range(10, 1_000_001, 10))))  # 100,000 objects
    for store, last in ((young, 3000), (old, 1_000_000)):
        assert index.newest_digest_name(store, PREFIX, CHAIN, hint=last + 7) == (last, digest_key(PREFIX, CHAIN, last))
    assert young.requests <= 2 and old.requests <= 3
    young.requests = old.requests = 0
    assert index.newest_digest_name(young, PREFIX, CHAIN)[0] == 3000
    assert index.newest_digest_name(old, PREFIX, CHAIN)[0] == 1_000_000
    assert young.requests == 1 and old.requests <= 16  # no hint: a gallop up from the first page, then halving


def test_names_that_are_not_digests_do_not_mislead_the_search() -> None:
    objects = trail(list(range(10, 30_001, 10)))
    objects.update({f"{PREFIX}digests/chain={CHAIN}/{CHAIN}-{i:012d}.json.tmp": b"" for i in range(1, 3000)})
    objects[f"{PREFIX}digests/chain={CHAIN}/zzz"] = b""
    store = MemoryStore(objects)
    assert index.newest_digest_name(store, PREFIX, CHAIN, hint=None)[0] == 30_000


def test_objects_after_the_newest_digest_are_found_in_later_days_and_the_day_before() -> None:
    objects = trail([10, 20, 30], dt="2026-12-01")
    late = [data_key(PREFIX, "2026-12-01", CHAIN, 31, 40), data_key(PREFIX, "2026-12-03", CHAIN, 41, 50),
            data_key(PREFIX, "2026-11-30", CHAIN, 51, 60)]  # a clock behind names a later object by the day before
    older = data_key(PREFIX, "2026-11-20", CHAIN, 61, 70)  # more than a day behind: out of reach, by design
    other = data_key(PREFIX, "2026-12-03", "p001", 1, 9)
    store = MemoryStore({**objects, **dict.fromkeys([*late, older, other], b"x")})
    newest = index.newest_digest(store, PREFIX, CHAIN)
    assert newest is not None and newest.last == 30
    found = index.objects_after(store, PREFIX, CHAIN, newest)
    assert [o.key for o in found] == [late[0], late[1], late[2]]


def test_a_chain_without_digests_lists_every_day() -> None:
    keys = [data_key(PREFIX, "2026-11-01", CHAIN, 1, 5), data_key(PREFIX, "2026-12-01", CHAIN, 6, 9)]
    store = MemoryStore(dict.fromkeys(keys, b"x"))
    assert index.newest_digest(store, PREFIX, CHAIN) is None
    assert [o.key for o in index.objects_after(store, PREFIX, CHAIN, None)] == keys


@pytest.mark.parametrize("seq", [1, 10, 11, 555, 1000])
def test_object_holding_a_seq_is_three_requests_away(seq: int) -> None:
    """One LIST of digest names, one LIST of that digest's versions (the sink's is the oldest), one GET."""
    store = MemoryStore(trail(list(range(10, 1001, 10))))
    obj = index.object_holding(store, PREFIX, CHAIN, seq)
    assert obj is not None and obj.first <= seq <= obj.last
    assert store.requests == 3
    assert index.object_holding(store, PREFIX, CHAIN, 1001) is None
