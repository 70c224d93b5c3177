"""The unit tests' trail: two chains sealed the way the pipeline seals them, laid out as an exported bundle.

Events go through the stream's own validate -> seal_batch -> to_parquet, and
one digest per chain lists the three objects, so verify, prove, export and the
format tests all start from a trail the product itself would write; each test
then tampers with one thing. `pristine()` is built once per session (sealing
costs a signature per batch); tests copy it into a folder with
`write_bundle` before changing anything.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Callable

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from sealtrail import merkle
from sealtrail.chain import Accepted, ChainHead, seal_batch
from sealtrail.config import RetentionSettings, S3Settings, Settings
from sealtrail.digest import ListedObject, build_digest, head_of
from sealtrail.evidence.bundle import DirectoryStore
from sealtrail.evidence.findings import FindingKind, Report
from sealtrail.evidence.walk import verify_store
from sealtrail.layout import data_key, public_key_key
from sealtrail.objects import SCHEMA, to_parquet
from sealtrail.record import GENESIS, SealedRecord
from sealtrail.signing import Signer
from sealtrail.store import sha256_b64
from sealtrail.stream.validate import validate
from tests.support.signers import new_signer
from tests.support.stores import LOCK_DAYS, put_file, set_sidecar

PREFIX = "trail/"
DAY = "2024-03-01"
CHAINS = ("p000", "p001")
BATCHES = (7, 5, 6)  # records per chain in each sealed batch: heads at seqs 7, 12, 18
OBJECTS = ((1, 5), (6, 10), (11, 18))  # the sink's objects: only the last ends on a signed head
RETENTION_DAYS = LOCK_DAYS - 1  # every object is locked a day longer than the policy asks
SETTINGS = Settings(s3=S3Settings(prefix=PREFIX), retention=RetentionSettings(days=RETENTION_DAYS))


def event(chain_no: int, i: int) -> dict[str, Any]:
    """Varied events: some without resource, ip or before/after, some with non-ASCII text."""
    ev: dict[str, Any] = {
        "event_id": event_id(chain_no, i),
        "occurred_at": f"{DAY}T09:{i // 60:02d}:{i % 60:02d}.{i * 1111 % 1000000:06d}+00:00",
        "category": ("auth", "change", "access")[i % 3],
        "action": ("auth.login", "data.update", "data.read")[i % 3],
        "actor": {"id": f"user-{i % 4}"},
        "tenant": "acme",
        "source": "billing",
        "metadata": {"n": i, "note": "grüße ✓"},
    }
    if i % 3:
        ev["resource"] = {"type": "invoice", "id": f"inv-{i}"}
        ev["actor"]["ip"] = "10.0.0.7"
        ev["request_id"] = f"req-{i}"
    if i % 3 == 1:
        ev["before"] = {"amount": i, "status": "draft"}
        ev["after"] = {"amount": i + 1, "status": "sent"}
        ev["actor"]["user_agent"] = "Mozilla/5.0 (X11; Linux x86_64)"
    return ev


def event_id(chain_no: int, i: int) -> str:
    """The id of chain `chain_no`'s i-th event (0-based): distinct across chains, stable across runs."""
    return str(uuid.UUID(int=(chain_no << 64) | i, version=4))


def columns_of(ev: dict[str, Any]) -> dict[str, Any]:
    """An event's columns as the stream's validate gives them (the event must be valid)."""
    result = validate(orjson.dumps(ev), 1 << 20)
    assert isinstance(result, dict), result
    return result


@dataclass
class Trail:
    signer: Signer
    records: dict[str, list[SealedRecord]]
    objects: dict[str, bytes] = field(default_factory=dict)
    heads: dict[int, ChainHead] = field(default_factory=dict)

    def key(self, chain: str, index: int) -> str:
        first, last = OBJECTS[index]
        return data_key(PREFIX, DAY, chain, first, last)


def prev_of(records: list[SealedRecord], first: int) -> bytes:
    """The hash an object starting at seq `first` links to."""
    return records[first - 2].hash if first > 1 else GENESIS


def build_trail(signer: Signer | None = None, src_offset: Callable[[int, int], int] = lambda p, n: n,
                inputs: Callable[[int, int], dict[str, Any]] | None = None, roots: bool = False) -> Trail:
    """The pristine trail by default. src_offset(partition, n) is the input offset of chain p's n-th
    record (0-based; n itself by default), so offsets can skip; inputs(partition, n) gives its columns
    (an event's by default, or accounting columns such as rejected_columns). With roots, the digests
    list each object's Merkle root, as inclusion proofs need."""
    signer = signer or new_signer()
    heads = {p: ChainHead(f"p{p:03d}") for p in range(len(CHAINS))}
    records: dict[str, list[SealedRecord]] = {c: [] for c in CHAINS}
    offset = 0
    for b, size in enumerate(BATCHES):
        batch = []
        for i in range(size):
            for p in range(len(CHAINS)):  # interleaved, as partitions arrive in one consume()
                n = offset + i
                columns = inputs(p, n) if inputs is not None else columns_of(event(p, n))
                batch.append(Accepted(p, src_offset(p, n), columns))
        offset += size
        for r in seal_batch(heads, batch, signer, f"{DAY}T10:00:0{b}.{b * 7:06d}Z").sealed:
            records[r.chain].append(r)
    trail = Trail(signer, records, heads=heads)
    for chain in CHAINS:
        listed = []
        for index, (first, last) in enumerate(OBJECTS):
            rows = records[chain][first - 1 : last]
            body = to_parquet(rows, prev_of(records[chain], first))
            trail.objects[trail.key(chain, index)] = body
            root = merkle.root_of_hashes([r.hash for r in rows]).hex() if roots else None
            listed.append(ListedObject(trail.key(chain, index), "1", sha256_b64(body), first, last, len(body), root))
        # one digest per chain, as a sink that flushed the three objects at once would write
        key, body = build_digest(PREFIX, chain, listed, head_of(records[chain][-1]), None, signer, f"{DAY}T10:00:09.000000Z")
        trail.objects[key] = body
    return trail


@cache
def pristine() -> Trail:
    return build_trail()


def sealed_object(events: list[tuple[str, str, str]]) -> bytes:
    """One data object of chain p000, sealed in one batch: an event per (category, action, tenant), for tests
    that need only what an object's events are (retention locks, legal holds), not a whole trail."""
    batch = []
    for i, (category, action, tenant) in enumerate(events):
        raw = {"event_id": str(uuid.uuid4()), "occurred_at": "2024-03-01T09:00:00+00:00", "category": category,
               "action": action, "outcome": "success", "actor": {"id": "alice"}, "tenant": tenant, "source": "app"}
        batch.append(Accepted(0, i, columns_of(raw)))
    records = seal_batch({0: ChainHead("p000")}, batch, new_signer(), "2024-03-01T10:00:00.000000Z").sealed
    return to_parquet(records, GENESIS)


def write_bundle(root: Path, trail: Trail, *, locked: bool = True) -> DirectoryStore:
    """The trail's objects and public key as an exported bundle, each with its lock sidecar unless not locked."""
    for key, body in trail.objects.items():
        put_file(root, key, body, locked=locked)
    put_file(root, public_key_key(PREFIX, trail.signer.key_id), trail.signer.public_pem, locked=locked)
    return DirectoryStore(root)


def rewrite(store: DirectoryStore, key: str, edit: Callable[[dict[str, list]], None], *,
            same_checksum: bool = False) -> None:
    """Rewrite one object's Parquet with pyarrow after edit() changed its column lists.

    The sidecar keeps the checksum recorded at export, so the change also shows
    as CHECKSUM_MISMATCH, unless same_checksum records the new one (a tamperer
    who could also rewrite the recorded checksum): then only the content checks
    can see it.
    """
    path = store.root / key
    table = pq.read_table(path)
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    edit(columns)
    schema = SCHEMA.with_metadata(table.schema.metadata)  # a tamperer keeps the start hash
    pq.write_table(pa.Table.from_pydict(columns, schema=schema), path, compression="zstd")
    if same_checksum:
        set_sidecar(store, key, checksum_sha256=sha256_b64(path.read_bytes()))


def verify(store: DirectoryStore, **kwargs: Any) -> Report:
    """verify_store with the trail's settings; every report must also serialise."""
    report = verify_store(store, SETTINGS, **kwargs)
    orjson.dumps(report.as_dict())  # always serialisable
    return report


def kinds(report: Report) -> set[FindingKind]:
    return {f.kind for f in report.findings}
