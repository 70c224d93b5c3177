"""`sealtrail cdc status`: what is captured, whether capture is intact, and how far each relay got."""

from __future__ import annotations

from typing import Any

from sealtrail.errors import CaptureError
from sealtrail.producers.cdc import sql
from sealtrail.producers.cdc.install import connect, one_row

_MODES = {"O": "origin", "D": "DISABLED", "R": "replica-only", "A": "always"}


def capture_status(database_url: str | None, schema: str) -> dict[str, Any]:
    s = sql.quote_ident(sql.check_schema(schema))
    with connect(database_url) as conn:
        if one_row(conn, "select to_regclass(%s)", (f"{s}.audited_tables",))[0] is None:
            raise CaptureError(f"capture is not installed in schema {schema}")
        tables = []
        for relid, identity in conn.execute(f"select relid, identity from {s}.audited_tables order by identity"):
            triggers = conn.execute(
                "select tgname, tgenabled from pg_trigger where tgrelid = %s and tgname like %s order by tgname",
                (relid, sql.trigger_name(schema) + "%"),
            ).fetchall()
            tables.append({"identity": identity,
                           "triggers": {name: _MODES.get(mode, mode) for name, mode in triggers} or "MISSING"})
        relays = []
        for relay, done_below, rows_total, updated_at in conn.execute(
            f"select relay, done_below::text, rows_total, updated_at from {s}.relay_position order by relay"
        ).fetchall():
            (pending,) = one_row(
                conn, f"select count(*) from {s}.audit_log a, {s}.relay_position p where p.relay = %s "
                "and a.txid >= %s::text::xid8 and not (a.txid = any(p.relayed))", (relay, done_below))
            relays.append({"relay": relay, "rows_total": rows_total, "pending": pending, "updated_at": updated_at})
        ddl, drop = sql.event_trigger_names(schema)
        events = dict(conn.execute("select evtname, evtenabled from pg_event_trigger where evtname in (%s, %s)",
                                   (ddl, drop)).fetchall())
    return {"schema": schema, "tables": tables, "relays": relays,
            "event_triggers": {n: _MODES.get(events[n], events[n]) if n in events else "MISSING" for n in (ddl, drop)}}
