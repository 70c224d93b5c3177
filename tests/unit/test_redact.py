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
             "xoxp-123456789012", "-----BEGIN PRIVATE KEY-----", "Token zzzzzzzzzz", VISA, "plain words", "eyJ", "://"]


@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=6).map(" ".join))
def test_literal_hints_never_hide_a_builtin_match(text: str) -> None:
    """The fast path (scan for hints first) redacts exactly what the full patterns alone redact."""
    assert DEFAULT.redact_text(text) == Redactor(hints=None).redact_text(text)
