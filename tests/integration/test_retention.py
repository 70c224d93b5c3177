"""The retention policy end to end: real stream and sink processes lock each object for its events, verify agrees.

Two waves of events make objects with different needs: first only admin and
access events (the policy's default), then the full mix with billing data
changes (seven years). Each object's retain-until must be what its own
events need; digests and the public key the longest; verify passes under the
policy and names exactly the short objects under a stricter one.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from sealtrail.config import RetentionSettings
from sealtrail.evidence.findings import FindingKind as K
from sealtrail.evidence.walk import verify_store
from sealtrail.layout import KEYS, data_prefix, digest_prefix
from sealtrail.producers.client import AuditClient
from sealtrail.retention import add_years, object_events, parse_policy
from sealtrail.stack.workload import generate

POLICY = """
[default]
days = 400

[[rule]]
name = "soc2-auth"
category = "auth"
years = 3

[[rule]]
name = "billing-changes"
category = "change"
action = "data.*"
years = 7

[bucket]
transitions = []
"""
TOLERANCE = timedelta(minutes=10)  # PUT time versus the time this test computes the lock


def test_sink_locks_each_object_for_its_events_and_verify_follows_the_policy(make_trail, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    policy_file = tmp_path / "retention.toml"
    policy_file.write_text(POLICY)
    trail = make_trail(retention_policy=policy_file)
    quiet = [e for e in generate(2000, seed=41) if e["category"] in ("admin", "access")][:150]
    mixed = list(generate(450, seed=42))
    trail.start("stream")
    trail.start("sink")
    with AuditClient(trail.settings) as client:
        for event in quiet:
            client.emit(event)
    trail.wait_stored(len(quiet))
    with AuditClient(trail.settings) as client:
        for event in mixed:
            client.emit(event)
    trail.wait_stored(len(quiet) + len(mixed))
    for proc in trail.procs:
        trail.stop(proc)

    policy = parse_policy(POLICY, str(policy_file))
    now = datetime.now(timezone.utc)
    store, prefix = trail.store, trail.settings.s3.prefix
    locks = {}
    for key in store.keys(data_prefix(prefix)):
        obj = store.get(key)
        want = policy.lock_for_events(object_events(obj.body), now)
        assert obj.lock_mode == want.mode == "COMPLIANCE"
        assert abs(obj.retain_until - want.retain_until) < TOLERANCE, (key, obj.retain_until, want)
        locks[key] = want.rules
    assert ("default",) in locks.values(), "the quiet wave made objects that need only the default"
    assert ("billing-changes",) in locks.values(), "the mixed wave made seven-year objects"
    longest = add_years(now, 7)
    for key in [*store.keys(digest_prefix(prefix)), *store.keys(f"{prefix}{KEYS}")]:
        obj = store.get(key)
        assert obj.lock_mode == "COMPLIANCE" and abs(obj.retain_until - longest) < TOLERANCE, key

    report = verify_store(store, trail.settings)
    assert report.ok, report.findings
    assert report.events == len(quiet) + len(mixed)

    # An auditor holding the trail to a stricter policy (everything three years) sees exactly the short objects.
    strict_file = tmp_path / "strict.toml"
    strict_file.write_text(POLICY.replace("days = 400", "years = 3"))
    strict = trail.settings.model_copy(update={"retention": RetentionSettings(policy_file=strict_file)})
    short = verify_store(store, strict).findings
    assert short and {f.kind for f in short} == {K.RETENTION_SHORT}
    assert {f.key for f in short} == {k for k, rules in locks.items() if rules == ("default",)}
    assert all("rule default" in f.detail for f in short)
