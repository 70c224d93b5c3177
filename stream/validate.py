"""Turning raw bytes from audit.events into flat columns, or a machine-readable rejection.

Every input ends up in exactly one place: sealed, or in audit.dlq with one of
the RejectReason strings of sealtrail.reasons (a stable wire vocabulary that
dashboards and alerts can match on, and the SDK's InvalidEventError speaks too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from sealtrail.errors import InvalidEventError
from sealtrail.event import Event
from sealtrail.flatten import fast_columns, flatten
from sealtrail.reasons import RejectReason, reason_for
from sealtrail.redact import DEFAULT, Redactor, redact_event


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: RejectReason
    field: str | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"reason": self.reason.value, "field": self.field, "detail": self.detail}


def validate(raw: bytes | None, max_bytes: int, redactor: Redactor = DEFAULT) -> dict[str, Any] | Rejection:
    """Flat canonical columns of a valid event (secrets redacted), or why it is not one."""
    return validate_counted(raw, max_bytes, redactor)[0]


def validate_counted(
    raw: bytes | None, max_bytes: int, redactor: Redactor = DEFAULT
) -> tuple[dict[str, Any] | Rejection, int]:
    """validate(), plus the number of secrets redacted (the stream counts them).

    The common input, a valid event with nothing to redact, takes the fast
    path; everything else, and every rejection, takes the pydantic reference
    path, so what is stored and every DLQ reason stay exactly the reference's.
    """
    if raw is not None and len(raw) <= max_bytes:
        columns = fast_columns(raw, redactor)
        if columns is not None:
            return columns, 0
    return validate_reference(raw, max_bytes, redactor)


def validate_reference(
    raw: bytes | None, max_bytes: int, redactor: Redactor = DEFAULT
) -> tuple[dict[str, Any] | Rejection, int]:
    """validate_counted() through the Event model itself: the definition the fast path is tested against."""
    if raw is None:
        return Rejection(RejectReason.NOT_AN_OBJECT, None, "empty message (no value)"), 0
    if len(raw) > max_bytes:
        return Rejection(RejectReason.OVERSIZED, None, f"{len(raw)} bytes > limit {max_bytes}"), 0
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Rejection(RejectReason.INVALID_UTF8, None, str(e)), 0
    try:
        event = Event.model_validate_json(raw)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        return Rejection(reason_for(first), field, first["msg"][:300]), 0
    event, redacted = redact_event(event, redactor)
    try:
        return flatten(event), redacted
    except InvalidEventError as e:
        return Rejection(RejectReason.NOT_CANONICALIZABLE, e.field, e.detail[:300]), 0
