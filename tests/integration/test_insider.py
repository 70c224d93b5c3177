"""A bucket writer's newer version of a digest never becomes the sink's link target.

Object Lock keeps the sink's version of a key, but anyone with PutObject can
put a newer version on top. Were the sink to link its next digest to that
newer version (a plain GET reads the latest) while verify checks the oldest,
one PUT would break every chain for good. The sink, recovery and verify follow
one rule (core/versions.py): the sink's version is the oldest.
"""

from __future__ import annotations

import hashlib

import orjson

from sealtrail import index
from sealtrail.evidence.findings import FindingKind
from sealtrail.evidence.walk import verify_store
from sealtrail.layout import digest_prefix, parse_digest_key


def test_a_newer_digest_version_planted_between_two_sink_runs_is_reported_and_never_linked(trail) -> None:  # type: ignore[no-untyped-def]
    prefix = trail.settings.s3.prefix
    trail.emit(300, seed=51)
    trail.start("stream")
    sink = trail.start("sink")
    trail.wait_stored(300)
    trail.stop(sink)

    planted: dict[str, tuple[str, str]] = {}  # chain -> (key, sha256 of the sink's version)
    for p in range(trail.partitions):
        chain = f"p{p:03d}"
        newest = index.newest_digest(trail.store, prefix, chain)
        assert newest is not None, f"chain {chain} has no digest"
        doc = newest.doc
        doc["head"]["sealed_at"] = "2020-01-01T00:00:00.000000Z"  # a version of the insider's own
        trail.store.client.put_object(Bucket=trail.store.bucket, Key=newest.key, Body=orjson.dumps(doc))
        planted[chain] = (newest.key, hashlib.sha256(newest.body).hexdigest())

    trail.emit(300, seed=52)
    trail.start("sink")
    trail.wait_stored(600)

    for chain, (key, sinks_sha) in planted.items():
        later = [k for k in trail.store.keys(digest_prefix(prefix, chain))
                 if (parsed := parse_digest_key(k)) and k > key and parsed[0] == chain]
        assert later, f"chain {chain}: no digest written after the planted one"
        first_after = orjson.loads(trail.store.get(min(later)).body)
        assert first_after["previous"]["key"] == key
        assert first_after["previous"]["sha256"] == sinks_sha, f"chain {chain} links to the planted version"

    report = verify_store(trail.store, trail.settings)
    kinds = {(f.kind, f.key) for f in report.findings}
    assert kinds == {(FindingKind.NEWER_VERSION, key) for key, _ in planted.values()}, report.findings
