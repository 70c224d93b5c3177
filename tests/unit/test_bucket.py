"""The bucket settings the policy implies, and how a bucket's actual settings are judged against them (pure)."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sealtrail.retention import builtin_policy, parse_policy
from sealtrail.sinks.bucket import (
    EXPIRY_MARGIN_DAYS,
    assess_encryption,
    assess_lifecycle,
    assess_retention,
    desired_default_retention,
    desired_lifecycle,
    foreign_conflicts,
    holds_tenant,
    normalize_rule,
    rule_id,
)

PREFIX = "trail/"
BUILTIN = builtin_policy("COMPLIANCE", 2557)
SEVEN_YEARS = parse_policy('[default]\nyears = 7\n[[rule]]\nname = "auth"\ncategory = "auth"\nyears = 3', "p.toml")
NO_TRANSITIONS = parse_policy("[default]\nyears = 7\n[bucket]\ntransitions = []", "p.toml")

# What SeaweedFS 4.48 answered to GET ?lifecycle after init wrote the built-in rules without transitions.
WEED_ANSWER = [
    {"Expiration": {"Days": 2558}, "ID": "sealtrail-data:trail/", "Filter": {"Prefix": "trail/data/"},
     "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 2558},
     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
    {"Expiration": {"Days": 2558}, "ID": "sealtrail-digests:trail/", "Filter": {"Prefix": "trail/digests/"},
     "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 2558}},
    {"Expiration": {"ExpiredObjectDeleteMarker": True}, "ID": "sealtrail-delete-markers:trail/",
     "Filter": {"Prefix": "trail/"}, "Status": "Enabled"},
]


# ---------------------------------------------------------------------------
# what the policy wants


def test_builtin_policy_expires_data_and_digests_a_day_after_its_period() -> None:
    rules = {r["ID"]: r for r in desired_lifecycle(BUILTIN, PREFIX)}
    assert set(rules) == {rule_id("data", PREFIX), rule_id("digests", PREFIX), rule_id("delete-markers", PREFIX)}
    data, digests = rules["sealtrail-data:trail/"], rules["sealtrail-digests:trail/"]
    assert data["Filter"] == {"Prefix": "trail/data/"} and digests["Filter"] == {"Prefix": "trail/digests/"}
    for rule in (data, digests):
        assert rule["Expiration"] == {"Days": 2557 + EXPIRY_MARGIN_DAYS}
        assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 2557 + EXPIRY_MARGIN_DAYS}
    assert data["Transitions"] == [{"Days": 90, "StorageClass": "STANDARD_IA"},
                                   {"Days": 365, "StorageClass": "GLACIER_IR"}]
    assert "Transitions" not in digests  # small objects: colder classes would cost more, not less
    assert not any(r["Filter"]["Prefix"].startswith("trail/keys") for r in rules.values())  # keys never expire


def test_expiry_follows_the_longest_period_in_years() -> None:
    data = desired_lifecycle(SEVEN_YEARS, PREFIX)[0]
    assert data["Expiration"] == {"Days": 7 * 366 + EXPIRY_MARGIN_DAYS}


def test_without_transitions() -> None:
    assert all("Transitions" not in r for r in desired_lifecycle(NO_TRANSITIONS, PREFIX))
    assert all("Transitions" not in r for r in desired_lifecycle(BUILTIN, PREFIX, transitions=False))


def test_default_retention_keeps_the_unit_of_the_policy() -> None:
    assert desired_default_retention(BUILTIN) == {"Mode": "COMPLIANCE", "Days": 2557}
    assert desired_default_retention(SEVEN_YEARS) == {"Mode": "COMPLIANCE", "Years": 7}


# ---------------------------------------------------------------------------
# reading rules back


def test_a_rule_read_back_from_the_store_equals_the_rule_written() -> None:
    written = desired_lifecycle(BUILTIN, PREFIX, transitions=False)
    assert [normalize_rule(r) for r in WEED_ANSWER] == [normalize_rule(r) for r in written]


FILTER_SHAPES = {
    "legacy-prefix": ({"ID": "a", "Prefix": "logs/", "Status": "Enabled"}, {"prefix": "logs/"}),
    "filter-prefix": ({"ID": "a", "Filter": {"Prefix": "logs/"}, "Status": "Enabled"}, {"prefix": "logs/"}),
    "empty-filter": ({"ID": "a", "Filter": {}, "Status": "Enabled"}, {"prefix": ""}),
    "one-tag": ({"ID": "a", "Filter": {"Tag": {"Key": "k", "Value": "v"}}, "Status": "Enabled"},
                {"prefix": "", "tags": (("k", "v"),)}),
    "and-prefix-tags-size": (
        {"ID": "a", "Status": "Enabled", "Filter": {"And": {"Prefix": "x/", "ObjectSizeGreaterThan": 5,
                                                            "Tags": [{"Key": "b", "Value": "2"},
                                                                     {"Key": "a", "Value": "1"}]}}},
        {"prefix": "x/", "tags": (("a", "1"), ("b", "2")), "ObjectSizeGreaterThan": 5}),
}


@pytest.mark.parametrize("rule,want", FILTER_SHAPES.values(), ids=FILTER_SHAPES.keys())
def test_normalize_reads_every_filter_shape(rule: dict, want: dict) -> None:
    got = normalize_rule(rule)
    assert {k: v for k, v in got.items() if k not in ("id", "status")} == want


def test_transition_order_does_not_matter() -> None:
    a = {"ID": "x", "Transitions": [{"Days": 90, "StorageClass": "STANDARD_IA"}, {"Days": 365, "StorageClass": "GLACIER_IR"}]}
    b = {"ID": "x", "Transitions": list(reversed(a["Transitions"]))}
    assert normalize_rule(a) == normalize_rule(b)


# ---------------------------------------------------------------------------
# judging a bucket's lifecycle


def test_empty_lifecycle_misses_everything() -> None:
    a = assess_lifecycle((), BUILTIN, PREFIX)
    assert not a.expiry_ok and not a.transitions_ok and a.conflicts == [] and a.foreign == []


def test_exactly_the_desired_rules_are_ok() -> None:
    a = assess_lifecycle(tuple(desired_lifecycle(BUILTIN, PREFIX)), BUILTIN, PREFIX)
    assert a.expiry_ok and a.transitions_ok


def test_store_without_transitions_has_expiry_but_not_transitions() -> None:
    a = assess_lifecycle(tuple(WEED_ANSWER), BUILTIN, PREFIX)
    assert a.expiry_ok and not a.transitions_ok
    assert "STANDARD_IA after 90 days" in a.transitions_detail


def test_policy_without_transitions_is_satisfied_by_a_store_without_them() -> None:
    rules = tuple(desired_lifecycle(NO_TRANSITIONS, PREFIX))
    a = assess_lifecycle(rules, NO_TRANSITIONS, PREFIX)
    assert a.expiry_ok and a.transitions_ok and a.transitions_detail == "none in the policy"


def test_a_longer_policy_makes_the_old_rules_wrong() -> None:
    a = assess_lifecycle(tuple(WEED_ANSWER), SEVEN_YEARS, PREFIX)
    assert not a.expiry_ok
    assert "sealtrail-data:trail/" in a.expiry_detail and str(7 * 366 + 1) in a.expiry_detail


def test_rules_of_other_trails_and_other_owners_are_kept_as_foreign() -> None:
    other_trail = desired_lifecycle(BUILTIN, "other/")
    logs = {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 7}}
    a = assess_lifecycle(tuple(other_trail + [logs] + WEED_ANSWER), BUILTIN, PREFIX)
    assert a.foreign == other_trail + [logs]
    assert a.conflicts == []  # neither touches trail/


def rule(**parts: object) -> dict:
    return {"ID": "theirs", "Status": "Enabled", "Filter": {"Prefix": ""}, **parts}


CONFLICTS = {
    "whole-bucket-expiry-after-30-days": (rule(Expiration={"Days": 30}), "expires objects after 30 days"),
    "expiry-on-a-date": (rule(Expiration={"Date": datetime(2030, 1, 1, tzinfo=timezone.utc)}), "however recent"),
    "noncurrent-versions-after-a-day": (rule(NoncurrentVersionExpiration={"NoncurrentDays": 1}),
                                        "deletes noncurrent versions after 1 days"),
    "archive-class": (rule(Transitions=[{"Days": 30, "StorageClass": "DEEP_ARCHIVE"}]), "DEEP_ARCHIVE"),
    "deeper-prefix-inside-the-trail": (rule(Filter={"Prefix": "trail/data/dt=2024"}, Expiration={"Days": 1}),
                                       "expires objects after 1 days"),
    "tagged-rule-on-the-trail": (rule(Filter={"And": {"Prefix": "trail/", "Tags": [{"Key": "t", "Value": "1"}]}},
                                      Expiration={"Days": 5}), "after 5 days"),
}


@pytest.mark.parametrize("theirs,message", CONFLICTS.values(), ids=CONFLICTS.keys())
def test_someone_elses_rule_that_expires_the_trail_early_is_a_conflict(theirs: dict, message: str) -> None:
    [problem] = foreign_conflicts((theirs,), BUILTIN, PREFIX)
    assert message in problem and "theirs" in problem


NOT_CONFLICTS = {
    "other-prefix": rule(Filter={"Prefix": "logs/"}, Expiration={"Days": 1}),
    "disabled": {**rule(Expiration={"Days": 1}), "Status": "Disabled"},
    "long-enough": rule(Expiration={"Days": 4000}, NoncurrentVersionExpiration={"NoncurrentDays": 4000}),
    "readable-transition": rule(Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"}]),
    "abort-uploads-only": rule(AbortIncompleteMultipartUpload={"DaysAfterInitiation": 1}),
}


@pytest.mark.parametrize("theirs", NOT_CONFLICTS.values(), ids=NOT_CONFLICTS.keys())
def test_harmless_foreign_rules_are_no_conflict(theirs: dict) -> None:
    assert foreign_conflicts((theirs,), BUILTIN, PREFIX) == []


# ---------------------------------------------------------------------------
# encryption and default retention


KMS = parse_policy('[bucket]\nencryption = "aws:kms"\nkms_key_id = "alias/audit"', "p.toml")
NONE = parse_policy('[bucket]\nencryption = "none"', "p.toml")


@pytest.mark.parametrize("policy,current,ok", [
    (BUILTIN, None, False),
    (BUILTIN, {"SSEAlgorithm": "AES256"}, True),
    (BUILTIN, {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "k"}, True),  # stronger than asked
    (KMS, {"SSEAlgorithm": "AES256"}, False),
    (KMS, {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/other"}, False),
    (KMS, {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/audit"}, True),
    (NONE, None, True),
], ids=["aes-missing", "aes", "kms-for-aes", "aes-for-kms", "wrong-kms-key", "kms", "none-required"])
def test_encryption_judgement(policy, current, ok) -> None:  # type: ignore[no-untyped-def]
    assert assess_encryption(current, policy)[0] is ok


def test_default_retention_judgement() -> None:
    assert assess_retention({"Mode": "COMPLIANCE", "Days": 2557}, BUILTIN) == (True, "COMPLIANCE 2557 days")
    ok, detail = assess_retention({"Mode": "GOVERNANCE", "Days": 1}, BUILTIN)
    assert not ok and detail == "GOVERNANCE 1 day; want COMPLIANCE 2557 days"
    assert assess_retention(None, SEVEN_YEARS) == (False, "none; want COMPLIANCE 7 years")
    assert not assess_retention({"Mode": "COMPLIANCE", "Days": 2557}, SEVEN_YEARS)[0]


# ---------------------------------------------------------------------------
# legal hold: which objects hold a tenant


def test_holds_tenant_reads_the_tenant_column() -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"seq": [1, 2], "tenant": ["acme", "globex"]}), sink)
    body = sink.getvalue().to_pybytes()
    assert holds_tenant(body, "globex") and not holds_tenant(body, "initech")
