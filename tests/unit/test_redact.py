"""sealtrail.redact: no secret reaches the trail, by key name or by value, and the marker shows where one was."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealtrail.config import RedactionSettings, load_settings
from sealtrail.errors import ConfigError
from sealtrail.event import Event
from sealtrail.redact import DEFAULT, MARKER, Redactor, key_is_sensitive, luhn_ok, redact_event

VISA = "4111 1111 1111 1111"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"


def luhn_reference(number: str) -> bool:
    """Straight from the definition: double every second digit from the right, sum the digits, mod 10."""
    digits = [int(c) for c in number]
    checksum = 0
    for position, digit in enumerate(reversed(digits), start=1):
        if position % 2 == 0:
            checksum += sum(int(c) for c in str(digit * 2))
        else:
            checksum += digit
    return checksum % 10 == 0


def with_check_digit(body: str) -> str:
    return next(body + d for d in "0123456789" if luhn_reference(body + d))


@given(st.text(alphabet="0123456789", min_size=1, max_size=40))
def test_luhn_matches_reference(number: str) -> None:
    assert luhn_ok(number) == luhn_reference(number)


@given(st.text(alphabet="0123456789", min_size=12, max_size=18), st.sampled_from(["", " ", "-"]))
def test_every_luhn_valid_card_number_is_redacted(body: str, sep: str) -> None:
    number = with_check_digit(body)
    grouped = sep.join(number[i : i + 4] for i in range(0, len(number), 4))
    cleaned, n = DEFAULT.redact({"note": f"paid with {grouped} today"})
    assert grouped not in cleaned["note"] and n == 1
    assert cleaned["note"] == f"paid with {MARKER} today"


@given(st.text(alphabet="0123456789", min_size=13, max_size=19))
def test_digit_runs_failing_luhn_are_kept(number: str) -> None:
    if luhn_reference(number):
        return
    assert DEFAULT.redact({"order": number}) == ({"order": number}, 0)


@pytest.mark.parametrize(
    "key",
    ["password", "Password", "user_password", "db.password", "apiKey", "X-Api-Key", "api_key", "Authorization",
     "set-cookie", "sessionId", "session_token", "private_key", "clientSecret", "refresh_token", "card_number",
     "cvv", "aws_secret_access_key", "accessToken", "passwords"],
)
def test_sensitive_key_names(key: str) -> None:
    assert key_is_sensitive(key)


@pytest.mark.parametrize("key", ["company", "username", "passenger", "spin", "tokenizer_name", "description", "compass"])
def test_ordinary_key_names(key: str) -> None:
    assert not key_is_sensitive(key)


def test_keys_redacted_at_any_depth_and_the_field_is_kept() -> None:
    value = {
        "user": {"name": "alice", "credentials": {"password": "hunter2"}},
        "headers": [{"Authorization": "xyz"}, {"Accept": "text/html"}],
        "empty_password": "",
        "nothing": None,
    }
    cleaned, n = DEFAULT.redact(value)
    assert cleaned == {
        "user": {"name": "alice", "credentials": MARKER},
        "headers": [{"Authorization": MARKER}, {"Accept": "text/html"}],
        "empty_password": "",
        "nothing": None,
    }
    assert n == 2


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"token {JWT} seen", JWT),
        ("key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----", "MIIB"),
        ("header Bearer abcdefgh12345678", "abcdefgh12345678"),
        ("dsn postgresql://app:s3cr3t@db:5432/x", "s3cr3t"),
        ("GET /cb?code=1&password=hunter2&x=1", "hunter2"),
        ("ghp_" + "a" * 36, "ghp_"),
        ("slack xoxb-1234567890-abcdef", "xoxb-"),
        ("stripe sk_live_" + "a1" * 12, "sk_live_"),
    ],
)
def test_secret_values_anywhere(text: str, secret: str) -> None:
    cleaned, n = DEFAULT.redact({"metadata": {"deep": [text]}})
    assert secret not in cleaned["metadata"]["deep"][0]
    assert MARKER in cleaned["metadata"]["deep"][0]
    assert n >= 1


def test_redaction_is_idempotent() -> None:
    once, n = DEFAULT.redact({"password": "x", "note": f"card {VISA}"})
    twice, m = DEFAULT.redact(once)
    assert twice == once and n == 2 and m == 0


def make_event(**changes: object) -> Event:
    data = {
        "event_id": str(uuid.uuid4()),
        "occurred_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "category": "auth",
        "action": "auth.login",
        "actor": {"id": "alice", "user_agent": "curl/8"},
        "tenant": "acme",
        "source": "web",
    } | changes
    return Event.model_validate(data)


def test_event_envelope_free_text_is_checked_too() -> None:
    event = make_event(
        actor={"id": "alice", "user_agent": f"curl/8 Bearer {JWT}"},
        resource={"type": "session", "id": JWT},
        request_id=f"req {JWT}",
        after={"api_key": "k", "nested": {"card": VISA}},
        metadata={"authorization": "Basic dXNlcjpwYXNzd29yZA=="},
    )
    cleaned, n = redact_event(event)
    dumped = cleaned.model_dump_json()
    assert JWT not in dumped and "dXNlcjpwYXNzd29yZA" not in dumped and "4111" not in dumped
    assert cleaned.resource is not None and cleaned.resource.id == MARKER
    assert cleaned.after == {"api_key": MARKER, "nested": {"card": MARKER}}
    assert n == 6


def test_clean_event_is_returned_unchanged() -> None:
    event = make_event(metadata={"method": "password"})
    assert redact_event(event) == (event, 0)


def test_configured_rules_add_to_the_builtins() -> None:
    redactor = Redactor.from_settings(
        RedactionSettings(extra_keys=("tax_id", "motherMaidenName"), extra_patterns=(r"\bEMP-\d{6}\b",),
                          allow_keys=("token_count",), cards=False)
    )
    cleaned, n = redactor.redact(
        {"taxId": "123", "mother_maiden_name": "x", "note": "badge EMP-123456", "token_count": 17,
         "password": "still", "card": VISA}
    )
    assert cleaned == {"taxId": MARKER, "mother_maiden_name": MARKER, "note": f"badge {MARKER}",
                       "token_count": 17, "password": MARKER, "card": VISA}
    assert n == 4


def test_bad_pattern_in_settings_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALTRAIL_REDACTION__EXTRA_PATTERNS", '["(unclosed"]')
    with pytest.raises(ConfigError, match="redaction.extra_patterns"):
        load_settings({"home": "/nonexistent-sealtrail-home"})


FRAGMENTS = [JWT, "AKIAIOSFODNN7EXAMPLE", "Bearer abcdefgh1234", "https://u:p@h/", "a=b", "password=x", "ghp_" + "b" * 36,
             "xoxp-123456789012", "-----BEGIN PRIVATE KEY-----", "Token zzzzzzzzzz", VISA, "plain words", "eyJ", "://",
             "password: x", '"Authorization" : "x"', '\\"apiKey\\":\\"k', "bearer abcdefgh12", "BASIC zzzzzzzzzz",
             "PuTTY-User-Key-File-2: x", "-----BEGIN PGP PRIVATE KEY BLOCK-----", "#id_token=x", "&code=1",
             "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "4111.1111.1111.1111", "card4111111111111111"]


@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=6).map(" ".join))
def test_literal_hints_never_hide_a_builtin_match(text: str) -> None:
    """The fast path (scan for hints first) redacts exactly what the full patterns alone redact."""
    assert DEFAULT.redact_text(text) == Redactor(hints=None).redact_text(text)


# --- the review's M7 table: each gap through the client (prepare) and the stream (validate_counted) ---------

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PGP = "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGV0ZXN0AQgA\n-----END PGP PRIVATE KEY BLOCK-----"
PPK = ("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: ops\nPublic-Lines: 2\nAAAAC3NzaC1lZDI1NTE5\n"
       "Private-Lines: 1\nAAAAIGZha2Vwcml2YXRla2V5\nPrivate-MAC: 4f2a9c")
LUHN_16 = 4111111111111111

GAPS = [
    # (name of the gap, metadata, the secret that must not survive)
    ("key pw", {"pw": "s3cr3t-1"}, "s3cr3t-1"),
    ("key auth", {"auth": "s3cr3t-2"}, "s3cr3t-2"),
    ("key jwt", {"jwt": "s3cr3t-3"}, "s3cr3t-3"),
    ("key creds", {"creds": {"user": "u", "pass": "s3cr3t-4"}}, "s3cr3t-4"),
    ("key bearer", {"bearer": "s3cr3t-5"}, "s3cr3t-5"),
    ("key salt", {"salt": "s3cr3t-6"}, "s3cr3t-6"),
    ("key dsn", {"dsn": "s3cr3t-7"}, "s3cr3t-7"),
    ("key connection string", {"connectionString": "s3cr3t-8", "conn_str": "s3cr3t-8"}, "s3cr3t-8"),
    ("key with a digit", {"password1": "s3cr3t-9"}, "s3cr3t-9"),
    ("key as a form field", {"user[password]": "s3cr3t-10"}, "s3cr3t-10"),
    ("key with a colon", {"password:": "s3cr3t-11"}, "s3cr3t-11"),
    ("key in capitals, one word", {"XAPIKEY": "s3cr3t-12"}, "s3cr3t-12"),
    ("key with a Cyrillic a", {"p\u0430ssword": "s3cr3t-13"}, "s3cr3t-13"),
    ("key in full-width letters", {"\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44": "s3cr3t-14"}, "s3cr3t-14"),
    ("header list pairs", {"headers": [["Cookie", "sid=s3cr3t-session"], ["X-Api-Key", "k-8c1f0e9a7b"]]},
     "s3cr3t-session"),
    ("header list pairs (second)", {"headers": [["Accept", "*/*"], ["X-Api-Key", "k-8c1f0e9a7b"]]}, "k-8c1f0e9a7b"),
    ("HAR headers", {"headers": [{"name": "Authorization", "value": "s3cr3t-15"}]}, "s3cr3t-15"),
    ("lower-case bearer", {"note": "authorization: bearer 8c1f0e9a7b6d5c4e"}, "8c1f0e9a7b6d5c4e"),
    ("upper-case bearer", {"note": "BEARER 8c1f0e9a7b6d5c4e"}, "8c1f0e9a7b6d5c4e"),
    ("JSON text", {"body": '{"user":"alice","password":"hunter2"}'}, "hunter2"),
    ("JSON text in a list", {"body": '[{"token": "s3cr3t-16"}]'}, "s3cr3t-16"),
    ("JSON-like text that does not parse", {"body": '{"user":"alice","password":"hunter2", trunc'}, "hunter2"),
    ("prose", {"note": "login with password: hunter2"}, "hunter2"),
    ("refresh_token", {"url": "https://x/cb?refresh_token=s3cr3t-17&x=1"}, "s3cr3t-17"),
    ("id_token in a fragment", {"url": "https://x/cb#id_token=s3cr3t-18"}, "s3cr3t-18"),
    ("OAuth code", {"url": "https://x/cb?code=s3cr3t-19&state=1"}, "s3cr3t-19"),
    ("presigned URL", {"url": "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIDEXAMPLE%2F20260101&"
                              "X-Amz-Signature=9a8b7c6d5e4f3a2b1c0d"}, "9a8b7c6d5e4f3a2b1c0d"),
    ("presigned URL credential", {"url": "https://b/k?X-Amz-Credential=AKIDEXAMPLE%2F20260101"}, "AKIDEXAMPLE"),
    ("AWS secret next to its key id", {"env": f"AKIAIOSFODNN7EXAMPLE {AWS_SECRET}"}, AWS_SECRET),
    ("PGP private key", {"file": PGP}, "lQOYBGV0ZXN0AQgA"),
    ("PuTTY key file", {"file": PPK}, "AAAAIGZha2Vwcml2YXRla2V5"),
    ("card as a JSON number", {"number": LUHN_16}, str(LUHN_16)),
    ("card after a word", {"note": "card4111111111111111"}, "4111111111111111"),
    ("card with dots", {"note": "4111.1111.1111.1111"}, "4111.1111.1111.1111"),
    ("JWT used as a key", {"sessions": {JWT: "active"}}, JWT),
    ("AWS key id used as a key", {"by_key_id": {"AKIAIOSFODNN7EXAMPLE": "owner"}}, "AKIAIOSFODNN7EXAMPLE"),
]


def both_passes(event: dict) -> list[str]:
    """The event as the client would send it and as the stream would seal it from a raw producer."""
    import orjson

    from sealtrail.producers.outbound import encode, prepare
    from sealtrail.stream.validate import validate_counted

    base = {"event_id": str(uuid.uuid4()), "occurred_at": "2026-01-01T00:00:00Z", "category": "auth",
            "action": "auth.login", "actor": {"id": "alice"}, "tenant": "acme", "source": "web"}
    raw = orjson.dumps({**base, **event})
    client = encode(prepare(orjson.loads(raw))).decode()
    sealed, _ = validate_counted(raw, 1 << 20)
    assert isinstance(sealed, dict), sealed
    return [client, orjson.dumps(sealed).decode()]


@pytest.mark.parametrize(("gap", "metadata", "secret"), GAPS, ids=[g for g, _, _ in GAPS])
def test_review_gap_is_closed_in_both_passes(gap: str, metadata: dict, secret: str) -> None:
    for text in both_passes({"metadata": metadata}):
        assert secret not in text and MARKER in text


@pytest.mark.parametrize("field", ["tenant", "source"])
@pytest.mark.parametrize("secret", [JWT, "AKIAIOSFODNN7EXAMPLE"])
def test_tenant_and_source_are_scanned(field: str, secret: str) -> None:
    for text in both_passes({field: secret}):
        assert secret not in text and MARKER in text


def test_json_text_is_written_back_as_json_with_only_the_secret_replaced() -> None:
    import orjson

    cleaned, n = DEFAULT.redact({"body": '{"user": "alice", "password": "hunter2", "n": [1, 2]}'})
    assert n == 1 and orjson.loads(cleaned["body"]) == {"user": "alice", "password": MARKER, "n": [1, 2]}
    untouched = '{"user": "alice",  "n": [1, 2]}'
    assert DEFAULT.redact({"body": untouched}) == ({"body": untouched}, 0)  # unchanged text stays byte for byte


def test_deep_json_text_is_redacted_as_text_without_recursing() -> None:
    deep = '{"a":' * 5000 + '"password: hunter2"' + "}" * 5000
    cleaned, n = DEFAULT.redact({"body": deep})
    assert n == 1 and "hunter2" not in cleaned["body"]


def test_secret_keys_that_collide_stay_apart() -> None:
    other = JWT.replace("c2ln", "b3Ro")
    cleaned, n = DEFAULT.redact({"sessions": {JWT: "a", other: "b"}})
    assert n == 2 and cleaned == {"sessions": {MARKER: "a", f"{MARKER}#2": "b"}}


@pytest.mark.parametrize(
    "value",
    [
        {"headers": [["Accept", "text/html"], ["X-Trace", "abc"]]},  # header pairs with ordinary names
        {"tags": ["auth", "login"]},  # two tags are not a header pair
        {"name": "retries", "value": 3},
        {"count": 4111111111111110, "ts": 1_700_000_000_000},  # Luhn fails / too short for a card
        {"sha": "ab4111111111111111cd", "version": "1.2.3.4"},  # digits inside a hex id, a version
        {"note": "password reset requested", "method": "password"},
        {"body": '{"user": "alice"}'},
        {"compass": 1, "spin": 2, "passenger": 3, "tokenizer_name": "bpe", "description": "x"},
        {"signature": {"status": "good"}},  # the git producer's signature status is not a secret
    ],
)
def test_ordinary_values_are_kept(value: dict) -> None:
    assert DEFAULT.redact(value) == (value, 0)


def test_json_text_nested_in_json_text_is_bounded() -> None:
    """Each level is a string of JSON holding the next: parsed three levels deep, then scanned as text."""
    import orjson

    inner: object = {"password": "hunter2"}
    for _ in range(12):  # the text about doubles at each level (every quote and backslash escaped again)
        inner = {"a": orjson.dumps(inner).decode()}
    cleaned, n = DEFAULT.redact(inner)
    assert n == 1 and "hunter2" not in orjson.dumps(cleaned).decode()
