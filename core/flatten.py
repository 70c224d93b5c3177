"""An event as the flat, canonical columns that get hashed and stored: the reference and its fast path.

flatten() is the definition, over a validated Event. fast_columns() yields
the same columns straight from the raw JSON of the common input (a valid
event with nothing to redact) without building the model: the stream's
hot path, measured to need it (README, "CPU per event"). Anything it is not
sure of returns None and goes to the model; tests/unit/test_fast_paths.py
holds the two to each other with hypothesis. Not imported by verify's worker
processes (this module loads pydantic); sealtrail.record holds what they need.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import orjson
from orjson import OPT_SORT_KEYS, dumps

from sealtrail.encoding import HIGH_KEY, MAX_SAFE_INT, canonical_text, format_ts
from sealtrail.errors import InvalidEventError
from sealtrail.event import IP_MAX, REQUEST_ID_MAX, SHORT_TEXT_MAX, USER_AGENT_MAX, Actor, ActorType, Event, Resource
from sealtrail.ocsf import ocsf_columns
from sealtrail.record import JSON_COLUMNS
from sealtrail.redact import DEFAULT, Redactor


def flatten(event: Event) -> dict[str, Any]:
    """The event as the flat, canonical column values that get hashed and stored."""
    actor, resource = event.actor, event.resource
    ocsf = ocsf_columns(event.category.value, event.action, event.outcome.value)
    assert ocsf is not None, "the event model accepts only what OCSF classifies"
    return {
        "event_id": str(event.event_id),
        "occurred_at": format_ts(event.occurred_at),
        "category": event.category.value,
        "action": event.action,
        "outcome": event.outcome.value,
        "actor_id": actor.id,
        "actor_type": actor.type.value,
        "actor_ip": actor.ip,
        "actor_user_agent": actor.user_agent,
        "resource_type": resource.type if resource else None,
        "resource_id": resource.id if resource else None,
        "tenant": event.tenant,
        "source": event.source,
        "request_id": event.request_id,
        "before": canonical_text(event.before) if event.before is not None else None,
        "after": canonical_text(event.after) if event.after is not None else None,
        "metadata": canonical_text(event.metadata),
        **ocsf,
    }


# --- the fast path --------------------------------------------------------------------------------
# Each check below accepts a subset of what the Event model accepts and yields the same value;
# anything outside that subset returns None and goes to the model. tests/unit/test_fast_paths.py
# compares the two paths with hypothesis.

EVENT_FIELDS = frozenset(Event.model_fields)
_REQUIRED = frozenset(name for name, f in Event.model_fields.items() if f.is_required())
ACTOR_FIELDS = frozenset(Actor.model_fields)
RESOURCE_FIELDS = frozenset(Resource.model_fields)
ACTOR_TYPES = frozenset(t.value for t in ActorType)
# RFC 3339 as producers write it: upper-case T, seconds, at most microseconds, Z or +hh:mm.
_TIME_SHAPE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-5][0-9])"
)
# The JSON parsers differ on two things only: pydantic's refuses nesting deeper than 200, and orjson
# reads an integer beyond 64 bits as a float where pydantic's keeps the int. Values near either
# edge go to the model.
_MAX_CONTAINERS = 64
_INT_AS_FLOAT = 2.0**53
_CARD_INT = 10**12  # from 13 digits on an integer may be a card number: the reference decides


def short_text(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= SHORT_TEXT_MAX


def _optional_text(value: Any, limit: int) -> bool:
    return value is None or (type(value) is str and len(value) <= limit)


def uuid_text(value: Any) -> bool:
    """True for the canonical text of a UUID (lower case, dashed), which pydantic prints unchanged.

    Positions and bytes.fromhex rather than a regular expression: several times cheaper here.
    """
    if type(value) is not str or len(value) != 36 or not value.isascii():
        return False
    if value[8] != "-" or value[13] != "-" or value[18] != "-" or value[23] != "-":
        return False
    digits = value.replace("-", "")
    try:
        return len(digits) == 32 and len(bytes.fromhex(digits)) == 16 and digits == digits.lower()
    except ValueError:
        return False


@lru_cache(maxsize=16384)
def ip_text(value: str) -> str | None:
    """Actor.ip's normalisation (cached: the same addresses recur); None where the model refuses it."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _utc_text(value: Any) -> str | None:
    """format_ts of what Event.occurred_at makes of value, or None when unsure.

    Only RFC 3339 as producers write it (_TIME_SHAPE). Within that shape
    datetime.fromisoformat reads what pydantic reads; pydantic's own limits
    (offset minutes below 60, years from 1000 in UTC) are checked on top. A
    UTC time is already its stored text but for the fraction's padding.
    """
    if type(value) is not str or not _TIME_SHAPE.fullmatch(value):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    if value[-1] == "Z" or value[-5:] == "00:00":
        fraction = value[20:-1] if value[-1] == "Z" else value[20:-6]
        return value[:19] + "." + fraction + "000000"[len(fraction):] + "Z" if value[:4] >= "1000" else None
    try:
        at = at.astimezone(timezone.utc)
    except OverflowError:
        return None
    return format_ts(at) if at.year >= 1000 else None


def _nested_clean(values: tuple[Any, ...], redactor: Redactor, strings: list[str]) -> bool | None:
    """Whether orjson's sorted output of each value is canonical; None when the reference path must decide.

    None when a key is sensitive, a header-list entry has a sensitive name
    or an integer is long enough to be a card number (the reference then
    decides what to redact), or where the JSON parsers might disagree (more
    than _MAX_CONTAINERS objects and arrays bounds the depth too). Appends
    every string value and dict key to strings, for one redaction scan of
    them all. The rest is encoding._fast_ok's check, done in the same walk.
    """
    sensitive, allow, pair = redactor.key_sensitive, redactor.allow_keys, redactor.pair_sensitive
    plain = True
    stack = [v for v in values if v]
    seen = 0
    while stack:
        value = stack.pop()
        seen += 1
        if seen > _MAX_CONTAINERS:
            return None
        if type(value) is dict:
            if "name" in value and pair(value):
                return None
            for k in value:
                if k not in allow and sensitive(k):
                    return None
                if plain and not k.isascii() and max(k) >= HIGH_KEY:
                    plain = False
            strings.extend(value)
            value = value.values()
        elif type(value) is list and len(value) == 2 and pair(value):
            return None
        for item in value:
            t = type(item)
            if t is str:
                strings.append(item)
            elif t is dict or t is list:
                stack.append(item)
            elif t is int:
                if not -_CARD_INT < item < _CARD_INT:
                    return None
                plain = plain and -MAX_SAFE_INT <= item <= MAX_SAFE_INT
            elif t is float:
                if not -_INT_AS_FLOAT < item < _INT_AS_FLOAT:
                    return None
                plain = False
    return plain


def fast_columns(raw: bytes, redactor: Redactor = DEFAULT) -> dict[str, Any] | None:
    """flatten() of a valid event with nothing to redact, without building the model; None otherwise."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(event) is not dict:
        return None
    keys = event.keys()
    if not (keys <= EVENT_FIELDS and keys >= _REQUIRED):
        return None
    event_id, category, action = event["event_id"], event["category"], event["action"]
    outcome = event.get("outcome", "success")
    if type(category) is not str or type(action) is not str or type(outcome) is not str:
        return None
    ocsf = ocsf_columns(category, action, outcome)
    occurred_at = _utc_text(event["occurred_at"])
    if ocsf is None or occurred_at is None or not uuid_text(event_id):
        return None
    actor = event["actor"]
    if type(actor) is not dict or "id" not in actor or not actor.keys() <= ACTOR_FIELDS:
        return None
    actor_id, actor_type, ip, agent = actor["id"], actor.get("type", "user"), actor.get("ip"), actor.get("user_agent")
    if (
        not short_text(actor_id)
        or type(actor_type) is not str or actor_type not in ACTOR_TYPES
        or not _optional_text(ip, IP_MAX) or not _optional_text(agent, USER_AGENT_MAX)
    ):
        return None
    if ip is not None and (ip := ip_text(ip)) is None:
        return None
    resource = event.get("resource")
    if resource is None:
        resource_type = resource_id = None
    elif type(resource) is dict and resource.keys() == RESOURCE_FIELDS:
        resource_type, resource_id = resource["type"], resource["id"]
        if not (short_text(resource_type) and short_text(resource_id)):
            return None
    else:
        return None
    tenant, source, request_id = event["tenant"], event["source"], event.get("request_id")
    if not (short_text(tenant) and short_text(source) and _optional_text(request_id, REQUEST_ID_MAX)):
        return None
    nested = (event.get("before"), event.get("after"), event.get("metadata", {}))
    before, after, metadata = nested
    if not ((before is None or type(before) is dict) and (after is None or type(after) is dict)
            and type(metadata) is dict):
        return None
    if any(name not in redactor.allow_keys and redactor.key_sensitive(name) for name in JSON_COLUMNS):
        return None  # configured rules can make the field names themselves sensitive
    strings = [text for text in (actor_id, agent, resource_type, resource_id, tenant, source, request_id) if text]
    plain = _nested_clean(nested, redactor, strings)
    if plain is None:
        return None
    if redactor.may_redact("\n".join(strings)) and any(redactor.redact_string(text)[1] for text in strings):
        return None
    try:
        before, after, metadata = [None if v is None else dumps(v, option=OPT_SORT_KEYS).decode() if plain
                                   else canonical_text(v) for v in nested]
    except (InvalidEventError, orjson.JSONEncodeError):
        return None
    return {
        "event_id": event_id,
        "occurred_at": occurred_at,
        "category": category,
        "action": action,
        "outcome": outcome,
        "actor_id": actor_id,
        "actor_type": actor_type,
        "actor_ip": ip,
        "actor_user_agent": agent,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "tenant": tenant,
        "source": source,
        "request_id": request_id,
        "before": before,
        "after": after,
        "metadata": metadata,
        **ocsf,
    }
