"""sealtrail.stream.validate: every input becomes flat columns or a Rejection, never an exception.

Each RejectReason is a stable wire string that dashboards match on, so each
gets a minimal input that reaches it; hypothesis throws random bytes, random
JSON and mutated events at validate() and expects a value back every time.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealtrail.record import EVENT_COLUMNS, hashed_bytes
from sealtrail.stack.workload import generate
from sealtrail.stream.validate import Rejection, RejectReason, validate

LIMIT = 64 * 1024
MINIMAL: dict[str, Any] = {
    "event_id": "0192f0c1-7a3b-7c4d-8e5f-6a7b8c9d0e1f",
    "occurred_at": "2026-11-01T12:00:00Z",
    "category": "auth",
    "action": "auth.login",
    "actor": {"id": "u"},
    "tenant": "t",
    "source": "s",
}


def raw(**changes: Any) -> bytes:
    event = dict(MINIMAL)
    for name, value in changes.items():
        if value is ...:
            del event[name]
        else:
            event[name] = value
    return json.dumps(event).encode()


REACH = [
    pytest.param(raw(), 10, RejectReason.OVERSIZED, None, id="oversized"),
    pytest.param(b'{"tenant": "\xff"}', LIMIT, RejectReason.INVALID_UTF8, None, id="invalid_utf8"),
    pytest.param(b"\xed\xa0\x80", LIMIT, RejectReason.INVALID_UTF8, None, id="invalid_utf8-encoded-surrogate"),
    pytest.param(b'{"event_id": ', LIMIT, RejectReason.INVALID_JSON, None, id="invalid_json-truncated"),
    pytest.param(b"", LIMIT, RejectReason.INVALID_JSON, None, id="invalid_json-empty"),
    pytest.param(b"[]", LIMIT, RejectReason.NOT_AN_OBJECT, None, id="not_an_object-array"),
    pytest.param(b"null", LIMIT, RejectReason.NOT_AN_OBJECT, None, id="not_an_object-null"),
    pytest.param(b'"event"', LIMIT, RejectReason.NOT_AN_OBJECT, None, id="not_an_object-string"),
    pytest.param(None, LIMIT, RejectReason.NOT_AN_OBJECT, None, id="not_an_object-tombstone"),
    pytest.param(raw(tenant=...), LIMIT, RejectReason.MISSING_FIELD, "tenant", id="missing_field"),
    pytest.param(raw(actor={}), LIMIT, RejectReason.MISSING_FIELD, "actor.id", id="missing_field-nested"),
    pytest.param(raw(colour="red"), LIMIT, RejectReason.UNKNOWN_FIELD, "colour", id="unknown_field"),
    pytest.param(raw(actor={"id": "u", "role": "x"}), LIMIT, RejectReason.UNKNOWN_FIELD, "actor.role", id="unknown_field-nested"),
    pytest.param(raw(tenant=5), LIMIT, RejectReason.WRONG_TYPE, "tenant", id="wrong_type-int-for-string"),
    pytest.param(raw(event_id="not-a-uuid"), LIMIT, RejectReason.INVALID_VALUE, "event_id", id="invalid_value-uuid"),
    pytest.param(raw(metadata=[1]), LIMIT, RejectReason.WRONG_TYPE, "metadata", id="wrong_type-list-for-object"),
    pytest.param(raw(actor="u"), LIMIT, RejectReason.WRONG_TYPE, "actor", id="wrong_type-string-for-object"),
    pytest.param(raw(category="billing"), LIMIT, RejectReason.UNKNOWN_CATEGORY, "category", id="unknown_category"),
    pytest.param(raw(actor={"id": "u", "ip": "10.0.0.256"}), LIMIT, RejectReason.INVALID_VALUE, "actor.ip", id="invalid_value-ip"),
    pytest.param(raw(action="Auth.Login"), LIMIT, RejectReason.INVALID_VALUE, "action", id="invalid_value-action-pattern"),
    pytest.param(raw(tenant=""), LIMIT, RejectReason.INVALID_VALUE, "tenant", id="invalid_value-empty"),
    pytest.param(raw(outcome="meh"), LIMIT, RejectReason.INVALID_VALUE, "outcome", id="invalid_value-outcome"),
    pytest.param(raw(occurred_at="2026-11-01T12:00:00"), LIMIT, RejectReason.INVALID_VALUE, "occurred_at", id="invalid_value-naive-occurred_at"),
    pytest.param(raw(metadata={"n": 2**60}), LIMIT, RejectReason.NOT_CANONICALIZABLE, None, id="not_canonicalizable-big-int"),
    pytest.param(raw(after={"n": -(2**53)}), LIMIT, RejectReason.NOT_CANONICALIZABLE, None, id="not_canonicalizable-big-negative-int"),
    pytest.param(raw().replace(b'"tenant"', b'"metadata": {"x": 1e400}, "tenant"'), LIMIT, RejectReason.NOT_CANONICALIZABLE, None, id="not_canonicalizable-infinite-float"),
]


@pytest.mark.parametrize(("data", "max_bytes", "reason", "field"), REACH)
def test_each_reason_reachable(data: bytes | None, max_bytes: int, reason: RejectReason, field: str | None) -> None:
    result = validate(data, max_bytes)
    assert isinstance(result, Rejection), result
    assert result.reason is reason
    assert result.field == field
    assert len(result.detail) <= 300
    assert result.as_dict() == {"reason": reason.value, "field": field, "detail": result.detail}


def test_every_reason_has_a_vector() -> None:
    covered = {p.values[2] for p in REACH}
    assert covered == set(RejectReason)


def test_reason_wire_strings_are_stable() -> None:
    assert {r.value for r in RejectReason} == {
        "oversized", "invalid_utf8", "invalid_json", "not_an_object", "missing_field", "unknown_field",
        "wrong_type", "unknown_category", "invalid_value", "not_canonicalizable",
    }


def test_size_limit_is_inclusive() -> None:
    data = raw()
    assert isinstance(validate(data, len(data)), dict)
    assert validate(data, len(data) - 1) == Rejection(
        RejectReason.OVERSIZED, None, f"{len(data)} bytes > limit {len(data) - 1}"
    )


def test_valid_event_gives_every_column() -> None:
    cols = validate(raw(), LIMIT)
    assert isinstance(cols, dict)
    assert tuple(cols) == EVENT_COLUMNS
    assert cols["occurred_at"] == "2026-11-01T12:00:00.000000Z"
    assert cols["metadata"] == "{}"
    assert cols["before"] is None and cols["after"] is None and cols["actor_ip"] is None
    assert cols["outcome"] == "success" and cols["actor_type"] == "user"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2026-11-01T12:00:00Z", "2026-11-01T12:00:00.000000Z"),
        ("2026-11-01T17:30:00.5+05:30", "2026-11-01T12:00:00.500000Z"),
        ("2026-11-01T07:00:00.000001-05:00", "2026-11-01T12:00:00.000001Z"),
        ("2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00.000000Z"),
    ],
)
def test_offsets_normalised_to_utc(given: str, stored: str) -> None:
    cols = validate(raw(occurred_at=given), LIMIT)
    assert isinstance(cols, dict)
    assert cols["occurred_at"] == stored


def test_nested_values_stored_canonical() -> None:
    cols = validate(b'{"event_id":"0192f0c1-7a3b-7c4d-8e5f-6a7b8c9d0e1f","occurred_at":"2026-11-01T12:00:00Z",'
                    b'"category":"change","action":"data.update","actor":{"id":"u"},"tenant":"t","source":"s",'
                    b'"after": {"z": 1.0, "a": [true, null, "\\u00e9"]}, "metadata": {"b": 1, "a": 2}}', LIMIT)
    assert isinstance(cols, dict)
    assert cols["after"] == '{"a":[true,null,"\u00e9"],"z":1}'
    assert cols["metadata"] == '{"a":2,"b":1}'


@pytest.mark.parametrize(
    "occurred_at",
    [
        pytest.param("0001-01-01T00:00:00+01:00", id="before-year-1-in-utc"),
        pytest.param("9999-12-31T23:59:59-01:00", id="after-year-9999-in-utc"),
    ],
)
def test_occurred_at_outside_utc_range_is_rejected_not_raised(occurred_at: str) -> None:
    """Valid RFC 3339 locally, but its UTC instant is outside what a datetime holds."""
    result = validate(raw(occurred_at=occurred_at), LIMIT)
    assert isinstance(result, Rejection)
    assert result.field == "occurred_at"


def test_workload_events_all_valid() -> None:
    for event in generate(500, seed=11):
        assert isinstance(validate(orjson.dumps(event), LIMIT), dict), event


# --- never raises -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
offsets = st.builds(timezone, st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)))
timestamps = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=offsets | st.none()).map(
    lambda d: d.isoformat()
)
FIELDS = ("event_id", "occurred_at", "category", "action", "outcome", "actor", "resource", "tenant", "source",
          "request_id", "before", "after", "metadata", "extra")
replacement = json_values | timestamps | st.sampled_from(
    ["auth", "zzz", "a.b", "::1", "1.2.3.4", "0192f0c1-7a3b-7c4d-8e5f-6a7b8c9d0e1f", "", "x" * 300]
)


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(json.dumps(MINIMAL))
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(FIELDS))
        if draw(st.booleans()) and name in event:
            del event[name]
        else:
            event[name] = draw(replacement)
    if draw(st.booleans()):
        event["actor"] = {"id": draw(st.text(max_size=4)), "ip": draw(st.sampled_from(["::1", "1.2.3.4", "x"])), draw(st.sampled_from(["type", "user_agent", "bogus"])): draw(replacement)}
    return event


def check(result: object) -> None:
    assert isinstance(result, dict | Rejection)
    if isinstance(result, dict):
        assert tuple(result) == EVENT_COLUMNS
        hashed_bytes("p000", 1, "2026-11-01T00:00:00.000000Z", 0, result)  # what validate accepts, the chain can hash
    else:
        assert isinstance(result.reason, RejectReason)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(data: bytes) -> None:
    check(validate(data, LIMIT))


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_random_json_never_raises(value: object) -> None:
    try:
        data = json.dumps(value).encode()  # NaN/Infinity included: producers send them
    except ValueError:
        return
    check(validate(data, LIMIT))


@settings(max_examples=500, deadline=None)
@given(mutated_events())
def test_mutated_events_never_raise(event: dict[str, Any]) -> None:
    check(validate(json.dumps(event).encode(), LIMIT))
