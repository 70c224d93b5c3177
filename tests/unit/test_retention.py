"""The retention policy: parsing, matching, and the lock of an object that mixes events.

The central promise is checked with hypothesis against a reference written
straight from the definition: an object's lock is never shorter, nor weaker,
than what any one of its events needs on its own.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from sealtrail import retention as R
from sealtrail.config import RetentionSettings, Settings
from sealtrail.errors import ConfigError
from sealtrail.layout import data_key, digest_key
from sealtrail.retention import (
    CATEGORIES,
    Period,
    Policy,
    Rule,
    Transition,
    add_years,
    builtin_policy,
    object_events,
    parse_policy,
    policy_for,
    required_lock,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)

EXAMPLE = """
environment = "non-production"

[default]
years = 1

[[rule]]
name = "soc2-auth"
category = "auth"
years = 3

[[rule]]
name = "hipaa-phi-changes"
category = "change"
action = ["phi.*", "patient.*"]
years = 7

[[rule]]
name = "sandbox"
tenant = ["sandbox", "demo"]
days = 30
mode = "GOVERNANCE"

[bucket]
encryption = "aws:kms"
kms_key_id = "alias/audit"
transitions = [{ days = 30, storage_class = "STANDARD_IA" }, { days = 400, storage_class = "GLACIER_IR" }]
"""


def example() -> Policy:
    return parse_policy(EXAMPLE, "example.toml")


# ---------------------------------------------------------------------------
# parsing


def test_example_policy_parses_with_every_section() -> None:
    p = example()
    assert p.environment == "non-production"
    assert p.default == Rule("default", Period(years=1))
    assert [r.name for r in p.rules] == ["soc2-auth", "hipaa-phi-changes", "sandbox"]
    assert p.rules[1].actions == ("phi.*", "patient.*")
    assert p.rules[2] == Rule("sandbox", Period(days=30), "GOVERNANCE", (), (), ("sandbox", "demo"))
    assert (p.encryption, p.kms_key_id) == ("aws:kms", "alias/audit")
    assert p.transitions == (Transition(30, "STANDARD_IA"), Transition(400, "GLACIER_IR"))
    assert p.source == "example.toml"


def test_module_docstring_example_is_a_valid_policy() -> None:
    """The format documented in core/retention.py (and docs/operations.md) parses, once GOVERNANCE is allowed."""
    doc = R.__doc__ or ""
    text = doc.split("The policy file (TOML; ``retention.policy_file``)::")[1].split("Without a policy file")[0]
    text = "\n".join(line[4:] for line in text.splitlines())
    with pytest.raises(ConfigError, match="sandbox"):
        parse_policy(text, "doc.toml")  # production: its GOVERNANCE rule is refused, by name
    p = parse_policy(text.replace('environment = "production"', 'environment = "non-production"'), "doc.toml")
    assert [r.name for r in p.rules] == ["soc2-auth", "hipaa-phi-changes", "sandbox"]


def test_empty_policy_is_the_built_in_default() -> None:
    p = parse_policy("", "empty.toml")
    assert p.default == Rule("default", Period(years=7), "COMPLIANCE")
    assert p.rules == () and p.environment == "production"
    assert p.encryption == "AES256" and p.transitions == R.DEFAULT_TRANSITIONS


BAD_POLICIES = {
    "governance-in-production-names-the-rule": (
        '[[rule]]\nname = "loose"\ncategory = "auth"\ndays = 3\nmode = "GOVERNANCE"', r"'loose'.*GOVERNANCE"),
    "governance-default-in-production": ('[default]\ndays = 3\nmode = "GOVERNANCE"', r"\[default\].*GOVERNANCE"),
    "unknown-mode": ('[default]\ndays = 3\nmode = "STRICT"', "mode must be one of"),
    "typo-in-a-key": ("[default]\nyeras = 3", r"unknown key\(s\) \['yeras'\]"),
    "unknown-top-level-table": ("[retention]\ndays = 3", r"unknown key\(s\) \['retention'\]"),
    "days-and-years": ("[default]\ndays = 3\nyears = 1", "exactly one of days or years"),
    "neither-days-nor-years": ('[[rule]]\nname = "x"\ncategory = "auth"', "exactly one of days or years"),
    "zero-days": ("[default]\ndays = 0", "days must be a whole number from 1"),
    "too-many-years": ("[default]\nyears = 101", "years must be a whole number from 1 to 100"),
    "fractional-years": ("[default]\nyears = 1.5", "years must be a whole number"),
    "boolean-days": ("[default]\ndays = true", "days must be a whole number"),
    "unknown-category-names-the-rule": ('[[rule]]\nname = "x"\ncategory = "login"\ndays = 3', r"'x'.*unknown category"),
    "rule-without-name": ('[[rule]]\ncategory = "auth"\ndays = 3', "needs a name"),
    "rule-matching-everything": ('[[rule]]\nname = "all"\ndays = 3', "must match a category, an action or a tenant"),
    "empty-action-list": ('[[rule]]\nname = "x"\naction = []\ndays = 3', "non-empty string or a list"),
    "duplicate-rule-names": (('[[rule]]\nname = "x"\ncategory = "auth"\ndays = 3\n'
                              '[[rule]]\nname = "x"\ncategory = "admin"\ndays = 4'), "unique"),
    "rule-named-default": ('[[rule]]\nname = "default"\ncategory = "auth"\ndays = 3', "unique"),
    "rule-as-a-table": ('[rule]\nname = "x"', r"write \[\[rule\]\]"),
    "bad-environment": ('environment = "staging"', "must be one of"),
    "archive-class-unreadable-by-verify": (
        '[bucket]\ntransitions = [{ days = 100, storage_class = "DEEP_ARCHIVE" }]', "verify"),
    "unknown-storage-class": ('[bucket]\ntransitions = [{ days = 100, storage_class = "COLD" }]', "storage_class"),
    "infrequent-access-before-30-days": (
        '[bucket]\ntransitions = [{ days = 10, storage_class = "STANDARD_IA" }]', "no earlier than 30 days"),
    "transitions-out-of-order": (
        ('[bucket]\ntransitions = [{ days = 400, storage_class = "GLACIER_IR" }, '
         '{ days = 90, storage_class = "STANDARD_IA" }]'), "increasing"),
    "transition-after-expiry": (
        '[default]\ndays = 60\n[bucket]\ntransitions = [{ days = 90, storage_class = "STANDARD_IA" }]',
        "after the data expires"),
    "kms-key-without-kms": ('[bucket]\nkms_key_id = "alias/x"', "only with encryption"),
    "unknown-encryption": ('[bucket]\nencryption = "rot13"', "encryption must be one of"),
    "not-toml": ("[default\ndays = 3", "not valid TOML"),
}


@pytest.mark.parametrize("text,message", BAD_POLICIES.values(), ids=BAD_POLICIES.keys())
def test_bad_policy_is_refused_with_a_named_reason(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_policy(text, "bad.toml")
    assert info.value.setting.startswith("bad.toml")


def test_governance_is_allowed_in_a_non_production_policy() -> None:
    p = parse_policy('environment = "non-production"\n[default]\ndays = 3\nmode = "GOVERNANCE"', "dev.toml")
    assert p.default.mode == "GOVERNANCE"


def test_transitions_may_be_switched_off() -> None:
    assert parse_policy("[bucket]\ntransitions = []", "p.toml").transitions == ()


def test_default_transitions_stop_before_expiry() -> None:
    assert parse_policy("[default]\ndays = 200", "p.toml").transitions == (Transition(90, "STANDARD_IA"),)
    assert parse_policy("[default]\ndays = 60", "p.toml").transitions == ()


# ---------------------------------------------------------------------------
# the built-in policy and the settings


def test_builtin_policy_is_what_the_sink_always_did() -> None:
    p = policy_for(Settings())
    assert p.default == Rule("default", Period(days=2557), "COMPLIANCE") and p.rules == ()
    lock = p.lock_for_events([("auth", "auth.login", "acme")], T0)
    assert lock == R.Lock("COMPLIANCE", T0 + timedelta(days=2557), ("default",))
    assert p.longest_lock(T0) == lock


def test_builtin_governance_needs_non_production() -> None:
    with pytest.raises(ConfigError, match="rule 'default'") as info:
        builtin_policy("GOVERNANCE", 30)
    assert info.value.setting == "retention.mode"
    assert builtin_policy("GOVERNANCE", 30, "non-production").default.mode == "GOVERNANCE"


def test_policy_file_from_settings_is_reloaded_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[default]\nyears = 3\n")
    settings = Settings(retention=RetentionSettings(policy_file=path))
    assert policy_for(settings).default.period == Period(years=3)
    assert policy_for(settings) is policy_for(settings)  # parsed once per file version
    path.write_text("[default]\nyears = 5\n")
    os.utime(path, ns=(1, 1))  # a different mtime even on a coarse clock
    assert policy_for(settings).default.period == Period(years=5)


def test_policy_file_beside_explicit_mode_is_ambiguous(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[default]\nyears = 3\n")
    settings = Settings(retention=RetentionSettings(policy_file=path, days=30))
    with pytest.raises(ConfigError, match="the file is the whole policy") as info:
        policy_for(settings)
    assert info.value.setting == "retention.days"


def test_missing_policy_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        policy_for(Settings(retention=RetentionSettings(policy_file=tmp_path / "nope.toml")))
    assert info.value.setting == "retention.policy_file"


# ---------------------------------------------------------------------------
# periods


def test_years_are_calendar_years_and_a_leap_day_rounds_up() -> None:
    assert add_years(datetime(2024, 2, 29, 8, tzinfo=timezone.utc), 1) == datetime(2025, 3, 1, 8, tzinfo=timezone.utc)
    assert add_years(datetime(2024, 2, 28, tzinfo=timezone.utc), 7) == datetime(2031, 2, 28, tzinfo=timezone.utc)
    assert str(Period(years=1)) == "1 year" and str(Period(days=30)) == "30 days"


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(timezone.utc)),
       st.integers(1, 100))
def test_years_never_exceed_their_day_bound(start: datetime, years: int) -> None:
    period = Period(years=years)
    length = period.until(start) - start
    assert period.min_days <= length.days <= period.max_days


# ---------------------------------------------------------------------------
# matching and combining


def test_an_event_takes_the_longest_of_the_rules_it_matches() -> None:
    p = example()
    assert p.lock_for_events([("auth", "auth.login", "acme")], T0).rules == ("soc2-auth",)
    # auth in a sandbox tenant matches both; the longer, COMPLIANCE rule wins
    lock = p.lock_for_events([("auth", "auth.login", "sandbox")], T0)
    assert (lock.mode, lock.retain_until, lock.rules) == ("COMPLIANCE", add_years(T0, 3), ("soc2-auth",))


def test_a_rule_may_be_shorter_than_the_default() -> None:
    lock = example().lock_for_events([("access", "report.read", "demo")], T0)
    assert lock == R.Lock("GOVERNANCE", T0 + timedelta(days=30), ("sandbox",))


def test_action_globs() -> None:
    p = example()
    assert p.lock_for_events([("change", "phi.update", "acme")], T0).rules == ("hipaa-phi-changes",)
    assert p.lock_for_events([("change", "invoice.update", "acme")], T0).rules == ("default",)
    assert p.lock_for_events([("access", "phi.read", "acme")], T0).rules == ("default",)  # category must match too


def test_an_object_is_locked_for_its_most_demanding_event() -> None:
    p = example()
    events = [("access", "x.read", "demo"), ("auth", "auth.login", "acme"), ("change", "patient.merge", "acme")]
    lock = p.lock_for_events(events, T0)
    assert lock == R.Lock("COMPLIANCE", add_years(T0, 7), ("hipaa-phi-changes",))


def test_governance_only_object_stays_governance() -> None:
    lock = example().lock_for_events([("access", "x.read", "demo"), ("admin", "user.create", "sandbox")], T0)
    assert lock.mode == "GOVERNANCE"


def test_digests_and_keys_take_the_longest_period_and_strongest_mode() -> None:
    lock = example().longest_lock(T0)
    assert (lock.mode, lock.retain_until) == ("COMPLIANCE", add_years(T0, 7))
    assert example().longest_days == 7 * 366


# A reference straight from the definition, to compare the batched implementation with.

def reference_event_lock(policy: Policy, event: tuple[str, str, str], start: datetime) -> tuple[str, datetime]:
    category, action, tenant = event
    matching = [
        r for r in policy.rules
        if (not r.categories or category in r.categories)
        and (not r.actions or any(fnmatchcase(action, a) for a in r.actions))
        and (not r.tenants or tenant in r.tenants)
    ] or [policy.default]
    until = max(r.period.until(start) for r in matching)
    return ("COMPLIANCE" if any(r.mode == "COMPLIANCE" for r in matching) else "GOVERNANCE"), until


ACTIONS = ["auth.login", "auth.logout", "phi.read", "phi.update", "patient.merge", "user.create", "x.y"]
TENANTS = ["acme", "globex", "sandbox", "demo"]
periods = st.one_of(st.builds(Period, days=st.integers(1, 5000)), st.builds(Period, years=st.integers(1, 15)))
rules = st.builds(
    Rule,
    name=st.uuids().map(str),
    period=periods,
    mode=st.sampled_from(["COMPLIANCE", "GOVERNANCE"]),
    categories=st.lists(st.sampled_from(CATEGORIES), max_size=2, unique=True).map(tuple),
    actions=st.lists(st.sampled_from(["auth.*", "phi.*", "patient.merge", "*.create"]), max_size=2).map(tuple),
    tenants=st.lists(st.sampled_from(TENANTS), max_size=2, unique=True).map(tuple),
)
policies = st.builds(Policy, default=st.builds(Rule, name=st.just("default"), period=periods,
                                               mode=st.sampled_from(["COMPLIANCE", "GOVERNANCE"])),
                     rules=st.lists(rules, max_size=5).map(tuple))
events = st.tuples(st.sampled_from(CATEGORIES), st.sampled_from(ACTIONS), st.sampled_from(TENANTS))


@hsettings(max_examples=300, deadline=None)
@given(policies, st.lists(events, min_size=1, max_size=30),
       st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)))
def test_object_lock_is_never_shorter_or_weaker_than_any_event_needs(
    policy: Policy, object_events_: list[tuple[str, str, str]], start: datetime
) -> None:
    lock = policy.lock_for_events(object_events_, start)
    each = [reference_event_lock(policy, e, start) for e in object_events_]
    assert lock.retain_until == max(until for _, until in each)  # never shorter, and no longer than needed
    assert (lock.mode == "COMPLIANCE") == any(mode == "COMPLIANCE" for mode, _ in each)
    longest = policy.longest_lock(start)
    assert longest.retain_until >= lock.retain_until
    assert (longest.retain_until - start).days <= policy.longest_days


# ---------------------------------------------------------------------------
# what a stored object needs (the verifier's side)


def parquet_of(rows: list[tuple[str, str, str]]) -> bytes:
    table = pa.table({"seq": list(range(1, len(rows) + 1)), "category": [r[0] for r in rows],
                      "action": [r[1] for r in rows], "tenant": [r[2] for r in rows]})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def test_object_events_reads_the_distinct_events() -> None:
    body = parquet_of([("auth", "auth.login", "acme")] * 3 + [("change", "phi.update", "globex")])
    assert object_events(body) == {("auth", "auth.login", "acme"), ("change", "phi.update", "globex")}


def test_required_lock_of_a_data_object_follows_its_events() -> None:
    key = data_key("trail/", "2024-03-01", "p000", 1, 4)
    body = parquet_of([("access", "x.read", "demo"), ("change", "phi.update", "acme")])
    assert required_lock(example(), key, body, T0) == R.Lock("COMPLIANCE", add_years(T0, 7), ("hipaa-phi-changes",))


def test_required_lock_of_a_digest_is_the_longest() -> None:
    key = digest_key("trail/", "p000", 4)
    assert required_lock(example(), key, b"{}", T0) == example().longest_lock(T0)


def test_required_lock_of_an_unreadable_data_object_is_the_default() -> None:
    key = data_key("trail/", "2024-03-01", "p000", 1, 4)
    assert required_lock(example(), key, b"not parquet", T0) == R.Lock("COMPLIANCE", add_years(T0, 1), ("default",))
