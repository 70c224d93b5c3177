"""Anchors: each chain's latest signed digest, saved outside the bucket, so a truncated tail shows.

Within the bucket the newest digest is the only witness of where a chain
ends. An insider who can remove objects (GOVERNANCE mode with the bypass
permission, or a bucket without Object Lock) and removes a chain's newest data
objects together with their digests leaves a shorter trail that verifies
intact: it looks like a trail that simply ended earlier. An anchor records,
per chain, the latest digest's key, the SHA-256 of its bytes and its signed
head (seq, hash), somewhere the bucket's insiders cannot rewrite (a file
kept by the auditor, a ticket, another account's store). `verify --anchor`
then reports TRUNCATED_TAIL when the chain now ends before the anchored head
or the anchored digest is gone, and DIGEST_ALTERED when it has other bytes.

check_anchor is pure over a verify Report; save_anchor and digest_sha256
read the store (S3Store or DirectoryStore).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from sealtrail.config import Settings
from sealtrail.errors import ConfigError, ServiceUnavailable
from sealtrail.evidence.findings import Finding, FindingKind, Report
from sealtrail.layout import digest_key, digest_prefix, parse_digest_key
from sealtrail.store import ObjectStore
from sealtrail.versions import sinks_version

FORMAT = "sealtrail.anchor.v1"
K = FindingKind


def latest_digests(store: ObjectStore, prefix: str) -> dict[str, tuple[int, str]]:
    """Per chain, (last seq, key) of the digest that covers the most: the chain's newest.

    Found by a search over the names (core/index.py) where the store can page, so saving an anchor
    costs the same on a trail of any age; by listing every digest version otherwise."""
    if hasattr(store, "page") and hasattr(store, "folders"):
        from sealtrail.index import newest_digest_name

        found = {}
        for folder in store.folders(digest_prefix(prefix)):
            chain = folder.rstrip("/").rsplit("chain=", 1)[-1]
            named = newest_digest_name(store, prefix, chain)
            if named is not None:
                found[chain] = named
        return found
    latest: dict[str, tuple[int, str]] = {}
    for v in store.versions(digest_prefix(prefix)):
        parsed = parse_digest_key(v.key)
        if parsed is None or v.key != digest_key(prefix, *parsed) or v.is_delete_marker:
            continue
        chain, last = parsed
        if chain not in latest or last > latest[chain][0]:
            latest[chain] = (last, v.key)
    return latest


def stored_digest(store: ObjectStore, key: str) -> tuple[str | None, bytes | None]:
    """(version id, bytes) of the sink's version of a digest, or (None, None) when none is left."""
    version = sinks_version(store, key)
    if version is None:
        return None, None
    return version.version_id, store.get(key, version.version_id).body


def digest_sha256(store: ObjectStore, key: str) -> str | None:
    _, body = stored_digest(store, key)
    return None if body is None else hashlib.sha256(body).hexdigest()


def save_anchor(store: ObjectStore, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """The anchor document for the store's current state."""
    prefix = settings.s3.prefix
    chains: dict[str, Any] = {}
    for chain, (last, key) in sorted(latest_digests(store, prefix).items()):
        version_id, body = stored_digest(store, key)
        if body is None:
            continue
        try:
            head = orjson.loads(body)["head"]
            head = {k: head[k] for k in ("seq", "hash", "sealed_at", "key_id", "signature")}
        except (ValueError, KeyError, TypeError):
            head = {"seq": last, "hash": None}  # unreadable: verify reports it; the bytes are still anchored
        chains[chain] = {"digest": key, "version_id": version_id, "sha256": hashlib.sha256(body).hexdigest(),
                         "head": head}
    created = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return {
        "format": FORMAT,
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "source": {"bucket": getattr(store, "bucket", None), "prefix": prefix, "endpoint": settings.s3.endpoint},
        "chains": chains,
    }


def read_anchor(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ConfigError("--anchor", f"unreadable anchor file {path}: {e}") from e
    except RecursionError as e:  # nested deeper than the parser's stack: as malformed as any other bad JSON
        raise ConfigError("--anchor", f"unreadable anchor file {path}: JSON nested too deeply") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("chains"), dict):
        raise ConfigError("--anchor", f"{path} is not a {FORMAT} file")
    return doc


def check_anchor(anchor: dict[str, Any], report: Report, sha256_of: Callable[[str], str | None]) -> list[Finding]:
    """Findings where the store no longer reaches, or no longer holds, what the anchor saw."""
    findings: list[Finding] = []
    saved = anchor.get("created_at")
    for chain, a in sorted(anchor["chains"].items()):
        key, head = a.get("digest"), a.get("head") or {}
        seq, hashed = head.get("seq"), head.get("hash")
        summary = report.chains.get(chain) or {}
        head_seq, head_hash = summary.get("head_seq", 0) or 0, summary.get("head_hash")
        if isinstance(seq, int) and head_seq < seq:
            findings.append(Finding(K.TRUNCATED_TAIL, key, a.get("version_id"), chain, head_seq + 1,
                                    f"the anchor saved at {saved} saw the chain signed up to seq {seq} (digest "
                                    f"{key}); the store holds records only up to seq {head_seq}"))
        elif seq == head_seq and hashed and head_hash and hashed != head_hash:
            findings.append(Finding(K.CELL_CHANGED, key, a.get("version_id"), chain, seq,
                                    f"the chain's hash at seq {seq} differs from the head anchored at {saved}"))
        actual = sha256_of(key) if isinstance(key, str) else None
        if actual is None:
            findings.append(Finding(K.TRUNCATED_TAIL, key, a.get("version_id"), chain, seq,
                                    f"the digest anchored at {saved} is no longer in the store"))
        elif actual != a.get("sha256"):
            findings.append(Finding(K.DIGEST_ALTERED, key, a.get("version_id"), chain, seq,
                                    f"the digest's SHA-256 is {actual}, the anchor of {saved} recorded {a.get('sha256')}"))
    return findings



# ---------------------------------------------------------------------------
# PostgreSQL: an append-only table of anchors, outside the bucket

TABLE = "sealtrail_anchors"
_CREATE = (f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, saved_at timestamptz NOT NULL "
           "DEFAULT now(), bucket text, prefix text NOT NULL, anchor jsonb NOT NULL)")


def _connect(database_url: str | None):
    import psycopg

    if not database_url:
        raise ConfigError("database_url", "no database: set SEALTRAIL_DATABASE_URL (or run `sealtrail up`)")
    try:
        return psycopg.connect(database_url, connect_timeout=10, autocommit=True)
    except psycopg.OperationalError as e:
        raise ServiceUnavailable("postgres", " ".join(str(e).split())) from e


def store_anchor(database_url: str | None, anchor: dict[str, Any]) -> int:
    """Append the anchor to the table (created if missing); returns its row id."""
    import psycopg

    try:
        with _connect(database_url) as conn:
            conn.execute(_CREATE)
            row = conn.execute(
                f"INSERT INTO {TABLE} (bucket, prefix, anchor) VALUES (%s, %s, %s::jsonb) RETURNING id",
                (anchor["source"]["bucket"], anchor["source"]["prefix"], json.dumps(anchor)),
            ).fetchone()
    except psycopg.Error as e:
        raise ServiceUnavailable("postgres", f"storing the anchor: {e}") from e
    return int(row[0])


def latest_anchor(database_url: str | None, bucket: str | None, prefix: str) -> dict[str, Any]:
    """The newest anchor stored for this bucket and prefix."""
    import psycopg

    try:
        with _connect(database_url) as conn:
            conn.execute(_CREATE)
            row = conn.execute(
                f"SELECT anchor::text FROM {TABLE} WHERE bucket IS NOT DISTINCT FROM %s AND prefix = %s "
                "ORDER BY id DESC LIMIT 1", (bucket, prefix),
            ).fetchone()
    except psycopg.Error as e:
        raise ServiceUnavailable("postgres", f"reading anchors: {e}") from e
    if row is None:
        raise ConfigError("--from-postgres", f"no anchor stored for bucket {bucket} prefix {prefix!r}")
    return json.loads(row[0])
