"""Where things live in the bucket: object names as a pure function of their content.

A data object's key is made of its chain and the first and last sequence
numbers it holds, so a sink that crashed after a PUT and before committing its
offsets recomputes the same key on replay, finds the object, and writes nothing
twice (Kafka Connect's S3 sink names objects from offsets for the same reason).
The Hive-style folders (dt=, chain=) are what Athena and pyarrow partition on;
dt is the UTC sealing date of the object's first record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DATA = "data/"
DIGESTS = "digests/"
KEYS = "keys/"

_DATA_KEY = re.compile(
    r"^(?P<prefix>.*)data/dt=(?P<dt>\d{4}-\d{2}-\d{2})/chain=(?P<chain>p\d{3,})/"
    r"(?P=chain)-(?P<first>\d{12})-(?P<last>\d{12})\.parquet$"
)


@dataclass(frozen=True, slots=True, order=True)
class DataObject:
    chain: str
    first: int
    last: int
    dt: str
    key: str


def data_key(prefix: str, dt: str, chain: str, first: int, last: int) -> str:
    return f"{prefix}{DATA}dt={dt}/chain={chain}/{chain}-{first:012d}-{last:012d}.parquet"


def parse_data_key(key: str) -> DataObject | None:
    """The object a key names, or None for a key that is not a well-formed data object."""
    m = _DATA_KEY.match(key)
    if m is None:
        return None
    return DataObject(m["chain"], int(m["first"]), int(m["last"]), m["dt"], key)


def data_prefix(prefix: str) -> str:
    return f"{prefix}{DATA}"


def public_key_key(prefix: str, key_id: str) -> str:
    return f"{prefix}{KEYS}{key_id}.pem"


ROTATIONS = f"{KEYS}rotations/"
_ROTATION_KEY = re.compile(r"^(?P<prefix>.*)keys/rotations/(?P<old>ed25519-[0-9a-f]{16})-(?P<new>ed25519-[0-9a-f]{16})\.json$")


def rotation_key(prefix: str, old: str, new: str) -> str:
    """Where `keys rotate` puts the old key's signed word that the new key follows it."""
    return f"{prefix}{ROTATIONS}{old}-{new}.json"


def parse_rotation_key(key: str) -> tuple[str, str] | None:
    m = _ROTATION_KEY.match(key)
    return (m["old"], m["new"]) if m else None


_DIGEST_KEY = re.compile(r"^(?P<prefix>.*)digests/chain=(?P<chain>p\d{3,})/(?P=chain)-(?P<last>\d{12})\.json$")


def digest_prefix(prefix: str, chain: str | None = None) -> str:
    return f"{prefix}{DIGESTS}" + (f"chain={chain}/" if chain else "")


def digest_key(prefix: str, chain: str, last: int) -> str:
    """A digest is named by its chain and the last sequence number it covers."""
    return f"{prefix}{DIGESTS}chain={chain}/{chain}-{last:012d}.json"


def parse_digest_key(key: str) -> tuple[str, int] | None:
    m = _DIGEST_KEY.match(key)
    return (m["chain"], int(m["last"])) if m else None
