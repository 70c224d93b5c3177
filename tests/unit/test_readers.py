"""Independent readers see every column with the right type: DuckDB and polars, hive-partitioned."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from sealtrail.chain import Accepted, ChainHead, seal_batch
from sealtrail.layout import data_key
from sealtrail.objects import SCHEMA, to_parquet
from sealtrail.stack.workload import generate
from tests.support.builders import columns_of
from tests.support.signers import new_signer

DUCKDB_TYPES = {"int64": "BIGINT", "int32": "INTEGER", "string": "VARCHAR", "binary": "BLOB",
                "fixed_size_binary[32]": "BLOB", "timestamp[us, tz=UTC]": "TIMESTAMP WITH TIME ZONE"}
POLARS_TYPES = {"int64": pl.Int64, "int32": pl.Int32, "string": pl.String, "binary": pl.Binary,
                "fixed_size_binary[32]": pl.Binary, "timestamp[us, tz=UTC]": pl.Datetime("us", "UTC")}


def write_trail(root: Path) -> int:
    signer = new_signer()
    heads = {p: ChainHead(f"p{p:03d}") for p in range(2)}
    batch = [Accepted(i % 2, i // 2, columns_of(e)) for i, e in enumerate(generate(400, seed=8))]
    sealed = seal_batch(heads, batch, signer, "2026-11-23T10:00:00.000000Z").sealed
    for chain in ("p000", "p001"):
        records = [r for r in sealed if r.chain == chain]
        path = root / data_key("trail/", "2026-11-23", chain, records[0].seq, records[-1].seq)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(to_parquet(records, None))
    return len(sealed)


def test_duckdb_reads_every_column_with_its_type(tmp_path: Path) -> None:
    rows = write_trail(tmp_path)
    con = duckdb.connect()
    rel = con.sql(f"select * from read_parquet('{tmp_path}/trail/data/**/*.parquet', hive_partitioning = true)")
    types = dict(zip(rel.columns, [str(t) for t in rel.types]))
    for field in SCHEMA:
        assert types[field.name] == DUCKDB_TYPES[str(field.type)], field.name
    assert {"dt", "chain"} <= set(types)
    assert con.execute("select count(*) from rel").fetchall()[0][0] == rows
    failed = con.execute("select count(*) from rel where class_uid = 3002 and status_id = 2").fetchall()[0][0]
    assert failed > 0


def test_polars_reads_every_column_with_its_type(tmp_path: Path) -> None:
    rows = write_trail(tmp_path)
    frame = pl.read_parquet(str(tmp_path / "trail/data/**/*.parquet"), hive_partitioning=True)
    for field in SCHEMA:
        assert frame.schema[field.name] == POLARS_TYPES[str(field.type)], field.name
    assert frame.height == rows
    assert set(frame["chain"].unique()) == {"p000", "p001"}
