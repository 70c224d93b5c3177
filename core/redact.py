"""Keeping secrets out of the trail: what is immutable for seven years must never hold a password.

Applied in the producer client before an event leaves the process, and again
in the stream for producers in other languages. A redacted value is replaced by
a marker rather than dropped, so an auditor sees that something was there.

Two kinds of rule, both applied everywhere in an event:

- key names: a sensitive name (password, token, secret, api_key,
  authorization, cookie, session_id, private_key, card_number, ...) anywhere in
  before/after/metadata, at any depth, matched as a whole word in any case
  style (``apiKey``, ``X-Api-Key``, ``db.password``; "company" is not "pan");
- value patterns: JWTs, AWS access key ids, PEM private keys, bearer/basic
  credentials, passwords inside URLs (``scheme://user:pw@host``) and query
  strings (``password=...``), well-known token formats (GitHub, Slack, Stripe,
  Google), and card numbers that pass the Luhn check, wherever they appear:
  nested values, metadata, and the envelope's free-text fields (actor id and
  user agent, resource, request id).

The rules are configurable (``Settings.redaction``: more key words, more
value patterns, keys to allow, cards on or off) on top of the built-ins,
which cannot be switched off by a typo in a config file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sealtrail.event import Event

if TYPE_CHECKING:
    from sealtrail.config import RedactionSettings

MARKER = "[REDACTED]"

SENSITIVE_WORDS: tuple[str, ...] = (
    "pass", "password", "passwd", "passphrase", "pwd", "secret", "token", "api_?key", "apikey", "authorization",
    "auth_header", "cookie", "set_cookie", "session_?id", "session_?token", "sessid", "private_?key",
    "credential", "card_?number", "cc_?number", "cvv", "cvc", "pan", "ssn", "pin", "access_?key", "secret_?key",
    "client_?secret", "refresh_?token", "access_?token", "id_?token", "otp", "totp_?secret", "mfa_?secret",
)


def key_pattern(words: Iterable[str]) -> re.Pattern[str]:
    """Whole words of a normalised key (snake_case; dots, dashes and spaces are separators too)."""
    alternation = "|".join(words)
    return re.compile(rf"(^|[_.\- ])({alternation})s?($|[_.\- ])")


SENSITIVE_KEYS = key_pattern(SENSITIVE_WORDS)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


_SEPARATORS = re.compile(r"[.\- ]")
_KEY_CACHE_SIZE = 8192


@lru_cache(maxsize=8192)
def key_is_sensitive(key: str, pattern: re.Pattern[str] = SENSITIVE_KEYS) -> bool:
    """Whole-word match on snake_case, kebab-case or camelCase names ("company" is not "pan").

    Cached: the same few hundred key names recur in every event.
    """
    return pattern.search(_SEPARATORS.sub("_", _CAMEL.sub("_", key).lower())) is not None


_JWT = r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"
_AWS_KEY = r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"
_PEM = r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
_BEARER = r"\b(?:Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{8,}"
_URL_CREDENTIALS = r"(?<=://)[^/\s:@]{1,256}:[^/\s@]{1,256}(?=@)"
_QUERY_SECRET = r"(?i:\b(?:password|passwd|pwd|secret|token|api_?key|access_token|client_secret)=[^&\s\"']+)"
_KNOWN_TOKENS = (
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"  # GitHub
    r"|\bgithub_pat_[A-Za-z0-9_]{40,}\b"
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}\b"  # Slack
    r"|\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}\b"  # Stripe
    r"|\bAIza[0-9A-Za-z_-]{35}\b"  # Google API keys
)
BUILTIN_PATTERNS: tuple[str, ...] = (_JWT, _AWS_KEY, _PEM, _BEARER, _URL_CREDENTIALS, _QUERY_SECRET, _KNOWN_TOKENS)


def value_pattern(patterns: Iterable[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


SECRET_VALUES = value_pattern(BUILTIN_PATTERNS)
# A literal each built-in pattern cannot match without: one scan for these is several times
# cheaper than the full alternation (whose lookbehind and case-insensitive group defeat the
# regex engine's own prefix search), and almost every string in an event has none of them.
SECRET_HINTS = re.compile(
    r"eyJ|AKIA|ASIA|AGPA|AIDA|AROA|ANPA|PRIVATE KEY|Bearer|Basic|Token|://|=|gh[pousr]_|github_pat_|xox|_live_|_test_|AIza"
)
CARD_CANDIDATE = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_CARD_SEPARATORS = re.compile(r"[ -]")


_DIGITS_AS_ZERO = bytes(48 if 48 <= i <= 57 else 120 for i in range(256))  # b"0" for a digit, b"x" for the rest
_THIRTEEN_DIGITS = b"0" * 13


def _may_hold_card(text: str) -> bool:
    """False only when CARD_CANDIDATE cannot match text; a byte scan several times cheaper than the regex.

    A candidate is at least 13 digits with single spaces or dashes between:
    with every space and dash deleted, 13 digits in a row. Other digits than
    ASCII's (which the regex's \\d also takes) go to the regex itself.
    """
    if not text.isascii():
        return CARD_CANDIDATE.search(text) is not None
    return _THIRTEEN_DIGITS in text.encode().translate(_DIGITS_AS_ZERO, b" -")


def luhn_ok(digits: str) -> bool:
    """The Luhn check digit test: true for every valid card number, and for 1 in 10 random digit strings."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _mask_cards(text: str) -> tuple[str, int]:
    found = 0

    def replace(m: re.Match[str]) -> str:
        nonlocal found
        digits = _CARD_SEPARATORS.sub("", m.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            found += 1
            return MARKER
        return m.group(0)

    return CARD_CANDIDATE.sub(replace, text), found


@dataclass(frozen=True)
class Redactor:
    """Configurable rules; ``redact`` returns the cleaned value and how many things it removed."""

    keys: re.Pattern[str] = SENSITIVE_KEYS
    values: re.Pattern[str] = SECRET_VALUES
    cards: bool = True
    allow_keys: frozenset[str] = field(default_factory=frozenset)
    hints: re.Pattern[str] | None = SECRET_HINTS  # None: always run `values` (custom patterns have no known hint)
    extra_values: re.Pattern[str] | None = None
    # key name -> sensitive? Per instance, since hashing a compiled pattern (key_is_sensitive's cache key)
    # hashes its whole program and cost more than the match it saves.
    _key_cache: dict[str, bool] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_rules(
        cls,
        *,
        extra_keys: Iterable[str] = (),
        extra_patterns: Iterable[str] = (),
        allow_keys: Iterable[str] = (),
        cards: bool = True,
    ) -> Redactor:
        """The built-in rules plus these: key words are literal names, patterns are regular expressions."""
        words = (*SENSITIVE_WORDS, *(re.escape(_SEPARATORS.sub("_", _CAMEL.sub("_", k).lower())) for k in extra_keys))
        extra = tuple(extra_patterns)
        try:
            extra_values = value_pattern(extra) if extra else None
        except re.error as e:
            from sealtrail.errors import ConfigError

            raise ConfigError("redaction.extra_patterns", f"not a regular expression: {e}") from e
        return cls(keys=key_pattern(words), cards=cards, allow_keys=frozenset(allow_keys), extra_values=extra_values)

    @classmethod
    def from_settings(cls, rules: RedactionSettings) -> Redactor:
        return _from_settings(rules)

    def redact_text(self, text: str) -> tuple[str, int]:
        count = 0
        if (self.hints is None or self.hints.search(text)) and self.values.search(text):
            text, n = self.values.subn(MARKER, text)
            count += n
        if self.extra_values is not None and self.extra_values.search(text):
            text, n = self.extra_values.subn(MARKER, text)
            count += n
        if self.cards and CARD_CANDIDATE.search(text):
            text, n = _mask_cards(text)
            count += n
        return text, count

    def key_sensitive(self, key: str) -> bool:
        """key_is_sensitive(key, self.keys), remembered for the few hundred names that recur."""
        cache = self._key_cache
        found = cache.get(key)
        if found is None:
            if len(cache) >= _KEY_CACHE_SIZE:
                cache.clear()  # producers choose key names: never let them grow this without bound
            found = cache[key] = key_is_sensitive.__wrapped__(key, self.keys)
        return found

    def may_redact(self, text: str) -> bool:
        """False only when redact_text finds nothing in any line of text.

        One scan of several strings joined by newlines clears them all at
        once: the hints are literals without a newline, and a newline is
        neither a digit nor a separator of a card number, whose word
        boundaries are the same next to it as at the end of a string. Custom
        patterns can be anchored, so with them each string is checked alone.
        """
        if self.hints is None or self.extra_values is not None or self.hints.search(text):
            return True
        return self.cards and _may_hold_card(text)

    def redact(self, value: Any) -> tuple[Any, int]:
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            out, count = {}, 0
            for k, v in value.items():
                if (
                    isinstance(k, str)
                    and k not in self.allow_keys
                    and v not in (None, "", MARKER)
                    and self.key_sensitive(k)
                ):
                    out[k] = MARKER
                    count += 1
                else:
                    out[k], n = self.redact(v)
                    count += n
            return out, count
        if isinstance(value, list):
            items, count = [], 0
            for v in value:
                cleaned, n = self.redact(v)
                items.append(cleaned)
                count += n
            return items, count
        return value, 0


@lru_cache(maxsize=32)
def _from_settings(rules: RedactionSettings) -> Redactor:
    return Redactor.from_rules(
        extra_keys=rules.extra_keys, extra_patterns=rules.extra_patterns, allow_keys=rules.allow_keys, cards=rules.cards
    )


DEFAULT = Redactor()


def _redact_envelope(event: Event, redactor: Redactor) -> tuple[dict[str, Any], int]:
    """Value patterns over the envelope's free-text fields (a token pasted into a user agent or a resource id)."""
    update: dict[str, Any] = {}
    count = 0
    actor_changes = {}
    for name in ("id", "user_agent"):
        text = getattr(event.actor, name)
        if text:
            cleaned, n = redactor.redact_text(text)
            if n:
                actor_changes[name] = cleaned
                count += n
    if actor_changes:
        update["actor"] = event.actor.model_copy(update=actor_changes)
    if event.resource is not None:
        resource_changes = {}
        for name in ("type", "id"):
            cleaned, n = redactor.redact_text(getattr(event.resource, name))
            if n:
                resource_changes[name] = cleaned
                count += n
        if resource_changes:
            update["resource"] = event.resource.model_copy(update=resource_changes)
    if event.request_id:
        cleaned, n = redactor.redact_text(event.request_id)
        if n:
            update["request_id"] = cleaned
            count += n
    return update, count


def redact_event(event: Event, redactor: Redactor = DEFAULT) -> tuple[Event, int]:
    """The event with secrets anywhere in it replaced by the marker, and how many were replaced."""
    parts = {"before": event.before, "after": event.after, "metadata": event.metadata}
    cleaned, count = redactor.redact(parts)
    envelope, n = _redact_envelope(event, redactor)
    if n:
        cleaned.update(envelope)
        count += n
    return (event.model_copy(update=cleaned) if count else event), count
