"""The doctor's pure verdicts (sealtrail/cli/doctor.py); the checks against live services are
tests/integration/test_doctor.py."""

from __future__ import annotations

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME

from sealtrail.cli.doctor import SKEW_FAIL_S, SKEW_WARN_S, Check, Verdict, broker_skew, skew_verdict, summary


@pytest.mark.parametrize("skew,verdict", [(0.0, "pass"), (SKEW_WARN_S, "pass"), (-SKEW_WARN_S - 0.1, "warn"),
                                          (SKEW_FAIL_S, "warn"), (SKEW_FAIL_S + 0.1, "fail"), (-3600, "fail")])
def test_skew_thresholds(skew: float, verdict: str) -> None:
    check = skew_verdict("clock", "s3", skew)
    assert check.verdict.value == verdict
    assert ("ahead of" if skew > 0 else "behind") in check.detail
    assert bool(check.fix) == (verdict != "pass")


def test_a_broker_stamp_inside_the_request_is_no_skew() -> None:
    check = broker_skew(TIMESTAMP_LOG_APPEND_TIME, 1_000_500, 1000.0, 1001.0)
    assert check.verdict is Verdict.PASS and "0.0 s" in check.detail


def test_a_broker_stamp_outside_the_request_is_its_skew() -> None:
    check = broker_skew(TIMESTAMP_LOG_APPEND_TIME, 1_091_000, 1000.0, 1001.0)
    assert check.verdict is Verdict.FAIL and "90.5 s ahead of" in check.detail


def test_a_producers_timestamp_measures_nothing() -> None:
    check = broker_skew(TIMESTAMP_CREATE_TIME, 1, 1000.0, 1001.0)
    assert check.verdict is Verdict.WARN and "LogAppendTime" in check.fix


def test_summary_fails_only_on_a_failed_check() -> None:
    checks = [Check("a", "x", Verdict.PASS, ""), Check("a", "y", Verdict.WARN, "", "fix")]
    assert summary(checks) == {"ok": True, "pass": 1, "warn": 1, "fail": 0}
    assert summary([*checks, Check("b", "z", Verdict.FAIL, "", "fix")])["ok"] is False
