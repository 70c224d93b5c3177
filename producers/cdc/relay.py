"""`sealtrail cdc run`: captured rows -> audit.events, at least once, never skipping a late commit.

Why not ``id > last_id``: ids (and sequences) are taken when a row is
written, not when its transaction commits, so a long transaction can commit
a *lower* id after higher ids were already relayed; a relay that remembers
only the highest id relayed skips it forever.

The position here is a transaction horizon. Every audit row carries the
transaction id (xid8) that wrote it. In a REPEATABLE READ transaction the
relay takes the snapshot's ``xmin``: every transaction below it has finished,
so its rows (if it committed) are all visible now and no row below it can
ever appear later. The relay sends every visible row at or above its
position ``done_below`` that it has not sent, waits for the broker's
acknowledgement, and only then, in the same database transaction, moves
``done_below`` up to ``xmin`` and remembers the transactions above it that it
already sent (``relayed``). A crash anywhere before that commit sends the
same rows again, with the same event ids, which the stream drops as
duplicates. Rows of one transaction are never split across two batches.

A long-running transaction holds ``xmin`` back; rows committed meanwhile
are still relayed at once (they are visible) and tracked in ``relayed``
until the horizon passes them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from sealtrail.config import Settings
from sealtrail.errors import CaptureError, InvalidEventError, ServiceUnavailable
from sealtrail.producers.cdc import sql
from sealtrail.producers.cdc.install import connect, one_row
from sealtrail.retry import Backoff, call_with_retry

_log = logging.getLogger("sealtrail.cdc")

COLUMNS = (
    "id", "txid::text", "event_id", "captured_at", "kind", "operation", "schema_name", "table_name", "row_key",
    "before", "after", "changed", "db_user", "db_role", "app_user_id", "app_ip", "app_tenant", "app_request_id",
    "client_addr::text", "application_name", "detail",
)


@dataclass(frozen=True)
class CapturedRow:
    id: int
    txid: int
    event_id: UUID
    captured_at: datetime
    kind: str
    operation: str
    schema_name: str | None
    table_name: str | None
    row_key: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changed: list[str] | None
    db_user: str
    db_role: str | None
    app_user_id: str | None
    app_ip: str | None
    app_tenant: str | None
    app_request_id: str | None
    client_addr: str | None
    application_name: str | None
    detail: dict[str, Any] | None

    @classmethod
    def from_db(cls, values: tuple[Any, ...]) -> CapturedRow:
        row = list(values)
        row[1] = int(row[1])
        return cls(*row)


_DISABLE = re.compile(r"\b(disable\s+trigger|enable\s+replica\s+trigger)\b", re.IGNORECASE)
_ENABLE = re.compile(r"\benable\s+(always\s+)?trigger\b", re.IGNORECASE)


def ddl_action(operation: str, object_type: str, query: str) -> str:
    """A stable action name for DDL that touched capture; the SQL itself goes in metadata."""
    if _DISABLE.search(query):
        return "security.capture_disabled"
    if object_type == "trigger" and operation.startswith("DROP"):
        return "security.capture_trigger_dropped"
    if object_type == "table" and operation.startswith("DROP"):
        return "security.audited_table_dropped"
    if object_type == "table" and _ENABLE.search(query):
        return "security.capture_enabled"
    if object_type == "table":
        return "security.audited_table_altered"
    return "security.capture_changed"


def _valid_ip(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def row_event(row: CapturedRow, *, tenant: str, source: str) -> dict[str, Any]:
    """The audit event for one captured row (pure; redaction happens in the client)."""
    ip = _valid_ip(row.app_ip)
    actor: dict[str, Any] = {"id": (row.app_user_id or row.db_user)[:256], "type": "user" if row.app_user_id else "service"}
    if ip:
        actor["ip"] = ip
    metadata: dict[str, Any] = {"audit_id": row.id, "txid": row.txid, "db_user": row.db_user}
    for name in ("db_role", "client_addr", "application_name"):
        value = getattr(row, name)
        if value:
            metadata[name] = value
    if row.app_ip and not ip:
        metadata["app_ip_invalid"] = row.app_ip[:128]
    event: dict[str, Any] = {
        "event_id": str(row.event_id),
        "occurred_at": row.captured_at,
        "tenant": (row.app_tenant or tenant)[:256],
        "source": source,
        "actor": actor,
        "metadata": metadata,
    }
    if row.app_request_id:
        event["request_id"] = row.app_request_id[:256]
    if row.kind == "ddl":
        detail = row.detail or {}
        object_type = str(detail.get("object_type") or "")
        query = str(detail.get("query") or "")
        event.update(category="security", action=ddl_action(row.operation, object_type, query), outcome="success",
                     resource={"type": f"postgres.{object_type or 'object'}"[:256], "id": (row.table_name or "?")[:256]})
        metadata.update(command_tag=row.operation, query=query, object_type=object_type)
        return event
    event.update(
        category="change",
        action=f"data.{row.operation.lower()}",
        resource={"type": f"{row.schema_name}.{row.table_name}"[:256], "id": (row.row_key or f"audit:{row.id}")[:256]},
    )
    if row.before is not None:
        event["before"] = row.before
    if row.after is not None:
        event["after"] = row.after
    if row.changed is not None:
        metadata["changed"] = row.changed
    return event


def without_row_images(event: dict[str, Any], size: int) -> dict[str, Any]:
    """For a row too large to be an event: the change is still recorded, with a digest of what was left out."""
    images = orjson.dumps({"before": event.get("before"), "after": event.get("after")}, option=orjson.OPT_SORT_KEYS)
    slim = {k: v for k, v in event.items() if k not in ("before", "after")}
    slim["metadata"] = {**event["metadata"], "row_images_omitted": f"{size} bytes over the event size limit",
                        "row_images_sha256": hashlib.sha256(images).hexdigest()}
    return slim


class Relay:
    """Moves captured rows to Kafka; one live relay per (database, schema, name), enforced by an advisory lock."""

    def __init__(self, settings: Settings, database_url: str | None = None, client: Any = None) -> None:
        from sealtrail.producers.client import AuditClient

        self.settings = settings
        self.cfg = settings.cdc
        self.schema = sql.quote_ident(self.cfg.schema_name)
        self.database_url = database_url or settings.database_url
        self.client = client or AuditClient(settings, spool=False)
        self.relayed_total = 0
        self._conn: Any = None
        self.source = self.cfg.source

    # connection -----------------------------------------------------------------------------
    def open(self) -> None:
        import psycopg

        conn = connect(self.database_url, autocommit=True)
        try:
            (installed,) = one_row(conn, "select to_regclass(%s)", (f"{self.schema}.relay_position",))
            if installed is None:
                raise CaptureError(f"capture is not installed in schema {self.cfg.schema_name}: run `sealtrail cdc install`")
            lock_key = f"sealtrail.cdc.{self.cfg.schema_name}.{self.cfg.relay}"
            (locked,) = one_row(conn, "select pg_try_advisory_lock(hashtextextended(%s, 0))", (lock_key,))
            if not locked:
                raise CaptureError(f"another relay named {self.cfg.relay!r} is running on this database")
            if self.source is None:
                (dbname,) = one_row(conn, "select current_database()")
                self.source = f"postgres:{dbname}"
            conn.autocommit = False
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # the work -------------------------------------------------------------------------------
    def cycle(self) -> int:
        """Relay what is visible now; returns how many rows were sent."""
        import psycopg

        if self._conn is None:
            self.open()
        conn = self._conn
        try:
            with conn.transaction():
                done_below, relayed = self._position(conn)
                (xmin,) = one_row(conn, "select pg_snapshot_xmin(pg_current_snapshot())::text")
                xmin = int(xmin)
                rows, cut = self._fetch(conn, done_below, relayed)
                if rows:
                    self._send(rows)
                sent = {r.txid for r in rows}
                if cut:
                    new_done, new_set = done_below, relayed | sent
                else:
                    new_done = max(done_below, xmin)
                    new_set = {t for t in relayed | sent if t >= new_done}
                conn.execute(
                    f"insert into {self.schema}.relay_position (relay, done_below, relayed, rows_total, updated_at) "
                    "values (%s, %s::text::xid8, %s::text[]::xid8[], %s, now()) on conflict (relay) do update set "
                    "done_below = excluded.done_below, relayed = excluded.relayed, "
                    "rows_total = relay_position.rows_total + excluded.rows_total, updated_at = now()",
                    (self.cfg.relay, str(new_done), [str(t) for t in sorted(new_set)], len(rows)),
                )
        except psycopg.OperationalError as e:
            self.close()
            raise ServiceUnavailable("postgres", " ".join(str(e).split())) from e
        except psycopg.Error as e:
            self.close()
            raise CaptureError(f"relay failed: {' '.join(str(e).split())}") from e
        self.relayed_total += len(rows)
        return len(rows)

    def _position(self, conn: Any) -> tuple[int, set[int]]:
        found = conn.execute(
            f"select done_below::text, relayed::text[] from {self.schema}.relay_position where relay = %s for update",
            (self.cfg.relay,),
        ).fetchone()
        if found is None:
            return 0, set()
        return int(found[0]), {int(t) for t in found[1]}

    def _fetch(self, conn: Any, done_below: int, relayed: set[int]) -> tuple[list[CapturedRow], bool]:
        limit = self.cfg.batch_size
        query = (
            f"select {', '.join(COLUMNS)} from {self.schema}.audit_log "
            "where txid >= %s::text::xid8 and not (txid = any(%s::text[]::xid8[])) order by txid, id limit %s"
        )
        skip = [str(t) for t in relayed]
        rows = [CapturedRow.from_db(r) for r in conn.execute(query, (str(done_below), skip, limit + 1)).fetchall()]
        if len(rows) <= limit:
            return rows, False
        boundary = rows[limit].txid  # its rows may continue past the limit: never split a transaction
        kept = [r for r in rows[:limit] if r.txid != boundary]
        if not kept:  # one transaction larger than a batch: send all of it
            whole = f"select {', '.join(COLUMNS)} from {self.schema}.audit_log where txid = %s::text::xid8 order by id"
            kept = [CapturedRow.from_db(r) for r in conn.execute(whole, (str(boundary),)).fetchall()]
        return kept, True

    def _send(self, rows: list[CapturedRow]) -> None:
        for row in rows:
            event = row_event(row, tenant=self.cfg.tenant, source=self.source or "postgres")
            try:
                self.client.emit(event)
            except InvalidEventError as e:
                if e.reason != "oversized":
                    raise CaptureError(f"audit row {row.id} cannot become an event: {e}") from e
                self.client.emit(without_row_images(event, len(orjson.dumps(event, default=str))))
        self.client.flush()

    def run(self, stop: threading.Event | None = None, once: bool = False) -> int:
        """Relay until ``stop`` is set (or, with ``once``, until nothing is left); returns the rows sent.

        Transient failures (Kafka or PostgreSQL away) are retried with backoff.
        """
        stop = stop or threading.Event()
        began = self.relayed_total
        backoff = Backoff(self.cfg.poll_interval_s, 30.0)

        def warn(error: BaseException, wait: float) -> None:
            _log.warning("relay: %s; retrying in %.1fs", error, wait)

        while not stop.is_set():
            try:
                n = call_with_retry(self.cycle, backoff=backoff, stop=stop, on_retry=warn)
            except ServiceUnavailable:
                break  # stopped during an outage
            if once and n == 0:
                break
            if n < self.cfg.batch_size:
                stop.wait(self.cfg.poll_interval_s)
        return self.relayed_total - began
