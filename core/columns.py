"""The trail's columns, declared once.

Every list of column names (sealtrail.record), the Parquet schemas
(sealtrail.objects, and through them the Athena table), the API's row model
and the stream's JSON handling are derived from COLUMNS, so a column is named,
typed and placed in one line here. The order is the stored column order, part
of the record format: changing it changes what every verifier reads.

No pyarrow here: producers and verify's worker processes import this module.
Types are named as Arrow prints them (str(pyarrow type)); sealtrail.objects
turns the names into types and a test checks they print back the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Group(StrEnum):
    CHAIN = "chain"  # the record's place in its chain (the chain id itself is the object's folder)
    EVENT = "event"  # the event's own fields, flattened
    OCSF = "ocsf"  # derived from category, action and outcome (sealtrail.ocsf)
    ACCOUNT = "account"  # input accounting (record format v3): set on rejected and repeated inputs only
    SEAL = "seal"  # row_check, and the chain hash and signature of signed heads


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    arrow: str  # the Arrow type, as str() of it prints
    group: Group
    required: bool = False  # never null on a sealed event (record format v2, where only events are stored)
    json: bool = False  # RFC 8785 text of a nested value, hashed verbatim and parsed for API clients
    source: str | None = None  # the Event field it is flattened from (dotted: actor.user_agent)


STRING, INT64, INT32 = "string", "int64", "int32"
TIMESTAMP = "timestamp[us, tz=UTC]"
HASH = "fixed_size_binary[32]"
BINARY = "binary"
_C, _E, _O, _A, _S = Group.CHAIN, Group.EVENT, Group.OCSF, Group.ACCOUNT, Group.SEAL

COLUMNS = (
    Column("seq", INT64, _C, required=True),
    Column("sealed_at", TIMESTAMP, _C, required=True),
    Column("src_offset", INT64, _C, required=True),
    Column("event_id", STRING, _E, required=True, source="event_id"),
    Column("occurred_at", TIMESTAMP, _E, required=True, source="occurred_at"),
    Column("category", STRING, _E, required=True, source="category"),
    Column("action", STRING, _E, required=True, source="action"),
    Column("outcome", STRING, _E, required=True, source="outcome"),
    Column("actor_id", STRING, _E, required=True, source="actor.id"),
    Column("actor_type", STRING, _E, required=True, source="actor.type"),
    Column("actor_ip", STRING, _E, source="actor.ip"),
    Column("actor_user_agent", STRING, _E, source="actor.user_agent"),
    Column("resource_type", STRING, _E, source="resource.type"),
    Column("resource_id", STRING, _E, source="resource.id"),
    Column("tenant", STRING, _E, required=True, source="tenant"),
    Column("source", STRING, _E, required=True, source="source"),
    Column("request_id", STRING, _E, source="request_id"),
    Column("before", STRING, _E, json=True, source="before"),
    Column("after", STRING, _E, json=True, source="after"),
    Column("metadata", STRING, _E, required=True, json=True, source="metadata"),
    Column("class_uid", INT32, _O, required=True),
    Column("category_uid", INT32, _O, required=True),
    Column("activity_id", INT32, _O, required=True),
    Column("type_uid", INT32, _O, required=True),
    Column("severity_id", INT32, _O, required=True),
    Column("status_id", INT32, _O, required=True),
    Column("kind", STRING, _A),
    Column("reason", STRING, _A),
    Column("input_bytes", INT64, _A),
    Column("input_sha256", STRING, _A),
    Column("row_check", INT32, _S, required=True),
    Column("hash", HASH, _S),
    Column("key_id", STRING, _S),
    Column("signature", BINARY, _S),
)


def names(*groups: Group) -> tuple[str, ...]:
    """The names of the columns in these groups, in stored order."""
    return tuple(c.name for c in COLUMNS if c.group in groups)

