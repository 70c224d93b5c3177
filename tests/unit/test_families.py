"""sealtrail.producers.families: typed helpers build valid events from the request context, sync and asyncio."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sealtrail.errors import InvalidEventError
from sealtrail.producers import Auditor, audit_context, changed_fields
from tests.support.recorders import AsyncRecorder, Recorder


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def audit(rec: Recorder) -> Auditor[str]:
    return Auditor(rec, source="web", tenant="fallback")


REQUEST = {"actor_id": "alice", "ip": "198.51.100.7", "user_agent": "Mozilla/5.0", "request_id": "req-1", "tenant": "acme"}


def every_helper(audit: Auditor[Any]) -> list[Any]:
    return [
        audit.auth.login(method="password", mfa=True),
        audit.auth.logout(),
        audit.auth.login_failed(user="mallory", reason="bad_password"),
        audit.auth.password_reset(requested_by="helpdesk"),
        audit.auth.mfa_failed(method="totp"),
        audit.change.insert("order", "o-1", after={"status": "new", "amount": 5}),
        audit.change.update("order", "o-1", before={"status": "new", "amount": 5}, after={"status": "paid", "amount": 5}),
        audit.change.delete("order", "o-1", before={"status": "paid"}),
        audit.security.privilege_escalation(user="bob", granted="admin", before={"roles": []}, after={"roles": ["admin"]}),
        audit.security.suspicious_activity(description="50 failed logins in 1 minute", severity="high"),
        audit.security.vulnerability_found(identifier="CVE-2026-0001", component="openssl", severity="critical"),
        audit.admin.user_created(user="carol", roles=["viewer"]),
        audit.admin.user_disabled(user="carol", reason="left"),
        audit.admin.role_granted(user="carol", role="editor"),
        audit.admin.role_revoked(user="carol", role="editor"),
        audit.admin.config_changed(setting="session_ttl", before=3600, after=600),
        audit.access.export("report", "r-9", rows=1200, format="csv"),
        audit.access.sensitive_read("patient", "p-4", fields=["diagnosis"], purpose="treatment"),
    ]


EXPECTED_ACTIONS = [
    ("auth", "auth.login"), ("auth", "auth.logout"), ("auth", "auth.login_failed"), ("auth", "auth.password_reset"),
    ("auth", "auth.mfa_failed"), ("change", "data.insert"), ("change", "data.update"), ("change", "data.delete"),
    ("security", "security.privilege_escalation"), ("security", "security.suspicious_activity"),
    ("security", "security.vulnerability_found"), ("admin", "admin.user_created"), ("admin", "admin.user_disabled"),
    ("admin", "admin.role_granted"), ("admin", "admin.role_revoked"), ("admin", "admin.config_changed"),
    ("access", "access.export"), ("access", "access.sensitive_read"),
]


def test_every_family_builds_valid_events_from_the_context(audit: Auditor[str], rec: Recorder) -> None:
    with audit_context(**REQUEST):
        ids = every_helper(audit)
    assert len(set(ids)) == len(EXPECTED_ACTIONS)
    assert [(e["category"], e["action"]) for e in rec.events] == EXPECTED_ACTIONS
    for e in rec.events:
        assert e["tenant"] == "acme" and e["source"] == "web" and e["request_id"] == "req-1"
        assert e["actor"]["ip"] == "198.51.100.7" and e["actor"]["user_agent"] == "Mozilla/5.0"
    by_action = {e["action"]: e for e in rec.events}
    failed = by_action["auth.login_failed"]
    assert failed["outcome"] == "failure" and failed["actor"]["id"] == "mallory"
    assert failed["metadata"] == {"reason": "bad_password"}
    assert by_action["auth.login"]["actor"]["id"] == "alice"
    assert by_action["data.update"]["metadata"]["changed"] == ["status"]
    assert by_action["data.update"]["resource"] == {"type": "order", "id": "o-1"}
    assert by_action["admin.config_changed"]["before"] == {"value": 3600}


def test_asyncio_use_awaits_the_same_helpers() -> None:
    rec = AsyncRecorder()
    audit = Auditor(rec, source="web")

    async def main() -> list[str]:
        with audit_context(**REQUEST):
            return [await c for c in every_helper(audit)]

    ids = asyncio.run(main())
    assert len(ids) == len(EXPECTED_ACTIONS) == len(rec.events)
    assert [(e["category"], e["action"]) for e in rec.events] == EXPECTED_ACTIONS


def test_tenant_falls_back_to_the_auditor(audit: Auditor[str], rec: Recorder) -> None:
    with audit_context(actor_id="alice"):
        audit.auth.logout()
    assert rec.events[0]["tenant"] == "fallback"


def test_missing_actor_is_named(audit: Auditor[str]) -> None:
    with pytest.raises(InvalidEventError, match="actor.id"):
        audit.auth.login()


def test_missing_tenant_is_named(rec: Recorder) -> None:
    audit = Auditor(rec, source="web")
    with audit_context(actor_id="alice"), pytest.raises(InvalidEventError, match="tenant"):
        audit.auth.login()


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda a: a.auth.login_failed(reason=""), "reason"),
        (lambda a: a.auth.login(user=7), "actor"),
        (lambda a: a.change.update("order", "o-1", before=None, after={"a": 1}), "before"),
        (lambda a: a.change.insert("order", "", after={"a": 1}), "resource.id"),
        (lambda a: a.change.insert("order", "o-1", after=[1, 2]), "after"),
        (lambda a: a.security.suspicious_activity(description="x", severity="urgent"), "severity"),
        (lambda a: a.access.export("report", "r", rows=-1), "rows"),
        (lambda a: a.access.sensitive_read("p", "1", fields="diagnosis"), "fields"),
        (lambda a: a.admin.role_granted(user="carol", role=None), "role"),
        (lambda a: a.auth.login(details=["x"]), "details"),
    ],
)
def test_bad_arguments_are_refused_with_the_field(audit: Auditor[str], call: Any, field: str) -> None:
    with audit_context(**REQUEST), pytest.raises(InvalidEventError) as info:
        call(audit)
    assert info.value.field == field


def test_auditor_needs_a_source_and_a_callable(rec: Recorder) -> None:
    with pytest.raises(InvalidEventError, match="source"):
        Auditor(rec, source="")
    with pytest.raises(InvalidEventError, match="emit"):
        Auditor("not callable", source="web")  # type: ignore[arg-type]


def test_secrets_in_helper_arguments_are_redacted(audit: Auditor[str], rec: Recorder) -> None:
    with audit_context(**REQUEST):
        audit.change.update("user", "u-1", before={"password": "old"}, after={"password": "new", "name": "a"})
    event = rec.events[0]
    assert event["before"] == {"password": "[REDACTED]"} and event["after"]["password"] == "[REDACTED]"
    assert event["metadata"]["changed"] == ["name", "password"]


def test_changed_fields() -> None:
    assert changed_fields({"a": 1, "b": None}, {"a": 1, "c": None}) == ["b", "c"]
    assert changed_fields(None, {"x": 1}) == ["x"]
    assert changed_fields({"x": 1}, None) == ["x"]
    assert changed_fields({"x": [1]}, {"x": [1]}) == []
