"""The audit event envelope: what every producer, in any language, publishes.

The model is the single source of the published JSON Schema (`sealtrail schema`)
and of validation in the stream, so the two cannot drift apart.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sealtrail.ocsf import ACTION_MAX, ACTION_PATTERN

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$")
SCHEMA_ID = "https://sealtrail.dev/schema/audit-event/v1.json"

# Limits named once: the stream's fast path (sealtrail.flatten.fast_columns) checks the same ones without the model.
SHORT_TEXT_MAX, IP_MAX, USER_AGENT_MAX, REQUEST_ID_MAX = 256, 64, 1024, 256

ShortText = Annotated[str, Field(min_length=1, max_length=SHORT_TEXT_MAX)]
Action = Annotated[str, Field(pattern=ACTION_PATTERN, max_length=ACTION_MAX)]


class Category(StrEnum):
    AUTH = "auth"
    CHANGE = "change"
    SECURITY = "security"
    ADMIN = "admin"
    ACCESS = "access"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


class ActorType(StrEnum):
    USER = "user"
    SERVICE = "service"
    SYSTEM = "system"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Actor(_Strict):
    """Who did it. `ip` is normalised (an IPv4-mapped IPv6 address stays as given)."""

    id: ShortText
    type: ActorType = ActorType.USER
    ip: str | None = Field(None, max_length=IP_MAX)
    user_agent: str | None = Field(None, max_length=USER_AGENT_MAX)

    @field_validator("ip")
    @classmethod
    def _valid_ip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError as e:
            raise ValueError(f"not an IP address: {value!r}") from e


class Resource(_Strict):
    type: ShortText
    id: ShortText


class Event(_Strict):
    """One audit event. Producers may set event_id; the client assigns a UUIDv7 when absent."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"$id": SCHEMA_ID, "title": "sealtrail audit event"},
    )

    event_id: UUID
    occurred_at: datetime = Field(description="when it happened, RFC 3339 with a time zone; stored as UTC")
    category: Category
    action: Action = Field(description="dotted, lower case, e.g. auth.login_failed, data.update")
    outcome: Outcome = Outcome.SUCCESS
    actor: Actor
    resource: Resource | None = None
    tenant: ShortText
    source: ShortText = Field(description="the service that emitted the event")
    request_id: str | None = Field(None, max_length=REQUEST_ID_MAX)
    before: dict[str, Any] | None = Field(None, description="state before a change")
    after: dict[str, Any] | None = Field(None, description="state after a change")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _rfc3339_text(cls, value: Any) -> Any:
        """Only what the schema allows: RFC 3339 text (or a datetime from Python), never epoch numbers."""
        if isinstance(value, datetime):
            return value
        if not isinstance(value, str) or not _RFC3339.match(value):
            raise ValueError("occurred_at must be RFC 3339 text such as 2026-11-23T10:00:00Z")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at needs a time zone (e.g. a trailing Z)")
        try:
            utc = value.astimezone(timezone.utc)
        except OverflowError as e:
            raise ValueError("occurred_at is out of range once converted to UTC") from e
        if utc.year < 1000:
            raise ValueError("occurred_at before the year 1000")
        return utc


def event_json_schema() -> dict[str, Any]:
    schema = Event.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
