"""Which keys signed a chain, and when: a key planted in the bucket shows in the chain's key history.

Signatures prove only that the holder of a key signed; with the keys read from
the bucket (not pinned), a bucket writer can plant a key of its own next to a
tail it forged. Two things in the trail's own history give such a key away:

- it signed before it was published: workers publish their public key before
  they sign anything (and `keys rotate` publishes the new key before workers
  switch to it), so a signature sealed earlier than the key object's first
  version, beyond the clock skew allowed, was made by someone who published the
  key afterwards;
- it took over a chain without the previous key's word: `keys rotate` writes a
  statement signed by the old key naming the new one (keys/rotations/), which
  only the old key's holder can write. A change from one key to another along a
  chain's signed heads (or its digests) that no statement explains is a
  finding. With pinned keys (--key, keys.trusted) the operator vouches for
  every key, so changes among them need no statement.

Heads (the stream's key) and digests (the sink's key) are followed apart: the
two workers may sign with different keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from sealtrail.encoding import parse_ts
from sealtrail.evidence.checks.digests import StoredDigest, VerifiedObject
from sealtrail.evidence.findings import Finding, FindingKind

K = FindingKind


@dataclass(frozen=True, slots=True)
class KeyUse:
    """One signature along a chain: by whom (key id), as what (head or digest), at which seq and time."""

    chain: str
    role: str  # "head" (the stream's signed head) or "digest" (the sink's signature over a digest)
    seq: int
    key_id: str
    at: datetime
    where: str  # the object that carries it


def key_uses(verified: dict[str, list[VerifiedObject]], digests: dict[str, list[StoredDigest]]) -> list[KeyUse]:
    """Who signed the chains' heads (from the rows verified) and their digests, and when.

    Malformed timestamps and digests are findings of their own already; they are left out here.
    """
    uses: list[KeyUse] = []
    for chain, objects in verified.items():
        for obj in objects:
            for seq, kid, sealed_at in obj.signers:
                try:
                    uses.append(KeyUse(chain, "head", seq, kid, parse_ts(sealed_at), obj.key))
                except ValueError:
                    continue
    for chain, stored in digests.items():
        for d in stored:
            try:
                doc = orjson.loads(d.body)
                uses.append(KeyUse(chain, "digest", d.last, str(doc["key_id"]), parse_ts(doc["created_at"]), d.key))
            except (ValueError, KeyError, TypeError, RecursionError):
                continue
    return uses


def key_history_findings(uses: list[KeyUse], published: dict[str, datetime], rotations: set[tuple[str, str]],
                         pinned: bool, skew: timedelta) -> list[Finding]:
    """Signatures made before their key was published, and key changes no rotation statement explains."""
    findings: list[Finding] = []
    by_line: dict[tuple[str, str], list[KeyUse]] = {}
    for use in uses:
        by_line.setdefault((use.chain, use.role), []).append(use)
    for (chain, role), line in sorted(by_line.items()):
        line.sort(key=lambda u: u.seq)
        first_use: dict[str, KeyUse] = {}
        for use in line:
            first_use.setdefault(use.key_id, use)
        for kid, use in first_use.items():
            when = published.get(kid)
            if when is not None and use.at < when - skew:
                findings.append(Finding(
                    K.KEY_BEFORE_PUBLICATION, use.where, None, chain, use.seq,
                    f"the {role} of seq {use.seq} is signed with {kid} at {use.at.isoformat()}, but that key was "
                    f"first published at {when.isoformat()}: it was put in the bucket after it signed"))
        if pinned:
            continue
        for before, after in zip(line, line[1:]):
            if before.key_id != after.key_id and (before.key_id, after.key_id) not in rotations:
                findings.append(Finding(
                    K.KEY_CHANGE_UNEXPLAINED, after.where, None, chain, after.seq,
                    f"the {role}s change from key {before.key_id} (seq {before.seq}) to {after.key_id} "
                    f"(seq {after.seq}) and no rotation statement signed by {before.key_id} names "
                    f"{after.key_id} (sealtrail keys rotate writes one; or pin the keys with keys.trusted)"))
    return findings
