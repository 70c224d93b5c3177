"""Sealed records <-> Parquet (zstd), the format Athena and DuckDB read.

The chain id is not a column: it is the `chain=` folder of the object's key,
which is how Athena sees it (a partition column cannot also be a data column).
Timestamps are stored as timestamp[us, UTC] and turned back into the exact
text that was hashed (format_ts) when verifying.

The chain hash is stored on signed heads only (core/record.py says why); the
hash the object's first record links to is in the file's key-value metadata
(``sealtrail.prev_hash``), so each object can be checked on its own, and a
changed value there breaks the link to the object's first signed head.
``sealtrail.format`` names the rules the rows were hashed by (RECORD_FORMAT),
so a verifier years from now knows which ones to apply, and says so plainly
when it does not know them rather than reporting every row as changed.
Sequence numbers, offsets and times are nearly sorted, so they are delta
encoded rather than dictionary encoded (about 6 bytes per event less).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sealtrail.columns import BINARY, COLUMNS, HASH, INT32, INT64, STRING, TIMESTAMP, Column, Group
from sealtrail.record import ACCOUNT_COLUMNS, ROW_COLUMNS, SealedRecord

TS = pa.timestamp("us", tz="UTC")
ARROW_TYPES = {STRING: pa.string(), INT64: pa.int64(), INT32: pa.int32(), TIMESTAMP: TS, HASH: pa.binary(32),
               BINARY: pa.binary()}


def _field(column: Column, nullable: bool) -> pa.Field:
    return pa.field(column.name, ARROW_TYPES[column.arrow], nullable=nullable)


SCHEMA_V2 = pa.schema([_field(c, not c.required) for c in COLUMNS if c.group is not Group.ACCOUNT])
# v3 (input accounting): every event column may be null, for the rows that account for a rejected
# input or a repeated event id; the accounting columns sit before the seal columns.
_NULLABLE_IN_V3 = (Group.EVENT, Group.OCSF, Group.ACCOUNT)
SCHEMA = pa.schema([_field(c, not c.required or c.group in _NULLABLE_IN_V3) for c in COLUMNS])
REQUIRED_FOR_EVENTS = frozenset(c.name for c in COLUMNS if c.required)
_TIMESTAMPS = tuple(c.name for c in COLUMNS if c.arrow == TIMESTAMP)
PREV_HASH_META = b"sealtrail.prev_hash"
FORMAT_META = b"sealtrail.format"
# v3: v2 plus input accounting (sealtrail.record.ACCOUNT_COLUMNS): rows for rejected inputs and repeated
# event ids, so every input offset of a chain is one row; event rows hash as in v2.
# v2: hash_n = SHA-256(0x00 || hash_{n-1} || SHA-256(content_n)) (sealtrail.record.chain_hash), row_check
# from the same digest. v1, before release, linked SHA-256(hash_{n-1} || content_n) and had no marker.
RECORD_FORMAT = "sealtrail.record.v3"
RECORD_FORMAT_V2 = "sealtrail.record.v2"
SCHEMAS = {RECORD_FORMAT: SCHEMA, RECORD_FORMAT_V2: SCHEMA_V2}
_DELTA = ("seq", "src_offset", "sealed_at", "occurred_at")
_PLAIN = ("row_check", "hash", "signature")  # random bytes: a dictionary only costs
ENCODING = {name: "DELTA_BINARY_PACKED" for name in _DELTA}
DICTIONARY = [f.name for f in SCHEMA if f.name not in _DELTA and f.name not in _PLAIN]
WRITE_OPTIONS = {"compression": "zstd", "use_dictionary": DICTIONARY, "column_encoding": ENCODING,
                 "write_statistics": True}


def schema_for(prev_hash: bytes | None) -> pa.Schema:
    """SCHEMA, with the record format and the hash the object's first record links to in its metadata."""
    meta = {FORMAT_META: RECORD_FORMAT.encode()}
    if prev_hash is not None:
        meta[PREV_HASH_META] = prev_hash.hex().encode()
    return SCHEMA.with_metadata(meta)


def to_table(records: list[SealedRecord], prev_hash: bytes | None) -> pa.Table:
    """Records as a table; prev_hash (the hash the first record links to) goes into the schema metadata."""
    columns: dict[str, list] = {
        "seq": [r.seq for r in records],
        "sealed_at": [r.sealed_at for r in records],
        "src_offset": [r.src_offset for r in records],
    }
    for name in ROW_COLUMNS:
        columns[name] = [r.columns.get(name) for r in records]
    columns["row_check"] = [r.check_value() for r in records]
    columns["hash"] = [r.hash if r.signature is not None else None for r in records]
    columns["key_id"] = [r.key_id for r in records]
    columns["signature"] = [r.signature for r in records]
    arrays = []
    for field in SCHEMA:
        values = columns[field.name]
        if field.name in _TIMESTAMPS:
            arrays.append(pc.cast(pa.array(values, pa.string()), TS))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=schema_for(prev_hash))


class ObjectWriter:
    """One Parquet object built a row group at a time, in memory, compressed as it goes.

    The sink appends each flushable run of records as a row group and PUTs the
    object once it is large or old enough, so objects reach the tens of MB
    Athena reads best while the sink holds only one row group of records.
    """

    def __init__(self, prev_hash: bytes | None) -> None:
        self._prev_hash = prev_hash
        self._sink = pa.BufferOutputStream()
        self._writer = pq.ParquetWriter(self._sink, schema_for(prev_hash), **WRITE_OPTIONS)

    def append(self, records: list[SealedRecord]) -> None:
        self._writer.write_table(to_table(records, self._prev_hash))

    @property
    def size(self) -> int:
        """Bytes written so far (the footer adds a few KB at close)."""
        return self._sink.tell()

    def close(self) -> bytes:
        self._writer.close()
        return self._sink.getvalue().to_pybytes()


def to_parquet(records: list[SealedRecord], prev_hash: bytes | None) -> bytes:
    writer = ObjectWriter(prev_hash)
    writer.append(records)
    return writer.close()


def prev_hash_of(schema: pa.Schema) -> bytes | None:
    """The hash an object's first record links to, from its metadata (None: absent or malformed)."""
    value = (schema.metadata or {}).get(PREV_HASH_META)
    try:
        return bytes.fromhex(value.decode()) if value is not None and len(value) == 64 else None
    except ValueError:
        return None


def format_of(schema: pa.Schema) -> str | None:
    """The record format an object says it was written in (None: no marker, as before markers existed)."""
    value = (schema.metadata or {}).get(FORMAT_META)
    return value.decode("utf-8", "replace") if value is not None else None


def foreign_format(schema: pa.Schema) -> str | None:
    """The object's record format if it is one this version cannot check (an object without a marker
    was written before markers existed, by the rules of v2)."""
    written_in = format_of(schema)
    return written_in if written_in is not None and written_in not in SCHEMAS else None


def schema_of_format(schema: pa.Schema) -> pa.Schema:
    """The schema the sink wrote objects of this one's record format with (v2 without a marker)."""
    return SCHEMAS.get(format_of(schema) or RECORD_FORMAT_V2, SCHEMA)


def upgraded(table: pa.Table) -> pa.Table:
    """A table of an older record format with the v3 columns it lacks added as nulls (readers see one shape).

    v2 objects hold sealed events only, so their accounting columns are null, which is what v3
    stores for an event.
    """
    missing = [name for name in ACCOUNT_COLUMNS if name not in table.column_names]
    if not missing:
        return table
    for name in missing:
        field = SCHEMA.field(name)
        table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table


def read_table(body: bytes) -> pa.Table:
    """Parquet bytes -> table, through an Arrow buffer rather than a Python file object.

    io.BytesIO reads about three times slower with pyarrow 26 and, with Arrow's
    thread pool, aborted the interpreter at exit in a third to a half of runs
    here (apache/arrow#34314), which would turn verify's exit code into 134.
    """
    return pq.read_table(pa.BufferReader(body), use_threads=False)


def timestamp_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """timestamp[us, UTC] -> the exact text format_ts hashed ('YYYY-MM-DDTHH:MM:SS.ffffffZ').

    Casts to date32 and time64 are plain arithmetic, about ten times faster
    than Arrow's locale-aware strftime (about 1.4 us per value here).
    """
    naive = pc.cast(column, pa.timestamp("us"))
    date = pc.cast(pc.cast(naive, pa.date32()), pa.string())
    time = pc.cast(pc.cast(naive, pa.time64("us")), pa.string())
    return pc.binary_join_element_wise(date, "T", time, "Z", "")


def text_columns(table: pa.Table) -> dict[str, list]:
    """Column name -> Python values, timestamps as the exact text that was hashed.

    Only timestamp[us] columns become text; a table with a tampered schema is
    reported by the verifier and its values are hashed as they come.
    """
    out: dict[str, list] = {}
    for name in table.column_names:
        column = table.column(name)
        if name in _TIMESTAMPS and pa.types.is_timestamp(column.type) and column.type.unit == "us":
            column = timestamp_text(column)
        out[name] = column.to_pylist()
    return out
