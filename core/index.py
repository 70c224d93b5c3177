"""Where a chain stands in the bucket, found with a few requests however old the trail is.

A trail that runs for years holds millions of objects. A worker that listed
them all at every start paid for the trail's age on each restart and each
partition assignment, so that a seven-year trail took minutes to resume.
Two properties of the names (sealtrail.layout) make the listing unnecessary:

- a digest is named by its chain and the last seq it covers, zero-padded, so
  one chain's digest names sort by seq. The newest is found by a search over
  seqs in which each probe is one LIST of up to 1000 names after a seq
  (StartAfter), and the search ends at the first probe whose page holds the
  rest: one request on a young chain, a few dozen at most on any chain;
- a digest lists its objects by key, so the data objects newer than the
  newest digest (a crash between an object's PUT and its digest's) can only
  be in that digest's last object's dt= folder or a later one (or the day
  before, for a clock that is behind): only those folders of the chain are
  listed.

The object that holds any seq is one LIST (the first digest named at or after
the seq), one LIST of that digest's versions and one GET (the sink's version of
its object list, sealtrail.versions) away. Every digest read here is the sink's
version, never a newer one planted over it.

store is anything with page(prefix, start_after, max_keys), folders(prefix,
start_after), keys(prefix), versions(prefix) and get(key, version_id):
sinks.s3.S3Store or evidence.bundle.DirectoryStore.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import orjson

from sealtrail.layout import DataObject, data_prefix, digest_key, digest_prefix, parse_data_key, parse_digest_key
from sealtrail.store import ObjectStore
from sealtrail.versions import get_sinks

log = logging.getLogger("sealtrail.index")

MAX_SEQ = 10**12 - 1  # the names hold 12 digits
_PROBES = 80  # a binary search over 12 digits needs 40; more means names the search cannot order


@dataclass(frozen=True, slots=True)
class NewestDigest:
    """A chain's newest digest: its name, last seq and document (the objects it lists, its signed head)."""

    key: str
    last: int
    body: bytes

    @property
    def doc(self) -> dict[str, Any]:
        return orjson.loads(self.body)

    def last_object(self) -> DataObject | None:
        objects = self.doc.get("objects") or []
        return parse_data_key(objects[-1]["key"]) if objects else None


def _named(keys: list[str], chain: str) -> list[tuple[int, str]]:
    return [(parsed[1], key) for key in keys if (parsed := parse_digest_key(key)) and parsed[0] == chain]


def _after(store: ObjectStore, prefix: str, chain: str, seq: int, max_keys: int = 1000) -> tuple[list[tuple[int, str]], bool]:
    """The chain's digests named after seq (all from the start when seq < 0), one page, and whether more follow."""
    keys, more = store.page(digest_prefix(prefix, chain), digest_key(prefix, chain, seq) if seq >= 0 else None,
                            max_keys)
    named = _named(keys, chain)
    if keys and not named and more:  # a page of names that are not digests: the search cannot step over them
        raise _Unordered()
    return named, more


class _Unordered(Exception):
    pass


def newest_digest_name(store: ObjectStore, prefix: str, chain: str, hint: int | None = None) -> tuple[int, str] | None:
    """(last seq, key) of the chain's newest digest, or None when it has none.

    hint is a seq near the head (the last seq audit.chained holds): probes
    start there and step down, so a worker that knows roughly where its
    chain ends pays two or three requests. Without it the search starts with
    the first page and halves the seq range.
    """
    try:
        return _search(store, prefix, chain, hint)
    except _Unordered:
        log.warning("chain %s: the digest folder holds names that are not digests; listing it whole", chain)
        named = _named(list(store.keys(digest_prefix(prefix, chain))), chain)
        return max(named) if named else None


def _search(store: ObjectStore, prefix: str, chain: str, hint: int | None) -> tuple[int, str] | None:
    lo, hi = -1, MAX_SEQ  # some digest is named after lo (or lo is -1); none is named after hi
    bounded = False  # hi was found by a probe (not just the names' 12 digits)
    probe = -1 if hint is None else min(max(hint, -1), MAX_SEQ)
    step = up = 1024
    for _ in range(_PROBES):
        named, more = _after(store, prefix, chain, probe)
        if named and not more:
            return max(named)
        if named:  # more than a page after the probe: the newest is beyond what this page shows
            lo = max(seq for seq, _ in named)
            up = max(up, lo - named[0][0])  # at least what one page of names spans
        elif probe < 0:
            return None  # the chain has no digest at all
        else:
            hi, bounded = probe, True
        if lo < 0 and hint is not None and hi == probe:  # below the hint, step down before halving
            probe = max(-1, hi - step)
            step *= 8
        elif not bounded:  # above every probe so far: gallop up from the last page, so an old trail
            probe = min(lo + up, MAX_SEQ)  # costs a few more requests, not 40
            up *= 4
            if probe == MAX_SEQ:
                bounded = True
        else:
            probe = (lo + hi) // 2
        if hi - lo <= 1:
            raise _Unordered()
    raise _Unordered()


def newest_digest(store: ObjectStore, prefix: str, chain: str, hint: int | None = None) -> NewestDigest | None:
    named = newest_digest_name(store, prefix, chain, hint)
    if named is None:
        return None
    last, key = named
    return NewestDigest(key, last, get_sinks(store, key).body)


def objects_after(store: ObjectStore, prefix: str, chain: str, newest: NewestDigest | None) -> list[DataObject]:
    """The chain's data objects beyond its newest digest, in seq order (every object when it has none).

    Only the dt= folders from the newest digest's last object on are listed.
    A chain without any digest is listed in every dt= folder: it is new (or
    its digests were lost, which verify reports).
    """
    data = data_prefix(prefix)
    last_seen = newest.last_object() if newest is not None else None
    # from the day before: a worker whose clock is behind may name a later object by an earlier date
    start_after = f"{data}dt={_day_before(last_seen.dt)}" if last_seen is not None else None
    covered = newest.last if newest is not None else 0
    found: list[DataObject] = []
    for folder in store.folders(data, start_after):
        within = f"{folder}chain={chain}/"
        after = last_seen.key if last_seen is not None and last_seen.key.startswith(within) else None
        keys, more = store.page(within, after)
        while True:
            found += [o for key in keys if (o := parse_data_key(key)) and o.chain == chain and o.first > covered]
            if not more:
                break
            keys, more = store.page(within, keys[-1])
    return sorted(found, key=lambda o: o.first)


def _day_before(dt: str) -> str:
    return (date.fromisoformat(dt) - timedelta(days=1)).isoformat()


def object_holding(store: ObjectStore, prefix: str, chain: str, seq: int) -> DataObject | None:
    """The digested data object that holds seq, from the first digest named at or after it."""
    named, _ = _after(store, prefix, chain, seq - 1, max_keys=8)
    if not named:
        return None
    doc = orjson.loads(get_sinks(store, min(named)[1]).body)
    for entry in doc.get("objects") or []:
        obj = parse_data_key(entry["key"])
        if obj is not None and obj.first <= seq <= obj.last:
            return obj
    return None
