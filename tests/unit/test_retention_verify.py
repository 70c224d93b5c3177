"""verify's lock check follows the retention policy: each object must be locked as long as its events need.

Objects are real: events validated and sealed as the stream does, written as
the sink's Parquet; only the lock each one carries is varied, one case per test.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sealtrail.config import RetentionSettings, S3Settings, Settings
from sealtrail.evidence.checks.locks import lock_findings
from sealtrail.evidence.findings import FindingKind as K
from sealtrail.layout import data_key, digest_key
from sealtrail.retention import add_years
from sealtrail.store import ObjectVersion, StoredObject
from tests.support import builders

PREFIX = "trail/"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
POLICY = """
environment = "non-production"
[default]
years = 1
[[rule]]
name = "hipaa-phi-changes"
category = "change"
action = "phi.*"
years = 7
[[rule]]
name = "sandbox"
tenant = "sandbox"
days = 30
mode = "GOVERNANCE"
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    return Settings(s3=S3Settings(prefix=PREFIX), retention=RetentionSettings(policy_file=path))


def sealed_object(events: list[tuple[str, str, str]]) -> tuple[str, bytes]:
    return data_key(PREFIX, "2024-03-01", "p000", 1, len(events)), builders.sealed_object(events)


def findings(settings: Settings, key: str, body: bytes, mode: str, until: datetime | None) -> list[tuple[K, str]]:
    stored = StoredObject(key, "v1", body, None, mode, until)
    version = ObjectVersion(key, "v1", True, False, len(body), NOW)
    return [(f.kind, f.detail) for f in lock_findings(stored, version, "p000", settings)]


ORDINARY = [("auth", "auth.login", "acme"), ("access", "report.read", "acme")]
WITH_PHI = [*ORDINARY, ("change", "phi.update", "acme")]


def test_ordinary_events_locked_for_the_default_pass(settings: Settings) -> None:
    key, body = sealed_object(ORDINARY)
    assert findings(settings, key, body, "COMPLIANCE", add_years(NOW, 1)) == []


def test_one_phi_change_makes_a_one_year_lock_short_and_names_the_rule(settings: Settings) -> None:
    key, body = sealed_object(WITH_PHI)
    [(kind, detail)] = findings(settings, key, body, "COMPLIANCE", add_years(NOW, 1))
    assert kind == K.RETENTION_SHORT
    assert "hipaa-phi-changes" in detail and add_years(NOW, 7).isoformat() in detail


def test_phi_object_locked_for_seven_years_passes(settings: Settings) -> None:
    key, body = sealed_object(WITH_PHI)
    assert findings(settings, key, body, "COMPLIANCE", add_years(NOW, 7)) == []


def test_a_lock_within_a_day_of_the_policy_is_accepted(settings: Settings) -> None:
    key, body = sealed_object(WITH_PHI)
    assert findings(settings, key, body, "COMPLIANCE", add_years(NOW, 7) - timedelta(hours=12)) == []


def test_sandbox_only_object_may_be_governance_for_thirty_days(settings: Settings) -> None:
    key, body = sealed_object([("access", "report.read", "sandbox"), ("admin", "user.create", "sandbox")])
    assert findings(settings, key, body, "GOVERNANCE", NOW + timedelta(days=30)) == []


def test_governance_lock_on_an_object_with_a_compliance_event(settings: Settings) -> None:
    key, body = sealed_object([("access", "report.read", "sandbox"), ("auth", "auth.login", "acme")])
    kinds = [k for k, _ in findings(settings, key, body, "GOVERNANCE", add_years(NOW, 1))]
    assert kinds == [K.NOT_LOCKED]


def test_digest_needs_the_longest_period(settings: Settings) -> None:
    key = digest_key(PREFIX, "p000", 3)
    assert [k for k, _ in findings(settings, key, b"{}", "COMPLIANCE", add_years(NOW, 1))] == [K.RETENTION_SHORT]
    assert findings(settings, key, b"{}", "COMPLIANCE", add_years(NOW, 7)) == []


def test_unlocked_object_is_reported_once(settings: Settings) -> None:
    key, body = sealed_object(WITH_PHI)
    assert [k for k, _ in findings(settings, key, body, None, None)] == [K.NOT_LOCKED]  # type: ignore[arg-type]
