"""Turning raw bytes from audit.events into flat columns, or a machine-readable rejection.

Every input ends up in exactly one place: sealed, or in audit.dlq with one of
the RejectReason strings below (a stable wire vocabulary that dashboards and
alerts can match on).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from sealtrail.errors import InvalidEventError
from sealtrail.event import Event
from sealtrail.record import flatten
from sealtrail.redact import DEFAULT, Redactor, redact_event


class RejectReason(StrEnum):
    OVERSIZED = "oversized"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_CATEGORY = "unknown_category"
    INVALID_VALUE = "invalid_value"
    NOT_CANONICALIZABLE = "not_canonicalizable"


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: RejectReason
    field: str | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"reason": self.reason.value, "field": self.field, "detail": self.detail}


def _reason_for(error: dict[str, Any]) -> RejectReason:
    kind = error["type"]
    loc = error["loc"]
    if kind == "json_invalid":
        return RejectReason.INVALID_JSON
    if kind == "missing":
        return RejectReason.MISSING_FIELD
    if kind == "extra_forbidden":
        return RejectReason.UNKNOWN_FIELD
    if kind == "model_type" and not loc:
        return RejectReason.NOT_AN_OBJECT
    if kind == "enum" and loc == ("category",):
        return RejectReason.UNKNOWN_CATEGORY
    if kind.endswith("_type"):  # string_type, int_type, dict_type, model_type, ...
        return RejectReason.WRONG_TYPE
    return RejectReason.INVALID_VALUE


def validate(raw: bytes | None, max_bytes: int, redactor: Redactor = DEFAULT) -> dict[str, Any] | Rejection:
    """Flat canonical columns of a valid event (secrets redacted), or why it is not one."""
    return validate_counted(raw, max_bytes, redactor)[0]


def validate_counted(
    raw: bytes | None, max_bytes: int, redactor: Redactor = DEFAULT
) -> tuple[dict[str, Any] | Rejection, int]:
    """validate(), plus the number of secrets redacted (the stream counts them)."""
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
        return Rejection(_reason_for(first), field, first["msg"][:300]), 0
    event, redacted = redact_event(event, redactor)
    try:
        return flatten(event), redacted
    except InvalidEventError as e:
        return Rejection(RejectReason.NOT_CANONICALIZABLE, e.field, e.detail[:300]), 0
