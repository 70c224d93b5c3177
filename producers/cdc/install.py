"""`sealtrail cdc install`: the audit schema, capture triggers on the named tables, and the event triggers.

One transaction: either everything is installed or nothing is. Event
triggers need a superuser (PostgreSQL's rule), so does the install; the
installing role owns the audit table and is the only role its guard lets
UPDATE, DELETE or TRUNCATE it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sealtrail.errors import CaptureError, ServiceUnavailable
from sealtrail.producers.cdc import sql

if TYPE_CHECKING:  # the [cdc] extra: imported where a connection is made
    import psycopg


@dataclass(frozen=True)
class AuditedTable:
    identity: str
    key_columns: tuple[str, ...]


@dataclass(frozen=True)
class InstallReport:
    schema: str
    owner: str
    tables: tuple[AuditedTable, ...]


def connect(database_url: str | None, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    """A psycopg connection, with connection failures mapped onto ServiceUnavailable."""
    import psycopg

    if not database_url:
        raise CaptureError("no database: pass --database URL or set SEALTRAIL_DATABASE_URL (or run `sealtrail up`)")
    try:
        return psycopg.connect(database_url, connect_timeout=10, autocommit=autocommit)
    except psycopg.OperationalError as e:
        raise ServiceUnavailable("postgres", " ".join(str(e).split())) from e


def one_row(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    """The row of a query that returns exactly one by its nature (a function call, an aggregate)."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise CaptureError(f"no row from: {query}")
    return tuple(row)


def install(database_url: str | None, tables: list[str], schema: str = "sealtrail") -> InstallReport:
    import psycopg

    if not tables:
        raise CaptureError("name at least one table to capture (--table NAME, repeatable)")
    try:
        sql.check_schema(schema)
    except ValueError as e:
        raise CaptureError(str(e)) from e
    with connect(database_url) as conn:
        try:
            with conn.transaction():
                owner, superuser = one_row(conn, "select current_user, rolsuper from pg_roles where rolname = current_user")
                if not superuser:
                    raise CaptureError(
                        f"role {owner} is not a superuser: PostgreSQL lets only superusers create the event "
                        "triggers that record DDL which could switch capture off"
                    )
                conn.execute(sql.install_schema(schema))
                audited = [_install_table(conn, schema, name) for name in tables]
                conn.execute(sql.install_event_triggers(schema))
        except psycopg.Error as e:
            raise CaptureError(f"install failed, nothing was changed: {' '.join(str(e).split())}") from e
    return InstallReport(schema, owner, tuple(audited))


def _install_table(conn, schema: str, name: str) -> AuditedTable:
    found = conn.execute(
        """
        select c.oid, (pg_identify_object('pg_class'::regclass, c.oid, 0)).identity, c.relkind,
               coalesce((select array_agg(a.attname::text order by k.ord)
                         from pg_index i
                         cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
                         join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                         where i.indrelid = c.oid and i.indisprimary), '{}')
        from pg_class c where c.oid = to_regclass(%s)
        """,
        (name,),
    ).fetchone()
    if found is None:
        raise CaptureError(f"table {name!r} not found (qualify it as schema.table if it is not on the search_path)")
    relid, identity, relkind, keys = found
    if relkind not in ("r", "p"):
        raise CaptureError(f"{identity} is not a table (relkind {relkind!r})")
    if identity.split(".")[0] in (schema, f'"{schema}"'):
        raise CaptureError(f"{identity} is in the audit schema itself")
    conn.execute(sql.install_table(schema, identity, list(keys)))
    conn.execute(
        f"insert into {sql.quote_ident(schema)}.audited_tables (relid, identity, key_columns) values (%s, %s, %s) "
        "on conflict (relid) do update set identity = excluded.identity, key_columns = excluded.key_columns",
        (relid, identity, list(keys)),
    )
    return AuditedTable(identity, tuple(keys))
