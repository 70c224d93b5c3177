"""The SQL of trigger-based change capture, as pure functions of the schema name and the tables.

What `sealtrail cdc install` creates in schema S (default ``sealtrail``):

    S.audit_log        append-only: one row per captured change or DDL; txid (xid8) of the writing transaction
    S.audited_tables   which tables are captured (oid, identity, primary-key columns)
    S.relay_position   each relay's durable position (see relay.py: a transaction-id horizon, not a row id)
    S.capture()        AFTER INSERT/UPDATE/DELETE row trigger: before/after JSON, changed columns,
                       database user, and app.user_id / app.ip_address / app.tenant / app.request_id
                       from session settings (SECURITY DEFINER: application roles need no rights on S)
    S.capture_truncate()   AFTER TRUNCATE statement trigger
    S.guard()          BEFORE UPDATE/DELETE/TRUNCATE on S.audit_log: refused unless current_user owns it
    S.capture_ddl()    event triggers (ddl_command_end, sql_drop): any DDL on an audited table, on a trigger
                       of one, or on anything in S (DISABLE TRIGGER, DROP TRIGGER, ALTER/DROP TABLE,
                       CREATE OR REPLACE FUNCTION S.capture ...) becomes a row of kind 'ddl'

Every trigger, and both event triggers, are ENABLE ALWAYS, so
``session_replication_role = replica`` (which silences ordinary triggers)
does not silence them.
"""

from __future__ import annotations

import re

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def check_schema(schema: str) -> str:
    if not _IDENT.match(schema):
        raise ValueError(f"schema name must be lower-case letters, digits and _: {schema!r}")
    return schema


def trigger_name(schema: str) -> str:
    return f"{schema}_capture"


def event_trigger_names(schema: str) -> tuple[str, str]:
    return f"{schema}_ddl", f"{schema}_drop"


def install_schema(schema: str) -> str:
    """Tables and functions (idempotent: safe to run again, e.g. to upgrade the functions)."""
    s = quote_ident(check_schema(schema))
    trig = trigger_name(schema)
    return f"""
create schema if not exists {s};
revoke all on schema {s} from public;

create table if not exists {s}.audit_log (
    id               bigint generated always as identity primary key,
    txid             xid8 not null default pg_current_xact_id(),
    event_id         uuid not null default gen_random_uuid(),
    captured_at      timestamptz not null default clock_timestamp(),
    kind             text not null default 'change' check (kind in ('change', 'ddl')),
    operation        text not null,
    schema_name      text,
    table_name       text,
    row_key          text,
    before           jsonb,
    after            jsonb,
    changed          text[],
    db_user          text not null default session_user,
    db_role          text default nullif(current_setting('role', true), 'none'),
    app_user_id      text default nullif(current_setting('app.user_id', true), ''),
    app_ip           text default nullif(current_setting('app.ip_address', true), ''),
    app_tenant       text default nullif(current_setting('app.tenant', true), ''),
    app_request_id   text default nullif(current_setting('app.request_id', true), ''),
    client_addr      inet default inet_client_addr(),
    application_name text default nullif(current_setting('application_name', true), ''),
    detail           jsonb
);
create index if not exists audit_log_txid on {s}.audit_log (txid, id);
revoke all on {s}.audit_log from public;

create table if not exists {s}.audited_tables (
    relid        oid primary key,
    identity     text not null,
    key_columns  text[] not null,
    installed_at timestamptz not null default now()
);
revoke all on {s}.audited_tables from public;

create table if not exists {s}.relay_position (
    relay      text primary key,
    done_below xid8 not null,
    relayed    xid8[] not null default '{{}}',
    rows_total bigint not null default 0,
    updated_at timestamptz not null default now()
);
revoke all on {s}.relay_position from public;

create or replace function {s}.capture() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
declare
    b jsonb;
    a jsonb;
    ch text[];
    pk text;
begin
    if tg_op in ('UPDATE', 'DELETE') then b := to_jsonb(old); end if;
    if tg_op in ('INSERT', 'UPDATE') then a := to_jsonb(new); end if;
    if tg_op = 'UPDATE' then
        select coalesce(array_agg(e.key order by e.key), '{{}}') into ch
        from jsonb_each(a) e where e.value is distinct from b -> e.key;
    end if;
    if tg_nargs > 0 then
        select string_agg(coalesce(coalesce(a, b) ->> tg_argv[i], ''), ',' order by i) into pk
        from generate_subscripts(tg_argv, 1) i;
    end if;
    insert into {s}.audit_log (operation, schema_name, table_name, row_key, before, after, changed)
    values (tg_op, tg_table_schema, tg_table_name, pk, b, a, ch);
    return null;
end
$fn$;

create or replace function {s}.capture_truncate() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
begin
    insert into {s}.audit_log (operation, schema_name, table_name, row_key)
    values ('TRUNCATE', tg_table_schema, tg_table_name, '*');
    return null;
end
$fn$;

create or replace function {s}.guard() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $fn$
declare
    owner name;
begin
    select pg_get_userbyid(c.relowner) into owner from pg_class c where c.oid = tg_relid;
    if current_user <> owner then
        raise exception 'sealtrail: % on %.% is refused: the audit log is append-only', tg_op, tg_table_schema, tg_table_name
            using errcode = 'insufficient_privilege';
    end if;
    if tg_level = 'ROW' then
        return case when tg_op = 'DELETE' then old else new end;
    end if;
    return null;
end
$fn$;

create or replace function {s}.capture_ddl() returns event_trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
declare
    r record;
    hit boolean;
begin
    for r in select * from pg_event_trigger_ddl_commands() loop
        hit := r.schema_name = '{schema}'
            or (r.classid = 'pg_class'::regclass and exists (select 1 from {s}.audited_tables t where t.relid = r.objid))
            or (r.classid = 'pg_trigger'::regclass and exists (
                    select 1 from pg_trigger g join {s}.audited_tables t on t.relid = g.tgrelid where g.oid = r.objid));
        if hit then
            insert into {s}.audit_log (kind, operation, schema_name, table_name, detail)
            values ('ddl', r.command_tag, r.schema_name, r.object_identity, jsonb_build_object(
                'event', tg_event, 'object_type', r.object_type, 'object_identity', r.object_identity,
                'in_extension', r.in_extension, 'query', left(current_query(), 2000)));
        end if;
    end loop;
end
$fn$;

create or replace function {s}.capture_drop() returns event_trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
declare
    r record;
    hit boolean;
begin
    for r in select * from pg_event_trigger_dropped_objects() loop
        hit := r.schema_name = '{schema}'
            or (r.object_type = 'table' and exists (select 1 from {s}.audited_tables t where t.relid = r.objid))
            or (r.object_type = 'trigger' and (
                    r.object_identity like '{trig}% on %'
                    or exists (select 1 from {s}.audited_tables t where r.object_identity like '% on ' || t.identity)));
        if hit then
            insert into {s}.audit_log (kind, operation, schema_name, table_name, detail)
            values ('ddl', tg_tag, r.schema_name, r.object_identity, jsonb_build_object(
                'event', tg_event, 'object_type', r.object_type, 'object_identity', r.object_identity,
                'original', r.original, 'query', left(current_query(), 2000)));
        end if;
    end loop;
end
$fn$;

drop trigger if exists {quote_ident(trig + '_guard')} on {s}.audit_log;
create trigger {quote_ident(trig + '_guard')} before update or delete on {s}.audit_log
    for each row execute function {s}.guard();
alter table {s}.audit_log enable always trigger {quote_ident(trig + '_guard')};
drop trigger if exists {quote_ident(trig + '_guard_truncate')} on {s}.audit_log;
create trigger {quote_ident(trig + '_guard_truncate')} before truncate on {s}.audit_log
    for each statement execute function {s}.guard();
alter table {s}.audit_log enable always trigger {quote_ident(trig + '_guard_truncate')};
"""


def install_event_triggers(schema: str) -> str:
    """Event triggers (superuser only): dropped and created again, so a re-install repairs them."""
    s = quote_ident(check_schema(schema))
    ddl, drop = (quote_ident(n) for n in event_trigger_names(schema))
    return f"""
drop event trigger if exists {ddl};
create event trigger {ddl} on ddl_command_end execute function {s}.capture_ddl();
alter event trigger {ddl} enable always;
drop event trigger if exists {drop};
create event trigger {drop} on sql_drop execute function {s}.capture_drop();
alter event trigger {drop} enable always;
"""


def install_table(schema: str, table_identity: str, key_columns: list[str]) -> str:
    """Capture triggers on one table (``table_identity`` already quoted, e.g. ``public.users``)."""
    s = quote_ident(check_schema(schema))
    row, trunc = quote_ident(trigger_name(schema)), quote_ident(trigger_name(schema) + "_truncate")
    args = ", ".join("'" + c.replace("'", "''") + "'" for c in key_columns)
    return f"""
drop trigger if exists {row} on {table_identity};
create trigger {row} after insert or update or delete on {table_identity}
    for each row execute function {s}.capture({args});
alter table {table_identity} enable always trigger {row};
drop trigger if exists {trunc} on {table_identity};
create trigger {trunc} after truncate on {table_identity}
    for each statement execute function {s}.capture_truncate();
alter table {table_identity} enable always trigger {trunc};
"""
