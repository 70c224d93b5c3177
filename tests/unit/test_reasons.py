"""One vocabulary of rejection reasons: the SDK refuses a bad event with the reason the stream would give it.

Once the SDK raised pydantic's error types (`extra_forbidden`, `enum`) where the
stream's rejected rows and dead letters said `unknown_field` and
`unknown_category`, so a service's log and the trail named the same event
differently.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealtrail.errors import InvalidEventError
from sealtrail.producers.outbound import prepare
from sealtrail.reasons import RejectReason
from sealtrail.stream.validate import Rejection, validate

GOOD: dict[str, Any] = {
    "event_id": "0192f0c1-7a3b-7c4d-8e5f-6a7b8c9d0e1f", "occurred_at": "2026-11-01T12:00:00Z",
    "category": "auth", "action": "auth.login", "actor": {"id": "u"}, "tenant": "t", "source": "s",
}
BAD = {
    "unknown field": {"colour": "red"},
    "unknown category": {"category": "weather"},
    "wrong type": {"tenant": 7},
    "nested wrong type": {"actor": {"id": ["u"]}},
    "missing actor": {"actor": ...},
    "bad action": {"action": "Not An Action!"},
    "bad outcome": {"outcome": "maybe"},
    "unknown actor field": {"actor": {"id": "u", "shoe_size": 9}},
}


def _event(changes: dict[str, Any]) -> dict[str, Any]:
    event = dict(GOOD)
    for name, value in changes.items():
        if value is ...:
            event.pop(name)
        else:
            event[name] = value
    return event


def _both(event: dict[str, Any]) -> tuple[tuple[str, str | None] | None, tuple[str, str | None] | None]:
    try:
        prepare(event)
        sdk = None
    except InvalidEventError as e:
        sdk = (e.reason, e.field)
    rejected = validate(orjson.dumps(event), 1 << 20)
    stream = (rejected.reason, rejected.field) if isinstance(rejected, Rejection) else None
    return sdk, stream


@pytest.mark.parametrize("case", sorted(BAD))
def test_the_sdk_and_the_stream_give_one_reason(case: str) -> None:
    sdk, stream = _both(_event(BAD[case]))
    assert stream is not None and sdk == stream, (sdk, stream)
    assert isinstance(sdk[0], RejectReason)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(GOOD) + ["extra", "resource", "outcome", "request_id"]),
       value=st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=12), st.lists(st.integers(-(2**63), 2**63 - 1), max_size=2),
                       st.dictionaries(st.sampled_from(["id", "type", "x"]), st.text(max_size=5), max_size=2)))
def test_any_one_changed_field_gets_the_same_verdict_from_both(name: str, value: Any) -> None:
    """Accepted by both, or refused by both with the same reason (the field may be named deeper by one)."""
    if name in ("event_id", "occurred_at") and value is None:
        return  # the SDK fills these in when missing; the stream cannot
    sdk, stream = _both(_event({name: value}))
    assert (sdk is None) == (stream is None), (sdk, stream)
    if sdk is not None and stream is not None:
        assert sdk[0] == stream[0], (sdk, stream)


def test_a_reason_outside_the_vocabulary_is_refused() -> None:
    with pytest.raises(ValueError):
        InvalidEventError("extra_forbidden", "colour")
