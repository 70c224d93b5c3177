"""The verifier's fast paths against the definitions they replace (hypothesis).

check_object_rows canonicalises rows without hashed_bytes' per-row sort, and
text_columns formats timestamps without Arrow's strftime; both must give the
very bytes the definitions give, or an intact trail would look tampered.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealtrail.contents import HASHED_ORDER, Contents, TableColumns, contents_fast, read_object, row_contents
from sealtrail.encoding import canonical_text, format_ts
from sealtrail.objects import REQUIRED_FOR_EVENTS, SCHEMA, TS, text_columns, timestamp_text
from sealtrail.record import CHAIN_COLUMNS, EVENT_COLUMNS, JSON_COLUMNS, OCSF_COLUMNS, ROW_COLUMNS, hashed_bytes

NULLABLE = {f.name for f in SCHEMA if f.name not in REQUIRED_FOR_EVENTS}
NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')  # what orjson escapes in a string
OCSF = set(OCSF_COLUMNS)
TEXT = st.text(st.characters(codec="utf-8"), max_size=20)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
TIMES = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999),
                     timezones=st.just(timezone.utc))


@st.composite
def rows(draw: st.DrawFn) -> dict[str, object]:
    row: dict[str, object] = {
        "seq": draw(st.integers(1, 2**62)),
        "sealed_at": format_ts(draw(TIMES)),
        "src_offset": draw(st.integers(0, 2**62)),
    }
    for name in EVENT_COLUMNS:
        if name in JSON_COLUMNS:
            value = canonical_text(draw(st.dictionaries(TEXT, JSON, max_size=4)))
        elif name == "occurred_at":
            value = format_ts(draw(TIMES))
        else:
            value = draw(TEXT)
        row[name] = None if name in NULLABLE and draw(st.booleans()) else value
    kind = draw(st.none() | st.sampled_from(["rejected", "duplicate"]))
    row["kind"] = kind
    row["reason"] = draw(TEXT) if kind == "rejected" else None
    row["input_bytes"] = draw(st.integers(0, 2**40)) if kind else None
    row["input_sha256"] = draw(st.from_regex(r"[0-9a-f]{64}", fullmatch=True)) if kind else None
    if kind:  # an accounting row holds no event, but for the event id a duplicate repeats
        for name in EVENT_COLUMNS:
            if name != "event_id" or kind == "rejected":
                row[name] = None
    row["key_id"] = draw(st.none() | st.from_regex(r"ed25519-[0-9a-f]{16}", fullmatch=True))
    return row


def test_hashed_key_order_is_the_sorted_order() -> None:
    assert list(HASHED_ORDER) == sorted(["chain", *CHAIN_COLUMNS, *ROW_COLUMNS, "key_id"])


@settings(max_examples=300, deadline=None)
@given(chain=st.from_regex(r"p[0-9]{3}", fullmatch=True), batch=st.lists(rows(), min_size=1, max_size=6))
def test_fast_contents_equal_hashed_bytes(chain: str, batch: list[dict[str, object]]) -> None:
    columns = {name: [row[name] for row in batch] for name in batch[0]}
    want = [
        hashed_bytes(chain, r["seq"], r["sealed_at"], r["src_offset"], {n: r.get(n) for n in ROW_COLUMNS}, r["key_id"])
        for r in batch
    ]
    assert list(contents_fast(chain, columns, 0, len(batch))) == want
    assert list(row_contents(chain, columns, 0, len(batch))) == want
    assert list(contents_fast(chain, columns, 1, len(batch))) == want[1:]


@settings(max_examples=300, deadline=None)
@given(st.lists(TIMES, min_size=1, max_size=20))
def test_timestamp_text_equals_format_ts_and_text_columns(times: list[datetime]) -> None:
    texts = [format_ts(t) for t in times]
    column = pa.chunked_array([pa.compute.cast(pa.array(texts, pa.string()), TS)])
    assert timestamp_text(column).to_pylist() == texts
    reference = pa.compute.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")  # %S carries the microseconds
    assert reference.to_pylist() == texts
    table = pa.table({"sealed_at": column, "occurred_at": column})
    assert text_columns(table) == {"sealed_at": texts, "occurred_at": texts}


# ---------------------------------------------------------------------------
# the column-wise path: Parquet -> Arrow -> hashed_bytes without Python values per cell


def parquet_of(batch: list[dict[str, object]], dictionary: bool = True) -> bytes:
    """Rows written as the sink's schema (timestamps parsed from their hashed text), seal columns made up."""
    columns: dict[str, list] = {name: [row.get(name) for row in batch] for name in SCHEMA.names}
    columns["row_check"] = [0] * len(batch)
    columns["hash"] = [None] * len(batch)
    columns["signature"] = [None] * len(batch)
    arrays = []
    for field in SCHEMA:
        values = columns[field.name]
        if field.type == TS:
            arrays.append(pa.compute.cast(pa.array(values, pa.string()), TS))
        else:
            arrays.append(pa.array(values, field.type))
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_arrays(arrays, schema=SCHEMA), sink, use_dictionary=dictionary,
                   row_group_size=max(1, len(batch) // 2))
    return sink.getvalue().to_pybytes()


@st.composite
def typed_rows(draw: st.DrawFn) -> dict[str, object]:
    """rows() with the OCSF columns as the int32 values the schema stores."""
    row = draw(rows())
    for name in OCSF_COLUMNS:
        row[name] = draw(st.integers(-(2**31), 2**31 - 1))
    return row


def reference(chain: str, batch: list[dict[str, object]]) -> list[bytes]:
    return [
        hashed_bytes(chain, r["seq"], r["sealed_at"], r["src_offset"], {n: r.get(n) for n in ROW_COLUMNS}, r["key_id"])
        for r in batch
    ]


@settings(max_examples=300, deadline=None)
@given(chain=st.from_regex(r"p[0-9]{3}", fullmatch=True), batch=st.lists(typed_rows(), min_size=1, max_size=8),
       dictionary=st.booleans())
def test_column_wise_contents_equal_hashed_bytes(chain: str, batch: list[dict[str, object]], dictionary: bool) -> None:
    table, _ = read_object(parquet_of(batch, dictionary))
    columns = TableColumns(table, exact_schema=True)
    want = reference(chain, batch)
    assert row_contents(chain, columns, 0, len(batch)) == want
    assert row_contents(chain, columns, 1, len(batch)) == want[1:]
    built = Contents(chain, table)
    plain = [i for i, r in enumerate(batch) if not r.get("kind") and not any(
        isinstance(r[n], str) and NEEDS_ESCAPE.search(r[n]) for n in r if n not in JSON_COLUMNS)]
    if len(plain) == len(batch):
        assert built.build(0, len(batch)) == want
    else:  # a row needing escapes, or an accounting row, is left to the reference
        assert built.build(0, len(batch)) is None
        assert built.escaped == [i for i in range(len(batch)) if i not in plain]
    for i in plain:
        assert built.build(i, i + 1) == [want[i]]


def test_escaped_strings_and_repeated_values_take_the_reference() -> None:
    """Quotes, backslashes and control characters in plain strings; many rows sharing values."""
    base = {"seq": 1, "sealed_at": "2024-03-01T10:00:00.000000Z", "src_offset": 0, "key_id": None}
    for name in EVENT_COLUMNS:
        base[name] = "{}" if name in JSON_COLUMNS else ("2024-03-01T09:00:00.000001Z" if name == "occurred_at"
                                                        else 1 if name in OCSF else "v")
    batch = [{**base, "seq": i + 1, "actor_id": ['a"b', "c\\d", "e\x01f", "plain"][i % 4] if i < 8 else "u"}
             for i in range(300)]
    table, _ = read_object(parquet_of(batch))
    want = reference("p000", batch)
    assert Contents("p000", table).escaped == [0, 1, 2, 4, 5, 6]
    assert row_contents("p000", TableColumns(table, exact_schema=True), 0, len(batch)) == want
    assert Contents("p000", table).build(8, 300) == want[8:]


def test_invalid_utf8_is_left_to_the_reference() -> None:
    """A string cell holding bytes that are not UTF-8: not built column-wise; the reference refuses it too."""
    base = {"seq": 1, "sealed_at": "2024-03-01T10:00:00.000000Z", "src_offset": 0, "key_id": None}
    for name in EVENT_COLUMNS:
        base[name] = "{}" if name in JSON_COLUMNS else ("2024-03-01T09:00:00.000001Z" if name == "occurred_at"
                                                        else 1 if name in OCSF else "v")
    table, _ = read_object(parquet_of([base]))
    bad = pa.array([b"\xff"], pa.binary()).view(pa.string())
    table = table.set_column(table.column_names.index("actor_id"), "actor_id", bad)
    columns = TableColumns(table, exact_schema=True)
    assert columns.contents("p000", 0, 1) is None
    with pytest.raises(UnicodeDecodeError):
        row_contents("p000", columns, 0, 1)
