"""Which version of a key is the sink's: one rule, for the sink, recovery, verify, export and proofs.

The sink writes each key once. Object Lock keeps that version from being
changed or removed, but it cannot stop someone with PutObject from adding a
newer version on top, or a delete marker that hides it from plain GETs. So
the sink's version of a key is the oldest version that is not a delete
marker, and every reader that follows the chain takes that one: were the sink
to link its next digest to a planted newer version while verify checks the
oldest, one PUT would break the chain for good. The newer versions and the
delete marker are what verify reports.

S3 lists LastModified with second resolution, so versions written within one
second tie; ties fall back to IsLatest (the latest is the newest) and then to
listing order (S3 lists a key's versions newest first).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

from sealtrail.store import ObjectStore


class Version(Protocol):
    """What the rule reads of a listed version (read-only, as ObjectVersion and a bundle's versions are)."""

    @property
    def key(self) -> str: ...
    @property
    def version_id(self) -> str: ...
    @property
    def is_latest(self) -> bool: ...
    @property
    def is_delete_marker(self) -> bool: ...
    @property
    def last_modified(self) -> Any: ...


class History(NamedTuple):
    """A key's versions judged by the rule: the sink's, whether a delete marker hides the key, newer ones."""

    sinks: Any  # the sink's version (an ObjectVersion), or None when only delete markers are left
    hidden: bool
    newer: tuple[Any, ...]


def oldest_first(listed: Iterable[Version]) -> list[Any]:
    """One key's versions (in listing order, delete markers included), oldest first."""
    indexed = list(enumerate(listed))
    return [v for _, v in sorted(indexed, key=lambda e: (e[1].last_modified, e[1].is_latest, -e[0]))]


def history(listed: Iterable[Version]) -> History:
    """The rule applied to one key's versions, as the store listed them."""
    ordered = oldest_first(listed)
    if not ordered:
        return History(None, False, ())
    latest = next((v for v in ordered if v.is_latest), ordered[-1])
    data = [v for v in ordered if not v.is_delete_marker]
    return History(data[0] if data else None, latest.is_delete_marker, tuple(data[1:]))


def sinks_version(store: ObjectStore, key: str) -> Any:
    """The sink's version of one key (listed with one LIST request), or None when none is left."""
    return history(v for v in store.versions(key) if v.key == key).sinks


def get_sinks(store: ObjectStore, key: str) -> Any:
    """GET the sink's version of a key: what the sink and recovery link to, never a newer version.

    One LIST more than a plain GET; it is paid where a worker starts on a chain, not per record.
    A key whose every version is gone is fetched plainly, so the store names the error.
    """
    version = sinks_version(store, key)
    return store.get(key, version.version_id) if version is not None else store.get(key)
