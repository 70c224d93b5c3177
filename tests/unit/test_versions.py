"""core/versions.py: one rule for which version of a key is the sink's, whatever order the listing gives."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from sealtrail.store import ObjectVersion
from sealtrail.versions import get_sinks, history, oldest_first

KEY = "trail/digests/chain=p000/000000000010.json"
T0 = datetime(2026, 12, 1, 9, 0, 0, tzinfo=timezone.utc)


def v(vid: str, seconds: int, latest: bool = False, marker: bool = False) -> ObjectVersion:
    return ObjectVersion(KEY, vid, latest, marker, 0 if marker else 10, T0 + timedelta(seconds=seconds))


def test_the_oldest_version_is_the_sinks_and_later_ones_are_newer() -> None:
    judged = history([v("planted", 30, latest=True), v("sink", 0)])  # S3 lists newest first
    assert judged.sinks.version_id == "sink"
    assert [n.version_id for n in judged.newer] == ["planted"]
    assert not judged.hidden


def test_a_delete_marker_hides_the_key_but_not_the_sinks_version() -> None:
    judged = history([v("marker", 30, latest=True, marker=True), v("sink", 0)])
    assert judged.sinks.version_id == "sink" and judged.hidden and judged.newer == ()


def test_only_delete_markers_leave_no_version() -> None:
    assert history([v("marker", 0, latest=True, marker=True)]).sinks is None
    assert history([]).sinks is None


def test_within_one_second_the_latest_is_the_newest_then_the_first_listed() -> None:
    """LastModified has second resolution: a version planted within the second of the sink's must
    still not be taken for the sink's (the latest flag, then S3's newest-first listing order)."""
    assert history([v("planted", 0, latest=True), v("sink", 0)]).sinks.version_id == "sink"
    assert history([v("newer", 0), v("middle", 0), v("sink", 0), v("latest", 0, latest=True)]
                   ).sinks.version_id == "sink"


@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=8))
def test_the_rule_is_the_oldest_non_marker_in_listing_order(spec: list[tuple[int, bool]]) -> None:
    """Listed newest first (as S3 does): ages descend along the listing, the first listed is the latest."""
    ages = sorted((s for s, _ in spec), reverse=True)
    listed = [v(f"v{i}", age, latest=i == 0, marker=marker)
              for i, (age, (_, marker)) in enumerate(zip(ages, spec))]
    ordered = oldest_first(listed)
    assert ordered == list(reversed(listed))
    data = [x for x in reversed(listed) if not x.is_delete_marker]
    assert history(listed).sinks == (data[0] if data else None)
    assert history(listed).hidden == listed[0].is_delete_marker


class TwoVersions:
    """A store whose key has the sink's version and a newer one planted over it."""

    def __init__(self) -> None:
        self.got: list[str | None] = []

    def versions(self, prefix: str):  # type: ignore[no-untyped-def]
        return iter([v("planted", 30, latest=True), v("sink", 0)])

    def get(self, key: str, version_id: str | None = None) -> str:
        self.got.append(version_id)
        return {"sink": "sink's bytes", "planted": "planted bytes", None: "planted bytes"}[version_id]


def test_get_sinks_reads_the_sinks_version_not_the_latest() -> None:
    store = TwoVersions()
    assert get_sinks(store, KEY) == "sink's bytes"
    assert store.got == ["sink"]
