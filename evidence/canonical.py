"""hashed_bytes for many rows at once: each object's canonical row contents built column-wise with Arrow.

Verify recomputes every row's content (sealtrail.record.hashed_bytes) from
what Athena reads. Going through Python values costs a dict, a sort and an
orjson call per row; here the same bytes are joined from Arrow columns, one
compute call per column per chunk: keys in hashed_bytes' sorted order as
literals, strings quoted, integers in decimal, timestamps as the text that was
hashed, nested JSON text spliced verbatim, null columns left out.

That equals hashed_bytes only where no string needs JSON escaping and every
string is valid UTF-8, and only for the sink's exact schema (a required column
is never null, so the first key always opens the object). A chunk where any of
that fails is not built here (None): the caller canonicalises it row by row
with the reference instead, so a tampered cell can change the speed, never the
bytes. tests/unit/test_verify_fast.py compares the two with hypothesis.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from sealtrail.record import CHAIN_COLUMNS, EVENT_COLUMNS, JSON_COLUMNS
from sealtrail.sinks.parquet import SCHEMA, text_columns, timestamp_text

# The keys of hashed_bytes' document, in the order OPT_SORT_KEYS puts them (all ASCII).
HASHED_ORDER = tuple(sorted(("chain", *CHAIN_COLUMNS, *EVENT_COLUMNS, "key_id")))
_FIELDS = {f.name: f for f in SCHEMA}
_NEEDS_ESCAPE = r'["\\\x00-\x1f]'  # what orjson escapes in a string; everything else goes in as UTF-8
assert not _FIELDS[HASHED_ORDER[0]].nullable, "the first key must be present in every row"


def _text(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A column's values as the JSON text hashed_bytes writes (strings still unquoted)."""
    if pa.types.is_timestamp(column.type):
        return timestamp_text(column)
    if pa.types.is_integer(column.type):
        return pc.cast(column, pa.string())
    return column


def build_contents(chain: str, table: pa.Table) -> list[bytes] | None:
    """hashed_bytes of every row of a table with the sink's schema, or None if any row needs the reference.

    Raises pyarrow.ArrowInvalid for a string that is not valid UTF-8.
    """
    pieces: list[Any] = []  # literals and string columns, joined element-wise
    literal = "{"
    checked: list[Any] = []  # plain strings, which hashed_bytes would escape
    for name in HASHED_ORDER:
        key = f'"{name}":' if literal == "{" else f',"{name}":'
        if name == "chain":
            literal += key + orjson.dumps(chain).decode()
            continue
        column = table.column(name)
        quote = ""
        if pa.types.is_timestamp(column.type):
            quote = '"'
        elif name not in JSON_COLUMNS and pa.types.is_string(column.type):
            quote = '"'
            checked.append(column)
        if pa.types.is_string(column.type):
            column.validate(full=True)
        value = _text(column)
        if _FIELDS[name].nullable:  # key and value together, or nothing
            if literal:
                pieces.append(literal)
            pieces.append(pc.binary_join_element_wise(key + quote, value, quote, ""))
            literal = ""
        else:
            pieces += [literal + key + quote, value]
            literal = quote
    pieces.append(literal + "}")
    if checked:
        values = pc.binary_join_element_wise(*checked, "", null_handling="replace", null_replacement="")
        if pc.any(pc.match_substring_regex(values, _NEEDS_ESCAPE)).as_py():
            return None
    joined = pc.binary_join_element_wise(*pieces, "", null_handling="replace", null_replacement="")
    return joined.cast(pa.binary()).to_pylist()


def row_values(table: pa.Table, i: int) -> dict[str, Any]:
    """Row i as Python values, timestamps as the text that was hashed (as text_columns gives them)."""
    return {name: values[0] for name, values in text_columns(table.slice(i, 1)).items()}


def _python_values(column: pa.ChunkedArray) -> Sequence[Any]:
    """A column as Python values; mostly-null columns (the seal columns) without a scalar per null,
    timestamps as hashed text, converted only where read (the checks read the first row and the heads')."""
    if pa.types.is_timestamp(column.type) and column.type.unit == "us":
        return TimestampTexts(column)
    n = len(column)
    if column.null_count * 2 <= n:
        return column.to_pylist()
    values: list[Any] = [None] * n
    where = pc.indices_nonzero(pc.is_valid(column))
    for i, value in zip(where.to_pylist(), column.take(where).to_pylist(), strict=True):
        values[i] = value
    return values


class TimestampTexts(Sequence[str]):
    """timestamp[us] values as the text that was hashed (sinks.parquet.timestamp_text), converted on access."""

    def __init__(self, column: pa.ChunkedArray) -> None:
        self.column = column
        self._texts: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.column)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return timestamp_text(self.column).to_pylist()[i]
        if i < 0:
            i += len(self.column)
        text = self._texts.get(i)
        if text is None:
            if not 0 <= i < len(self.column):
                raise IndexError(i)
            text = self._texts[i] = timestamp_text(self.column.slice(i, 1)).to_pylist()[0]
        return text


class TableColumns(Mapping[str, Sequence[Any]]):
    """An object's columns for verify: Python lists made on first use, contents built column-wise.

    The checks read a handful of columns per row (seq, row_check, the seal
    columns); the rest are only hashed, and need never become Python objects.
    """

    def __init__(self, table: pa.Table, exact_schema: bool) -> None:
        self.table = table
        self.exact_schema = exact_schema
        self._lists: dict[str, Sequence[Any]] = {}

    def __getitem__(self, name: str) -> Sequence[Any]:
        values = self._lists.get(name)
        if values is None:
            values = self._lists[name] = _python_values(self.table.column(name))  # KeyError if missing
        return values

    def __iter__(self) -> Iterator[str]:
        return iter(self.table.column_names)

    def __len__(self) -> int:
        return self.table.num_columns

    def contents(self, chain: str, lo: int, hi: int) -> list[bytes] | None:
        """Rows lo..hi-1 built column-wise, or None where the reference must do it (module docstring)."""
        if not self.exact_schema:
            return None
        try:
            return build_contents(chain, self.table.slice(lo, hi - lo))
        except (pa.ArrowInvalid, UnicodeDecodeError):
            return None

    def row(self, i: int) -> dict[str, Any]:
        return row_values(self.table, i)
