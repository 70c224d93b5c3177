"""What a bundle's verification covers, decided by the signed data alone, never by its manifest.

A bundle's MANIFEST.json is unsigned: anyone who hands an auditor a folder can
write one. When the manifest's prefix and chain starts decided what `verify
--path` read, four crafted bundles full of forged events verified intact with
the auditor's key pinned: a prefix pointing at an empty folder, starts moved
past the data, forged objects below a start with genuine ones above. So here
the prefix is the one the data objects are stored under, each chain starts at
the lowest seq an object holds (a start above 1 must then be anchored on a
signed checkpoint, which verify checks), and the manifest only lists files:
where its prefix or its starts disagree with the data, that is a finding, and
data under any other prefix is reported as not verified.

Pure over the folder's key names, so the same scope serves verify, report,
query and export.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sealtrail.evidence.findings import Finding, FindingKind
from sealtrail.layout import data_prefix, parse_data_key


@dataclass(frozen=True, slots=True)
class BundleScope:
    prefix: str
    starts: dict[str, int]
    findings: list[Finding] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)  # well-named data objects under another prefix: not verified


def bundle_scope(keys: list[str], configured_prefix: str, manifest: dict[str, Any] | None) -> BundleScope:
    """The prefix to verify, each chain's first seq, and what the manifest claims that the data does not."""
    by_prefix: dict[str, list[Any]] = defaultdict(list)
    for key in keys:
        obj = parse_data_key(key)
        if obj is not None:
            by_prefix[key[: key.rfind(f"{data_prefix('')}dt={obj.dt}/chain={obj.chain}/")]].append(obj)
    if configured_prefix in by_prefix or not by_prefix:
        prefix = configured_prefix
    elif len(by_prefix) == 1:
        prefix = next(iter(by_prefix))
    else:  # several prefixes and none is the configured one: the largest, and the others are reported
        prefix = max(by_prefix, key=lambda p: (len(by_prefix[p]), p))
    starts: dict[str, int] = {}
    for obj in by_prefix.get(prefix, []):
        starts[obj.chain] = min(starts.get(obj.chain, obj.first), obj.first)
    foreign = sorted(o.key for p, objs in by_prefix.items() if p != prefix for o in objs)
    findings: list[Finding] = []
    claimed = (manifest or {}).get("source") or {}
    if manifest is not None and isinstance(claimed, dict) and claimed.get("prefix") not in (None, prefix):
        findings.append(Finding(FindingKind.MANIFEST_MISMATCH, "MANIFEST.json", None, None, None,
                                f"the manifest names prefix {claimed.get('prefix')!r}; the data is under {prefix!r}, "
                                "which was verified"))
    for chain, info in sorted(((manifest or {}).get("chains") or {}).items()):
        first = info.get("first_seq") if isinstance(info, dict) else None
        if isinstance(first, int) and first != starts.get(chain, first):
            findings.append(Finding(FindingKind.MANIFEST_MISMATCH, "MANIFEST.json", None, chain, first,
                                    f"the manifest says chain {chain} starts at seq {first}; its data starts at "
                                    f"seq {starts[chain]}, where it was verified from"))
    return BundleScope(prefix, starts, findings, foreign)
