"""sealtrail.encoding: canonical() is RFC 8785, always; timestamps are fixed-width UTC text.

The reference is the `rfc8785` package. canonical() takes orjson's sorted output
inside a domain where that is provably the same bytes, and falls back to the
reference outside it; hypothesis checks both halves of that claim.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from sealtrail.encoding import MAX_SAFE_INT, canonical, canonical_text, format_ts, parse_ts
from sealtrail.errors import InvalidEventError

# Characters where JSON encoders tend to disagree: escapes, DEL, line separators,
# the start of the private use area (U+E000, where UTF-16 and code-point order part
# ways), the last BMP character and astral-plane characters (surrogate pairs in UTF-16).
TRICKY = "\x00\x01\x08\t\n\x0b\x0c\r\x1f \"/\\\x7f\x80\u00e9\u2028\u2029\ud7ff\ue000\uf8ff\ufeff\uffff\U00010000\U0001f600\U0010ffff"
chars = st.sampled_from(TRICKY) | st.characters(exclude_categories=("Cs",))
texts = st.text(chars, max_size=8)
# keys restricted to the fast path's domain: nothing at or above U+E000
low_keys = st.text(st.characters(max_codepoint=0xDFFF, exclude_categories=("Cs",)) | st.sampled_from(TRICKY[:17]), max_size=6)

ints = st.integers(-MAX_SAFE_INT, MAX_SAFE_INT) | st.sampled_from(
    [MAX_SAFE_INT, -MAX_SAFE_INT, MAX_SAFE_INT + 1, -MAX_SAFE_INT - 1, 2**63, -(2**63) - 1, 2**64, 10**30]
) | st.integers()
floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([0.0, -0.0, 1e21, 1e-7, 1e20, 5e-324, 1.7976931348623157e308, 0.1, 1.0])

json_values = st.recursive(
    st.none() | st.booleans() | ints | floats | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=25,
)
# inside the fast path's domain: no floats, safe integers, keys below U+E000
domain_values = st.recursive(
    st.none() | st.booleans() | st.integers(-MAX_SAFE_INT, MAX_SAFE_INT) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(low_keys, inner, max_size=4),
    max_leaves=25,
)


def reference(value: object) -> bytes | None:
    """rfc8785's bytes, or None when the value is outside what RFC 8785 can encode."""
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        return None


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_canonical_is_rfc8785(value: object) -> None:
    want = reference(value)
    if want is None:
        with pytest.raises(InvalidEventError) as e:
            canonical(value)
        assert e.value.reason == "not_canonicalizable"
    else:
        assert canonical(value) == want


def _nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


VECTORS = [
    pytest.param({"\ue000": 1, "\U0001f600": 2}, '{"\U0001f600":2,"\ue000":1}'.encode(), id="key-order-utf16-not-codepoint"),
    pytest.param({"b": 1, "a": 2, "A": 3, "": 4}, b'{"":4,"A":3,"a":2,"b":1}', id="key-order-ascii"),
    pytest.param({"\u00e9": 1, "z": 2}, '{"z":2,"\u00e9":1}'.encode(), id="key-order-latin1-after-ascii"),
    pytest.param(1e21, b"1e+21", id="float-1e21-exponent"),
    pytest.param(1e20, b"100000000000000000000", id="float-1e20-no-exponent"),
    pytest.param(1e-7, b"1e-7", id="float-1e-7-exponent"),
    pytest.param(1e-6, b"0.000001", id="float-1e-6-no-exponent"),
    pytest.param(1.0, b"1", id="float-integral-no-fraction"),
    pytest.param(-0.0, b"0", id="float-negative-zero"),
    pytest.param(0.1, b"0.1", id="float-shortest-round-trip"),
    pytest.param(MAX_SAFE_INT, b"9007199254740991", id="int-max-safe"),
    pytest.param(-MAX_SAFE_INT, b"-9007199254740991", id="int-min-safe"),
    pytest.param({"n": [MAX_SAFE_INT, True, None]}, b'{"n":[9007199254740991,true,null]}', id="int-max-safe-nested"),
    pytest.param("\x00\x1f\x7f\b\t\n\f\r\"\\/", b'"\\u0000\\u001f\x7f\\b\\t\\n\\f\\r\\"\\\\/"', id="string-escapes"),
    pytest.param("\u2028\U0001f600\u00e9", '"\u2028\U0001f600\u00e9"'.encode(), id="string-non-ascii-verbatim"),
    pytest.param({"a": 1.5, "b": 2}, b'{"a":1.5,"b":2}', id="float-inside-object-fallback"),
]


@pytest.mark.parametrize(("value", "want"), VECTORS)
def test_vectors(value: object, want: bytes) -> None:
    assert canonical(value) == want
    assert rfc8785.dumps(value) == want  # the vector itself is right
    assert canonical_text(value) == want.decode("utf-8")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(MAX_SAFE_INT + 1, id="int-2**53-beyond-exact"),
        pytest.param(-(2**53), id="int-minus-2**53"),
        pytest.param({"n": 2**64}, id="int-2**64-nested"),
        pytest.param(float("nan"), id="float-nan"),
        pytest.param([float("inf")], id="float-inf"),
        pytest.param("\ud800", id="lone-surrogate"),
        pytest.param({"k": "\udfff"}, id="lone-surrogate-nested"),
        pytest.param({1: "x"}, id="non-string-key"),
    ],
)
def test_outside_json_raises_invalid_event(value: object) -> None:
    with pytest.raises(InvalidEventError) as e:
        canonical(value)
    assert e.value.reason == "not_canonicalizable"


@pytest.mark.parametrize("depth", [100, 253, 254, 300])
def test_deep_nesting_is_still_rfc8785(depth: int) -> None:
    """rfc8785 encodes these; the fast path must not turn them into an error (orjson stops at 255 levels)."""
    value = _nested(depth)
    assert canonical(value) == rfc8785.dumps(value)


# --- timestamps ---------------------------------------------------------------------------------

TS_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
offsets = st.builds(
    timezone, st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59))
)
# local times a day inside datetime's range, so that their UTC instant exists
aware = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets)


@settings(max_examples=300, deadline=None)
@given(aware)
def test_format_ts_round_trips(value: datetime) -> None:
    text = format_ts(value)
    assert TS_FORMAT.match(text), text
    back = parse_ts(text)
    assert back == value
    assert back.tzinfo == timezone.utc
    assert format_ts(back) == text


@settings(max_examples=200, deadline=None)
@given(aware, aware)
def test_format_ts_sorts_like_time(a: datetime, b: datetime) -> None:
    """Stored as text, the column must sort chronologically (Athena, S3 listings)."""
    assert (format_ts(a) < format_ts(b)) == (a < b)


@pytest.mark.parametrize(
    ("value", "want"),
    [
        pytest.param(datetime(2026, 11, 1, tzinfo=timezone.utc), "2026-11-01T00:00:00.000000Z", id="whole-second-padded"),
        pytest.param(datetime(2026, 11, 1, 5, 30, 0, 7, tzinfo=timezone(timedelta(hours=5, minutes=30))), "2026-11-01T00:00:00.000007Z", id="offset-normalised"),
        pytest.param(datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), "2025-12-31T23:30:00.000000Z", id="offset-crosses-year"),
        pytest.param(datetime(999, 12, 31, 23, 59, 59, tzinfo=timezone.utc), "0999-12-31T23:59:59.000000Z", id="year-999-four-digits"),
    ],
)
def test_format_ts_vectors(value: datetime, want: str) -> None:
    assert format_ts(value) == want
    assert parse_ts(want) == value


@pytest.mark.parametrize(
    "text",
    ["2026-11-01T00:00:00Z", "2026-11-01T00:00:00.000000+00:00", "2026-11-01 00:00:00.000000Z", "2026-11-01T00:00:00.000000"],
)
def test_parse_ts_accepts_only_the_stored_form(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ts(text)
