"""The verifier's fast paths against the definitions they replace (hypothesis).

check_object_rows canonicalises rows without hashed_bytes' per-row sort, and
text_columns formats timestamps without Arrow's strftime; both must give the
very bytes the definitions give, or an intact trail would look tampered.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
from hypothesis import given, settings, strategies as st

from sealtrail.encoding import canonical_text, format_ts
from sealtrail.evidence.verify import _HASHED_ORDER, _contents, _contents_fast
from sealtrail.record import CHAIN_COLUMNS, EVENT_COLUMNS, JSON_COLUMNS, hashed_bytes
from sealtrail.sinks.parquet import SCHEMA, TS, text_columns, timestamp_text

NULLABLE = {f.name for f in SCHEMA if f.nullable}
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
    row["key_id"] = draw(st.none() | st.from_regex(r"ed25519-[0-9a-f]{16}", fullmatch=True))
    return row


def test_hashed_key_order_is_the_sorted_order() -> None:
    assert list(_HASHED_ORDER) == sorted(["chain", *CHAIN_COLUMNS, *EVENT_COLUMNS, "key_id"])


@settings(max_examples=300, deadline=None)
@given(chain=st.from_regex(r"p[0-9]{3}", fullmatch=True), batch=st.lists(rows(), min_size=1, max_size=6))
def test_fast_contents_equal_hashed_bytes(chain: str, batch: list[dict[str, object]]) -> None:
    columns = {name: [row[name] for row in batch] for name in batch[0]}
    want = [
        hashed_bytes(chain, r["seq"], r["sealed_at"], r["src_offset"], {n: r[n] for n in EVENT_COLUMNS}, r["key_id"])
        for r in batch
    ]
    assert list(_contents_fast(chain, columns, 0, len(batch))) == want
    assert list(_contents(chain, columns, 0, len(batch))) == want
    assert list(_contents_fast(chain, columns, 1, len(batch))) == want[1:]


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
