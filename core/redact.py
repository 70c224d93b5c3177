"""Keeping secrets out of the trail: what is immutable for seven years must never hold a password.

Applied in the producer client before an event leaves the process, and again
in the stream for producers in other languages. A redacted value is replaced by
a marker rather than dropped, so an auditor sees that something was there.
Rules: sensitive key names anywhere in before/after/metadata, and values that
look like credentials wherever they appear (JWTs, AWS access key ids, PEM
private keys, bearer tokens, card numbers passing the Luhn check).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sealtrail.event import Event

MARKER = "[REDACTED]"

SENSITIVE_KEYS = re.compile(
    r"(^|[_.\- ])(pass|password|passwd|passphrase|pwd|secret|token|api_?key|authorization|auth_header|cookie"
    r"|set_cookie|session_?id|session_?token|private_?key|credential|card_?number|cc_?number|cvv|cvc|pan|ssn|pin)s?"
    r"($|[_.\- ])"
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def key_is_sensitive(key: str, pattern: re.Pattern[str] = SENSITIVE_KEYS) -> bool:
    """Whole-word match on snake_case, kebab-case or camelCase names ("company" is not "pan")."""
    return pattern.search(_CAMEL.sub("_", key).lower()) is not None
_JWT = r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"
_AWS_KEY = r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"
_PEM = r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)"
_BEARER = r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}"
SECRET_VALUES = re.compile("|".join(f"(?:{p})" for p in (_JWT, _AWS_KEY, _PEM, _BEARER)))
CARD_CANDIDATE = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")


def luhn_ok(digits: str) -> bool:
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
        digits = re.sub(r"[ -]", "", m.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            found += 1
            return MARKER
        return m.group(0)

    return CARD_CANDIDATE.sub(replace, text), found


@dataclass
class Redactor:
    """Configurable rules; ``redact`` returns the cleaned value and how many things it removed."""

    keys: re.Pattern[str] = SENSITIVE_KEYS
    values: re.Pattern[str] = SECRET_VALUES
    cards: bool = True
    allow_keys: frozenset[str] = field(default_factory=frozenset)

    def redact_text(self, text: str) -> tuple[str, int]:
        count = 0
        if self.values.search(text):
            text, n = self.values.subn(MARKER, text)
            count += n
        if self.cards and any(c.isdigit() for c in text):
            text, n = _mask_cards(text)
            count += n
        return text, count

    def redact(self, value: Any) -> tuple[Any, int]:
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            out, count = {}, 0
            for k, v in value.items():
                if isinstance(k, str) and k not in self.allow_keys and key_is_sensitive(k, self.keys) and v not in (None, ""):
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


DEFAULT = Redactor()


def redact_event(event: Event, redactor: Redactor = DEFAULT) -> tuple[Event, int]:
    """The event with secrets in before/after/metadata replaced by the marker, and how many."""
    parts = {"before": event.before, "after": event.after, "metadata": event.metadata}
    cleaned, count = redactor.redact(parts)
    return (event.model_copy(update=cleaned) if count else event), count
