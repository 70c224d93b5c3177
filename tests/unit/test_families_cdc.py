"""The change-capture family: how a captured PostgreSQL row becomes an audit event (pure)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from sealtrail.producers import prepare
from sealtrail.producers.cdc.relay import CapturedRow, ddl_action, row_event, without_row_images
from sealtrail.producers.cdc.sql import check_schema, install_schema, install_table

AT = datetime(2026, 11, 1, tzinfo=timezone.utc)


def row(**changes: object) -> CapturedRow:
    base = dict(id=7, txid=900, event_id=uuid.UUID(int=7), captured_at=AT, kind="change", operation="UPDATE",
                schema_name="public", table_name="users", row_key="42", before={"email": "a@x", "password": "old"},
                after={"email": "b@x", "password": "new"}, changed=["email", "password"], db_user="app",
                db_role=None, app_user_id="alice", app_ip="198.51.100.7", app_tenant="acme",
                app_request_id="req-1", client_addr="10.0.0.5/32", application_name="billing", detail=None)
    return CapturedRow(**(base | changes))  # type: ignore[arg-type]


def test_change_row() -> None:
    event = prepare(row_event(row(), tenant="default", source="postgres:shop"))
    assert (event.category.value, event.action, event.tenant, event.source) == ("change", "data.update", "acme", "postgres:shop")
    assert event.actor.id == "alice" and event.actor.ip == "198.51.100.7" and event.actor.type.value == "user"
    assert event.resource is not None and (event.resource.type, event.resource.id) == ("public.users", "42")
    assert event.after == {"email": "b@x", "password": "[REDACTED]"}
    assert event.metadata["changed"] == ["email", "password"] and event.metadata["txid"] == 900
    assert str(event.event_id) == str(uuid.UUID(int=7)) and event.request_id == "req-1"


def test_row_without_application_context_is_the_database_user() -> None:
    event = prepare(row_event(row(app_user_id=None, app_ip="not-an-ip", app_tenant=None, row_key=None),
                              tenant="default", source="s"))
    assert (event.actor.id, event.actor.type.value, event.actor.ip) == ("app", "service", None)
    assert event.metadata["app_ip_invalid"] == "not-an-ip" and event.tenant == "default"
    assert event.resource is not None and event.resource.id == "audit:7"


@pytest.mark.parametrize(
    ("operation", "object_type", "query", "action"),
    [
        ("ALTER TABLE", "table", "ALTER TABLE users DISABLE TRIGGER sealtrail_capture", "security.capture_disabled"),
        ("ALTER TABLE", "table", "alter table users enable replica trigger sealtrail_capture", "security.capture_disabled"),
        ("ALTER TABLE", "table", "alter table users enable always trigger sealtrail_capture", "security.capture_enabled"),
        ("DROP TRIGGER", "trigger", "drop trigger sealtrail_capture on users", "security.capture_trigger_dropped"),
        ("DROP TABLE", "table", "drop table users", "security.audited_table_dropped"),
        ("ALTER TABLE", "table", "alter table users add column x int", "security.audited_table_altered"),
        ("CREATE FUNCTION", "function", "create or replace function sealtrail.capture() ...", "security.capture_changed"),
    ],
)
def test_ddl_actions(operation: str, object_type: str, query: str, action: str) -> None:
    assert ddl_action(operation, object_type, query) == action
    event = prepare(row_event(row(kind="ddl", operation=operation, table_name="public.users", before=None, after=None,
                                  changed=None, detail={"object_type": object_type, "query": query}),
                              tenant="t", source="s"))
    assert event.category.value == "security" and event.action == action
    assert event.metadata["query"] == query


def test_oversized_row_keeps_the_change_and_a_digest() -> None:
    event = row_event(row(after={"blob": "x" * 10}), tenant="t", source="s")
    slim = without_row_images(event, 2_000_000)
    assert "before" not in slim and "after" not in slim
    assert len(slim["metadata"]["row_images_sha256"]) == 64 and "over the event size limit" in slim["metadata"]["row_images_omitted"]
    prepare(slim)


def test_sql_is_parameterised_by_a_checked_schema_name() -> None:
    assert '"audit".audit_log' in install_schema("audit")
    assert "enable always trigger" in install_table("audit", "public.users", ["id"])
    with pytest.raises(ValueError):
        check_schema("Robert'); drop table students;--")
