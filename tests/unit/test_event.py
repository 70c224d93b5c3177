"""sealtrail.event: the envelope model and the JSON Schema published from it.

The module promises that the published schema and the stream's validation
cannot drift apart; the schema tests hold it to that with an independent
validator (jsonschema, Draft 2020-12).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from sealtrail.event import SCHEMA_ID, ActorType, Category, Event, Outcome, event_json_schema
from sealtrail.stack.workload import generate
from sealtrail.stream.validate import validate

GOOD: dict[str, Any] = {
    "event_id": "0192f0c1-7a3b-7c4d-8e5f-6a7b8c9d0e1f",
    "occurred_at": "2026-11-01T12:00:00.123456Z",
    "category": "change",
    "action": "data.update",
    "outcome": "success",
    "actor": {"id": "user-0001", "type": "user", "ip": "198.51.100.7", "user_agent": "Mozilla/5.0"},
    "resource": {"type": "order", "id": "ord-00042"},
    "tenant": "acme",
    "source": "billing",
    "request_id": "req-1",
    "before": {"status": "pending"},
    "after": {"status": "paid"},
    "metadata": {"changed": ["status"]},
}
MINIMAL: dict[str, Any] = {
    "event_id": "0192f0c1-7a3b-7c4d-8e5f-6a7b8c9d0e1f",
    "occurred_at": "2026-11-01T12:00:00Z",
    "category": "auth",
    "action": "auth.login",
    "actor": {"id": "u"},
    "tenant": "t",
    "source": "s",
}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(base)
    for name, value in changes.items():
        if value is ...:
            out.pop(name, None)
        else:
            out[name] = value
    return out


@pytest.fixture(scope="module")
def schema_validator() -> Draft202012Validator:
    schema = event_json_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


# --- the model ----------------------------------------------------------------------------------


def test_good_event_parses_with_defaults() -> None:
    e = Event.model_validate(MINIMAL)
    assert e.event_id == UUID(MINIMAL["event_id"])
    assert e.outcome is Outcome.SUCCESS
    assert e.actor.type is ActorType.USER
    assert e.actor.ip is None and e.resource is None and e.before is None and e.after is None
    assert e.metadata == {}
    assert e.category is Category.AUTH


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2026-11-01T12:00:00Z", datetime(2026, 11, 1, 12, tzinfo=timezone.utc)),
        ("2026-11-01T17:30:00+05:30", datetime(2026, 11, 1, 12, tzinfo=timezone.utc)),
        ("2026-11-01T07:00:00-05:00", datetime(2026, 11, 1, 12, tzinfo=timezone.utc)),
        ("2026-11-02T00:30:00+12:30", datetime(2026, 11, 1, 12, tzinfo=timezone.utc)),
    ],
)
def test_occurred_at_normalised_to_utc(text: str, want: datetime) -> None:
    got = Event.model_validate(with_(MINIMAL, occurred_at=text)).occurred_at
    assert got == want
    assert got.utcoffset() == timedelta(0)
    assert got.tzinfo == timezone.utc


@pytest.mark.parametrize("text", ["2026-11-01T12:00:00", "2026-11-01T12:00:00.5", "2026-11-01"])
def test_naive_occurred_at_rejected(text: str) -> None:
    with pytest.raises(ValidationError) as e:
        Event.model_validate(with_(MINIMAL, occurred_at=text))
    assert e.value.errors()[0]["loc"] == ("occurred_at",)


def test_naive_datetime_object_rejected() -> None:
    with pytest.raises(ValidationError):
        Event.model_validate(with_(MINIMAL, occurred_at=datetime(2026, 11, 1, 12)))


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
    ],
)
def test_actor_ip_normalised(given: str, stored: str) -> None:
    e = Event.model_validate(with_(MINIMAL, actor={"id": "u", "ip": given}))
    assert e.actor.ip == stored


@pytest.mark.parametrize("ip", ["1.2.3.999", "example.com", "", "1.2.3"])
def test_actor_ip_must_be_an_address(ip: str) -> None:
    with pytest.raises(ValidationError):
        Event.model_validate(with_(MINIMAL, actor={"id": "u", "ip": ip}))


@pytest.mark.parametrize("action", ["login", "Auth.login", "auth.", ".login", "auth..login", "auth.Login", "1auth.login", "auth.log-in", "a" * 64 + "." + "b" * 64])
def test_action_pattern(action: str) -> None:
    with pytest.raises(ValidationError):
        Event.model_validate(with_(MINIMAL, action=action))


def test_unknown_fields_forbidden_and_model_frozen() -> None:
    with pytest.raises(ValidationError):
        Event.model_validate(with_(MINIMAL, extra=1))
    with pytest.raises(ValidationError):
        Event.model_validate(with_(MINIMAL, actor={"id": "u", "role": "x"}))
    e = Event.model_validate(MINIMAL)
    with pytest.raises(ValidationError):
        e.tenant = "other"  # type: ignore[misc]


# --- the published schema -----------------------------------------------------------------------


def test_schema_identity() -> None:
    schema = event_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"event_id", "occurred_at", "category", "action", "actor", "tenant", "source"}
    json.dumps(schema)  # publishable as is


@pytest.mark.parametrize("event", [GOOD, MINIMAL], ids=["full", "minimal"])
def test_schema_accepts_good_event(schema_validator: Draft202012Validator, event: dict[str, Any]) -> None:
    assert list(schema_validator.iter_errors(event)) == []


def test_schema_accepts_workload(schema_validator: Draft202012Validator) -> None:
    for event in generate(300, seed=3):
        assert list(schema_validator.iter_errors(event)) == [], event


BAD = [
    pytest.param(with_(MINIMAL, tenant=...), id="missing-tenant"),
    pytest.param(with_(MINIMAL, category="billing"), id="unknown-category"),
    pytest.param(with_(MINIMAL, extra=1), id="unknown-field"),
    pytest.param(with_(MINIMAL, actor={"id": "u", "role": "x"}), id="unknown-nested-field"),
    pytest.param(with_(MINIMAL, tenant=5), id="tenant-not-a-string"),
    pytest.param(with_(MINIMAL, tenant=""), id="tenant-empty"),
    pytest.param(with_(MINIMAL, action="Auth.Login"), id="action-pattern"),
    pytest.param(with_(MINIMAL, outcome="meh"), id="unknown-outcome"),
    pytest.param(with_(MINIMAL, metadata=[]), id="metadata-not-an-object"),
    pytest.param(with_(MINIMAL, resource={"type": "order"}), id="resource-without-id"),
    pytest.param(with_(MINIMAL, actor={"id": "u", "type": "robot"}), id="unknown-actor-type"),
]


@pytest.mark.parametrize("event", BAD)
def test_schema_and_stream_reject_bad_event(schema_validator: Draft202012Validator, event: dict[str, Any]) -> None:
    assert list(schema_validator.iter_errors(event)) != []
    assert not isinstance(validate(json.dumps(event).encode(), 1 << 20), dict)


@pytest.mark.parametrize(
    "occurred_at",
    [pytest.param(1700000000, id="epoch-number"), pytest.param("1700000000", id="epoch-string")],
)
def test_occurred_at_must_be_rfc3339_text(schema_validator: Draft202012Validator, occurred_at: object) -> None:
    """The schema says: a date-time string with a time zone. The stream must not accept more than it publishes."""
    event = with_(MINIMAL, occurred_at=occurred_at)
    result = validate(json.dumps(event).encode(), 1 << 20)
    assert not isinstance(result, dict), f"accepted as {result['occurred_at']}"
