"""Keeping secrets out of the trail: what is immutable for seven years must never hold a password.

Applied in the producer client before an event leaves the process, and again
in the stream for producers in other languages. A redacted value is replaced by
a marker rather than dropped, so an auditor sees that something was there.

Two kinds of rule, both applied everywhere in an event:

- key names: a sensitive name (password, pw, token, secret, api_key, auth,
  authorization, jwt, creds, bearer, salt, dsn, connection string, cookie,
  session_id, private_key, card_number, ...) anywhere in before/after/metadata,
  at any depth, matched as a whole word in any case style (``apiKey``,
  ``X-Api-Key``, ``db.password``, ``user[password]``, ``password:``,
  ``password1``; "company" is not "pan"), as the end of a one-word name
  (``XAPIKEY``, ``dbpassword``), and through look-alike letters
  (``p\u0430ssword`` with a Cyrillic a, full-width forms). The same names
  work for header lists: ``[name, value]`` pairs inside a list, and
  ``{"name": ..., "value": ...}`` entries (HAR, Kubernetes env);
- value patterns: JWTs, AWS access key ids (and a 40-character secret key
  next to one), PEM, PGP and OpenSSH private keys, PuTTY key files,
  bearer/basic/token credentials in any case, passwords inside URLs
  (``scheme://user:pw@host``), secret query and fragment parameters
  (``password=``, ``refresh_token=``, ``id_token=``, ``code=``,
  ``X-Amz-Signature=``, ...), ``password: ...`` in prose and ``"password":
  "..."`` in JSON-like text, well-known token formats (GitHub, Slack, Stripe,
  Google), and card numbers that pass the Luhn check (in text, with spaces,
  dashes or dots, and as JSON integers), wherever they appear: nested values,
  dict keys (a token used as a key is replaced), metadata, and the
  envelope's free-text fields (actor id and user agent, resource, tenant,
  source, request id). A string that holds a JSON object or array is parsed
  and redacted by both rules, then written back as JSON.

Out of reach: base64- or URL-encoded secrets, and secrets split over strings.

The rules are configurable (``Settings.redaction``: more key words, more
value patterns, keys to allow, cards on or off) on top of the built-ins,
which cannot be switched off by a typo in a config file.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson

from sealtrail.event import Event

if TYPE_CHECKING:
    from sealtrail.config import RedactionSettings

MARKER = "[REDACTED]"

SENSITIVE_WORDS: tuple[str, ...] = (
    "pass", "password", "passwd", "passphrase", "pwd", "secret", "token", "api_?key", "apikey", "authorization",
    "auth_header", "cookie", "set_cookie", "session_?id", "session_?token", "sessid", "private_?key",
    "credential", "card_?number", "cc_?number", "cvv", "cvc", "pan", "ssn", "pin", "access_?key", "secret_?key",
    "client_?secret", "refresh_?token", "access_?token", "id_?token", "otp", "totp_?secret", "mfa_?secret",
    "pw", "auth", "jwt", "creds", "bearer", "salt", "dsn", "conn_?str(?:ing)?", "connection_?str(?:ing)?",
)
# A name of one word (no separator, no case change) that ends in one of these is sensitive too: XAPIKEY,
# dbpassword. Long words only, so "compass" is not "pass".
SUFFIX_WORDS: tuple[str, ...] = (
    "password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey", "secretkey", "privatekey",
    "authorization", "credential", "credentials", "cookie", "sessionid",
)


def key_pattern(words: Iterable[str]) -> re.Pattern[str]:
    """Whole words of a normalised key (snake_case; dots, dashes, spaces, brackets and colons are separators
    too), a plural s and trailing digits allowed; or a one-word key ending in a SUFFIX_WORDS word."""
    alternation = "|".join(words)
    suffixes = "|".join(SUFFIX_WORDS)
    return re.compile(rf"(^|[_.\- ])({alternation})s?[0-9]*($|[_.\- ])|^[a-z0-9]*(?:{suffixes})s?[0-9]*$")


SENSITIVE_KEYS = key_pattern(SENSITIVE_WORDS)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


_SEPARATORS = re.compile(r"[.\- \[\]:]")
_KEY_CACHE_SIZE = 8192


def _ascii_letter(char: str) -> str:
    """The ASCII letter or digit char looks like (Unicode's confusables), else char itself."""
    from confusable_homoglyphs.confusables import confusables_data  # 0.9 MB of tables: only for non-ASCII keys

    for glyph in confusables_data.get(char, ()):
        if glyph["c"].isascii() and glyph["c"].isalnum() and len(glyph["c"]) == 1:
            return glyph["c"]
    return char


def skeleton(key: str) -> str:
    """key with full-width and compatibility forms folded (NFKC) and look-alike letters made ASCII."""
    folded = unicodedata.normalize("NFKC", key)
    return folded if folded.isascii() else "".join(c if c.isascii() else _ascii_letter(c) for c in folded)


def normalised_key(key: str) -> str:
    return _SEPARATORS.sub("_", _CAMEL.sub("_", key).lower())


@lru_cache(maxsize=8192)
def key_is_sensitive(key: str, pattern: re.Pattern[str] = SENSITIVE_KEYS) -> bool:
    """Whole-word match on snake_case, kebab-case or camelCase names ("company" is not "pan").

    Cached: the same few hundred key names recur in every event.
    """
    if pattern.search(normalised_key(key)) is not None:
        return True
    return not key.isascii() and pattern.search(normalised_key(skeleton(key))) is not None


_JWT = r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"
_AWS_KEY = r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"
# PEM (RSA, EC, PKCS#8, OPENSSH), PGP armour (PRIVATE KEY BLOCK), PuTTY's .ppk
_PEM = (r"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----|$)"
        r"|PuTTY-User-Key-File-[0-9]+:[\s\S]*?(?:Private-MAC: *[0-9A-Fa-f]+|$)")
_BEARER = r"(?i:\b(?:Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{8,})"
_URL_CREDENTIALS = r"(?<=://)[^/\s:@]{1,256}:[^/\s@]{1,256}(?=@)"
_QUERY_SECRET = (r"(?i:\b(?:password|passwd|pwd|secret|token|api_?key|access_token|client_secret|refresh_token"
                 r"|id_token|code|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token)=[^&#\s\"']+)")
_SECRET_NAMES = (r"password|passwd|passphrase|pwd|secret|client_?secret|secret_?access_?key|api_?key|apikey"
                 r"|private_?key|access_?token|refresh_?token|auth_?token")
_PROSE_SECRET = rf"(?i:\b(?:{_SECRET_NAMES})\s*[:=]\s*[^\s&\"',;]+)"  # login with password: hunter2
# "password": "..." in JSON that does not parse, or that is escaped inside a string of JSON (\"password\": ...)
_QUOTED_SECRET = (rf'(?i:"(?:{_SECRET_NAMES}|token|authorization)"\s*:\s*"(?:[^"\\]|\\.)*"'
                  rf'|\\+"(?:{_SECRET_NAMES}|token|authorization)\\+"\s*:\s*\\+"(?:[^"\\]|\\+[^"\\])*)')
_KNOWN_TOKENS = (
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"  # GitHub
    r"|\bgithub_pat_[A-Za-z0-9_]{40,}\b"
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}\b"  # Slack
    r"|\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}\b"  # Stripe
    r"|\bAIza[0-9A-Za-z_-]{35}\b"  # Google API keys
)
BUILTIN_PATTERNS: tuple[str, ...] = (
    _JWT, _AWS_KEY, _PEM, _BEARER, _URL_CREDENTIALS, _QUERY_SECRET, _PROSE_SECRET, _QUOTED_SECRET, _KNOWN_TOKENS,
)
AWS_KEY_ID = re.compile(_AWS_KEY)
# an AWS secret access key: 40 base64 characters, redacted where an access key id is in the same text
AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")


def value_pattern(patterns: Iterable[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


SECRET_VALUES = value_pattern(BUILTIN_PATTERNS)
# A literal each built-in pattern cannot match without: one scan for these is several times
# cheaper than the full alternation (whose lookbehind and case-insensitive group defeat the
# regex engine's own prefix search), and almost every string in an event has none of them.
SECRET_HINTS = re.compile(
    r"eyJ|AKIA|ASIA|AGPA|AIDA|AROA|ANPA|PRIVATE KEY|PuTTY-User|://|=|gh[pousr]_|github_pat_|xox|_live_|_test_|AIza"
)
# The case-insensitive hints, matched against the lower-cased text once it holds one of their words
# (Redactor._hinted): a (?i:...) group in SECRET_HINTS would make every scan about ten times slower.
LOWER_HINTS = re.compile(
    r"(?:bearer|basic|token)\s"  # a credential after its scheme, in any case
    r"|(?:pass|pwd|secret|api_?key|private_?key|token|authorization)[a-z_]*\\*\"?\s*[:=]"  # password: x, "token": "x"
)
# 13 to 19 digits, single spaces or dashes between, or four groups of four with dots; not inside a longer
# run of digits, nor after two hex digits (a hash or an id), but after a word such as "card".
CARD_CANDIDATE = re.compile(
    r"(?<![0-9])(?<![0-9A-Fa-f]{2})(?:(?:[0-9][ -]?){12,18}[0-9]|[0-9]{4}\.[0-9]{4}\.[0-9]{4}\.[0-9]{4})(?![0-9])"
)
_CARD_SEPARATORS = re.compile(r"[ .-]")
_JSON_TEXT = re.compile(r"\s*[\[{]")  # where redact() tries a string as JSON
_JSON_LINE = re.compile(r"^\s*[\[{]", re.MULTILINE)  # the same, on may_redact's joined lines
_JSON_DEPTH_MAX = 32  # deeper JSON text is redacted as text: no recursion the input chooses
_JSON_TEXT_LEVELS = 3  # JSON text inside JSON text inside JSON text: the innermost is redacted as text


_DIGITS_AS_ZERO = bytes(48 if 48 <= i <= 57 else 120 for i in range(256))  # b"0" for a digit, b"x" for the rest
_THIRTEEN_DIGITS = b"0" * 13


def _may_hold_card(text: str) -> bool:
    """False only when CARD_CANDIDATE cannot match text; a byte scan several times cheaper than the regex.

    A candidate is at least 13 digits with single spaces, dashes or dots
    between: with every space, dash and dot deleted, 13 digits in a row.
    """
    if not text.isascii():
        return CARD_CANDIDATE.search(text) is not None
    return _THIRTEEN_DIGITS in text.encode().translate(_DIGITS_AS_ZERO, b" -.")


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
        """The value patterns over text (no JSON parsing: see redact_string)."""
        count = 0
        if (self.hints is None or self._hinted(text)) and self.values.search(text):
            if AWS_KEY_ID.search(text):  # its secret key is a 40-character string the patterns cannot tell apart
                text, n = AWS_SECRET.subn(MARKER, text)
                count += n
            text, n = self.values.subn(MARKER, text)
            count += n
        if self.extra_values is not None and self.extra_values.search(text):
            text, n = self.extra_values.subn(MARKER, text)
            count += n
        if self.cards and CARD_CANDIDATE.search(text):
            text, n = _mask_cards(text)
            count += n
        return text, count

    def _hinted(self, text: str) -> bool:
        if self.hints.search(text) is not None:  # type: ignore[union-attr]
            return True
        lower = text.lower()
        return (
            ("pass" in lower or "token" in lower or "secret" in lower or "pwd" in lower or "api" in lower
             or "bearer" in lower or "basic" in lower or "private" in lower or "authorization" in lower)
            and LOWER_HINTS.search(lower) is not None
        )

    def redact_string(self, text: str, _inside: int = 0) -> tuple[str, int]:
        """A string value: a JSON object or array in it is redacted like any other value and written back
        as JSON; any other text gets the value patterns, and so does JSON deeper than _JSON_DEPTH_MAX or
        inside more than _JSON_TEXT_LEVELS strings of JSON (the recursion stays bounded whatever the input)."""
        if _inside < _JSON_TEXT_LEVELS and _JSON_TEXT.match(text):
            try:
                parsed = orjson.loads(text)
            except orjson.JSONDecodeError:
                parsed = None
            if isinstance(parsed, (dict, list)) and not _deeper_than(parsed, _JSON_DEPTH_MAX):
                cleaned, n = self.redact(parsed, _inside + 1)
                return (orjson.dumps(cleaned).decode(), n) if n else (text, 0)
        return self.redact_text(text)

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
        """False only when redact_string finds nothing in any line of text.

        One scan of several strings joined by newlines clears them all at
        once: the hints are literals without a newline, and a newline is
        neither a digit nor a separator of a card number, whose word
        boundaries are the same next to it as at the end of a string; a
        line that starts like JSON is checked on its own. Custom patterns
        can be anchored, so with them each string is checked alone.
        """
        if self.hints is None or self.extra_values is not None or self._hinted(text):
            return True
        if _JSON_LINE.search(text):
            return True
        return self.cards and _may_hold_card(text)

    def pair_sensitive(self, item: Any) -> bool:
        """Whether item is a header-list entry whose value redact() replaces: ``[name, value]`` (inside a
        list) or ``{"name": name, "value": value, ...}`` with a sensitive name."""
        if type(item) is list:
            if len(item) != 2:
                return False
            name, value = item
        elif type(item) is dict:
            if "name" not in item or "value" not in item or len(item) > 3:
                return False
            name, value = item["name"], item["value"]
        else:
            return False
        return (type(name) is str and value not in (None, "", MARKER) and name not in self.allow_keys
                and self.key_sensitive(name))

    def card_number(self, value: int) -> bool:
        """An integer of 13 to 19 digits that passes the Luhn check (a card number sent as a JSON number)."""
        return self.cards and 10**12 <= abs(value) < 10**19 and luhn_ok(str(abs(value)))

    def _redact_key(self, key: str, taken: dict[str, Any]) -> tuple[str, int]:
        """A dict key with the value patterns applied (a token used as a key), kept apart from the others."""
        cleaned, n = self.redact_text(key)
        if n:
            base, i = cleaned, 1
            while cleaned in taken:
                i += 1
                cleaned = f"{base}#{i}"
        return cleaned, n

    def clean(self, value: Any) -> bool:
        """True when redact(value) changes nothing: one walk and one scan of all its text, no copy."""
        sensitive, allow, pair = self.key_sensitive, self.allow_keys, self.pair_sensitive
        strings: list[str] = []
        stack = [value]
        while stack:
            item = stack.pop()
            t = type(item)
            if t is str:
                strings.append(item)
            elif t is dict:
                if "name" in item and pair(item):
                    return False
                for k, v in item.items():
                    if type(k) is str:
                        strings.append(k)
                        if k not in allow and v not in (None, "", MARKER) and sensitive(k):
                            return False
                    stack.append(v)
            elif t is list:
                for v in item:
                    if type(v) is list and pair(v):
                        return False
                stack.extend(item)
            elif t is int and self.card_number(item):
                return False
        if not strings or not self.may_redact("\n".join(strings)):
            return True
        return not any(self.redact_string(text)[1] for text in strings)

    def redact(self, value: Any, _inside: int = 0) -> tuple[Any, int]:
        if isinstance(value, str):
            return self.redact_string(value, _inside)
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            count = 0
            if self.pair_sensitive(value):
                value = {**value, "value": MARKER}
                count += 1
            names = [k for k in value if isinstance(k, str)]
            scan_keys = bool(names) and self.may_redact("\n".join(names))  # one scan clears all the keys
            for k, v in value.items():
                key = k
                if scan_keys and isinstance(k, str):
                    key, n = self._redact_key(k, out)
                    count += n
                if (
                    isinstance(k, str)
                    and k not in self.allow_keys
                    and v not in (None, "", MARKER)
                    and self.key_sensitive(k)
                ):
                    out[key] = MARKER
                    count += 1
                else:
                    out[key], n = self.redact(v, _inside)
                    count += n
            return out, count
        if isinstance(value, list):
            items, count = [], 0
            for v in value:
                if type(v) is list and self.pair_sensitive(v):
                    v = [v[0], MARKER]
                    count += 1
                cleaned, n = self.redact(v, _inside)
                items.append(cleaned)
                count += n
            return items, count
        if type(value) is int and self.card_number(value):
            return MARKER, 1
        return value, 0


def _deeper_than(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, level + 1) for c in children if isinstance(c, (dict, list)))
    return False


@lru_cache(maxsize=32)
def _from_settings(rules: RedactionSettings) -> Redactor:
    return Redactor.from_rules(
        extra_keys=rules.extra_keys, extra_patterns=rules.extra_patterns, allow_keys=rules.allow_keys, cards=rules.cards
    )


DEFAULT = Redactor()


def _redact_envelope(event: Event, redactor: Redactor) -> tuple[dict[str, Any], int]:
    """Value patterns over the envelope's free-text fields (a token pasted into a user agent, a resource id,
    the tenant or the source)."""
    update: dict[str, Any] = {}
    count = 0
    texts = [event.actor.id, event.actor.user_agent, event.tenant, event.source, event.request_id]
    if event.resource is not None:
        texts += [event.resource.type, event.resource.id]
    if not redactor.may_redact("\n".join(t for t in texts if t)):  # one scan clears them all
        return update, count
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
    for name in ("tenant", "source", "request_id"):
        text = getattr(event, name)
        if text:
            cleaned, n = redactor.redact_text(text)
            if n:
                update[name] = cleaned
                count += n
    return update, count


def redact_event(event: Event, redactor: Redactor = DEFAULT) -> tuple[Event, int]:
    """The event with secrets anywhere in it replaced by the marker, and how many were replaced."""
    parts = {"before": event.before, "after": event.after, "metadata": event.metadata}
    cleaned, count = (parts, 0) if redactor.clean(parts) else redactor.redact(parts)
    envelope, n = _redact_envelope(event, redactor)
    if n:
        cleaned.update(envelope)
        count += n
    return (event.model_copy(update=cleaned) if count else event), count
