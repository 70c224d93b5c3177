"""The Athena DDL parses as Athena SQL with an independent parser and matches the Parquet schema."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from sealtrail.objects import SCHEMA
from sealtrail.sinks.athena import digests_ddl, events_ddl


def test_events_ddl_parses_as_athena_and_lists_every_column() -> None:
    ddl = events_ddl("audit-bucket", "trail/", 6)
    tree = sqlglot.parse_one(ddl, read="athena")
    assert isinstance(tree, exp.Create) and tree.kind == "TABLE"
    defined = [c.name for c in tree.find_all(exp.ColumnDef)]
    assert defined[: len(SCHEMA)] == SCHEMA.names
    assert defined[len(SCHEMA):] == ["dt", "chain"]
    assert "'projection.chain.values' = 'p000,p001,p002,p003,p004,p005'" in ddl
    assert "s3://audit-bucket/trail/data/dt=${dt}/chain=${chain}/" in ddl


def test_digests_ddl_parses_as_athena() -> None:
    tree = sqlglot.parse_one(digests_ddl("audit-bucket", "trail/", 3), read="athena")
    assert isinstance(tree, exp.Create)
    assert {c.name for c in tree.find_all(exp.ColumnDef)} >= {"objects", "head", "previous", "signature", "chain"}


def test_deploy_sql_is_what_the_generator_prints() -> None:
    """deploy/athena/events.sql is generated; it must not drift from the Parquet schema."""
    from pathlib import Path

    shipped = (Path(__file__).parents[2] / "deploy/athena/events.sql").read_text()
    assert events_ddl("sealtrail-audit", "trail/", 6) in shipped
    assert digests_ddl("sealtrail-audit", "trail/", 6) in shipped
