"""The retention policy: how long each event stays locked, and in which Object Lock mode.

Pure: parsing the policy file, matching rules, computing retain-until dates.
The sink asks it for the lock of each object it writes, verify for the lock
each stored object must have, and `sealtrail bucket init` for the bucket's
default retention and lifecycle rules (sinks/bucket.py), so the three can
never disagree.

Why an object's lock is the longest its events need: one data object holds
one flush of one chain, so it mixes categories, actions and tenants. An
event's requirement is the longest period (and the strongest mode) of every
rule that matches it, or the default rule when none does; an object's is the
latest retain-until and the strongest mode over its events. Nothing is ever
locked for less than one of its events needs. Digests and public keys get
the longest period and strongest mode of the whole policy: the data cannot
be verified without them, so they must outlive it.

The policy file (TOML; ``retention.policy_file``)::

    environment = "production"        # or "non-production": only then may a rule use GOVERNANCE

    [default]                         # events no rule matches (default: 7 years, COMPLIANCE)
    years = 7
    mode = "COMPLIANCE"

    [[rule]]
    name = "soc2-auth"                # named in errors and in verify's findings
    category = "auth"                 # one or a list; exact (auth, change, security, admin, access)
    years = 3                         # or days = ...; exactly one of them

    [[rule]]
    name = "hipaa-phi-changes"
    category = "change"
    action = ["phi.*", "patient.*"]   # globs (fnmatch), one or a list
    years = 7

    [[rule]]
    name = "sandbox"
    tenant = ["sandbox", "demo"]      # exact tenant ids
    days = 30
    mode = "GOVERNANCE"               # refused unless environment = "non-production"

    [bucket]                          # what `sealtrail bucket init` sets up
    encryption = "AES256"             # SSE-S3; or "aws:kms" (kms_key_id = "..."), or "none"
    transitions = [{ days = 90, storage_class = "STANDARD_IA" }, { days = 365, storage_class = "GLACIER_IR" }]

Without a policy file the built-in policy is one default rule made of
``retention.mode`` and ``retention.days`` (COMPLIANCE, 2557 days = 7 years):
what the sink always did.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from sealtrail.errors import ConfigError
from sealtrail.event import Category
from sealtrail.layout import parse_data_key

Mode = Literal["COMPLIANCE", "GOVERNANCE"]
MODES = ("COMPLIANCE", "GOVERNANCE")
ENVIRONMENTS = ("production", "non-production")
CATEGORIES = tuple(c.value for c in Category)
MAX_DAYS = 36_500  # S3's limit on a default retention in days (100 years)
MAX_YEARS = 100
DEFAULT_YEARS = 7
# Classes a verifier and Athena can still read without a restore request.
STORAGE_CLASSES = ("STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR")
ARCHIVE_CLASSES = ("GLACIER", "DEEP_ARCHIVE")
IA_MIN_DAYS = 30  # S3 refuses transitions to *_IA earlier than 30 days after creation
ENCRYPTIONS = ("AES256", "aws:kms", "aws:kms:dsse", "none")

EventKey = tuple[str, str, str]  # (category, action, tenant)


# ---------------------------------------------------------------------------
# Values


def add_years(start: datetime, years: int) -> datetime:
    """The same instant ``years`` calendar years later; 29 February becomes 1 March (never earlier)."""
    try:
        return start.replace(year=start.year + years)
    except ValueError:
        return start.replace(year=start.year + years, month=3, day=1)


@dataclass(frozen=True, slots=True)
class Period:
    """A retention period: exactly one of days or years (calendar years, as S3 counts them)."""

    days: int | None = None
    years: int | None = None

    def until(self, start: datetime) -> datetime:
        if self.years is not None:
            return add_years(start, self.years)
        assert self.days is not None
        return start + timedelta(days=self.days)

    @property
    def max_days(self) -> int:
        """An upper bound of the period in days (lifecycle rules count days; a year may have 366)."""
        return self.days if self.days is not None else 366 * (self.years or 0)

    @property
    def min_days(self) -> int:
        return self.days if self.days is not None else 365 * (self.years or 0)

    def __str__(self) -> str:
        n, unit = (self.years, "year") if self.years is not None else (self.days, "day")
        return f"{n} {unit}{'' if n == 1 else 's'}"


@dataclass(frozen=True, slots=True)
class Rule:
    """A period and a mode for the events it matches. Empty matchers match anything."""

    name: str
    period: Period
    mode: Mode = "COMPLIANCE"
    categories: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()  # fnmatch globs
    tenants: tuple[str, ...] = ()

    def matches(self, category: str, action: str, tenant: str) -> bool:
        return (
            (not self.categories or category in self.categories)
            and (not self.actions or any(fnmatch.fnmatchcase(action, glob) for glob in self.actions))
            and (not self.tenants or tenant in self.tenants)
        )

    def describe(self) -> str:
        where = [f"{label} {'|'.join(values)}" for label, values in
                 (("category", self.categories), ("action", self.actions), ("tenant", self.tenants)) if values]
        return f"{self.name}: {self.mode} {self.period}" + (f" for {', '.join(where)}" if where else "")


@dataclass(frozen=True, slots=True)
class Lock:
    """An Object Lock requirement: mode and retain-until, with the rules that set it."""

    mode: Mode
    retain_until: datetime
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Transition:
    days: int
    storage_class: str


DEFAULT_TRANSITIONS = (Transition(90, "STANDARD_IA"), Transition(365, "GLACIER_IR"))


def combine(rules: Iterable[Rule], start: datetime) -> Lock:
    """The lock that satisfies every rule: the latest retain-until, COMPLIANCE if any rule asks for it."""
    rules = tuple(rules)
    untils = [(r.period.until(start), r) for r in rules]
    latest = max(u for u, _ in untils)
    mode: Mode = "COMPLIANCE" if any(r.mode == "COMPLIANCE" for r in rules) else "GOVERNANCE"
    names = tuple(sorted({r.name for u, r in untils if u == latest}))
    return Lock(mode, latest, names)


@dataclass(frozen=True)
class Policy:
    default: Rule
    rules: tuple[Rule, ...] = ()
    environment: str = "production"
    transitions: tuple[Transition, ...] = DEFAULT_TRANSITIONS
    encryption: str = "AES256"
    kms_key_id: str | None = None
    source: str = "built-in"
    _cache: dict[EventKey, tuple[Rule, ...]] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def rules_for(self, category: str, action: str, tenant: str) -> tuple[Rule, ...]:
        """Every rule that matches the event, or the default rule when none does."""
        key = (category, action, tenant)
        found = self._cache.get(key)
        if found is None:
            found = tuple(r for r in self.rules if r.matches(*key)) or (self.default,)
            if len(self._cache) < 100_000:
                self._cache[key] = found
        return found

    def lock_for_events(self, events: Iterable[EventKey], start: datetime) -> Lock:
        """The lock of an object holding these events, written at ``start``."""
        if not self.rules:
            return combine((self.default,), start)
        matched: set[Rule] = set()
        for event in set(events):
            matched.update(self.rules_for(*event))
        return combine(matched or (self.default,), start)

    def longest_lock(self, start: datetime) -> Lock:
        """The lock of digests and public keys: the longest period and strongest mode in the policy."""
        return combine((self.default, *self.rules), start)

    @property
    def longest_days(self) -> int:
        """An upper bound, in days, of the longest period in the policy."""
        return max(r.period.max_days for r in (self.default, *self.rules))

    def describe(self) -> list[str]:
        lines = [f"retention policy ({self.source}, {self.environment})", f"  {self.default.describe()}"]
        lines += [f"  rule {r.describe()}" for r in self.rules]
        return lines


# ---------------------------------------------------------------------------
# Parsing


def _where(source: str, section: str) -> str:
    return f"{source} {section}"


def _strings(value: Any, where: str, name: str) -> tuple[str, ...]:
    values = (value,) if isinstance(value, str) else value
    if not isinstance(values, list | tuple) or not values or not all(isinstance(v, str) and v for v in values):
        raise ConfigError(where, f"{name} must be a non-empty string or a list of them, not {value!r}")
    return tuple(values)


def _int(value: Any, where: str, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(where, f"{name} must be a whole number from {lo} to {hi}, not {value!r}")
    return value


def _check_keys(table: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(where, f"must be a table, not {table!r}")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(where, f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    return table


def _period(table: dict[str, Any], where: str) -> Period:
    if ("days" in table) == ("years" in table):
        raise ConfigError(where, "give exactly one of days or years")
    if "days" in table:
        return Period(days=_int(table["days"], where, "days", 1, MAX_DAYS))
    return Period(years=_int(table["years"], where, "years", 1, MAX_YEARS))


def _mode(table: dict[str, Any], where: str, environment: str) -> Mode:
    mode = table.get("mode", "COMPLIANCE")
    if mode not in MODES:
        raise ConfigError(where, f"mode must be one of {list(MODES)}, not {mode!r}")
    if mode == "GOVERNANCE" and environment != "non-production":
        raise ConfigError(where, "mode GOVERNANCE lets privileged users shorten or remove the lock; it is "
                                 'allowed only in a policy that says environment = "non-production"')
    return mode


def _rule(table: Any, where: str, environment: str) -> Rule:
    table = _check_keys(table, {"name", "category", "action", "tenant", "days", "years", "mode"}, where)
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(where, "every [[rule]] needs a name")
    where = f"{where} {name!r}"
    categories = _strings(table["category"], where, "category") if "category" in table else ()
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise ConfigError(where, f"unknown category {unknown}; categories are {list(CATEGORIES)}")
    actions = _strings(table["action"], where, "action") if "action" in table else ()
    tenants = _strings(table["tenant"], where, "tenant") if "tenant" in table else ()
    if not (categories or actions or tenants):
        raise ConfigError(where, "a rule must match a category, an action or a tenant ([default] covers the rest)")
    return Rule(name, _period(table, where), _mode(table, where, environment), categories, actions, tenants)


def _transitions(value: Any, where: str, longest_days: int) -> tuple[Transition, ...]:
    if not isinstance(value, list):
        raise ConfigError(where, f"transitions must be a list of {{days, storage_class}} tables, not {value!r}")
    out: list[Transition] = []
    for raw in value:
        item = _check_keys(raw, {"days", "storage_class"}, where)
        days = _int(item.get("days"), where, "transitions.days", 1, MAX_DAYS)
        klass = item.get("storage_class")
        if klass in ARCHIVE_CLASSES:
            raise ConfigError(where, f"{klass} needs a restore before anything can read an object, so verify "
                                     "and Athena could not; use GLACIER_IR for old data")
        if klass not in STORAGE_CLASSES:
            raise ConfigError(where, f"storage_class must be one of {list(STORAGE_CLASSES)}, not {klass!r}")
        if klass.endswith("_IA") and days < IA_MIN_DAYS:
            raise ConfigError(where, f"S3 moves objects to {klass} no earlier than {IA_MIN_DAYS} days")
        if out and days <= out[-1].days:
            raise ConfigError(where, "transitions must be in increasing order of days")
        if days >= longest_days:
            raise ConfigError(where, f"a transition after {days} days comes after the data expires "
                                     f"({longest_days} days, the longest period in the policy)")
        out.append(Transition(days, klass))
    if len({t.storage_class for t in out}) != len(out):
        raise ConfigError(where, "each storage class may appear once")
    return tuple(out)


def default_transitions(longest_days: int) -> tuple[Transition, ...]:
    """The built-in transitions that come before the data expires."""
    return tuple(t for t in DEFAULT_TRANSITIONS if t.days < longest_days)


def parse_policy(text: str, source: str) -> Policy:
    """A policy from TOML text; ConfigError naming the file, the section or rule, and the problem."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(source, f"not valid TOML: {e}") from e
    _check_keys(doc, {"environment", "default", "rule", "bucket"}, source)
    environment = doc.get("environment", "production")
    if environment not in ENVIRONMENTS:
        raise ConfigError(_where(source, "environment"), f"must be one of {list(ENVIRONMENTS)}, not {environment!r}")
    where = _where(source, "[default]")
    if "default" in doc:
        table = _check_keys(doc["default"], {"days", "years", "mode"}, where)
        default = Rule("default", _period(table, where), _mode(table, where, environment))
    else:
        default = Rule("default", Period(years=DEFAULT_YEARS))
    raw_rules = doc.get("rule", [])
    if not isinstance(raw_rules, list):
        raise ConfigError(_where(source, "rule"), "rules are an array of tables: write [[rule]]")
    rules = tuple(_rule(r, _where(source, f"[[rule]] #{i + 1}"), environment) for i, r in enumerate(raw_rules))
    names = [r.name for r in rules]
    duplicate = next((n for n in names if names.count(n) > 1 or n == "default"), None)
    if duplicate is not None:
        raise ConfigError(_where(source, f"[[rule]] {duplicate!r}"), "rule names must be unique (and not 'default')")
    longest = max(r.period.max_days for r in (default, *rules))

    where = _where(source, "[bucket]")
    bucket = _check_keys(doc.get("bucket", {}), {"encryption", "kms_key_id", "transitions"}, where)
    encryption = bucket.get("encryption", "AES256")
    if encryption not in ENCRYPTIONS:
        raise ConfigError(where, f"encryption must be one of {list(ENCRYPTIONS)}, not {encryption!r}")
    kms_key_id = bucket.get("kms_key_id")
    if kms_key_id is not None and (not isinstance(kms_key_id, str) or not encryption.startswith("aws:kms")):
        raise ConfigError(where, 'kms_key_id is a string, and only with encryption = "aws:kms"')
    if "transitions" in bucket:
        transitions = _transitions(bucket["transitions"], where, longest)
    else:
        transitions = default_transitions(longest)
    return Policy(default, rules, environment, transitions, encryption, kms_key_id, source)


def builtin_policy(mode: str, days: int, environment: str = "production") -> Policy:
    """The policy without a file: one default rule from retention.mode and retention.days."""
    source = "built-in (retention.mode, retention.days)"
    if mode == "GOVERNANCE" and environment != "non-production":
        raise ConfigError("retention.mode", "rule 'default' asks for GOVERNANCE, which lets privileged users "
                                            "shorten or remove the lock; set retention.environment = "
                                            '"non-production" to allow it outside production')
    return Policy(Rule("default", Period(days=days), mode), (), environment,  # type: ignore[arg-type]
                  default_transitions(days), source=source)


@lru_cache(maxsize=8)
def _load_file(path: str, mtime_ns: int, size: int) -> Policy:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError("retention.policy_file", f"cannot read {path}: {e}") from e
    return parse_policy(text, path)


def load_policy_file(path: Path) -> Policy:
    try:
        stat = path.stat()
    except OSError as e:
        raise ConfigError("retention.policy_file", f"cannot read {path}: {e}") from e
    return _load_file(str(path), stat.st_mtime_ns, stat.st_size)


def policy_for(settings: Any) -> Policy:
    """The policy the settings name: the file's, or the built-in one. Cached per file version."""
    retention = settings.retention
    if retention.policy_file is None:
        return _builtin_cached(retention.mode, retention.days, retention.environment)
    both = sorted(retention.model_fields_set & {"mode", "days", "environment"})
    if both:
        raise ConfigError(f"retention.{both[0]}", f"with retention.policy_file ({retention.policy_file}) the file "
                                                  "is the whole policy: set this in its [default] or top level")
    return load_policy_file(retention.policy_file)


@lru_cache(maxsize=8)
def _builtin_cached(mode: str, days: int, environment: str) -> Policy:
    return builtin_policy(mode, days, environment)


# ---------------------------------------------------------------------------
# What a stored object needs


def object_events(body: bytes) -> set[EventKey]:
    """The distinct (category, action, tenant) of a Parquet data object, reading only those columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(body), columns=["category", "action", "tenant"])
    distinct = table.group_by(["category", "action", "tenant"]).aggregate([])
    return {(r["category"], r["action"], r["tenant"]) for r in distinct.to_pylist()}


def required_lock(policy: Policy, key: str, body: bytes, written: datetime) -> Lock:
    """The lock the policy demands of a stored object written at ``written``.

    A data object needs what its events need (read from its columns); any
    other trail object (a digest) needs the policy's longest lock. An
    unreadable data object is held to the default rule: it is reported as
    unreadable anyway, and guessing longer would only add noise.
    """
    if parse_data_key(key) is None:
        return policy.longest_lock(written)
    if not policy.rules:
        return policy.lock_for_events((), written)
    import pyarrow as pa

    try:
        events = object_events(body)
    except (pa.ArrowException, OSError, ValueError, KeyError, TypeError):
        return combine((policy.default,), written)
    return policy.lock_for_events(events, written)
