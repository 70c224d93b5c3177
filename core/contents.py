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
bytes. tests/unit/test_fast_paths.py compares the two with hypothesis.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from hashlib import sha256
from itertools import repeat
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sealtrail.objects import REQUIRED_FOR_EVENTS, text_columns, timestamp_text, upgraded
from sealtrail.record import CHAIN_COLUMNS, JSON_COLUMNS, RECORD_HASH_PREFIX, ROW_COLUMNS, hashed_bytes

# The keys of hashed_bytes' document, in the order OPT_SORT_KEYS puts them (all ASCII).
HASHED_ORDER = tuple(sorted(("chain", *CHAIN_COLUMNS, *ROW_COLUMNS, "key_id")))
_NEEDS_ESCAPE = r'["\\\x00-\x1f]'  # what orjson escapes in a string; everything else goes in as UTF-8
# Columns every sealed event has. The rows accounting for a rejected input or a repeated event id
# (kind not null) lack some of them: they are rare, and go through the reference with their chunk.
assert HASHED_ORDER[0] in REQUIRED_FOR_EVENTS, "the first key must be present in every event row"


def _text(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A column's values as the JSON text hashed_bytes writes (strings still unquoted)."""
    if pa.types.is_timestamp(column.type):
        return timestamp_text(column)
    if pa.types.is_integer(column.type):
        return pc.cast(column, pa.string())
    return column


def _escaped_rows(chunk: pa.Array, escapable: bool) -> list[int]:
    """Rows of a chunk whose string hashed_bytes would escape (if escapable: a plain string column).

    Raises pyarrow.ArrowInvalid for a string that is not valid UTF-8. A
    dictionary's values are looked at once each, not once per row.
    """
    coded = pa.types.is_dictionary(chunk.type)
    values = chunk.dictionary if coded else chunk
    if pa.types.is_string(values.type):
        values.validate(full=True)
    if not escapable:
        return []
    escape = pc.match_substring_regex(values, _NEEDS_ESCAPE)
    if not pc.any(escape).as_py():
        return []
    rows = pc.take(escape, chunk.indices) if coded else escape
    return pc.indices_nonzero(rows.fill_null(False)).to_pylist()


def _wrapped(chunk: pa.Array, before: str, after: str) -> pa.Array:
    """before + value + after for every non-null value, null where the value is null (the key is left out)."""
    if pa.types.is_dictionary(chunk.type):
        return pa.DictionaryArray.from_arrays(
            chunk.indices, pc.binary_join_element_wise(before, _text(chunk.dictionary), after, ""))
    return pc.binary_join_element_wise(before, _text(chunk), after, "")


def _coded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column dictionary-coded where its values repeat (each distinct one is then formatted once),
    plain where they hardly do (formatting a dictionary as large as the column would only add a copy)."""
    if pa.types.is_dictionary(column.type):
        if sum(len(c.dictionary) for c in column.chunks) * 4 > len(column):
            return pc.cast(column, column.type.value_type)
        return column
    return pc.dictionary_encode(column) if _repeats(column) else column


class Contents:
    """An object's rows as hashed_bytes, prepared once per object and built a chunk of rows at a time.

    Each column becomes its ``,"key":value`` fragment (null where the value
    is null, so the key is left out too), or, for a required column of mostly
    distinct values, the key and quotes as literals around the values; a row
    is all of these joined, in hashed_bytes' key order. Rows where a plain
    string needs JSON escaping are listed in escaped: build() leaves any chunk
    holding one to the reference.
    """

    def __init__(self, chain: str, table: pa.Table) -> None:
        table = upgraded(table)
        parts: list[Any] = []
        escaped: set[int] = set()
        for i, name in enumerate(HASHED_ORDER):
            key = ("{" if i == 0 else ",") + f'"{name}":'
            if name == "chain":
                parts.append(key + orjson.dumps(chain).decode())
                continue
            column = _coded(table.column(name))
            value_type = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
            escapable = pa.types.is_string(value_type) and name not in JSON_COLUMNS
            quote = '"' if escapable or pa.types.is_timestamp(value_type) else ""
            offset = 0
            for chunk in column.chunks:
                escaped.update(offset + r for r in _escaped_rows(chunk, escapable))
                offset += len(chunk)
            if name not in REQUIRED_FOR_EVENTS or pa.types.is_dictionary(column.type):
                parts.append(pa.chunked_array([_wrapped(c, key + quote, quote) for c in column.chunks],
                                              None if column.num_chunks else pa.string()))
            else:
                parts += [key + quote, _text(column), quote]
        parts.append("}")
        kind = table.column("kind")
        if kind.null_count < len(kind):  # accounting rows: the literals above assume an event's columns
            escaped.update(pc.indices_nonzero(pc.is_valid(kind)).to_pylist())
        self.parts = _merged(parts)
        self.escaped = sorted(escaped)

    def build(self, lo: int, hi: int) -> list[bytes] | None:
        """hashed_bytes of rows lo..hi-1, or None if one of them needs JSON escaping."""
        at = bisect_left(self.escaped, lo)
        if at < len(self.escaped) and self.escaped[at] < hi:
            return None
        parts = [p if isinstance(p, str) else _decoded(p.slice(lo, hi - lo)) for p in self.parts]
        joined = pc.binary_join_element_wise(*parts, "", null_handling="replace", null_replacement="")
        return joined.cast(pa.binary()).to_pylist()


def _merged(parts: list[Any]) -> list[Any]:
    """Adjacent literals as one."""
    out: list[Any] = []
    for part in parts:
        if isinstance(part, str) and out and isinstance(out[-1], str):
            out[-1] += part
        elif not (isinstance(part, str) and not part):
            out.append(part)
    return out


def _repeats(column: pa.ChunkedArray, sample: int = 1024) -> bool:
    """Whether a column's values repeat enough to format each distinct one once (judged on its first rows)."""
    head = column.slice(0, sample)
    return len(head) >= 64 and len(pc.unique(head)) * 4 <= len(head)


def _decoded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.cast(column, column.type.value_type) if pa.types.is_dictionary(column.type) else column


def read_object(body: bytes) -> tuple[pa.Table, pa.Schema]:
    """Parquet bytes -> the table, string columns as dictionaries (as most are stored), and the file's schema.

    Reading dictionaries skips materialising repeated strings (about 40% faster
    here), and Contents wraps each distinct value once.
    """
    source = pa.BufferReader(body)
    metadata = pq.read_metadata(source)
    schema = metadata.schema.to_arrow_schema()
    strings = [f.name for f in schema if pa.types.is_string(f.type)]
    table = pq.ParquetFile(source, metadata=metadata, read_dictionary=strings).read(use_threads=False)
    return table, schema


def row_values(table: pa.Table, i: int) -> dict[str, Any]:
    """Row i as Python values, timestamps as the text that was hashed (as text_columns gives them)."""
    return {name: values[0] for name, values in text_columns(table.slice(i, 1)).items()}


def _python_values(column: pa.ChunkedArray, read_rows: Callable[[], list[int]]) -> Sequence[Any]:
    """A column as Python values: mostly-null columns (the seal columns) without a scalar per null,
    timestamps as hashed text, converted where read (read_rows: where the checks read them)."""
    if pa.types.is_timestamp(column.type) and column.type.unit == "us":
        return TimestampTexts(column, read_rows)
    n = len(column)
    if column.null_count * 2 <= n:
        return column.to_pylist()
    values: list[Any] = [None] * n
    where = pc.indices_nonzero(pc.is_valid(column))
    for i, value in zip(where.to_pylist(), column.take(where).to_pylist(), strict=True):
        values[i] = value
    return values


class TimestampTexts(Sequence[str]):
    """timestamp[us] values as the text that was hashed (sinks.parquet.timestamp_text), converted on access.

    The first access converts the rows read_rows() names in one go; any other
    row is converted when it is read.
    """

    def __init__(self, column: pa.ChunkedArray, read_rows: Callable[[], list[int]]) -> None:
        self.column = column
        self._read_rows = read_rows
        self._texts: dict[int, str] | None = None
        self._all: list[str] | None = None

    def __len__(self) -> int:
        return len(self.column)

    def _convert(self, rows: list[int]) -> list[str]:
        return timestamp_text(self.column.take(pa.array(rows, pa.int64()))).to_pylist()

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):  # the reference path reads whole chunks: convert the column once
            if self._all is None:
                self._all = timestamp_text(self.column).to_pylist()
            return self._all[i]
        n = len(self.column)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        if self._texts is None:
            rows = [r for r in self._read_rows() if 0 <= r < n]
            self._texts = dict(zip(rows, self._convert(rows), strict=True))
        text = self._texts.get(i)
        if text is None:
            text = self._texts[i] = self._convert([i])[0]
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
        self._contents: tuple[str, Contents] | None = None

    def __getitem__(self, name: str) -> Sequence[Any]:
        values = self._lists.get(name)
        if values is None:
            column = self.table.column(name)  # KeyError for a missing column, as a dict would
            values = self._lists[name] = _python_values(column, self._sealed_rows)
        return values

    def sealed_rows(self) -> list[int]:
        """Rows with a key id or a signature (the signed heads, and any row claiming to be one)."""
        rows: set[int] = set()
        for name in ("key_id", "signature"):
            if name in self.table.column_names:
                rows.update(pc.indices_nonzero(pc.is_valid(self.table.column(name))).to_pylist())
        return sorted(rows)

    def _sealed_rows(self) -> list[int]:
        """Where the checks read timestamps: the first row and the sealed ones."""
        return [0, *self.sealed_rows()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.table.column_names)

    def __len__(self) -> int:
        return self.table.num_columns

    def contents(self, chain: str, lo: int, hi: int) -> list[bytes] | None:
        """Rows lo..hi-1 built column-wise, or None where the reference must do it (module docstring)."""
        if not self.exact_schema:
            return None
        if self._contents is None or self._contents[0] != chain:
            try:
                self._contents = (chain, Contents(chain, self.table))
            except pa.ArrowInvalid:  # a string is not UTF-8: the reference reports it
                self.exact_schema = False
                return None
        return self._contents[1].build(lo, hi)

    def row(self, i: int) -> dict[str, Any]:
        return row_values(self.table, i)


# ---------------------------------------------------------------------------
# Every row's content digest and chain hash: what verify, the sink's catch-up and prove recompute

Columns = Mapping[str, Sequence[Any]]  # a dict of lists, or TableColumns (lists on first use)
_Fragment = orjson.Fragment
_dumps = orjson.dumps
HASH_CHUNK_ROWS = 4096  # rows canonicalised at a time: column-wise, 4096 measured faster than 1024 or 16384


def _null_rows(sources: Sequence[Sequence[Any]], n: int) -> set[int]:
    rows: set[int] = set()
    for values in sources:
        if None in values:
            rows.update(i for i in range(n) if values[i] is None)
    return rows


def contents_fast(chain: str, columns: Columns, lo: int, hi: int) -> Iterator[bytes]:
    """hashed_bytes of rows lo..hi-1 without a per-row sort (see the module docstring)."""
    n = hi - lo
    sources: list[Sequence[Any]] = []
    for name in HASHED_ORDER:
        if name == "chain":
            sources.append(list(repeat(chain, n)))
        elif name in JSON_COLUMNS:
            sources.append([None if v is None else _Fragment(v) for v in columns[name][lo:hi]])
        elif name in columns:
            sources.append(columns[name][lo:hi])
        else:  # an accounting column of an object from before record format v3
            sources.append(list(repeat(None, n)))
    nulls = _null_rows(sources, n)
    order = HASHED_ORDER
    for i, values in enumerate(zip(*sources, strict=True)):
        if i in nulls:  # hashed_bytes omits nulls
            yield _dumps({k: v for k, v in zip(order, values) if v is not None})
        else:
            yield _dumps(dict(zip(order, values)))


def content_ref(chain: str, columns: Columns, i: int) -> bytes:
    row = columns.row(i) if isinstance(columns, TableColumns) else {name: columns[name][i] for name in columns}
    return hashed_bytes(chain, row["seq"], row["sealed_at"], row["src_offset"],
                        {name: row.get(name) for name in ROW_COLUMNS}, row["key_id"])


def row_contents(chain: str, columns: Columns, lo: int, hi: int) -> list[bytes]:
    """Rows lo..hi-1 by a fast path (Arrow column-wise, or the dict path), checked against hashed_bytes
    on the first row; by hashed_bytes itself where no fast path applies or the two ever disagree."""
    if hi <= lo:
        return []
    built = columns.contents(chain, lo, hi) if isinstance(columns, TableColumns) else None
    if built is None:
        built = list(contents_fast(chain, columns, lo, hi))
    if built[0] == content_ref(chain, columns, lo):
        return built
    return [content_ref(chain, columns, i) for i in range(lo, hi)]


def failed_checks(digests: list[bytes], checks: Sequence[int], lo: int) -> list[int]:
    """Rows (from lo) whose content digest does not start with their row_check; one comparison when all match."""
    got = b"".join([d[:4] for d in digests])
    n = len(digests)
    try:
        want = struct.pack(f">{n}i", *checks[lo:lo + n])
    except struct.error:  # a value outside int32 cannot match
        want = b""
    if got == want:
        return []
    return [lo + i for i in range(n) if got[4 * i:4 * i + 4] != _int32(checks[lo + i])]


def _int32(value: Any) -> bytes:
    try:
        return struct.pack(">i", value)
    except struct.error:
        return b""


def _link(current: bytes, digests: Sequence[bytes], out: list[bytes | None]) -> bytes:
    """Chain content digests onto current (sealtrail.record.chain_hash, inlined), appending each hash."""
    append = out.append
    for digest in digests:
        current = sha256(RECORD_HASH_PREFIX + current + digest).digest()
        append(current)
    return current


def row_mismatches(chain: str, columns: Columns, start_hash: bytes | None,
                    head_ok: Callable[[int, bytes], bool] | None = None
                    ) -> tuple[list[tuple[int, str]], list[bytes | None]]:
    """Rows that fail their own row_check, signed heads whose stored hash the rows before do not reach,
    and every row's recomputed chain hash.

    Each row_check covers its row's content alone, so every changed row is
    named, however many there are. The chain is recomputed from start_hash
    (None: unknown, so nothing is linked until the first stored hash); where a
    stored hash (a signed head) differs from the recomputed one without a
    failed row_check since the last head, the hash cell, the start hash, or a
    row_check together with its row was changed. The walk carries on from the
    stored hash when the rows were changed or the head's signature vouches for
    it (head_ok), and from the recomputed one otherwise (the hash cell was
    what changed), so one change is reported once and a second altered batch
    is still found. Rows go in chunks so a large object's canonical forms are
    never all in memory at once; between stored hashes the chain is a tight loop.
    """
    checks, stored_hashes = columns["row_check"], columns["hash"]
    n = len(checks)
    heads = [i for i, h in enumerate(stored_hashes) if h is not None]
    bad: list[tuple[int, str]] = []
    hashes: list[bytes | None] = []
    current = start_hash
    segment_bad = False
    h = 0  # next entry of heads
    for lo in range(0, n, HASH_CHUNK_ROWS):
        hi = min(n, lo + HASH_CHUNK_ROWS)
        digests = [sha256(c).digest() for c in row_contents(chain, columns, lo, hi)]
        failed = failed_checks(digests, checks, lo)
        bad += [(i, "content") for i in failed]
        row = lo
        while row < hi:
            end = heads[h] + 1 if h < len(heads) and heads[h] < hi else hi  # up to and with the next head
            segment = digests[row - lo:end - lo]
            if current is None:
                hashes += [None] * len(segment)
            else:
                current = _link(current, segment, hashes)
            segment_bad = segment_bad or any(row <= i < end for i in failed)
            if end <= hi and h < len(heads) and heads[h] == end - 1:
                i, stored = end - 1, stored_hashes[end - 1]
                if current is not None and current != stored and not segment_bad:
                    bad.append((i, "hash"))  # the rows are intact: the stored hash or the start changed
                    if head_ok is None or head_ok(i, stored):
                        current = stored  # signed as stored: what came before it changed
                else:
                    current = stored
                hashes[-1] = current
                segment_bad = False
                h += 1
            row = end
    bad.sort(key=lambda b: b[0])
    return bad, hashes


def object_hashes(chain: str, columns: Columns, start_hash: bytes | None) -> list[bytes | None]:
    """Every row's chain hash, recomputed from content (None until a hash is known)."""
    return row_mismatches(chain, columns, start_hash)[1]
