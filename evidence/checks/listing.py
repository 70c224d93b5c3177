"""What the listing alone shows, and which version of which data object a run verifies.

Object Lock does not stop a new version of a key or a delete marker, so
every version is listed: the oldest version of a key is the one the sink
wrote and is the one verified (sealtrail.versions); anything newer, or a
delete marker, is a finding. A window (since/until, or a bundle's chain
starts) picks objects by their dt= partition and seq range; what it leaves
out is said, so "intact" never covers more than was read. Pure: a list of
versions in, a plan out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sealtrail.evidence.findings import Finding, FindingKind
from sealtrail.layout import DataObject, data_key, parse_data_key
from sealtrail.store import ObjectVersion
from sealtrail.versions import oldest_first

K = FindingKind


@dataclass(frozen=True, slots=True)
class Planned:
    obj: DataObject
    version: ObjectVersion
    newer: tuple[ObjectVersion, ...]


def sorted_versions(entries: list[tuple[int, ObjectVersion]]) -> list[ObjectVersion]:
    """Oldest first, by the one rule of which version is the sink's (sealtrail.versions)."""
    return oldest_first(v for _, v in sorted(entries, key=lambda e: e[0]))


def plan(versions: Iterable[ObjectVersion], prefix: str, chains: Iterable[str] | None = None
         ) -> tuple[dict[str, list[Planned]], list[Finding]]:
    """Which version of which key to verify, per chain, and what the listing alone shows."""
    wanted = set(chains) if chains is not None else None
    by_key: dict[str, list[tuple[int, ObjectVersion]]] = defaultdict(list)
    for i, v in enumerate(versions):
        by_key[v.key].append((i, v))
    planned: dict[str, list[Planned]] = defaultdict(list)
    findings: list[Finding] = []
    for key in sorted(by_key):
        history = sorted_versions(by_key[key])
        latest = next((v for v in history if v.is_latest), history[-1])
        obj = parse_data_key(key)
        if obj is None or key != data_key(prefix, obj.dt, obj.chain, obj.first, obj.last):
            if wanted is None or (obj is not None and obj.chain in wanted):
                findings.append(Finding(K.OBJECT_INJECTED, key, latest.version_id, obj.chain if obj else None,
                                        None, "not a data object name the sink writes"))
            continue
        if wanted is not None and obj.chain not in wanted:
            continue
        data = [v for v in history if not v.is_delete_marker]
        if latest.is_delete_marker:
            findings.append(Finding(K.DELETE_MARKER, key, latest.version_id, obj.chain, obj.first,
                                    f"a delete marker hides seqs {obj.first}..{obj.last} from readers"))
            planned.setdefault(obj.chain, [])  # the chain exists even if all its objects are hidden
            continue
        if not data:
            continue
        planned[obj.chain].append(Planned(obj, data[0], tuple(data[1:])))
    return dict(planned), findings


def window_by_dates(versions: list[ObjectVersion], since: str | None, until: str | None,
                     starts: dict[str, int], ends: dict[str, int]) -> None:
    """Each chain's first and last seq among the data keys whose dt= lies in [since, until] (in place).

    Every listed key counts, a key behind a delete marker too: a hidden object
    inside the window must start the window (and be reported), not move it.
    """
    spans: dict[str, tuple[int, int]] = {}
    for v in versions:
        obj = parse_data_key(v.key)
        if obj is None or (since is not None and obj.dt < since) or (until is not None and obj.dt > until):
            continue
        lo, hi = spans.get(obj.chain, (obj.first, obj.last))
        spans[obj.chain] = (min(lo, obj.first), max(hi, obj.last))
    for chain, (lo, hi) in spans.items():
        if since is not None:
            starts[chain] = max(starts.get(chain, 1), lo)
        if until is not None:
            ends[chain] = hi


def left_out(versions: list[ObjectVersion], prefix: str, planned: dict[str, list[Planned]],
             starts: dict[str, int], ends: dict[str, int], chains: Iterable[str] | None) -> list[dict[str, str]]:
    """The well-named data objects this run leaves unchecked, and why: what "intact" does not cover."""
    wanted = set(chains) if chains is not None else None
    out: list[dict[str, str]] = []
    for chain, items in sorted(planned.items()):
        for i in items:
            if i.obj.last < starts.get(chain, 1):
                out.append({"key": i.obj.key, "why": f"before the window (chain {chain} from seq {starts[chain]})"})
            elif chain in ends and i.obj.first > ends[chain]:
                out.append({"key": i.obj.key, "why": f"after the window (chain {chain} to seq {ends[chain]})"})
    if wanted is not None:
        seen = {v.key for v in versions if not v.is_delete_marker}
        for key in sorted(seen):
            obj = parse_data_key(key)
            if obj is not None and obj.chain not in wanted:
                out.append({"key": key, "why": f"chain {obj.chain} not asked for"})
    return out


def in_window(finding: Finding, starts: dict[str, int], ends: dict[str, int]) -> bool:
    """Whether a listing finding concerns the window: lifecycle expiry leaves delete markers on the
    objects before it (and versioned buckets keep them), which a window starting later must not blame."""
    obj = parse_data_key(finding.key) if finding.key else None
    if finding.kind != K.DELETE_MARKER or obj is None:
        return True
    end = ends.get(obj.chain)
    return obj.last >= starts.get(obj.chain, 1) and (end is None or obj.first <= end)
