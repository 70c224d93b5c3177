"""One entry point for verification: the bucket or a bundle, its manifest, an anchor, a window, the keys.

Before there was one, `verify --path` took the bundle's scope from its
unsigned manifest while `report --path` verified from seq 1 and `query
--path` read every file, so two commands disagreed about the same folder and
the query showed forged rows verify had skipped. Every command that speaks
about evidence (verify, report, export's own check, query --path, the demo)
now calls verify_evidence, and reads rows only from the objects it returns as
trusted: verified, and named by no finding that says they were changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealtrail.config import Settings
from sealtrail.evidence.findings import COMPLETENESS_KINDS, Finding, Report
from sealtrail.store import ObjectStore


@dataclass
class Verified:
    """A verification's report, the store and settings (prefix) it read, and the objects one may read rows from."""

    report: Report
    settings: Settings
    store: ObjectStore
    trusted: list[str] = field(default_factory=list)


def _continued(anchor: dict[str, Any], chains: Sequence[str] | None) -> dict[str, int]:
    return {chain: a["head"]["seq"] for chain, a in anchor["chains"].items()
            if isinstance((a.get("head") or {}).get("seq"), int) and (not chains or chain in chains)}


def verify_evidence(
    settings: Settings,
    *,
    bundle: Path | None = None,
    store: ObjectStore | None = None,
    trusted_keys: Sequence[bytes] | None = None,
    anchor: dict[str, Any] | None = None,
    only_new: bool = False,
    since: str | None = None,
    until: str | None = None,
    chains: Sequence[str] | None = None,
    tenant: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Verified:
    """Verify the bucket (or store) or a bundle folder; scope from the signed data, never from the manifest.

    A bundle's prefix and chain starts come from its data objects
    (evidence/scope.py); the manifest's disagreements, and data under other
    prefixes, are reported. anchor adds the anchor's checks; with only_new
    only what was sealed after the anchored heads is verified.
    """
    from sealtrail.evidence.walk import verify_store

    kwargs: dict[str, Any] = {"since": since, "until": until, "chains": list(chains) if chains else None,
                              "tenant": tenant}
    if only_new:
        if anchor is None:
            from sealtrail.errors import ConfigError

            raise ConfigError("--anchor", "--new needs --anchor: the heads an earlier run verified")
        kwargs["continued"] = _continued(anchor, chains)
    extra: list[Finding] = []
    foreign: list[dict[str, str]] = []
    if bundle is not None:
        from sealtrail.evidence.bundle import DirectoryStore
        from sealtrail.evidence.manifest import check_manifest
        from sealtrail.evidence.scope import bundle_scope

        manifest, extra = check_manifest(bundle)
        store = DirectoryStore(bundle)
        scope = bundle_scope(list(store.keys("")), settings.s3.prefix, manifest)
        extra += scope.findings
        foreign = [{"key": key, "why": f"under another prefix than {scope.prefix!r}"} for key in scope.foreign]
        if scope.prefix != settings.s3.prefix:  # the bundle keeps the bucket's layout
            settings = settings.model_copy(update={"s3": settings.s3.model_copy(update={"prefix": scope.prefix})})
        if since is None and until is None:
            kwargs["starts"] = scope.starts
    elif store is None:
        from sealtrail.sinks.s3 import S3Store

        store = S3Store(settings)
    report = verify_store(store, settings, progress=progress, trusted_keys=trusted_keys, **kwargs)
    if anchor is not None:
        from sealtrail.evidence.anchor import check_anchor, digest_sha256

        extra += check_anchor(anchor, report, lambda key: digest_sha256(store, key))
    report.unverified += foreign
    if extra:
        report.findings = sorted(report.findings + extra, key=Finding.sort_key)
    damaged = {f.key for f in report.findings if f.kind not in COMPLETENESS_KINDS and f.key}
    return Verified(report, settings, store, [key for key in report.verified if key not in damaged])
