"""An event as a producer hands it over, made into the bytes sent to audit.events.

The reference path is prepare() then encode(): fill in event_id and
occurred_at, validate with the Event model, redact secrets, check the values
the stream would refuse, and write the model's JSON. A service pays that
for every audit event it emits, about 20 us of CPU, most of it pydantic and
the redactor's walk. prepared_bytes() is the fast path beside it: one walk
over a plain dict that returns the same bytes, or None whenever anything
would make the reference do more than copy (a value to coerce, redact or
refuse), so the caller then takes the reference path and gets its answer
and its error. tests/unit/test_fast_paths.py holds the two equal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import orjson
import pydantic_core
import uuid_utils
from pydantic import ValidationError

from sealtrail.columns import COLUMNS
from sealtrail.encoding import MAX_SAFE_INT, canonical
from sealtrail.errors import InvalidEventError
from sealtrail.event import IP_MAX, REQUEST_ID_MAX, USER_AGENT_MAX, Event
from sealtrail.flatten import ACTOR_FIELDS, ACTOR_TYPES, EVENT_FIELDS, RESOURCE_FIELDS, ip_text, short_text, uuid_text
from sealtrail.ocsf import ocsf_columns
from sealtrail.reasons import reason_for
from sealtrail.redact import DEFAULT, MARKER, Redactor, redact_event


def new_event_id() -> str:
    """A time-ordered UUIDv7, so ids sort roughly by creation time."""
    return str(uuid_utils.uuid7())


# The deepest before/after/metadata value the stream's JSON parser (pydantic-core's) reads: an event
# is one level more, and at 202 levels that parser stops with "recursion limit exceeded".
NESTING_MAX = 200
_NESTED = tuple(c.source for c in COLUMNS if c.json and c.source)  # the Event fields stored as JSON text


def _depth_over(value: Any, limit: int) -> bool:
    """True when value nests objects and arrays more than limit levels deep (a scalar is 0, ``{}`` is 1)."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if level > limit:
            return True
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return False


def check_values(event: Event) -> None:
    """The stream's rule for before/after/metadata, checked where the bug is.

    Numbers: what RFC 8785 can write (encoding.canonical, the function the
    stream hashes with), so NaN, Infinity and integers beyond 2**53 - 1 are
    InvalidEventError("not_canonicalizable") here, never silently null or a
    float. Depth: at most NESTING_MAX levels, what the stream's parser reads.
    """
    for name in _NESTED:
        value = getattr(event, name)
        if value is None:
            continue
        if _depth_over(value, NESTING_MAX):
            raise InvalidEventError("not_canonicalizable", name, f"nested deeper than {NESTING_MAX} levels")
        try:
            canonical(value)
        except InvalidEventError as e:
            raise InvalidEventError("not_canonicalizable", name, e.detail) from e


def prepare(event: Mapping[str, Any] | Event, redactor: Redactor = DEFAULT) -> Event:
    """Fill in what a producer may leave out (event_id, occurred_at), validate, redact secrets."""
    if not isinstance(event, Event):
        if not isinstance(event, Mapping):
            raise InvalidEventError("not_an_object", None, f"expected a mapping or an Event, got {type(event).__name__}")
        data = dict(event)
        data.setdefault("event_id", new_event_id())
        data.setdefault("occurred_at", datetime.now(timezone.utc))
        try:
            event = Event.model_validate(data)
        except ValidationError as e:
            first = e.errors(include_url=False)[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            raise InvalidEventError(reason_for(first), field, first["msg"]) from e
    event = redact_event(event, redactor)[0]
    check_values(event)  # after redaction, as the stream: a card number sent as a 19-digit integer is a marker
    return event


def parse_line(line: bytes) -> dict[str, Any]:
    """One JSON object, read by the stream's own parser (big integers stay integers, NaN is refused)."""
    try:
        data = pydantic_core.from_json(line, allow_inf_nan=False)
    except ValueError as e:
        raise InvalidEventError("invalid_json", None, str(e)) from e
    if not isinstance(data, dict):
        raise InvalidEventError("not_an_object", None, "each line must be a JSON object")
    return data


def encode(event: Event) -> bytes:
    """The event's JSON; what prepare() let through always encodes, anything else is InvalidEventError."""
    try:
        return orjson.dumps(event.model_dump(mode="json", exclude_none=True))
    except (ValueError, TypeError) as e:  # orjson.JSONEncodeError is a TypeError
        raise InvalidEventError("not_canonicalizable", None, str(e)) from e




# --- the fast path: the same bytes as encode(prepare(event)) for a plain, clean dict, or None ---------------

_UTC_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|\+00:00)")
_UTC = timezone.utc
_ABSENT = object()  # prepare fills in a missing event_id or occurred_at, but refuses an explicit None


def _timestamp(value: Any) -> str | None:
    """occurred_at as the model writes it (seconds, six fractional digits unless they are all zero, Z), for a
    UTC datetime or UTC RFC 3339 text; else None. Text is rewritten, not formatted: strftime costs more than
    all the rest of the check."""
    if value is _ABSENT:
        value = datetime.now(_UTC)
    elif type(value) is str:
        if not _UTC_TEXT.fullmatch(value) or value[0] == "0":  # the model refuses years before 1000
            return None
        try:
            datetime.fromisoformat(value)  # a real date and time (no February 30th, no second 60)
        except ValueError:
            return None
        digits = value[20:-1 if value[-1] == "Z" else -6]
        return f"{value[:19]}.{digits.ljust(6, '0')}Z" if digits.strip("0") else f"{value[:19]}Z"
    elif type(value) is not datetime or value.tzinfo is not _UTC:
        return None
    if value.year < 1000:
        return None
    v = value
    fraction = f".{v.microsecond:06d}" if v.microsecond else ""
    return f"{v.year}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}{fraction}Z"


def _clean_values(parts: list[Any], texts: list[Any], redactor: Redactor) -> bool:
    """One walk over before/after/metadata: plain JSON types only, numbers RFC 8785 can write, at most
    NESTING_MAX levels, and nothing the redactor would touch (redactor.clean's tests, its one text scan
    shared with the envelope's texts). A list is tested as a header pair wherever it sits, which is
    stricter than the redactor (it tests lists inside lists) and so only ever sends more to the reference."""
    sensitive, allow, pair, card = redactor.key_sensitive, redactor.allow_keys, redactor.pair_sensitive, redactor.cards
    stack = [(part, 1) for part in parts]
    while stack:
        item, level = stack.pop()
        if level > NESTING_MAX:
            return False
        if type(item) is dict:
            if "name" in item and pair(item):
                return False
            for k, v in item.items():
                if type(k) is not str:
                    return False
                texts.append(k)
                if k not in allow and v not in (None, "", MARKER) and sensitive(k):
                    return False
            values: Any = item.values()
        else:  # a list
            values = item
        for v in values:
            t = type(v)
            if t is str:
                texts.append(v)
            elif t is dict:
                stack.append((v, level + 1))
            elif t is list:
                if pair(v):
                    return False
                stack.append((v, level + 1))
            elif t is int:
                if not -MAX_SAFE_INT <= v <= MAX_SAFE_INT or (card and redactor.card_number(v)):
                    return False
            elif t is float:
                if not math.isfinite(v):
                    return False
            elif v is not None and t is not bool:
                return False
    return not redactor.may_redact("\n".join(texts))


def prepared_bytes(event: Any, redactor: Redactor = DEFAULT) -> tuple[str, bytes] | None:
    """(event_id, encode(prepare(event))) without the model, for an event that needs nothing but copying;
    None when prepare would coerce, redact or refuse anything, or might: the caller then calls prepare."""
    if type(event) is not dict or not event.keys() <= EVENT_FIELDS:
        return None
    get = event.get
    event_id = get("event_id", _ABSENT)
    if event_id is _ABSENT:
        event_id = str(uuid_utils.uuid7())
    elif not uuid_text(event_id):
        return None
    occurred = _timestamp(get("occurred_at", _ABSENT))
    category, action, outcome = get("category"), get("action"), get("outcome", "success")
    tenant, source, request_id = get("tenant"), get("source"), get("request_id")
    # ocsf_columns is the one lookup of the model's enums and action pattern (None where it refuses them)
    if (occurred is None or type(category) is not str or type(action) is not str or type(outcome) is not str
            or ocsf_columns(category, action, outcome) is None or not short_text(tenant) or not short_text(source)
            or (request_id is not None and (type(request_id) is not str or len(request_id) > REQUEST_ID_MAX))):
        return None
    actor = get("actor")
    if type(actor) is not dict or not actor.keys() <= ACTOR_FIELDS:
        return None
    actor_id, actor_type = actor.get("id"), actor.get("type", "user")
    ip, agent = actor.get("ip"), actor.get("user_agent")
    if (not short_text(actor_id) or type(actor_type) is not str or actor_type not in ACTOR_TYPES
            or (ip is not None and (type(ip) is not str or len(ip) > IP_MAX or ip_text(ip) != ip))
            or (agent is not None and (type(agent) is not str or len(agent) > USER_AGENT_MAX))):
        return None
    texts: list[Any] = [actor_id, tenant, source]  # each checked a str above
    if agent:
        texts.append(agent)
    if request_id:
        texts.append(request_id)
    resource = get("resource")
    if resource is not None:
        if type(resource) is not dict or resource.keys() != RESOURCE_FIELDS:
            return None
        if not short_text(resource["type"]) or not short_text(resource["id"]):
            return None
        texts += (resource["type"], resource["id"])
    before, after, metadata = get("before"), get("after"), get("metadata", {})
    if type(metadata) is not dict or (before is not None and type(before) is not dict) or (
            after is not None and type(after) is not dict):
        return None
    if not _clean_values([p for p in (before, after, metadata) if p is not None], texts, redactor):
        return None
    out: dict[str, Any] = {"event_id": event_id, "occurred_at": occurred, "category": category, "action": action,
                           "outcome": outcome}
    out["actor"] = {"id": actor_id, "type": actor_type}
    if ip is not None:
        out["actor"]["ip"] = ip
    if agent is not None:
        out["actor"]["user_agent"] = agent
    if resource is not None:
        out["resource"] = {"type": resource["type"], "id": resource["id"]}
    out["tenant"], out["source"] = tenant, source
    if request_id is not None:
        out["request_id"] = request_id
    if before is not None:
        out["before"] = before
    if after is not None:
        out["after"] = after
    out["metadata"] = metadata
    try:
        return event_id, orjson.dumps(out)
    except (TypeError, ValueError):  # a lone surrogate, or deeper than orjson writes: the reference decides
        return None


def event_bytes(event: Mapping[str, Any] | Event, redactor: Redactor = DEFAULT) -> tuple[str, bytes]:
    """(event_id, the JSON sent): the fast path where it applies, the reference (and its errors) otherwise."""
    fast = prepared_bytes(event, redactor)
    if fast is not None:
        return fast
    prepared = prepare(event, redactor)
    return str(prepared.event_id), encode(prepared)
