"""`sealtrail bucket init` and `sealtrail hold` against the real embedded S3 server (SeaweedFS).

Each test makes its own bucket. What the server cannot do is asserted as
such (UNSUPPORTED, with its answer), so a newer server that can will show up
here as a failing assertion rather than as a silent gap.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError

from sealtrail.layout import data_key
from sealtrail.retention import builtin_policy, parse_policy
from sealtrail.sinks.bucket import Status, init_bucket, read_state, rule_id
from sealtrail.sinks.s3 import S3Store
from tests.support import builders

PREFIX = "trail/"
BUILTIN = builtin_policy("COMPLIANCE", 2557)
# What a policy for this store looks like once it accepts the store's limits.
ACCEPTING = """
[default]
years = 7
[bucket]
transitions = []
encryption = "none"
"""


def statuses(report: Any) -> dict[str, Status]:
    return {item.name: item.status for item in report.items}


def snapshot(store: S3Store) -> tuple[Any, list[tuple[str, str]]]:
    """Everything init could change: the bucket's settings and every object version in it."""
    listing = store.client.list_object_versions(Bucket=store.bucket)
    versions = [(v["Key"], v["VersionId"]) for v in listing.get("Versions", []) + listing.get("DeleteMarkers", [])]
    return read_state(store), sorted(versions)


@pytest.fixture
def bucket_store(stack, unique_name) -> Callable[..., S3Store]:  # type: ignore[no-untyped-def]
    def make(create: str | None = None) -> S3Store:
        """A store on a new bucket name; create="plain" or "locked" makes the bucket first."""
        name = unique_name("bk")
        settings = stack.settings.model_copy(update={"s3": stack.settings.s3.model_copy(update={"bucket": name})})
        store = S3Store(settings)
        if create == "plain":
            store.client.create_bucket(Bucket=name)
        elif create == "locked":
            store.client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
        return store

    return make


def run_cli(stack, bucket: str, *args: str, policy: Path | None = None) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALTRAIL_")}
    env.update(SEALTRAIL_HOME=str(stack.settings.home), SEALTRAIL_S3__BUCKET=bucket, SEALTRAIL_S3__PREFIX=PREFIX)
    if policy is not None:
        env["SEALTRAIL_RETENTION__POLICY_FILE"] = str(policy)
    return subprocess.run([sys.executable, "-m", "sealtrail.cli", *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


# ---------------------------------------------------------------------------
# bucket init


def test_init_creates_the_bucket_and_a_second_run_changes_nothing(bucket_store) -> None:  # type: ignore[no-untyped-def]
    store = bucket_store()
    first = init_bucket(store, BUILTIN, PREFIX, "us-east-1")
    assert statuses(first) == {
        "bucket": Status.CREATED,
        "versioning": Status.OK,  # Object Lock at creation turns it on
        "object-lock": Status.OK,
        "default-retention": Status.CHANGED,
        "encryption": Status.UNSUPPORTED,  # SeaweedFS without s3.sse.kek fails every SSE-S3 write
        "lifecycle-expiry": Status.CHANGED,
        "lifecycle-transitions": Status.UNSUPPORTED,  # SeaweedFS 4.48: 501 NotImplemented
    }
    details = {item.name: item.detail for item in first.items}
    assert "InternalError" in details["encryption"] and "left unset" in details["encryption"]
    assert "NotImplemented" in details["lifecycle-transitions"]

    state = read_state(store)
    assert state.versioning == "Enabled" and state.object_lock
    assert state.default_retention == {"Mode": "COMPLIANCE", "Days": 2557}
    assert state.encryption is None  # not set: it would have broken every PUT
    assert {r["ID"] for r in state.lifecycle} == {rule_id(r, PREFIX) for r in ("data", "digests", "delete-markers")}

    before = snapshot(store)
    second = init_bucket(store, BUILTIN, PREFIX, "us-east-1")
    assert second.changed == []
    assert [(i.name, i.status) for i in second.gaps] == [("encryption", Status.UNSUPPORTED),
                                                         ("lifecycle-transitions", Status.UNSUPPORTED)]
    assert snapshot(store) == before
    assert before[1] == []  # the failed encryption probe left no object behind

    # The bucket still works for the sink: a locked PUT succeeds and a delete of it is refused.
    until = datetime.now(timezone.utc) + timedelta(days=1)
    version = store.put_locked(f"{PREFIX}data/x", b"x", "COMPLIANCE", until)
    with pytest.raises(ClientError):
        store.client.delete_object(Bucket=store.bucket, Key=f"{PREFIX}data/x", VersionId=version)


def test_check_reports_the_gaps_of_a_plain_bucket_and_changes_nothing(bucket_store) -> None:  # type: ignore[no-untyped-def]
    store = bucket_store(create="plain")
    policy = parse_policy(ACCEPTING, "accepting.toml")
    before = snapshot(store)
    check = init_bucket(store, policy, PREFIX, "us-east-1", check_only=True)
    assert statuses(check) == {
        "bucket": Status.OK, "versioning": Status.MISSING, "object-lock": Status.MISSING,
        "default-retention": Status.MISSING, "encryption": Status.OK,
        "lifecycle-expiry": Status.MISSING, "lifecycle-transitions": Status.OK,
    }
    assert snapshot(store) == before

    fixed = init_bucket(store, policy, PREFIX, "us-east-1")
    assert statuses(fixed) == {
        "bucket": Status.OK, "versioning": Status.CHANGED, "object-lock": Status.CHANGED,
        "default-retention": Status.CHANGED, "encryption": Status.OK,
        "lifecycle-expiry": Status.CHANGED, "lifecycle-transitions": Status.OK,
    }
    assert "cannot be undone" in next(i.detail for i in fixed.items if i.name == "object-lock")
    assert read_state(store).default_retention == {"Mode": "COMPLIANCE", "Years": 7}
    again = init_bucket(store, policy, PREFIX, "us-east-1", check_only=True)
    assert again.gaps == [] and again.changed == []


def test_cli_exit_codes_follow_the_gaps(stack, bucket_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = bucket_store()
    accepting = tmp_path / "accepting.toml"
    accepting.write_text(ACCEPTING)

    missing = run_cli(stack, store.bucket, "bucket", "init", "--check", policy=accepting)
    assert missing.returncode == 1, missing.stderr
    assert "MISSING" in missing.stdout and "does not exist" in missing.stdout

    created = run_cli(stack, store.bucket, "bucket", "init", policy=accepting)
    assert created.returncode == 0, created.stdout + created.stderr
    assert "created" in created.stdout and "the bucket is as the policy wants" in created.stdout

    again = run_cli(stack, store.bucket, "bucket", "init", "--json", policy=accepting)
    assert again.returncode == 0
    report = orjson.loads(again.stdout)
    assert report["ok"] and {i["status"] for i in report["items"]} == {"ok"}

    strict = run_cli(stack, store.bucket, "bucket", "init", "--check")  # built-in policy: wants SSE and transitions
    assert strict.returncode == 1
    assert "MISSING      encryption" in strict.stdout and "MISSING      lifecycle-transitions" in strict.stdout

    shown = run_cli(stack, store.bucket, "bucket", "policy", policy=accepting)
    assert shown.returncode == 0 and "  default: COMPLIANCE 7 years" in shown.stdout
    assert f'"ID": "{rule_id("data", PREFIX)}"' in shown.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nname = "loose"\ncategory = "auth"\ndays = 3\nmode = "GOVERNANCE"\n')
    refused = run_cli(stack, store.bucket, "bucket", "init", policy=bad)
    assert refused.returncode == 2 and "'loose'" in refused.stderr and "GOVERNANCE" in refused.stderr


def test_someone_elses_lifecycle_rule_is_kept_and_reported(bucket_store) -> None:  # type: ignore[no-untyped-def]
    store = bucket_store(create="locked")
    cleanup = {"ID": "cleanup", "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 30}}
    logs = {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 7}}
    store.client.put_bucket_lifecycle_configuration(Bucket=store.bucket,
                                                    LifecycleConfiguration={"Rules": [cleanup, logs]})
    policy = parse_policy(ACCEPTING, "accepting.toml")
    report = init_bucket(store, policy, PREFIX, "us-east-1")
    [conflict] = [i for i in report.items if i.status == Status.CONFLICT]
    assert "cleanup" in conflict.detail and "30 days" in conflict.detail
    assert statuses(report)["lifecycle-expiry"] == Status.CHANGED
    ids = {r["ID"] for r in read_state(store).lifecycle}
    assert {"cleanup", "logs", rule_id("data", PREFIX)} <= ids  # theirs kept, ours added

    # A longer policy later: init moves its own rules and the default retention, and keeps theirs.
    longer = parse_policy(ACCEPTING.replace("years = 7", "years = 10"), "longer.toml")
    moved = init_bucket(store, longer, PREFIX, "us-east-1")
    assert statuses(moved)["lifecycle-expiry"] == Status.CHANGED
    assert statuses(moved)["default-retention"] == Status.CHANGED
    state = read_state(store)
    data = next(r for r in state.lifecycle if r["ID"] == rule_id("data", PREFIX))
    assert data["Expiration"]["Days"] == 10 * 366 + 1
    assert {"cleanup", "logs"} <= {r["ID"] for r in state.lifecycle}


# ---------------------------------------------------------------------------
# legal hold


def sealed_object(tenants: list[str]) -> bytes:
    return builders.sealed_object([("access", "report.read", tenant) for tenant in tenants])


def test_hold_a_tenants_objects_in_a_date_range_then_release(stack, bucket_store) -> None:  # type: ignore[no-untyped-def]
    store = bucket_store(create="locked")
    until = datetime.now(timezone.utc) + timedelta(days=1)
    layout = {  # day -> tenants of each object that day (one object per chain)
        "2024-03-01": [["acme"], ["acme", "globex"]],
        "2024-03-02": [["globex"], ["acme"]],
        "2024-03-03": [["globex"], ["globex"]],
    }
    keys: dict[str, list[str]] = {}
    for day, objects in layout.items():
        for chain_no, tenants in enumerate(objects):
            key = data_key(PREFIX, day, f"p{chain_no:03d}", 1, len(tenants))
            # GOVERNANCE for a day, so only the legal hold can be what refuses the delete below
            store.put_locked(key, sealed_object(tenants), "GOVERNANCE", until)
            keys.setdefault(day, []).append(key)
    globex_in_range = [keys["2024-03-01"][1], keys["2024-03-02"][0]]

    held = run_cli(stack, store.bucket, "hold", "--from", "2024-03-01", "--to", "2024-03-02", "--tenant", "globex")
    assert held.returncode == 0, held.stdout + held.stderr
    assert sorted(line.split()[1] for line in held.stdout.splitlines() if line.startswith("held")) == \
        sorted(globex_in_range)
    assert "placed on 2 object(s)" in held.stdout and "2 without that tenant" in held.stdout
    on = {k for ks in keys.values() for k in ks if store.legal_hold(k, store.head(k).version_id)}
    assert on == set(globex_in_range)

    key = globex_in_range[0]
    with pytest.raises(ClientError) as refused:
        store.client.delete_object(Bucket=store.bucket, Key=key, VersionId=store.head(key).version_id,
                                   BypassGovernanceRetention=True)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"

    again = run_cli(stack, store.bucket, "hold", "--from", "2024-03-01", "--to", "2024-03-02", "--tenant", "globex")
    assert "placed on 0 object(s)" in again.stdout
    assert sum(line.startswith("already held") for line in again.stdout.splitlines()) == 2

    released = run_cli(stack, store.bucket, "hold", "--from", "2024-03-01", "--to", "2024-03-03", "--release")
    assert released.returncode == 0
    assert "released on 2 object(s)" in released.stdout and "4 already free" in released.stdout
    assert not any(store.legal_hold(k, store.head(k).version_id) for ks in keys.values() for k in ks)

    everything = run_cli(stack, store.bucket, "hold", "--from", "2024-03-02", "--to", "2024-03-02")
    assert "placed on 2 object(s)" in everything.stdout  # without --tenant: every object of the day
    backwards = run_cli(stack, store.bucket, "hold", "--from", "2024-03-03", "--to", "2024-03-01")
    assert backwards.returncode == 2 and "after --to" in backwards.stderr
