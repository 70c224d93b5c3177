"""sealtrail.record: what gets hashed, and how a sealed record travels.

hashed_bytes splices already-canonical JSON text into orjson's sorted output
instead of re-canonicalising; the hypothesis test here proves the splice is
still exactly RFC 8785 of the whole record, and the tamper vectors show that no
stored column escapes the hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from sealtrail import merkle
from sealtrail.encoding import MAX_SAFE_INT, canonical_text
from sealtrail.event import Event
from sealtrail.flatten import flatten
from sealtrail.record import (
    ACCOUNT_COLUMNS,
    ALL_COLUMNS,
    CHAIN_COLUMNS,
    EVENT_COLUMNS,
    GENESIS,
    JSON_COLUMNS,
    SEAL_COLUMNS,
    SealedRecord,
    chain_hash,
    content_digest,
    hashed_bytes,
    record_hash,
    row_check,
)

SEALED_AT = "2026-11-01T12:00:00.250000Z"
FULL: dict[str, Any] = {
    "event_id": "0192f0c1-7a3b-7c4d-8e5f-6a7b8c9d0e1f",
    "occurred_at": "2026-11-01T12:00:00.123456Z",
    "category": "change",
    "action": "data.update",
    "outcome": "success",
    "actor_id": "user-0001",
    "actor_type": "user",
    "actor_ip": "198.51.100.7",
    "actor_user_agent": "Mozilla/5.0",
    "resource_type": "order",
    "resource_id": "ord-00042",
    "tenant": "acme",
    "source": "billing",
    "request_id": "req-1",
    "before": '{"amount_cents":1250,"status":"pending"}',
    "after": '{"amount_cents":1250,"status":"paid"}',
    "metadata": '{"changed":["status"]}',
    # OCSF: Datastore Activity (6005) / Update (2), informational, success
    "class_uid": 6005,
    "category_uid": 6,
    "activity_id": 2,
    "type_uid": 600502,
    "severity_id": 1,
    "status_id": 1,
}
NULLABLE = ("actor_ip", "actor_user_agent", "resource_type", "resource_id", "request_id", "before", "after")


def test_column_sets() -> None:
    assert set(EVENT_COLUMNS) == set(FULL)
    assert ALL_COLUMNS == ("chain", *CHAIN_COLUMNS, *EVENT_COLUMNS, *ACCOUNT_COLUMNS, *SEAL_COLUMNS)
    assert len(set(ALL_COLUMNS)) == len(ALL_COLUMNS)
    assert JSON_COLUMNS <= set(EVENT_COLUMNS)


def test_flatten_matches_columns() -> None:
    event = Event.model_validate(
        {
            "event_id": FULL["event_id"], "occurred_at": "2026-11-01T13:00:00.123456+01:00", "category": "change",
            "action": "data.update", "actor": {"id": "user-0001", "ip": "198.51.100.7", "user_agent": "Mozilla/5.0"},
            "resource": {"type": "order", "id": "ord-00042"}, "tenant": "acme", "source": "billing", "request_id": "req-1",
            "before": {"status": "pending", "amount_cents": 1250}, "after": {"status": "paid", "amount_cents": 1250},
            "metadata": {"changed": ["status"]},
        }
    )
    assert flatten(event) == FULL


def test_hashed_bytes_vector() -> None:
    """Written out by hand from the definition: sorted keys, nulls omitted, JSON columns verbatim."""
    cols = {name: None for name in EVENT_COLUMNS} | {
        "event_id": "e", "occurred_at": "t", "category": "auth", "action": "auth.login", "outcome": "success",
        "actor_id": "u", "actor_type": "user", "tenant": "acme", "source": "web", "metadata": '{"a":[1,"\u00e9"]}',
    }
    want = (
        '{"action":"auth.login","actor_id":"u","actor_type":"user","category":"auth","chain":"p007",'
        '"event_id":"e","metadata":{"a":[1,"\u00e9"]},"occurred_at":"t","outcome":"success",'
        '"sealed_at":"s","seq":12,"source":"web","src_offset":99,"tenant":"acme"}'
    ).encode()
    assert hashed_bytes("p007", 12, "s", 99, cols) == want
    digest = hashlib.sha256(want).digest()
    assert record_hash(GENESIS, want) == hashlib.sha256(b"\x00" + bytes(32) + digest).digest()
    assert row_check(want) == int.from_bytes(digest[:4], "big", signed=True)


def test_hashed_bytes_omits_none_columns() -> None:
    for name in NULLABLE:
        cols = FULL | {name: None}
        doc = json.loads(hashed_bytes("p000", 1, SEALED_AT, 0, cols))
        assert name not in doc
        assert set(doc) == {"chain", *CHAIN_COLUMNS, *EVENT_COLUMNS} - {name}
    # an absent column hashes like a null one
    partial = {k: v for k, v in FULL.items() if k != "request_id"}
    assert hashed_bytes("p000", 1, SEALED_AT, 0, partial) == hashed_bytes("p000", 1, SEALED_AT, 0, FULL | {"request_id": None})


def _changed(value: Any) -> Any:
    if isinstance(value, int):
        return value + 1
    if value.startswith("{"):
        return value[:-1] + ',"~":0}' if value != "{}" else '{"~":0}'
    return value + "x"


BASE_ARGS = {"chain": "p003", "seq": 41, "sealed_at": SEALED_AT, "src_offset": 1000}


def _hb(args: dict[str, Any], cols: dict[str, Any]) -> bytes:
    return hashed_bytes(args["chain"], args["seq"], args["sealed_at"], args["src_offset"], cols)


@pytest.mark.parametrize("name", [*EVENT_COLUMNS, "chain", *CHAIN_COLUMNS], ids=lambda n: f"cell-changed[{n}]")
def test_hash_covers_every_column(name: str) -> None:
    base = _hb(BASE_ARGS, FULL)
    if name in FULL:
        tampered = _hb(BASE_ARGS, FULL | {name: _changed(FULL[name])})
    else:
        tampered = _hb(BASE_ARGS | {name: _changed(BASE_ARGS[name])}, FULL)
    assert tampered != base
    assert record_hash(GENESIS, tampered) != record_hash(GENESIS, base)
    assert row_check(tampered) != row_check(base)


@pytest.mark.parametrize("name", NULLABLE, ids=lambda n: f"cell-nulled[{n}]")
def test_hash_covers_nulling_a_column(name: str) -> None:
    assert _hb(BASE_ARGS, FULL | {name: None}) != _hb(BASE_ARGS, FULL)


def test_json_column_reformatting_changes_hash() -> None:
    """Whitespace or key order in a stored JSON cell is a change, not a no-op."""
    base = _hb(BASE_ARGS, FULL)
    assert _hb(BASE_ARGS, FULL | {"metadata": '{"changed": ["status"]}'}) != base
    assert _hb(BASE_ARGS, FULL | {"before": '{"status":"pending","amount_cents":1250}'}) != base


def test_link_depends_on_previous_hash() -> None:
    content = _hb(BASE_ARGS, FULL)
    assert record_hash(GENESIS, content) != record_hash(b"\x01" + GENESIS[1:], content)
    assert len(record_hash(GENESIS, content)) == 32


@given(st.binary(min_size=32, max_size=32), st.binary(max_size=300))
def test_record_hash_is_the_rfc6962_leaf_hash_of_prev_and_content_digest(prev: bytes, content: bytes) -> None:
    """An object's Merkle tree is built on its record hashes as leaf hashes; a node (0x01) never equals one."""
    digest = content_digest(content)
    assert record_hash(prev, content) == chain_hash(prev, digest) == merkle.leaf_hash(prev + digest)
    assert chain_hash(prev, digest) != hashlib.sha256(b"\x01" + prev + digest).digest()


# --- the splice is canonical --------------------------------------------------------------------

texts = st.text(st.characters(exclude_categories=("Cs",)) | st.sampled_from("\x00\x1f\"\\/\x7f\u2028\ue000\U0001f600"), max_size=12)
json_docs = st.dictionaries(
    texts,
    st.recursive(
        st.none() | st.booleans() | st.integers(-MAX_SAFE_INT, MAX_SAFE_INT) | st.floats(allow_nan=False, allow_infinity=False) | texts,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
        max_leaves=10,
    ),
    max_size=4,
)


@st.composite
def records(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    args = {
        "chain": draw(st.sampled_from(["p000", "p007", "p1234"])),
        "seq": draw(st.integers(1, MAX_SAFE_INT)),
        "sealed_at": draw(texts),
        "src_offset": draw(st.integers(0, MAX_SAFE_INT)),
    }
    cols: dict[str, Any] = {}
    for name in EVENT_COLUMNS:
        if name in JSON_COLUMNS:
            doc = draw(st.none() | json_docs) if name != "metadata" else draw(json_docs)
            cols[name] = None if doc is None else canonical_text(doc)
        elif name in NULLABLE:
            cols[name] = draw(st.none() | texts)
        else:
            cols[name] = draw(texts)
    return args, cols


def _json_int(text: str) -> int | float:
    """JSON numbers are doubles: an integral float like 2.0**60 comes back as digits and stays a double."""
    n = int(text)
    return n if abs(n) <= MAX_SAFE_INT else float(n)


@settings(max_examples=300, deadline=None)
@given(records())
def test_hashed_bytes_is_rfc8785_of_the_record(record: tuple[dict[str, Any], dict[str, Any]]) -> None:
    args, cols = record
    doc: dict[str, Any] = dict(args)
    for name, value in cols.items():
        if value is not None:
            doc[name] = json.loads(value, parse_int=_json_int) if name in JSON_COLUMNS else value
    assert _hb(args, cols) == rfc8785.dumps(doc)


# --- the wire -----------------------------------------------------------------------------------


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed-head"])
def test_wire_round_trip(signed: bool) -> None:
    content = _hb(BASE_ARGS, FULL)
    record = SealedRecord(
        "p003", 41, SEALED_AT, 1000, dict(FULL), record_hash(GENESIS, content),
        key_id="ed25519-0123456789abcdef" if signed else None, signature=bytes(range(64)) if signed else None,
    )
    wire = record.to_wire()
    back = SealedRecord.from_wire(wire)
    assert back == record
    assert back.to_wire() == wire
    assert record.partition == 3
    d = json.loads(wire)
    assert set(d) == set(ALL_COLUMNS) - set(ACCOUNT_COLUMNS) | {"prev"}  # accounting columns only where set
    assert d["hash"] == record.hash.hex()
    assert d["signature"] == (bytes(range(64)).hex() if signed else None)


@settings(max_examples=100, deadline=None)
@given(records(), st.binary(min_size=32, max_size=32), st.none() | st.binary(min_size=64, max_size=64))
def test_wire_round_trip_any_record(record: tuple[dict[str, Any], dict[str, Any]], digest: bytes, sig: bytes | None) -> None:
    args, cols = record
    r = SealedRecord(args["chain"], args["seq"], args["sealed_at"], args["src_offset"], cols, digest,
                     "ed25519-00" if sig else None, sig)
    back = SealedRecord.from_wire(r.to_wire())
    assert back == r
    # what travels is still what was hashed
    assert _hb(args, back.columns) == _hb(args, cols)


@pytest.mark.parametrize(("chain", "partition"), [("p000", 0), ("p005", 5), ("p123", 123), ("p1000", 1000)])
def test_partition_of_chain(chain: str, partition: int) -> None:
    assert SealedRecord(chain, 1, SEALED_AT, 0, dict(FULL), GENESIS).partition == partition
