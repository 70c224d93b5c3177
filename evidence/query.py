"""Querying the trail in place with DuckDB: the local twin of Athena.

DuckDB cannot download its httpfs extension here, but pyarrow reads S3
natively (DESIGN.md), so the bucket's Parquet is opened as a pyarrow dataset
and registered in DuckDB as the view `events`: filters and projections are
pushed down into the scan and nothing is downloaded first. The dt and chain
folders become columns, as they do in Athena.

Only well-formed data object names are read (sealtrail.layout), so a bundle's
lock sidecars and stray files under the prefix do not break a query; whether
what is read is intact is `verify`'s job, not this module's.

User values never enter SQL text: filters are bound parameters and the sort
column is checked against the schema. A connection is locked once its views
are registered (no file, network or extension access, no changing that back),
so `--sql` reads the trail's views and nothing else; `--unsafe-sql` opts into
the whole of DuckDB. Table and CSV output show control characters as escapes
(sealtrail.printable): a producer's text never drives the operator's terminal.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from sealtrail.config import Settings
from sealtrail.encoding import format_ts
from sealtrail.errors import ConfigError, ServiceUnavailable
from sealtrail.evidence.bundle import DirectoryStore
from sealtrail.layout import data_prefix, parse_data_key
from sealtrail.objects import SCHEMA
from sealtrail.printable import printable
from sealtrail.store import ObjectStore

PARTITIONS = pa.schema([pa.field("dt", pa.string()), pa.field("chain", pa.string())])
EVENTS_SCHEMA = pa.schema([*SCHEMA, *PARTITIONS])
COLUMNS = tuple(EVENTS_SCHEMA.names)
FORMATS = ("table", "json", "csv")
TABLE_CELL_WIDTH = 40
# After these, the connection reads what was registered and nothing else: no files, no network, no
# extensions, and no SET that would give them back (DuckDB: "Securing DuckDB").
LOCK_SQL = ("SET enable_external_access = false", "SET lock_configuration = true")


def _data_files(fs: pafs.FileSystem, base: str, key_of: Any) -> list[str]:
    try:
        infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    except OSError as e:
        raise ServiceUnavailable("s3", f"cannot list {base}: {e}") from e
    return sorted(i.path for i in infos if i.type == pafs.FileType.File and parse_data_key(key_of(i.path)))


def events_dataset(settings: Settings, source: ObjectStore | None = None,
                   only: Iterable[str] | None = None) -> ds.Dataset:
    """The trail's Parquet as one dataset with dt and chain partition columns (empty if none yet).

    source is the store to read in place (the bucket when None; a bundle's DirectoryStore), through the
    pyarrow filesystem it gives. only limits it to these object keys: the ones a verification trusted
    (evidence/check.py).
    """
    if source is None:
        from sealtrail.sinks.s3 import S3Store

        source = S3Store(settings)
    fs, root = source.arrow_filesystem()
    base = f"{root}/{data_prefix(settings.s3.prefix)}".rstrip("/")
    files = _data_files(fs, base, lambda path: path.removeprefix(f"{root}/"))
    if only is not None:
        keep = set(only)
        files = [f for f in files if f.removeprefix(f"{root}/") in keep]
    return ds.dataset(
        files,
        schema=EVENTS_SCHEMA,
        format="parquet",
        filesystem=fs,
        partitioning=ds.partitioning(PARTITIONS, flavor="hive"),
        partition_base_dir=base,
    )


def open_events(settings: Settings, source: ObjectStore | None = None, only: Iterable[str] | None = None, *,
                unsafe_sql: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection in UTC with the views `trail` (every row: events and the rows accounting for
    rejected inputs and repeated event ids) and `events` (the sealed events alone, kind IS NULL).

    Locked (LOCK_SQL) unless unsafe_sql: SQL run on it cannot read or write local files, attach
    databases, load extensions or reach the network, which --sql text passed on from a script or a
    chat bot otherwise could. pyarrow reads the bucket for the registered dataset, outside DuckDB.
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("trail", events_dataset(settings, source, only))
    con.execute("CREATE VIEW events AS SELECT * FROM trail WHERE kind IS NULL")
    if not unsafe_sql:
        for statement in LOCK_SQL:
            con.execute(statement)
    return con


def locate_input(settings: Settings, partition: int, offset: int, bundle: Any = None) -> dict[str, Any] | None:
    """What input offset `offset` of audit.events partition `partition` became in the trail, or None.

    Every input offset is one row of its partition's chain: a sealed event, a rejected input or a
    duplicate of an event id sealed before (which is then named with its own seq).
    """
    from sealtrail.chain import chain_id

    con = open_events(settings, DirectoryStore(bundle) if bundle is not None else None)
    try:
        rows = _rows(con, "SELECT chain, seq, src_offset, event_id, kind, reason, input_bytes, input_sha256 "
                          "FROM trail WHERE chain = ? AND src_offset = ? ORDER BY seq", [chain_id(partition), offset])
        if not rows:
            return None
        row = rows[0]
        found: dict[str, Any] = {"partition": partition, "offset": offset, "chain": row["chain"], "seq": row["seq"],
                                 "kind": row["kind"] or "event", "event_id": row["event_id"]}
        if row["kind"] == "rejected":
            found.update(reason=row["reason"], input_bytes=row["input_bytes"], input_sha256=row["input_sha256"])
        elif row["kind"] == "duplicate":
            first = _rows(con, "SELECT chain, seq, src_offset FROM events WHERE event_id = ? ORDER BY chain, seq "
                               "LIMIT 1", [row["event_id"]])
            found.update(input_bytes=row["input_bytes"], input_sha256=row["input_sha256"],
                         duplicate_of={"event_id": row["event_id"], **(first[0] if first else {})})
        if len(rows) > 1:
            found["also_at_seqs"] = [r["seq"] for r in rows[1:]]  # verify reports this as an input repeat
        return found
    finally:
        con.close()


def _instant(name: str, value: datetime | str) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as e:
            raise ConfigError(name, f"not an ISO 8601 time: {value!r}") from e
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat()


def _where(filters: dict[str, Any], since: datetime | str | None, until: datetime | str | None
           ) -> tuple[list[str], list[Any]]:
    """SQL conditions and parameters for equality filters (column -> value) and a time range."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in filters.items():
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        clauses.append("occurred_at >= CAST(? AS TIMESTAMPTZ)")
        params.append(_instant("--since", since))
    if until is not None:
        clauses.append("occurred_at < CAST(? AS TIMESTAMPTZ)")
        params.append(_instant("--until", until))
    return clauses, params


def query_events(
    con: duckdb.DuckDBPyConnection,
    *,
    actor: str | None = None,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    tenant: str | None = None,
    category: str | None = None,
    chain: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    limit: int = 100,
    offset: int = 0,
    order: str = "occurred_at",
    event_id: str | None = None,
    after: tuple[datetime | str, str, int] | None = None,
    outcome: str | None = None,
    actor_ip: str | None = None,
) -> list[dict[str, Any]]:
    """Events matching every given filter; since is inclusive, until exclusive.

    order is a column name, "-name" for descending; ties break on chain and seq
    so pages never overlap or skip. ``after`` is a keyset cursor, the
    (occurred_at, chain, seq) of the last row already seen: only rows past it
    in the sort order are returned, so events sealed meanwhile shift no page
    (offset pages would). It needs order "occurred_at" or "-occurred_at".
    """
    clauses, params = _where(
        {"actor_id": actor, "action": action, "resource_type": resource_type, "resource_id": resource_id,
         "tenant": tenant, "category": category, "chain": chain, "event_id": event_id, "outcome": outcome,
         "actor_ip": actor_ip},
        since, until,
    )
    descending = order.startswith("-")
    column = order.removeprefix("-")
    if column not in COLUMNS:
        raise ConfigError("--order", f"unknown column {column!r}; one of {', '.join(COLUMNS)}")
    if limit < 0 or offset < 0:
        raise ConfigError("--limit", "limit and offset cannot be negative")
    direction = "DESC" if descending else "ASC"
    if after is not None:
        if column != "occurred_at":
            raise ConfigError("--after", "a keyset cursor needs order occurred_at or -occurred_at")
        at, after_chain, after_seq = after
        clauses.append(f"(occurred_at, chain, seq) {'<' if descending else '>'} (CAST(? AS TIMESTAMPTZ), ?, ?)")
        params += [_instant("--after", at), after_chain, after_seq]
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = (
        f"SELECT * FROM events {where} "
        f'ORDER BY "{column}" {direction}, chain {direction}, seq {direction} LIMIT ? OFFSET ?'
    )
    return _rows(con, sql, [*params, limit, offset])


def count_events(
    con: duckdb.DuckDBPyConnection,
    by: Sequence[str],
    *,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    limit: int = 100,
    **filters: str | None,
) -> list[dict[str, Any]]:
    """Counts of matching events grouped by columns, most first: "failed logins by ip" in one call.

    filters take the column names themselves (actor_id, action, outcome, actor_ip, tenant, ...).
    """
    unknown = [c for c in [*by, *filters] if c not in COLUMNS]
    if unknown or not by:
        raise ConfigError("--count-by", f"unknown column {unknown[0] if unknown else None!r}; "
                          f"one of {', '.join(COLUMNS)}")
    clauses, params = _where(dict(filters), since, until)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    columns = ", ".join(f'"{c}"' for c in by)
    sql = (f"SELECT {columns}, count(*) AS events, min(occurred_at) AS first, max(occurred_at) AS last "
           f"FROM events {where} GROUP BY {columns} ORDER BY events DESC, {columns} LIMIT ?")
    return _rows(con, sql, [*params, limit])


def run_sql(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    """The --sql escape hatch: any query over the `events` and `trail` views (on a locked connection,
    only over them)."""
    return _rows(con, sql, None, "--sql")


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None, setting: str = "query"
          ) -> list[dict[str, Any]]:
    """Run sql; DuckDB's errors mapped by their type onto sealtrail's (setting: what the SQL came from)."""
    try:
        cursor = con.execute(sql, params) if params is not None else con.execute(sql)
        if cursor.description is None:
            return []
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    except OSError as e:  # pyarrow reading the bucket or the bundle failed, not the query
        raise ServiceUnavailable("s3", str(e).splitlines()[0]) from e
    except duckdb.PermissionException as e:  # the lock refused a file, extension or network access
        raise ConfigError(setting, f"{str(e).splitlines()[0]} (SQL here reads the views events and trail "
                                   "only; --unsafe-sql gives it the whole of DuckDB)") from e
    except duckdb.Error as e:  # the SQL itself, or what it asked DuckDB to read or load (IOException)
        raise ConfigError(setting, str(e).splitlines()[0]) from e


# ---------------------------------------------------------------------------
# Rendering


def plain(value: Any) -> Any:
    """A JSON/CSV-ready value: timestamps as ISO 8601 UTC text, bytes as hex."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return format_ts(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def _text(value: Any) -> str:
    """A cell as printable text: JSON for nested values, controls escaped (sealtrail.printable)."""
    value = plain(value)
    if value is None:
        return ""
    return printable(value if isinstance(value, str) else orjson.dumps(value).decode())


def _cell(value: Any) -> str:
    text = _text(value)
    return text if len(text) <= TABLE_CELL_WIDTH else text[: TABLE_CELL_WIDTH - 1] + "…"


def render(rows: Sequence[dict[str, Any]], fmt: str = "table") -> str:
    """rows as a fixed-width text table, a JSON array of objects, or CSV with a header.

    JSON is exact (its encoder escapes what JSON must); table and CSV cells, and column names (which
    --sql chooses), show control characters as escapes.
    """
    if fmt == "json":
        return orjson.dumps([{k: plain(v) for k, v in row.items()} for row in rows]).decode()
    names = _columns(rows)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if names:
            writer.writerow([printable(n) for n in names])
        for row in rows:
            writer.writerow([_text(row.get(n)) for n in names])
        return out.getvalue()
    if fmt == "table":
        if not rows:
            return "(no rows)\n"
        # Columns that are empty in every row only add width.
        names = [n for n in names if any(row.get(n) is not None for row in rows)]
        cells = [[_cell(row.get(n)) for n in names] for row in rows]
        names = [printable(n) for n in names]
        widths = [max(len(n), *(len(r[i]) for r in cells)) for i, n in enumerate(names)]
        lines = [
            "  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip(),
            "  ".join("-" * w for w in widths),
        ]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
        return "\n".join(lines) + "\n"
    raise ConfigError("--format", f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
