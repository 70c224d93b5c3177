"""An exported bundle's manifest: what the export wrote, file by file, with SHA-256 and size.

The bundle's evidence is its data and digest objects: the digests are signed
by the sink's key and name every data object's SHA-256, the data rows are
hash-chained and their heads signed by the stream's key. The manifest adds
what those cannot see: a file added to the bundle outside the trail's layout,
a verification report or a lock sidecar changed after export, a file removed.
It is not signed with the trail's keys (export runs on an auditor's machine,
which must never hold them); whoever receives a bundle checks its manifest
against the copy or checksum they were sent.

Pure functions over a folder: build_manifest lists files, check_manifest
compares a folder with its manifest and returns findings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any, TypeGuard

from sealtrail.evidence.findings import Finding, FindingKind
from sealtrail.layout import parse_data_key, parse_digest_key

FORMAT = "sealtrail.bundle.v1"
MANIFEST = "MANIFEST.json"
CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def bundle_files(root: Path) -> list[str]:
    """Every file under root as a POSIX path relative to it, the manifest itself left out."""
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.relative_to(root).as_posix() != MANIFEST
    )


def file_entries(root: Path, paths: Iterable[str]) -> list[dict[str, Any]]:
    entries = []
    for rel in sorted(paths):
        path = root / rel
        entries.append({"path": rel, "sha256": file_sha256(path), "size": path.stat().st_size})
    return entries


def build_manifest(root: Path, header: dict[str, Any], paths: Iterable[str] | None = None) -> dict[str, Any]:
    """The manifest document: header fields, then files (all of root but the manifest unless paths)."""
    files = file_entries(root, bundle_files(root) if paths is None else paths)
    return {"format": FORMAT, **header, "files": files}


def write_manifest(root: Path, manifest: dict[str, Any]) -> Path:
    path = root / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return path


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The folder's manifest, None when it has none; raises ValueError when it is not one (nested too
    deeply to parse, or its fields of the wrong type, included: anyone can write a bundle's manifest)."""
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except RecursionError as e:
        raise ValueError("nested too deeply to be a manifest") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("files"), list):
        raise ValueError(f"not a {FORMAT} manifest")
    wrong = [name for name in ("source", "chains") if not isinstance(doc.get(name), (dict, type(None)))]
    if wrong:
        raise ValueError(f"not a {FORMAT} manifest: {', '.join(wrong)} not a JSON object")
    return doc


def _chain_of(rel: str) -> str | None:
    key = rel.removesuffix(".lock.json")
    obj = parse_data_key(key)
    if obj is not None:
        return obj.chain
    digest = parse_digest_key(key)
    return digest[0] if digest else None


def _safe(rel: Any) -> TypeGuard[str]:
    if not isinstance(rel, str) or not rel:
        return False
    p = PurePosixPath(rel)
    return not p.is_absolute() and ".." not in p.parts and rel != MANIFEST


def check_manifest(root: Path) -> tuple[dict[str, Any] | None, list[Finding]]:
    """(manifest or None, findings): every listed file present with its SHA-256 and size, nothing unlisted."""
    def finding(rel: str | None, detail: str) -> Finding:
        return Finding(FindingKind.MANIFEST_MISMATCH, rel, None, _chain_of(rel) if rel else None, None, detail)

    try:
        manifest = read_manifest(root)
    except (OSError, ValueError) as e:
        return None, [finding(MANIFEST, f"unreadable manifest: {e}")]
    if manifest is None:
        return None, []
    findings: list[Finding] = []
    listed: set[str] = set()
    for entry in manifest["files"]:
        rel = entry.get("path") if isinstance(entry, dict) else None
        if not _safe(rel):
            findings.append(finding(MANIFEST, f"manifest lists a path outside the bundle: {rel!r}"))
            continue
        listed.add(rel)
        path = root / rel
        if not path.is_file():
            findings.append(finding(rel, "listed in the manifest but missing from the bundle"))
            continue
        size, digest = path.stat().st_size, file_sha256(path)
        if digest != entry.get("sha256") or size != entry.get("size"):
            findings.append(finding(rel, f"changed since export: SHA-256 {digest} ({size} bytes), the manifest "
                                         f"lists {entry.get('sha256')} ({entry.get('size')} bytes)"))
    for rel in bundle_files(root):
        if rel not in listed:
            findings.append(finding(rel, "in the bundle but not listed in the manifest: added after export"))
    return manifest, findings


def chain_starts(manifest: dict[str, Any]) -> dict[str, int]:
    """First exported seq per chain, as the manifest records it."""
    out = {}
    for chain, info in (manifest.get("chains") or {}).items():
        if isinstance(info, dict) and isinstance(info.get("first_seq"), int):
            out[chain] = info["first_seq"]
    return out
