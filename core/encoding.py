"""Canonical bytes for hashing: RFC 8785 (JSON Canonicalization Scheme), fast.

The `rfc8785` package is the reference but manages about 25,000 events/s in
pure Python, which would cap the stream and the verifier. orjson with sorted
keys produces the same bytes on a well-defined domain: no floats (ECMAScript
number formatting differs), integers within IEEE-754's exact range, and object
keys free of code points at or above U+E000 (RFC 8785 sorts by UTF-16 code
units, which disagrees with code-point order only there). Inside that domain we
take the fast path; outside it we fall back to the reference, so the output is
always RFC 8785. tests/unit/test_encoding.py checks the equality with
hypothesis.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import orjson
import rfc8785

from sealtrail.errors import InvalidEventError

MAX_SAFE_INT = 2**53 - 1
_SORTED = orjson.OPT_SORT_KEYS
HIGH_KEY = "\ue000"  # object keys from here on sort differently by UTF-16 code units


def _fast_ok(value: Any) -> bool:
    """True when orjson's sorted output is provably the RFC 8785 form of value."""
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str or v is None or t is bool:
            continue
        if t is int:
            if -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
                continue
            return False
        if t is dict:
            for k, item in v.items():
                if type(k) is not str or (k and max(k) >= HIGH_KEY):
                    return False
                stack.append(item)
            continue
        if t is list:
            stack.extend(v)
            continue
        return False
    return True


def canonical(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON value (dict, list, str, int, float, bool, None)."""
    if _fast_ok(value):
        try:
            return orjson.dumps(value, option=_SORTED)
        except (TypeError, orjson.JSONEncodeError):
            pass  # beyond orjson's nesting limit, lone surrogates: let the reference decide
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as e:
        raise InvalidEventError("not_canonicalizable", detail=str(e)) from e


def canonical_text(value: Any) -> str:
    return canonical(value).decode("utf-8")


def format_ts(value: datetime) -> str:
    """UTC with a four-digit year and exactly six fractional digits, so a column round-trips byte for byte."""
    v = value.astimezone(timezone.utc)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}Z"
    )


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
