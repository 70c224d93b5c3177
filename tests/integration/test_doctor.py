"""`sealtrail doctor` against the session's embedded stack: a deployment set up as documented passes, and
each way of getting one wrong is a failed check that says what to change.

Each test has its own topics (a trail tag), bucket and signing key; the doctor runs as an operator runs
it, as a subprocess reading SEALTRAIL_* variables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from sealtrail.evidence.anchor import save_anchor, store_anchor
from sealtrail.publication import publish_public_key
from sealtrail.signing import load_or_create_signer
from sealtrail.sinks.s3 import S3Store
from sealtrail.stack.ports import free_port
from tests.support.environment import settings_from, trail_environment

ACCEPTING = """
[default]
years = 7
mode = "{mode}"
[bucket]
transitions = []
encryption = "none"
"""


class Deployment:
    """One test's topics, bucket and key on the shared stack, and the CLI pointed at them."""

    def __init__(self, stack: Any, tmp: Path, mode: str = "COMPLIANCE") -> None:
        tag = f"d{uuid.uuid4().hex[:8]}"
        policy = tmp / "policy.toml"
        environment = "" if mode == "COMPLIANCE" else 'environment = "non-production"\n'
        policy.write_text(environment + ACCEPTING.format(mode=mode))
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SEALTRAIL_")},
            **trail_environment(stack.settings.home, tag),
            "SEALTRAIL_S3__BUCKET": tag,
            "SEALTRAIL_RETENTION__POLICY_FILE": str(policy),
            "SEALTRAIL_KEYS__SIGNING_KEY_FILE": str(tmp / "keys" / "signing.pem"),
        }
        self.tmp = tmp

    @property
    def settings(self) -> Any:
        return settings_from({k: v for k, v in self.env.items() if k.startswith("SEALTRAIL_")})

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "sealtrail.cli", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        assert "Traceback" not in done.stdout + done.stderr, done.stderr
        return done

    def set_up(self) -> None:
        """What deploy/README.md tells an operator to do: bucket, topics, the worker's key, an anchor."""
        for args in (("bucket", "init"), ("topics", "init")):
            done = self.run(*args)
            assert done.returncode == 0, done.stdout + done.stderr
        settings = self.settings
        signer = load_or_create_signer(settings.signing_key_path, self.tmp / "keys" / "public")
        publish_public_key(S3Store(settings), settings, signer)  # what a worker does before it signs
        self.env["SEALTRAIL_KEYS__TRUSTED"] = json.dumps([str(next((self.tmp / "keys" / "public").glob("*.pem")))])
        done = self.run("anchor", "save", "--to-postgres")
        assert done.returncode == 0, done.stderr

    def doctor(self) -> tuple[int, dict[str, Any], dict[tuple[str, str], dict[str, str]]]:
        done = self.run("doctor", "--json")
        report = json.loads(done.stdout)
        return done.returncode, report, {(c["area"], c["name"]): c for c in report["checks"]}


def verdicts(checks: dict[tuple[str, str], dict[str, str]], verdict: str) -> set[tuple[str, str]]:
    return {k for k, c in checks.items() if c["verdict"] == verdict}


def test_a_deployment_set_up_as_documented_passes(stack: Any, tmp_path: Path) -> None:
    d = Deployment(stack, tmp_path)
    d.set_up()
    rc, report, checks = d.doctor()
    assert verdicts(checks, "fail") == set(), [c for c in report["checks"] if c["verdict"] == "fail"]
    assert verdicts(checks, "warn") == {("clock", "kafka")}  # Kafka has no clock to ask
    assert rc == 0 and report["ok"]
    assert {area for area, _ in checks} == {"topics", "bucket", "keys", "clock", "anchors"}
    for name in ("probe-lock", "cannot-delete-version", "cannot-shorten-retention", "default-retention"):
        assert checks[("bucket", name)]["verdict"] == "pass", name
    assert "COMPLIANCE until" in checks[("keys", "public-key-published")]["detail"]
    text = d.run("doctor")
    assert text.returncode == 0 and text.stdout.splitlines()[-1].endswith("1 warning(s), 0 failed")
    assert d.run("doctor", "--strict").returncode == 1  # the unmeasured broker clock is a warning


def test_a_deployment_that_keeps_no_promise_fails_each_with_a_fix(stack: Any, tmp_path: Path) -> None:
    """A plain bucket (no versioning, no lock), no topics, no key, no anchor: each is a failed check."""
    d = Deployment(stack, tmp_path)
    S3Store(d.settings).client.create_bucket(Bucket=d.settings.s3.bucket)
    rc, report, checks = d.doctor()
    assert rc == 1 and not report["ok"]
    failed = verdicts(checks, "fail")
    assert {("bucket", "versioning"), ("bucket", "object-lock"), ("bucket", "probe-lock"),
            ("keys", "signing-key")} <= failed
    topics = d.settings.kafka.topics
    assert {("topics", f"{name} topic") for name in (topics.events, topics.chained, topics.dlq)} <= failed
    assert ("anchors", "anchor") in verdicts(checks, "warn")
    assert all(checks[k]["fix"] for k in failed), [k for k in failed if not checks[k]["fix"]]
    assert "sealtrail topics init" in checks[("topics", f"{topics.events} topic")]["fix"]


def test_credentials_that_can_bypass_a_governance_lock_fail(stack: Any, tmp_path: Path) -> None:
    """The insider's case: GOVERNANCE, and credentials allowed to bypass it (the embedded server's admin
    keys are). The doctor's probe is deleted for real, and the check says so."""
    d = Deployment(stack, tmp_path, mode="GOVERNANCE")
    d.set_up()
    rc, _, checks = d.doctor()
    assert rc == 1
    assert checks[("bucket", "probe-lock")]["verdict"] == "pass"
    assert checks[("bucket", "cannot-delete-version")]["verdict"] == "fail"
    assert "the store did it" in checks[("bucket", "cannot-delete-version")]["detail"]
    store = S3Store(d.settings)
    probes = store.client.list_object_versions(Bucket=store.bucket, Prefix=f"{d.settings.s3.prefix}.sealtrail-probe/")
    assert probes.get("Versions", []) == []  # the delete happened: the check is not a guess


def test_an_anchor_the_bucket_no_longer_matches_fails(stack: Any, tmp_path: Path) -> None:
    d = Deployment(stack, tmp_path)
    d.set_up()
    settings = d.settings
    anchor = save_anchor(S3Store(settings), settings)
    anchor["chains"]["0"] = {"digest": f"{settings.s3.prefix}digests/chain=0/00000000000000000001.json",
                             "version_id": None, "sha256": "0" * 64, "head": {"seq": 1, "hash": "00"}}
    store_anchor(settings.database_url, anchor)
    rc, _, checks = d.doctor()
    assert rc == 1
    assert checks[("anchors", "anchor-matches")]["verdict"] == "fail"
    assert "chain(s) 0" in checks[("anchors", "anchor-matches")]["detail"]


def test_an_unreachable_broker_is_one_failed_check_and_the_rest_still_run(stack: Any, tmp_path: Path) -> None:
    d = Deployment(stack, tmp_path)
    d.set_up()
    d.env["SEALTRAIL_KAFKA__BOOTSTRAP"] = f"127.0.0.1:{free_port()}"
    rc, _, checks = d.doctor()
    assert rc == 1
    assert [k for k in checks if k[0] == "topics"] == [("topics", "reachable")]
    assert checks[("topics", "reachable")]["verdict"] == "fail"
    assert "kafka.bootstrap" in checks[("topics", "reachable")]["fix"]
    assert checks[("bucket", "cannot-delete-version")]["verdict"] == "pass"


@pytest.mark.parametrize("command", [("verify",), ("topics", "check"), ("bucket", "init", "--check"), ("stream",),
                                     ("doctor",), ("query", "--actor", "alice"), ("emit", "-"), ("sink",), ("serve",),
                                     ("anchor", "save"), ("keys", "list"), ("spool", "drain")])
def test_with_no_stack_and_no_settings_a_command_says_so_in_one_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEALTRAIL_", "AWS_"))}
    done = subprocess.run([sys.executable, "-m", "sealtrail.cli", "--home", str(tmp_path), *command], env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "sealtrail up" in lines[0]
    assert not (tmp_path / "keys").exists()  # nothing was created on the way to the error


def test_the_broker_clock_is_read_only_from_a_topic_the_broker_stamps(stack: Any, tmp_path: Path) -> None:
    """Tansu keeps the producer's timestamp even on a LogAppendTime topic, so the doctor must say the
    broker's clock was not measured, rather than report the producer's own time as the broker's."""
    d = Deployment(stack, tmp_path)
    d.set_up()
    topic = f"{d.settings.kafka.topics.events}.clock"
    admin = AdminClient({"bootstrap.servers": d.settings.kafka.bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1, config={"message.timestamp.type": "LogAppendTime"})]).values():
        future.result(30)
    done = d.run("doctor", "--json", "--clock-topic", topic)
    check = next(c for c in json.loads(done.stdout)["checks"] if (c["area"], c["name"]) == ("clock", "kafka"))
    assert check["verdict"] == "warn" and "kept the producer's timestamp" in check["detail"]
