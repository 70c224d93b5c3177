"""Evidence bundles: a date range of the trail copied out of the bucket, verified, with a manifest.

A bundle is a folder laid out like the bucket (the same keys under the same
prefix), so `sealtrail verify --path DIR` checks it with the same code that
checks the bucket, through evidence.bundle.DirectoryStore, with no access to
the bucket. What is copied:

- every data object whose dt= partition lies in the window, in the version
  the sink wrote (the oldest; never a newer one, which verify would call
  tampering); objects hidden by a delete marker or shadowed by a newer version
  are exported as the sink wrote them and noted in the manifest;
- the digests that list those objects (and any further object such a digest
  lists, so every exported digest can be checked in full);
- every public key under keys/ named as the product names them
  (keys/ed25519-<16 hex>.pem); any other name there is left out and noted;
- beside each object a lock sidecar (<key>.lock.json) with the bucket's version
  id, Object Lock mode and retain-until date, last-modified time and the
  SHA-256 checksum S3 reported, which DirectoryStore reads back.

A chain's objects hold whole segments of the chain with every tenant's events
in them, and rows cannot be cut out of a hash chain without breaking it. So
--tenant exports, per chain, the objects from the first to the last that hold
one of the tenant's events (objects between them too, so the chain stays
contiguous), and writes the tenant's rows alone to extracts/ as a convenience
copy that is derived from the evidence, not evidence itself.

Then the bundle is verified and the report written beside it
(verification.json, verification.txt), and last MANIFEST.json lists every
file with its SHA-256 and size (evidence.manifest).
"""

from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sealtrail.config import Settings
from sealtrail.errors import ConfigError
from sealtrail.evidence.bundle import LOCK_SUFFIX
from sealtrail.evidence.findings import Report
from sealtrail.evidence.manifest import MANIFEST, build_manifest, write_manifest
from sealtrail.layout import (
    DataObject,
    data_key,
    data_prefix,
    digest_key,
    digest_prefix,
    parse_data_key,
    parse_digest_key,
    parse_rotation_key,
    rotation_key,
)
from sealtrail.objects import read_table
from sealtrail.store import ObjectStore, ObjectVersion, StoredObject
from sealtrail.versions import history as versions_history

VERIFICATION_JSON = "verification.json"
VERIFICATION_TXT = "verification.txt"
EXTRACTS = "extracts/"
KEYS = "keys/"

Progress = Callable[[int, int], None]


# ---------------------------------------------------------------------------
# Pure: which versions of which keys


def oldest_version(history: list[tuple[int, ObjectVersion]]) -> tuple[ObjectVersion | None, bool, int]:
    """(the sink's version by sealtrail.versions' rule, hidden by a delete marker, how many newer versions)."""
    judged = versions_history(v for _, v in sorted(history, key=lambda e: e[0]))
    return judged.sinks, judged.hidden, len(judged.newer)


def _by_key(versions: Iterable[ObjectVersion]) -> dict[str, list[tuple[int, ObjectVersion]]]:
    out: dict[str, list[tuple[int, ObjectVersion]]] = defaultdict(list)
    for i, v in enumerate(versions):
        out[v.key].append((i, v))
    return out


def _note_history(key: str, hidden: bool, newer: int, notes: list[str]) -> None:
    if hidden:
        notes.append(f"{key}: hidden by a delete marker in the bucket; the sink's version was exported")
    if newer:
        notes.append(f"{key}: {newer} newer version(s) in the bucket; the sink's (oldest) version was exported")


@dataclass
class Selection:
    """The sink's data objects by chain (all of them), and which lie in the window."""

    objects: dict[str, tuple[DataObject, ObjectVersion]] = field(default_factory=dict)
    window: dict[str, list[DataObject]] = field(default_factory=lambda: defaultdict(list))
    notes: list[str] = field(default_factory=list)


def select_objects(versions: Iterable[ObjectVersion], prefix: str, start: date, end: date,
                   chains: Iterable[str] | None = None) -> Selection:
    """Every data object the sink wrote (chains filtered), and those whose dt lies in start..end."""
    wanted = set(chains) if chains else None
    lo, hi = start.isoformat(), end.isoformat()
    sel = Selection()
    for key, history in sorted(_by_key(versions).items()):
        obj = parse_data_key(key)
        if obj is None or key != data_key(prefix, obj.dt, obj.chain, obj.first, obj.last):
            continue  # not a name the sink writes: not evidence, not exported (verify on the bucket names it)
        if wanted is not None and obj.chain not in wanted:
            continue
        version, hidden, newer = oldest_version(history)
        if version is None:
            continue
        sel.objects[key] = (obj, version)
        if lo <= obj.dt <= hi:
            sel.window[obj.chain].append(obj)
            _note_history(key, hidden, newer, sel.notes)
    for objs in sel.window.values():
        objs.sort(key=lambda o: (o.first, o.last))
    return sel


def tenant_span(objects: list[DataObject], holds: dict[str, bool]) -> list[DataObject]:
    """The objects from the first to the last that hold the tenant (a chain cannot be cut between)."""
    hits = [i for i, o in enumerate(objects) if holds.get(o.key)]
    return objects[hits[0] : hits[-1] + 1] if hits else []


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)[:100] or "_"


def lock_sidecar(stored: StoredObject, version: ObjectVersion) -> dict[str, Any]:
    """The sidecar DirectoryStore reads: the bucket's version id, lock, modification time and checksum."""
    return {
        "version_id": version.version_id,
        "mode": stored.lock_mode,
        "retain_until": stored.retain_until.isoformat() if stored.retain_until else None,
        "last_modified": version.last_modified.isoformat(),
        "checksum_sha256": stored.checksum_sha256,
    }


# ---------------------------------------------------------------------------
# I/O: bucket (or another bundle) -> folder


@dataclass(frozen=True, slots=True)
class ExportResult:
    out: Path
    manifest: dict[str, Any]
    report: Report


_KEY_FILE = re.compile(r"ed25519-[0-9a-f]{16}\.pem")  # sealtrail.signing.key_id_of + ".pem"


def is_key_name(key: str, prefix: str) -> bool:
    """Whether key is a public key's name as the product writes it (sealtrail.layout.public_key_key)."""
    return key.startswith(f"{prefix}{KEYS}") and _KEY_FILE.fullmatch(key[len(prefix) + len(KEYS):]) is not None


def contained(root: Path, rel: str) -> Path:
    """root/rel, refusing a name that is empty, absolute, holds a backslash or a .. segment, or resolves
    outside root (through a symlink too): a bucket's keys are anyone's text once a writer plants one."""
    parts = rel.split("/")
    if not rel or rel.startswith("/") or "\\" in rel or ".." in parts or "\x00" in rel:
        raise ConfigError("bundle", f"refusing to write {rel!r}: not a relative path inside the bundle")
    top = root.resolve()
    path = (top / rel).resolve()
    if not path.is_relative_to(top) or path == top:
        raise ConfigError("bundle", f"refusing to write {rel!r}: it resolves outside the bundle")
    return path


class _Writer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.written: set[str] = set()
        self.bytes = 0

    def write(self, rel: str, body: bytes) -> None:
        path = contained(self.root, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        self.written.add(rel)
        self.bytes += len(body)

    def copy(self, stored: StoredObject, version: ObjectVersion) -> None:
        self.write(stored.key, stored.body)
        self.write(stored.key + LOCK_SUFFIX, json.dumps(lock_sidecar(stored, version), indent=1).encode())

    def remove(self, rel: str) -> None:
        for name in (rel, rel + LOCK_SUFFIX):
            contained(self.root, name).unlink(missing_ok=True)
            self.written.discard(name)


def prepare_out(out: Path, prefix: str, force: bool) -> None:
    """An empty (or new) folder; with force, a previous bundle's own files are removed first."""
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", f"not a directory: {out}")
    out.mkdir(parents=True, exist_ok=True)
    if not any(out.iterdir()):
        return
    if not force:
        raise ConfigError("--out", f"{out} is not empty (use --force to replace a bundle in it)")
    top = prefix.split("/", 1)[0] if prefix else ""
    owned = [out / top] if top else [out / "data", out / "digests", out / "keys"]
    owned += [out / EXTRACTS.rstrip("/")]
    for path in owned:
        if path.is_dir():
            shutil.rmtree(path)
    for name in (MANIFEST, VERIFICATION_JSON, VERIFICATION_TXT):
        (out / name).unlink(missing_ok=True)


def _tenant_rows(body: bytes, tenant: str, chain: str) -> pa.Table:
    table = read_table(body)
    rows = table.filter(pc.equal(table.column("tenant"), tenant))
    return rows.append_column("chain", pa.array([chain] * rows.num_rows, pa.string()))


def _holds_tenant(body: bytes, tenant: str) -> bool:
    column = read_table(body).column("tenant")
    return bool(pc.any(pc.equal(column, tenant)).as_py())


class _Copier:
    """Copies the sink's versions from the store into the bundle, counting progress as it goes."""

    def __init__(self, store: ObjectStore, sel: Selection, writer: _Writer, progress: Progress | None) -> None:
        self.store, self.sel, self.writer, self.progress = store, sel, writer, progress
        self.done = 0
        self.total = sum(len(objs) for objs in sel.window.values())

    def step(self, extra: int = 0) -> None:
        self.done += 1
        self.total += extra
        if self.progress is not None:
            self.progress(self.done, self.total)

    def fetch(self, obj: DataObject) -> StoredObject:
        _, version = self.sel.objects[obj.key]
        stored = self.store.get(obj.key, version.version_id)
        self.writer.copy(stored, version)
        return stored


def _select(store: ObjectStore, prefix: str, start: date, end: date, chains: Iterable[str] | None) -> Selection:
    sel = select_objects(store.versions(data_prefix(prefix)), prefix, start, end, chains)
    if not sel.window:
        raise ConfigError("--from/--to", f"no data objects with dt in {start}..{end}"
                          + (f" in chains {sorted(set(chains))}" if chains else ""))
    return sel


def _copy_data(copier: _Copier, tenant: str | None) -> tuple[dict[str, list[DataObject]], list[pa.Table]]:
    """The data objects in the window (with a tenant: those from the first to the last holding it, and its rows)."""
    exported: dict[str, list[DataObject]] = {}
    extracts: list[pa.Table] = []
    for chain, objs in sorted(copier.sel.window.items()):
        holds: dict[str, bool] = {}
        for obj in objs:
            stored = copier.fetch(obj)
            if tenant is not None:
                holds[obj.key] = _holds_tenant(stored.body, tenant)
                if holds[obj.key]:
                    extracts.append(_tenant_rows(stored.body, tenant, chain))
            copier.step()
        kept = objs if tenant is None else tenant_span(objs, holds)
        for obj in objs:
            if obj not in kept:
                copier.writer.remove(obj.key)
        if kept:
            exported[chain] = list(kept)
    return exported, extracts


def _copy_digests(copier: _Copier, prefix: str, exported: dict[str, list[DataObject]]) -> dict[str, int]:
    """The digests that list the exported objects, and whatever else those digests list; digests per chain."""
    digest_history = _by_key(copier.store.versions(digest_prefix(prefix)))
    per_chain: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for key in digest_history:
        parsed = parse_digest_key(key)
        if parsed is not None and key == digest_key(prefix, *parsed) and parsed[0] in exported:
            per_chain[parsed[0]].append((parsed[1], key))
    return {chain: _copy_chain_digests(copier, objs, sorted(per_chain.get(chain, [])), digest_history)
            for chain, objs in sorted(exported.items())}


def _copy_chain_digests(copier: _Copier, objs: list[DataObject], digests: list[tuple[int, str]],
                        digest_history: dict[str, list[tuple[int, ObjectVersion]]]) -> int:
    """One chain's digests (by last seq): the checkpoint before the window, then those listing its objects.

    objs grows by any object such a digest lists outside the window, so every exported digest can be checked
    in full; returns how many digests list the chain's objects.
    """
    sel, writer = copier.sel, copier.writer
    wanted = {o.key for o in objs}
    lo, hi = objs[0].first, objs[-1].last
    count = 0
    for last, key in digests:
        if last == lo - 1:  # the signed checkpoint the window's first object continues: verify anchors on it
            version, hidden, newer = oldest_version(digest_history[key])
            if version is not None:
                writer.copy(copier.store.get(key, version.version_id), version)
                _note_history(key, hidden, newer, sel.notes)
            continue
        if last < lo:
            continue
        if not wanted and last > hi:
            break
        version, hidden, newer = oldest_version(digest_history[key])
        if version is None:
            continue
        stored = copier.store.get(key, version.version_id)
        try:
            listed = [e.get("key") for e in orjson.loads(stored.body).get("objects", [])]
        except (ValueError, AttributeError, TypeError):  # not a digest's shape: verify names it
            listed = []
        if not wanted.intersection(listed):
            if last > hi:
                break
            continue  # a digest of objects the window does not hold
        writer.copy(stored, version)
        _note_history(key, hidden, newer, sel.notes)
        count += 1
        wanted.difference_update(listed)
        held = {o.key for o in objs}
        for extra in listed:
            if extra in sel.objects and extra not in held:  # the digest's other objects, outside the window
                obj, _ = sel.objects[extra]
                copier.fetch(obj)
                objs.append(obj)
                held.add(extra)
                sel.notes.append(f"{extra}: outside the window, exported because digest {key} lists it")
                copier.step(1)
    objs.sort(key=lambda o: (o.first, o.last))
    return count


def _copy_keys(copier: _Copier, prefix: str) -> None:
    """Public keys and rotation statements, by the names the product gives them alone (any other text could
    name a path outside the bundle)."""
    for key, history in sorted(_by_key(copier.store.versions(f"{prefix}{KEYS}")).items()):
        version, _, _ = oldest_version(history)
        if version is None:
            continue
        rotation = parse_rotation_key(key)
        if not is_key_name(key, prefix) and (rotation is None or key != rotation_key(prefix, *rotation)):
            copier.sel.notes.append(f"{key!r}: not a public key or rotation statement name the trail writes "
                                    "(keys/ed25519-<16 hex>.pem, keys/rotations/<old>-<new>.json); not exported")
            continue
        copier.writer.copy(copier.store.get(key, version.version_id), version)


def _write_extract(writer: _Writer, extracts: list[pa.Table], tenant: str | None) -> None:
    """The tenant's rows alone, a convenience copy derived from the evidence."""
    if not extracts:
        return
    path = f"{EXTRACTS}tenant-{safe_name(tenant or '')}.parquet"
    target = contained(writer.root, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.concat_tables(extracts), target, compression="zstd")
    writer.written.add(path)


def _verify(settings: Settings, writer: _Writer, chains: list[str], progress: Progress | None) -> Report:
    """Verify what was written as `verify --path` will (from each chain's first exported seq, on its
    checkpoint), and write the report beside it."""
    from sealtrail.evidence.check import verify_evidence

    report = verify_evidence(settings, bundle=writer.root, chains=chains, progress=progress).report
    writer.write(VERIFICATION_JSON, (json.dumps(report.as_dict(), indent=2, default=str) + "\n").encode())
    writer.write(VERIFICATION_TXT, report.text().encode())
    return report


def _manifest_header(store: ObjectStore, settings: Settings, start: date, end: date, tenant: str | None,
                     exported: dict[str, list[DataObject]], digest_counts: dict[str, int], report: Report,
                     notes: list[str], now: datetime | None) -> dict[str, Any]:
    created = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return {
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "source": {"bucket": getattr(store, "bucket", None) or str(getattr(store, "root", "")),
                   "prefix": settings.s3.prefix, "endpoint": settings.s3.endpoint},
        "window": {"from": start.isoformat(), "to": end.isoformat(), "by": "dt partition (UTC sealing date of "
                   "each object's first record)"},
        "tenant": tenant,
        "chains": {
            chain: {"first_seq": objs[0].first, "last_seq": objs[-1].last, "objects": len(objs),
                    "digests": digest_counts.get(chain, 0)}
            for chain, objs in sorted(exported.items())
        },
        "verification": {"ok": report.ok, "events": report.events, "objects": report.objects,
                         "findings": len(report.findings), "windowed": bool(exported)},
        "evidence": "data/ and digests/ under the prefix, with their signatures (keys/); extracts/ is derived "
                    "from them for convenience and is not evidence",
        "notes": notes,
    }


def export_bundle(
    store: ObjectStore,
    settings: Settings,
    out: Path,
    start: date,
    end: date,
    *,
    tenant: str | None = None,
    chains: Iterable[str] | None = None,
    force: bool = False,
    progress: Progress | None = None,
    verify_progress: Progress | None = None,
    now: datetime | None = None,
) -> ExportResult:
    """Copy a window of the trail from store (S3Store or DirectoryStore) into out, verify it, write the manifest."""
    if end < start:
        raise ConfigError("--to", f"{end} is before --from {start}")
    prefix = settings.s3.prefix
    out = Path(out)
    prepare_out(out, prefix, force)
    sel = _select(store, prefix, start, end, chains)
    writer = _Writer(out)
    copier = _Copier(store, sel, writer, progress)
    exported, extracts = _copy_data(copier, tenant)
    if not exported:
        raise ConfigError("--tenant", f"no events of tenant {tenant!r} in objects with dt in {start}..{end}")
    digest_counts = _copy_digests(copier, prefix, exported)
    _copy_keys(copier, prefix)
    _write_extract(writer, extracts, tenant)
    report = _verify(settings, writer, sorted(exported), verify_progress)
    header = _manifest_header(store, settings, start, end, tenant, exported, digest_counts, report, sel.notes, now)
    manifest = build_manifest(out, header, sorted(writer.written))
    write_manifest(out, manifest)
    return ExportResult(out, manifest, report)
