"""Building an inclusion proof: the record as hashed, its path to the root a signed digest lists (reads the store)."""

from __future__ import annotations

from typing import Any

import orjson

from sealtrail import merkle
from sealtrail.config import Settings
from sealtrail.contents import row_contents
from sealtrail.errors import NotProvableError
from sealtrail.evidence.bundle import DirectoryStore
from sealtrail.evidence.proof.check import FORMAT
from sealtrail.layout import DataObject, data_prefix, digest_prefix, parse_digest_key
from sealtrail.objects import RECORD_FORMAT, foreign_format, prev_hash_of, read_table, text_columns
from sealtrail.record import EVENT_COLUMNS, GENESIS, record_hash
from sealtrail.store import ObjectStore
from sealtrail.versions import history

# ---------------------------------------------------------------------------
# Building (reads the bucket or a bundle)


def find_event(settings: Settings, event_id: str, bundle: Any = None) -> tuple[str, int]:
    """(chain, seq) of an event id, from the trail's Parquet through DuckDB; the earliest if several."""
    from sealtrail.evidence.query import open_events

    con = open_events(settings, DirectoryStore(bundle) if bundle is not None else None)
    try:
        row = con.execute(
            "SELECT chain, seq FROM events WHERE event_id = ? ORDER BY chain, seq LIMIT 1", [event_id]
        ).fetchone()
    finally:
        con.close()
    if row is None:
        raise NotProvableError(f"event {event_id} is not in the trail")
    return str(row[0]), int(row[1])


def _columns(store: ObjectStore, obj: DataObject, version_id: str | None) -> tuple[dict[str, list], Any]:
    """An object's columns (timestamps as hashed text) and its Parquet schema."""
    stored = store.get(obj.key, version_id)
    try:
        table = read_table(stored.body)
    except (OSError, ValueError) as e:
        raise NotProvableError(f"{obj.key} is not readable as Parquet ({e}): run sealtrail verify") from e
    foreign = foreign_format(table.schema)
    if foreign is not None:
        raise NotProvableError(f"{obj.key} is written in record format {foreign!r}; this version proves "
                               f"{RECORD_FORMAT!r} only")
    return text_columns(table), table.schema


def _end_hash(store: ObjectStore, chain: str, items: list[Any], index: int) -> bytes:
    """The record hash that ends items[index], recomputed forward from its last signed head's stored
    hash (the value signatures are checked against), or from the hash the object starts from."""
    item = items[index]
    columns, schema = _columns(store, item.obj, item.version.version_id)
    contents = row_contents(chain, columns, 0, len(columns["seq"]))  # every row kind, as verify hashes them
    anchors = [i for i, (h, s) in enumerate(zip(columns["hash"], columns["signature"], strict=True))
               if h is not None and s is not None]
    if anchors:
        h, rest = columns["hash"][anchors[-1]], contents[anchors[-1] + 1:]
    else:
        h, rest = _start_hash(store, chain, items, index, columns, schema), contents
    for content in rest:
        h = record_hash(h, content)
    return h


def _start_hash(store: ObjectStore, chain: str, items: list[Any], index: int, columns: dict[str, list], schema: Any
                ) -> bytes:
    """The hash the first record of items[index] links to: GENESIS, the value the object's Parquet
    metadata records (a wrong one shows as a root that differs from the digest's), else the hash that
    ends the object before."""
    obj = items[index].obj
    if obj.first == 1:
        return GENESIS
    recorded = prev_hash_of(schema)
    if recorded is not None:
        return recorded
    if index == 0 or items[index - 1].obj.last != obj.first - 1:
        raise NotProvableError(f"chain {chain} has no object ending at seq {obj.first - 1}: run sealtrail verify")
    return _end_hash(store, chain, items, index - 1)


def _listing_digest(store: ObjectStore, prefix: str, chain: str, obj: DataObject) -> tuple[str, dict[str, Any], dict]:
    """(key, document, entry) of the first digest of the chain that lists the object."""
    by_key: dict[str, list[Any]] = {}
    for v in store.versions(digest_prefix(prefix, chain)):
        by_key.setdefault(v.key, []).append(v)  # in listing order, delete markers too: the rule wants both
    candidates = sorted((parsed[1], key) for key in by_key
                        if (parsed := parse_digest_key(key)) is not None and parsed[0] == chain
                        and parsed[1] >= obj.last)
    for _, key in candidates:
        sinks = history(by_key[key]).sinks  # the sink's version, by the one rule (sealtrail.versions)
        if sinks is None:
            continue  # only delete markers are left
        try:
            doc = orjson.loads(store.get(key, sinks.version_id).body)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(doc, dict):
            continue
        for entry in doc.get("objects") or []:
            if isinstance(entry, dict) and entry.get("key") == obj.key:
                return key, doc, entry
    raise NotProvableError(f"no digest lists {obj.key} yet (its flush's digest may still be being written)")


def build_proof(store: ObjectStore, settings: Settings, event_id: str, bundle: Any = None) -> dict[str, Any]:
    """The inclusion proof of one event. store is S3Store or DirectoryStore (bundle: its folder)."""
    from sealtrail.evidence.checks.listing import plan

    prefix = settings.s3.prefix
    chain, seq = find_event(settings, event_id, bundle)
    planned, _ = plan(store.versions(data_prefix(prefix)), prefix, [chain])
    items = sorted(planned.get(chain, []), key=lambda p: (p.obj.first, p.obj.last))
    index = next((i for i, p in enumerate(items) if p.obj.first <= seq <= p.obj.last), None)
    if index is None:
        raise NotProvableError(f"no data object of chain {chain} holds seq {seq}: run sealtrail verify")
    item = items[index]
    obj = item.obj
    columns, schema = _columns(store, obj, item.version.version_id)
    if columns["seq"] != list(range(obj.first, obj.last + 1)):
        raise NotProvableError(f"{obj.key} does not hold seqs {obj.first}..{obj.last} in order: run sealtrail verify")
    digest_key, digest, entry = _listing_digest(store, prefix, chain, obj)
    listed_root = entry.get("merkle_root")
    if not isinstance(listed_root, str):
        raise NotProvableError(f"digest {digest_key} lists no Merkle root for {obj.key} (written before digests "
                               "carried roots); verify the whole trail instead")
    from sealtrail.contents import object_hashes

    start = _start_hash(store, chain, items, index, columns, schema)
    known = object_hashes(chain, columns, start)  # verify's own recomputation, from content alone
    hashes = [h for h in known if h is not None]
    if len(hashes) != len(known) or merkle.root_of_hashes(hashes).hex() != listed_root:
        raise NotProvableError(f"the rows of {obj.key} do not match the Merkle root digest {digest_key} lists: "
                               "run sealtrail verify")
    i = seq - obj.first
    record: dict[str, Any] = {"seq": seq, "sealed_at": columns["sealed_at"][i], "src_offset": columns["src_offset"][i]}
    record.update({name: columns[name][i] for name in EVENT_COLUMNS if columns[name][i] is not None})
    if columns["key_id"][i] is not None:
        record["key_id"] = columns["key_id"][i]
    key_ids = sorted({k for k in (digest.get("key_id"), (digest.get("head") or {}).get("key_id")) if k})
    return {
        "format": FORMAT,
        "event_id": event_id,
        "chain": chain,
        "object": {"key": obj.key, "version_id": entry.get("version_id"), "first": obj.first, "last": obj.last},
        "record": record,
        "prev_hash": (hashes[i - 1] if i else start).hex(),
        "leaf_index": i,
        "tree_size": len(hashes),
        "path": [p.hex() for p in merkle.inclusion_path_of_hashes(hashes, i)],
        "digest_key": digest_key,
        "digest": digest,
        "key_ids": key_ids,
    }


