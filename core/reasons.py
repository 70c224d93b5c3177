"""Why an input is not an event: one vocabulary for the SDK, the stream, the trail's rejected rows and the API.

The values are a stable wire vocabulary: dashboards and alerts match on them,
the stream writes them into rejected rows and dead letters, and the SDK's
InvalidEventError carries the same one, so a service and the trail name the
same bad event alike (once, the SDK said pydantic's `extra_forbidden` where
the stream said `unknown_field`). No imports: every package may use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


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


def reason_for(error: Mapping[str, Any]) -> RejectReason:
    """The reason for pydantic's first validation error of an event (its type and location)."""
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
