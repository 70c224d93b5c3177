"""The public keys a run trusts, and the bucket's own record of them (publication times, rotations).

Keys are read from the bucket unless pinned (--key, keys.trusted); each key
file is the sink's (oldest) version of its object, and a rotation statement
counts only if the old key signed it. What key_history.py checks along the
chains is measured against this record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sealtrail.config import Settings
from sealtrail.errors import ConfigError
from sealtrail.evidence.checks.locks import lock_findings
from sealtrail.evidence.findings import Finding, FindingKind
from sealtrail.layout import KEYS, parse_rotation_key
from sealtrail.signing import PublicKeys, read_rotation
from sealtrail.store import ObjectStore, ObjectVersion
from sealtrail.versions import history

K = FindingKind


def read_trusted(paths: Sequence[Path]) -> list[bytes]:
    pems = []
    for path in paths:
        try:
            pems.append(Path(path).read_bytes())
        except OSError as e:
            raise ConfigError("keys.trusted", f"cannot read trusted key {path}: {e.strerror or e}") from e
    return pems


def _key_versions(store: ObjectStore, prefix: str) -> dict[str, list[ObjectVersion]]:
    by_key: dict[str, list[ObjectVersion]] = defaultdict(list)
    for v in store.versions(f"{prefix}{KEYS}"):
        by_key[v.key].append(v)
    return by_key


def load_keys(store: ObjectStore, prefix: str, settings: Settings | None = None) -> tuple[list[bytes], list[Finding]]:
    """PEMs of the public keys published in the bucket, each the sink's (oldest) version of its file.

    A key file must be named after its key id; a newer version planted over one is a finding and is
    never read as the key; given settings, the file must be locked as long as the policy's longest
    period (a planted unlocked key is a finding).
    """
    pems: list[bytes] = []
    findings: list[Finding] = []
    by_key = _key_versions(store, prefix)
    for key in sorted(by_key):
        if not key.endswith(".pem"):
            continue
        judged = history(by_key[key])
        if judged.sinks is None:
            continue
        stored = store.get(key, judged.sinks.version_id)
        for newer in judged.newer:  # two workers starting at once may both publish the same key: not a finding
            if store.get(key, newer.version_id).body != stored.body:
                findings.append(Finding(K.NEWER_VERSION, key, newer.version_id, None, None,
                                        f"a newer version with other bytes over the published key (version "
                                        f"{judged.sinks.version_id}); the published one is used"))
        if settings is not None:
            findings += lock_findings(stored, judged.sinks, None, settings)
        try:
            kid = PublicKeys().add_pem(stored.body)
        except (ValueError, TypeError) as e:
            findings.append(Finding(K.UNREADABLE_OBJECT, key, stored.version_id, None, None,
                                    f"not an Ed25519 public key: {e}"))
            continue
        pems.append(stored.body)
        if key.rsplit("/", 1)[-1] != f"{kid}.pem":
            findings.append(Finding(K.OBJECT_INJECTED, key, stored.version_id, None, None,
                                    f"holds key {kid}, not the key its name says"))
    return pems, findings


def key_record(store: ObjectStore, prefix: str, keys: PublicKeys) -> tuple[dict[str, datetime], set[tuple[str, str]],
                                                                     list[Finding]]:
    """When each key was first published (its file's sink's version) and the rotations the old keys signed.

    A rotation statement that does not verify explains nothing, and is a finding.
    """
    by_key = _key_versions(store, prefix)
    published: dict[str, datetime] = {}
    rotations: set[tuple[str, str]] = set()
    findings: list[Finding] = []
    for key, listed in sorted(by_key.items()):
        sinks = history(listed).sinks
        if sinks is None:
            continue
        name = key[len(prefix) + len(KEYS):]
        if name.endswith(".pem") and "/" not in name:
            published[name[:-len(".pem")]] = sinks.last_modified
            continue
        named = parse_rotation_key(key)
        if named is None:
            continue
        try:
            said = read_rotation(store.get(key, sinks.version_id).body, keys)
        except ValueError as e:
            findings.append(Finding(K.OBJECT_INJECTED, key, sinks.version_id, None, None,
                                    f"a key rotation statement that does not hold: {e}"))
            continue
        if said != named:
            findings.append(Finding(K.OBJECT_INJECTED, key, sinks.version_id, None, None,
                                    f"a key rotation statement for {said[0]} -> {said[1]} under another name"))
            continue
        rotations.add(said)
    return published, rotations, findings
