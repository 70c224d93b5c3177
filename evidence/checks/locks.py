"""An object's Object Lock and stored checksum against what it holds: pure, from the object as read.

Object Lock does not stop a new version of a key or a delete marker (the
listing shows those, checks/listing.py), but it must hold the sink's version
as long as the retention policy asks of what that version holds.
"""

from __future__ import annotations

from datetime import timedelta

from sealtrail.config import Settings
from sealtrail.evidence.findings import Finding, FindingKind
from sealtrail.retention import policy_for, required_lock
from sealtrail.store import ObjectVersion, StoredObject, sha256_b64

K = FindingKind
RETENTION_SLACK = timedelta(days=1)


def lock_findings(stored: StoredObject, version: ObjectVersion, chain: str | None, settings: Settings
                  ) -> list[Finding]:
    """Object Lock: set, and as strong and as long as the retention policy demands of what the object holds.

    A data object needs the longest period (and strongest mode) any of its
    events needs, a digest the policy's longest (core/retention.py).
    """
    key, vid = stored.key, version.version_id
    if not stored.lock_mode:
        return [Finding(K.NOT_LOCKED, key, vid, chain, None, "the object has no Object Lock retention")]
    need = required_lock(policy_for(settings), key, stored.body, version.last_modified)
    rules = ", ".join(need.rules)
    findings = []
    if need.mode == "COMPLIANCE" and stored.lock_mode != "COMPLIANCE":
        findings.append(Finding(K.NOT_LOCKED, key, vid, chain, None,
                                f"locked in {stored.lock_mode} mode, which privileged users can lift; "
                                "the policy asks COMPLIANCE for what it holds"))
    if stored.retain_until is None or stored.retain_until < need.retain_until - RETENTION_SLACK:
        until = stored.retain_until.isoformat() if stored.retain_until else "none"
        findings.append(Finding(K.RETENTION_SHORT, key, vid, chain, None,
                                f"retained until {until}, the policy asks until {need.retain_until.isoformat()} "
                                f"(rule {rules}, from {version.last_modified.isoformat()})"))
    return findings


def checksum_findings(stored: StoredObject, chain: str | None) -> list[Finding]:
    if stored.checksum_sha256 is None:
        return []
    actual = sha256_b64(stored.body)
    if actual == stored.checksum_sha256:
        return []
    return [Finding(K.CHECKSUM_MISMATCH, stored.key, stored.version_id, chain, None,
                    f"body SHA-256 {actual} differs from the stored checksum {stored.checksum_sha256}")]
