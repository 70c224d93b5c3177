"""Every fast path against the reference it stands in for, with hypothesis: one place to find them all.

The hot paths may not go through pydantic or a per-row dict, so each has a
shortcut beside a definition written straight from the format. Each pair
below must agree exactly (same columns, same bytes, same rejection), or an
intact trail would look tampered or an event would be stored differently
depending on the path it took.

    fast path                                   reference                               tests here
    flatten.fast_columns (raw JSON -> columns)  Event validation + flatten.flatten      test_fast_path_agrees_with_the_model, ...
    contents: Contents / contents_fast (Arrow)  record.hashed_bytes (one row)           test_*contents_equal_hashed_bytes
    flatten._utc_text; objects.timestamp_text   encoding.format_ts                      test_occurred_at_agrees, test_timestamp_text_*
    encoding._fast_ok; flatten._nested_clean    rfc8785 (orjson's output is canonical)  test_fast_ok_*, test_nested_clean_is_fast_ok
    ocsf.ocsf_columns (None: refused)           the Event model's enums and pattern     test_ocsf_cache_refuses_what_the_model_refuses
    producers.outbound.prepared_bytes (SDK)     encode(prepare(event)): model, redactor  test_sdk_fast_path_*

Validation: hypothesis builds events near every edge the shortcut decides on
(UUID forms, RFC 3339 variants and offsets, enum values, lengths, IP forms,
nested values with floats, big integers, deep nesting, high keys, sensitive
keys and secret values, JSON escapes) and the two must agree exactly, for the
default redaction rules and for configured ones. Contents: check_object_rows
canonicalises rows without hashed_bytes' per-row sort, and text_columns
formats timestamps without Arrow's strftime; both must give the very bytes
the definitions give.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rfc8785
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sealtrail.contents import HASHED_ORDER, Contents, TableColumns, contents_fast, read_object, row_contents
from sealtrail.encoding import _fast_ok, canonical, canonical_text, format_ts
from sealtrail.flatten import _nested_clean, fast_columns
from sealtrail.objects import REQUIRED_FOR_EVENTS, SCHEMA, TS, text_columns, timestamp_text
from sealtrail.ocsf import ocsf_columns
from sealtrail.producers.outbound import encode, prepare, prepared_bytes
from sealtrail.record import CHAIN_COLUMNS, EVENT_COLUMNS, JSON_COLUMNS, OCSF_COLUMNS, ROW_COLUMNS, hashed_bytes
from sealtrail.redact import CARD_CANDIDATE, DEFAULT, Redactor, _may_hold_card, key_is_sensitive
from sealtrail.stack.workload import generate
from sealtrail.stream.validate import validate_counted, validate_reference

from .test_encoding import domain_values
from .test_encoding import json_values as encodable
from .test_encoding import texts as tricky_texts
from .test_validate import LIMIT
from .test_validate import MINIMAL as BASE

CONFIGURED = Redactor.from_rules(extra_keys=("colour", "metadata"), extra_patterns=(r"^tok-\d+$",),
                                 allow_keys=("token_count",), cards=False)
REDACTORS = st.sampled_from([DEFAULT, Redactor.from_rules(), CONFIGURED])


def same(raw: bytes | None, redactor: Redactor = DEFAULT) -> tuple[Any, int]:
    fast = validate_counted(raw, LIMIT, redactor)
    reference = validate_reference(raw, LIMIT, redactor)
    assert fast == reference, raw
    if isinstance(fast[0], dict):
        assert list(fast[0]) == list(reference[0])  # column order is part of the wire format
    return fast


# --- strategies -----------------------------------------------------------------------------------

hexdigits = st.text("0123456789abcdef", min_size=32, max_size=32)
uuids = st.one_of(
    hexdigits.map(lambda h: f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"),
    hexdigits.map(lambda h: f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}".upper()),
    hexdigits,
    hexdigits.map(lambda h: "{" + f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" + "}"),
    st.sampled_from(["0192f0c1-7a3b-7c4d-8e5f-6a7b8c9d0e1g", "0192f0c1-7a3b-7c4d-8e5f-6a7b8c9d0e1", "", "x" * 36,
                     "0192f0c17a3b-7c4d-8e5f-6a7b8c9d0e1f-", "0192f0c1-7a3b-7c4d-8e5f 6a7b8c9d0e1f",
                     "0192f0c1-7a3b-7c4d-8e5f-6a7b8c9d0e٣f"]),
)
offsets = st.integers(-(24 * 60 + 30), 24 * 60 + 30)
fractions = st.sampled_from(["", ".", ".5", ".12", ".123", ".1234", ".123456", ".1234567", ".000000001"])


@st.composite
def times(draw: st.DrawFn) -> str:
    at = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
    minutes = draw(offsets)
    sign = "-" if minutes < 0 else draw(st.sampled_from(["+", "+", "-"]) if minutes == 0 else st.just("+"))
    zone = draw(st.sampled_from([
        "Z", "z", "", f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}", f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}",
        f"{sign}{abs(minutes) // 60:02d}:{draw(st.integers(0, 99)):02d}",
    ]))
    sep = draw(st.sampled_from(["T", "T", "t", " "]))
    seconds = draw(st.sampled_from([f":{at.second:02d}", f":{at.second:02d}", "", ":60"]))
    return f"{at.year:04d}-{at.month:02d}-{at.day:02d}{sep}{at.hour:02d}:{at.minute:02d}{seconds}{draw(fractions)}{zone}"


texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "x" * 256, "x" * 257, "é" * 256, "🙂" * 257, "a\nb", "user-0001"]),
)
secretish = st.sampled_from([
    "4111 1111 1111 1111", "4111-1111-1111-1112", "٤١١١١١١١١١١١١١١١", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
    "AKIAABCDEFGHIJKLMNOP", "Bearer abcdefghijkl", "https://u:pw@host/x", "a?password=x", "tok-123",
    "ghp_" + "a" * 36, "-----BEGIN PRIVATE KEY-----\nabc", "Mozilla/5.0", "order=5", "12345678901234567890",
])
keys = st.one_of(st.text(max_size=8), st.sampled_from([
    "password", "apiKey", "token_count", "colour", "metadata", "method", "company", "\ue000", "\uffff", "a\ue001", "",
]))
numbers = st.one_of(
    st.integers(-(2**53) - 2, 2**53 + 2), st.integers(-(2**70), 2**70), st.sampled_from([2**63, 2**64, -(2**63) - 1]),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1.0, -0.0, 0.1, 1e20, 2.0**53, 1e-320]),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | texts | secretish,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
)
ips = st.one_of(
    st.ip_addresses().map(str),
    st.sampled_from(["::ffff:1.2.3.4", "01.2.3.4", "1.2.3", "fe80::1%eth0", "::1", "2001:DB8::1", "x", "", " 1.2.3.4",
                     "1.2.3.4 ", "a" * 65]),
)
replacements: dict[str, st.SearchStrategy[Any]] = {
    "event_id": uuids,
    "occurred_at": times(),
    "category": st.sampled_from(["auth", "change", "security", "admin", "access", "Auth", "billing", ""]),
    "action": st.one_of(st.from_regex(r"[a-z][a-z0-9_]{0,6}(\.[a-z][a-z0-9_]{0,6}){1,3}", fullmatch=True),
                        st.sampled_from(["auth", "Auth.login", "a.b\n", "a." + "b" * 126, "a." + "b" * 127, "a..b"])),
    "outcome": st.sampled_from(["success", "failure", "unknown", "ok", None]),
    "actor": st.fixed_dictionaries(
        {"id": texts | secretish},
        optional={"type": st.sampled_from(["user", "service", "system", "robot", None]), "ip": ips | st.none(),
                  "user_agent": texts | secretish | st.none() | st.just("x" * 1025), "role": texts},
    ),
    "resource": st.none() | st.fixed_dictionaries({"type": texts, "id": texts | secretish}, optional={"x": texts}),
    "tenant": texts,
    "source": texts,
    "request_id": st.none() | texts | secretish | st.just("r" * 257),
    "before": st.none() | st.dictionaries(keys, json_values, max_size=4),
    "after": st.none() | st.dictionaries(keys, json_values, max_size=4) | json_values,
    "metadata": st.dictionaries(keys, json_values, max_size=4) | json_values,
    "extra": texts,
}
wrong_types = st.one_of(st.integers(), st.booleans(), st.none(), st.lists(st.integers(), max_size=2), st.just({}))


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(json.dumps(BASE))
    for name in draw(st.lists(st.sampled_from(sorted(replacements)), max_size=6, unique=True)):
        roll = draw(st.integers(0, 9))
        if roll == 0:
            event.pop(name, None)
        elif roll == 1:
            event[name] = draw(wrong_types)
        else:
            event[name] = draw(replacements[name])
    return event


@st.composite
def encoded(draw: st.DrawFn) -> bytes:
    event = draw(events())
    how = draw(st.sampled_from(["orjson", "json-ascii", "json-utf8", "spaced"]))
    if how == "orjson":
        try:
            return orjson.dumps(event)
        except orjson.JSONEncodeError:  # integers beyond 64 bits
            how = "json-utf8"
    if how == "spaced":
        return json.dumps(event, indent=1).encode()
    return json.dumps(event, ensure_ascii=how == "json-ascii").encode()


# --- the properties ------------------------------------------------------------------------------


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(encoded(), REDACTORS)
def test_fast_path_agrees_with_the_model(raw: bytes, redactor: Redactor) -> None:
    same(raw, redactor)


@settings(max_examples=500, deadline=None)
@given(times())
def test_occurred_at_agrees(text: str) -> None:
    same(json.dumps({**BASE, "occurred_at": text}).encode())


@settings(max_examples=500, deadline=None)
@given(uuids)
def test_event_id_agrees(text: str) -> None:
    same(json.dumps({**BASE, "event_id": text}).encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_agree(data: bytes) -> None:
    same(data)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(None, id="tombstone"),
        pytest.param(b"", id="empty"),
        pytest.param(json.dumps({**BASE, "metadata": {"n": 2**64}}).encode(), id="int-beyond-64-bits-read-as-float-by-orjson"),
        pytest.param(json.dumps({**BASE, "metadata": {"n": -(2**63) - 1}}).encode(), id="negative-int-beyond-64-bits"),
        pytest.param(json.dumps({**BASE, "metadata": {"n": 2**53}}).encode(), id="int-just-beyond-safe"),
        pytest.param(json.dumps({**BASE, "metadata": {"n": 1e20}}).encode(), id="float-with-integer-value"),
        pytest.param(json.dumps({**BASE, "metadata": {"\ue000": 1, "a": 2}}).encode(), id="high-key"),
        pytest.param(json.dumps({**BASE, "metadata": {"x": "\\u0065yJ"}}).encode(), id="escaped-text"),
        pytest.param(json.dumps({**BASE, "metadata": {"x": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"}},
                                ensure_ascii=True).encode().replace(b"eyJ", b"\\u0065yJ"), id="secret-behind-json-escape"),
        pytest.param(json.dumps({**BASE, "metadata": {"card": "٤١١١١١١١١١١١١١١١"}}).encode(), id="card-in-other-digits"),
        pytest.param(json.dumps({**BASE, "metadata": {"password": None}}).encode(), id="sensitive-key-null"),
        pytest.param(json.dumps({**BASE, "metadata": {"password": ""}}).encode(), id="sensitive-key-empty"),
        pytest.param(json.dumps({**BASE, "actor": {"id": "u", "user_agent": "Bearer abcdefghijkl"}}).encode(), id="secret-in-envelope"),
        pytest.param(b'{"event_id":"0192f0c1-7a3b-7c4d-8e5f-6a7b8c9d0e1f","occurred_at":"2026-11-01T12:00:00Z","category":"auth",'
                     b'"action":"auth.login","actor":{"id":"u"},"tenant":5,"tenant":"t","source":"s","metadata":{"a":1,"a":2}}',
                     id="duplicate-keys-last-wins"),
        pytest.param(json.dumps({**BASE, "occurred_at": "2026-11-01T12:00:00+05:60"}).encode(), id="offset-minutes-60"),
        pytest.param(json.dumps({**BASE, "occurred_at": "0999-12-31T23:30:00-01:00"}).encode(), id="year-999-local-1000-utc"),
        pytest.param(json.dumps({**BASE, "occurred_at": "1000-01-01T00:30:00+01:00"}).encode(), id="year-1000-local-999-utc"),
        pytest.param(json.dumps({**BASE, "occurred_at": "9999-12-31T23:59:59-00:01"}).encode(), id="beyond-9999-in-utc"),
    ],
)
def test_edges_agree(raw: bytes | None) -> None:
    same(raw)
    same(raw, CONFIGURED)


LIMITS = [
    ("action", lambda n: "a." + "b" * (n - 2), 128),
    ("tenant", lambda n: "t" * n, 256),
    ("source", lambda n: "é" * n, 256),
    ("request_id", lambda n: "r" * n, 256),
    ("actor", lambda n: {"id": "🙂" * n}, 256),
    ("actor", lambda n: {"id": "u", "user_agent": "a" * n}, 1024),
    ("actor", lambda n: {"id": "u", "ip": "1.2.3.4" + " " * (n - 7)}, 64),
    ("resource", lambda n: {"type": "t" * n, "id": "i"}, 256),
    ("resource", lambda n: {"type": "t", "id": "i" * n}, 256),
]


@pytest.mark.parametrize(("name", "make", "limit"), LIMITS, ids=[f"{n}-{lim}" for n, _, lim in LIMITS])
def test_length_limits_agree(name: str, make: Any, limit: int) -> None:
    for n in (limit - 1, limit, limit + 1):
        same(json.dumps({**BASE, name: make(n)}).encode())
    accepted, _ = same(json.dumps({**BASE, name: make(limit)}).encode())
    if name != "actor" or "ip" not in make(limit):
        assert isinstance(accepted, dict), "a value at the limit is valid"


@pytest.mark.parametrize("depth", [60, 63, 64, 65, 66, 198, 199, 200, 300])
def test_deep_nesting_agrees(depth: int) -> None:
    """pydantic's parser stops at 200 levels, orjson's later: the fast path leaves deep values to the model."""
    nested = "1"
    for _ in range(depth):
        nested = '{"a":[' + nested + "]}" if depth % 2 else '{"a":' + nested + "}"
    same(json.dumps(BASE)[:-1].encode() + b', "metadata": ' + nested.encode() + b"}")


def test_workload_takes_the_fast_path() -> None:
    """The speed depends on it: the benchmark's events must not fall back to the model."""
    for event in generate(2000, seed=5):
        raw = orjson.dumps(event)
        assert fast_columns(raw) is not None, event
        same(raw)


# --- the SDK: prepared_bytes against encode(prepare(event)) ----------------------------------------------

python_only = st.sampled_from([
    datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc), datetime(2026, 11, 1, 12, 0, 0, 5, tzinfo=timezone.utc),
    datetime(2026, 11, 1, 12, 0), datetime(2026, 11, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
    datetime(999, 1, 1, tzinfo=timezone.utc), (1, 2), {"a": (1,)}, {"a": {1, 2}}, {1: "a"}, b"bytes",
    float("nan"), {"x": float("inf")}, {"at": datetime(2026, 1, 1)}, True,
])


@st.composite
def sdk_events(draw: st.DrawFn) -> dict[str, Any]:
    """The stream's edge cases as the dicts a service passes, plus values only Python can pass."""
    event = draw(events())
    for name in draw(st.lists(st.sampled_from(sorted(replacements)), max_size=2, unique=True)):
        if draw(st.booleans()):
            event[name] = draw(python_only)
    if draw(st.integers(0, 3)) == 0:
        event.pop(draw(st.sampled_from(["event_id", "occurred_at"])), None)
    return event


def sdk_same(event: dict[str, Any], redactor: Redactor = DEFAULT) -> bool:
    """Whether the fast path answered; when it did, its bytes are the reference's, byte for byte."""
    fast = prepared_bytes(event, redactor)
    if fast is None:
        return False
    event_id, value = fast
    # what the fast path filled in, handed to the reference as given (its own defaults are a new id and now)
    filled = {**event, "event_id": event_id, "occurred_at": event.get("occurred_at", orjson.loads(value)["occurred_at"])}
    assert encode(prepare(filled, redactor)) == value, event
    return True


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sdk_events(), REDACTORS)
def test_sdk_fast_path_agrees_with_the_model(event: dict[str, Any], redactor: Redactor) -> None:
    before = json.dumps(event, default=repr, sort_keys=True)
    sdk_same(event, redactor)
    assert json.dumps(event, default=repr, sort_keys=True) == before  # the caller's dict is not touched


@pytest.mark.parametrize("change", [
    {"occurred_at": "2026-11-01T12:00:00+00:00"}, {"occurred_at": "2026-11-01T12:00:00.5Z"},
    {"actor": {"id": "u", "ip": "10.0.0.1", "user_agent": "curl/8"}}, {"actor": {"id": "u", "ip": "::1"}},
    {"resource": {"type": "doc", "id": "d-1"}},
    {"metadata": {"n": 1, "f": 0.5, "l": [None, True, {"k": "v"}]}}, {"before": {"a": 1}, "after": {"a": 2}},
    {"request_id": "r-1", "outcome": "failure"},
])
def test_sdk_fast_path_takes_plain_events(change: dict[str, Any]) -> None:
    assert sdk_same({**BASE, **change})


@pytest.mark.parametrize("change", [
    {"metadata": {"password": "hunter2"}}, {"actor": {"id": "u", "user_agent": "Bearer abcdefghijklmnop"}},
    {"metadata": {"card": 4111111111111111}}, {"metadata": {"n": 2**60}}, {"occurred_at": "2026-11-01T14:00:00+02:00"},
    {"actor": {"id": "u", "ip": "2001:DB8::1"}}, {"event_id": "0192F0C1-7A3B-7C4D-8E5F-6A7B8C9D0E1F"}, {"occurred_at": None},
    {"action": "auth.login\n"}, {"metadata": {"headers": [["Authorization", "x"]]}},
    {"actor": {"id": "u", "ip": "01.2.3.4"}}, {"actor": {"id": "u", "ip": "1.2.3.256"}},
    {"occurred_at": datetime(999, 12, 31, tzinfo=timezone.utc)}, {"occurred_at": "0999-12-31T00:00:00Z"},
])
def test_sdk_fast_path_leaves_the_rest_to_the_reference(change: dict[str, Any]) -> None:
    """Anything to coerce, normalise, redact or refuse: the fast path declines, so the caller gets the
    reference's answer (its redaction, or its InvalidEventError)."""
    assert not sdk_same({**BASE, **change})


@settings(max_examples=500, deadline=None)
@given(st.one_of(ips, st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){3}", fullmatch=True)), st.text(max_size=3))
def test_sdk_ip_agrees(ip: str, user_agent: str) -> None:
    sdk_same({**BASE, "actor": {"id": "u", "ip": ip, "user_agent": user_agent}})


@settings(max_examples=500, deadline=None)
@given(st.one_of(times(), st.datetimes(timezones=st.just(timezone.utc)), st.datetimes(timezones=st.timezones())))
def test_sdk_occurred_at_agrees(occurred_at: Any) -> None:
    sdk_same({**BASE, "occurred_at": occurred_at})


def test_the_sdk_workload_takes_the_fast_path() -> None:
    """The SDK's speed depends on it: the benchmark's events, as a service passes them, never fall back."""
    for event in generate(2000, seed=5):
        assert sdk_same(event), event


def test_secrets_fall_back_and_are_counted() -> None:
    raw = json.dumps({**BASE, "metadata": {"password": "hunter2", "note": "card 4111 1111 1111 1111"}}).encode()
    assert fast_columns(raw) is None
    columns, count = same(raw)
    assert count == 2 and "hunter2" not in columns["metadata"]


# --- the pieces the shortcut relies on -----------------------------------------------------------


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789 -x\n٣٤"), max_size=40) | st.text(max_size=30))
def test_card_prefilter_never_misses(text: str) -> None:
    if CARD_CANDIDATE.search(text):
        assert _may_hold_card(text)


@settings(max_examples=500, deadline=None)
@given(st.lists(texts | secretish | st.text(alphabet="0123456789 -", max_size=25), max_size=5), REDACTORS)
def test_one_scan_of_joined_strings_never_misses(strings: list[str], redactor: Redactor) -> None:
    if any(redactor.redact_text(s)[1] for s in strings):
        assert redactor.may_redact("\n".join(strings))


@given(keys)
@example("X-Api-Key")
def test_key_cache_agrees(key: str) -> None:
    assert DEFAULT.key_sensitive(key) == key_is_sensitive(key)
    assert CONFIGURED.key_sensitive(key) == key_is_sensitive(key, CONFIGURED.keys)


def test_timezones_agree_across_the_offset_range() -> None:
    for minutes in range(-(23 * 60 + 59), 23 * 60 + 60, 7):
        zone = timezone(timedelta(minutes=minutes))
        at = datetime(2026, 3, 1, 0, 30, 15, 250000, zone)
        same(json.dumps({**BASE, "occurred_at": at.isoformat()}).encode())


# --- the verifier's fast paths: column-wise contents and timestamp text -----------------------------

NULLABLE = {f.name for f in SCHEMA if f.name not in REQUIRED_FOR_EVENTS}
NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')  # what orjson escapes in a string
OCSF = set(OCSF_COLUMNS)
TEXT = st.text(st.characters(codec="utf-8"), max_size=20)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
TIMES = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999),
                     timezones=st.just(timezone.utc))


@st.composite
def rows(draw: st.DrawFn) -> dict[str, object]:
    row: dict[str, object] = {
        "seq": draw(st.integers(1, 2**62)),
        "sealed_at": format_ts(draw(TIMES)),
        "src_offset": draw(st.integers(0, 2**62)),
    }
    for name in EVENT_COLUMNS:
        if name in JSON_COLUMNS:
            value = canonical_text(draw(st.dictionaries(TEXT, JSON, max_size=4)))
        elif name == "occurred_at":
            value = format_ts(draw(TIMES))
        else:
            value = draw(TEXT)
        row[name] = None if name in NULLABLE and draw(st.booleans()) else value
    kind = draw(st.none() | st.sampled_from(["rejected", "duplicate"]))
    row["kind"] = kind
    row["reason"] = draw(TEXT) if kind == "rejected" else None
    row["input_bytes"] = draw(st.integers(0, 2**40)) if kind else None
    row["input_sha256"] = draw(st.from_regex(r"[0-9a-f]{64}", fullmatch=True)) if kind else None
    if kind:  # an accounting row holds no event, but for the event id a duplicate repeats
        for name in EVENT_COLUMNS:
            if name != "event_id" or kind == "rejected":
                row[name] = None
    row["key_id"] = draw(st.none() | st.from_regex(r"ed25519-[0-9a-f]{16}", fullmatch=True))
    return row


def test_hashed_key_order_is_the_sorted_order() -> None:
    assert list(HASHED_ORDER) == sorted(["chain", *CHAIN_COLUMNS, *ROW_COLUMNS, "key_id"])


@settings(max_examples=300, deadline=None)
@given(chain=st.from_regex(r"p[0-9]{3}", fullmatch=True), batch=st.lists(rows(), min_size=1, max_size=6))
def test_fast_contents_equal_hashed_bytes(chain: str, batch: list[dict[str, object]]) -> None:
    columns = {name: [row[name] for row in batch] for name in batch[0]}
    want = [
        hashed_bytes(chain, r["seq"], r["sealed_at"], r["src_offset"], {n: r.get(n) for n in ROW_COLUMNS}, r["key_id"])
        for r in batch
    ]
    assert list(contents_fast(chain, columns, 0, len(batch))) == want
    assert list(row_contents(chain, columns, 0, len(batch))) == want
    assert list(contents_fast(chain, columns, 1, len(batch))) == want[1:]


@settings(max_examples=300, deadline=None)
@given(st.lists(TIMES, min_size=1, max_size=20))
def test_timestamp_text_equals_format_ts_and_text_columns(times: list[datetime]) -> None:
    texts = [format_ts(t) for t in times]
    column = pa.chunked_array([pa.compute.cast(pa.array(texts, pa.string()), TS)])
    assert timestamp_text(column).to_pylist() == texts
    reference = pa.compute.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")  # %S carries the microseconds
    assert reference.to_pylist() == texts
    table = pa.table({"sealed_at": column, "occurred_at": column})
    assert text_columns(table) == {"sealed_at": texts, "occurred_at": texts}


# ---------------------------------------------------------------------------
# the column-wise path: Parquet -> Arrow -> hashed_bytes without Python values per cell


def parquet_of(batch: list[dict[str, object]], dictionary: bool = True) -> bytes:
    """Rows written as the sink's schema (timestamps parsed from their hashed text), seal columns made up."""
    columns: dict[str, list] = {name: [row.get(name) for row in batch] for name in SCHEMA.names}
    columns["row_check"] = [0] * len(batch)
    columns["hash"] = [None] * len(batch)
    columns["signature"] = [None] * len(batch)
    arrays = []
    for field in SCHEMA:
        values = columns[field.name]
        if field.type == TS:
            arrays.append(pa.compute.cast(pa.array(values, pa.string()), TS))
        else:
            arrays.append(pa.array(values, field.type))
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_arrays(arrays, schema=SCHEMA), sink, use_dictionary=dictionary,
                   row_group_size=max(1, len(batch) // 2))
    return sink.getvalue().to_pybytes()


@st.composite
def typed_rows(draw: st.DrawFn) -> dict[str, object]:
    """rows() with the OCSF columns as the int32 values the schema stores."""
    row = draw(rows())
    for name in OCSF_COLUMNS:
        row[name] = draw(st.integers(-(2**31), 2**31 - 1))
    return row


def reference(chain: str, batch: list[dict[str, object]]) -> list[bytes]:
    return [
        hashed_bytes(chain, r["seq"], r["sealed_at"], r["src_offset"], {n: r.get(n) for n in ROW_COLUMNS}, r["key_id"])
        for r in batch
    ]


@settings(max_examples=300, deadline=None)
@given(chain=st.from_regex(r"p[0-9]{3}", fullmatch=True), batch=st.lists(typed_rows(), min_size=1, max_size=8),
       dictionary=st.booleans())
def test_column_wise_contents_equal_hashed_bytes(chain: str, batch: list[dict[str, object]], dictionary: bool) -> None:
    table, _ = read_object(parquet_of(batch, dictionary))
    columns = TableColumns(table, exact_schema=True)
    want = reference(chain, batch)
    assert row_contents(chain, columns, 0, len(batch)) == want
    assert row_contents(chain, columns, 1, len(batch)) == want[1:]
    built = Contents(chain, table)
    plain = [i for i, r in enumerate(batch) if not r.get("kind") and not any(
        isinstance(r[n], str) and NEEDS_ESCAPE.search(r[n]) for n in r if n not in JSON_COLUMNS)]
    if len(plain) == len(batch):
        assert built.build(0, len(batch)) == want
    else:  # a row needing escapes, or an accounting row, is left to the reference
        assert built.build(0, len(batch)) is None
        assert built.escaped == [i for i in range(len(batch)) if i not in plain]
    for i in plain:
        assert built.build(i, i + 1) == [want[i]]


def test_escaped_strings_and_repeated_values_take_the_reference() -> None:
    """Quotes, backslashes and control characters in plain strings; many rows sharing values."""
    base = {"seq": 1, "sealed_at": "2024-03-01T10:00:00.000000Z", "src_offset": 0, "key_id": None}
    for name in EVENT_COLUMNS:
        base[name] = "{}" if name in JSON_COLUMNS else ("2024-03-01T09:00:00.000001Z" if name == "occurred_at"
                                                        else 1 if name in OCSF else "v")
    batch = [{**base, "seq": i + 1, "actor_id": ['a"b', "c\\d", "e\x01f", "plain"][i % 4] if i < 8 else "u"}
             for i in range(300)]
    table, _ = read_object(parquet_of(batch))
    want = reference("p000", batch)
    assert Contents("p000", table).escaped == [0, 1, 2, 4, 5, 6]
    assert row_contents("p000", TableColumns(table, exact_schema=True), 0, len(batch)) == want
    assert Contents("p000", table).build(8, 300) == want[8:]


def test_invalid_utf8_is_left_to_the_reference() -> None:
    """A string cell holding bytes that are not UTF-8: not built column-wise; the reference refuses it too."""
    base = {"seq": 1, "sealed_at": "2024-03-01T10:00:00.000000Z", "src_offset": 0, "key_id": None}
    for name in EVENT_COLUMNS:
        base[name] = "{}" if name in JSON_COLUMNS else ("2024-03-01T09:00:00.000001Z" if name == "occurred_at"
                                                        else 1 if name in OCSF else "v")
    table, _ = read_object(parquet_of([base]))
    bad = pa.array([b"\xff"], pa.binary()).view(pa.string())
    table = table.set_column(table.column_names.index("actor_id"), "actor_id", bad)
    columns = TableColumns(table, exact_schema=True)
    assert columns.contents("p000", 0, 1) is None
    with pytest.raises(UnicodeDecodeError):
        row_contents("p000", columns, 0, 1)


# --- "is orjson's output RFC 8785?": the encoder's check, and the stream's, done in its redaction walk --------

@settings(max_examples=300, deadline=None)
@given(domain_values)
def test_fast_ok_domain_is_taken_and_is_rfc8785(value: object) -> None:
    # in-domain values must take the fast path (else the stream silently runs at rfc8785's speed) ...
    assert _fast_ok(value)
    # ... and there orjson's sorted output must already be the canonical form
    assert orjson.dumps(value, option=orjson.OPT_SORT_KEYS) == rfc8785.dumps(value)
    assert canonical(value) == rfc8785.dumps(value)


@settings(max_examples=300, deadline=None)
@given(encodable)
def test_fast_ok_only_where_orjson_agrees(value: object) -> None:
    if _fast_ok(value):
        assert orjson.dumps(value, option=orjson.OPT_SORT_KEYS) == rfc8785.dumps(value)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(tricky_texts, encodable, max_size=4))
def test_nested_clean_is_fast_ok(value: dict[str, object]) -> None:
    plain = _nested_clean((value,), Redactor.from_rules(cards=False), [])
    if plain is not None:  # None: the reference path decides (sensitive keys, many containers, card-like numbers)
        assert plain == _fast_ok(value)


# --- the OCSF cache: None exactly where the event model refuses the triple --------------------------------------

@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["auth", "change", "admin", "access", "security", "nope", "Auth"]),
       st.from_regex(r"[a-z_.A-Z0-9]{0,12}", fullmatch=True) | st.sampled_from(["auth.login", "data.read", "a." + "b" * 127]),
       st.sampled_from(["success", "failure", "unknown", "ok", ""]))
def test_ocsf_cache_refuses_what_the_model_refuses(category: str, action: str, outcome: str) -> None:
    event = {**BASE, "category": category, "action": action, "outcome": outcome}
    valid = isinstance(validate_reference(orjson.dumps(event), LIMIT)[0], dict)
    assert (ocsf_columns(category, action, outcome) is not None) == valid
