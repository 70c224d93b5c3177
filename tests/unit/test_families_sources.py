"""Events from other sources: git history, access reviews, SOC 2 evidence entries.

Real git repositories in a temporary folder; the client is a recorder with
the client's emit/flush interface that validates like the real one.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sealtrail.errors import ConfigError, InvalidEventError
from sealtrail.producers import prepare
from sealtrail.producers.access_review import diff, publish_review, read_file_source
from sealtrail.producers.evidence_entry import evidence_event
from sealtrail.producers.git import parse_log, publish_git


class Client:
    def __init__(self, fail_flush_after: int | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.flushed = 0
        self.fail_flush_after = fail_flush_after

    def emit(self, event: dict[str, Any]) -> str:
        prepared = prepare(event)
        self.events.append(prepared.model_dump(mode="json", exclude_none=True))
        return str(prepared.event_id)

    def flush(self) -> None:
        if self.fail_flush_after is not None and self.flushed >= self.fail_flush_after:
            from sealtrail.errors import ServiceUnavailable

            raise ServiceUnavailable("kafka", "down for the test")
        self.flushed += 1


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "Alice", "GIT_AUTHOR_EMAIL": "alice@example.com",
                        "GIT_COMMITTER_NAME": "Bob", "GIT_COMMITTER_EMAIL": "bob@example.com",
                        "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo), "PATH": "/usr/bin:/bin"})


def commit(repo: Path, name: str, text: str, message: str) -> None:
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "service"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    commit(path, "app.py", "print(1)\n", "first commit")
    commit(path, "deploy/values.yml", "replicas: 2\n", "scale up\n\nbody line with token=abc123secret")
    return path


def test_one_event_per_commit_with_configuration_changes_flagged(repo: Path, tmp_path: Path) -> None:
    client = Client()
    result = publish_git(client, repo, home=tmp_path / "home", tenant="acme")
    assert result.published == 2 and result.configuration_changes == 1
    first, second = client.events
    assert first["action"] == "code.commit" and second["action"] == "code.configuration_change"
    assert second["metadata"]["configuration_files"] == ["deploy/values.yml"]
    assert second["metadata"]["files"] == [{"status": "A", "path": "deploy/values.yml"}]
    assert second["actor"]["id"] == "alice@example.com"
    assert second["metadata"]["committer"]["email"] == "bob@example.com"
    assert second["metadata"]["signature"] == {"status": "unsigned"}
    assert "abc123secret" not in second["metadata"]["message"]  # redacted like any other event
    assert second["resource"]["id"].startswith("service@")


def test_resumes_without_duplicates(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = Client()
    publish_git(first, repo, home=home)
    commit(repo, "app.py", "print(2)\n", "third")
    second = Client()
    result = publish_git(second, repo, home=home)
    assert [e["metadata"]["message"] for e in second.events] == ["third"]
    assert result.resumed_from == first.events[-1]["metadata"]["commit"]
    again = Client()
    assert publish_git(again, repo, home=home).published == 0


def test_rewritten_history_republishes_with_the_same_ids(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = Client()
    publish_git(first, repo, home=home)
    git(repo, "commit", "-q", "--amend", "-m", "rewritten")
    second = Client()
    publish_git(second, repo, home=home)
    assert second.events[0]["event_id"] == first.events[0]["event_id"]  # unchanged commit: the stream drops it
    assert second.events[1]["event_id"] != first.events[1]["event_id"]  # the rewritten one is new


def test_checkpoint_moves_only_after_the_broker_acknowledged(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with pytest.raises(Exception, match="down for the test"):
        publish_git(Client(fail_flush_after=0), repo, home=home)
    retry = Client()
    assert publish_git(retry, repo, home=home).published == 2


def test_git_errors_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--repo"):
        publish_git(Client(), tmp_path / "missing", home=tmp_path)
    (tmp_path / "plain").mkdir()
    with pytest.raises(ConfigError, match="git rev-parse failed"):
        publish_git(Client(), tmp_path / "plain", home=tmp_path)


def test_parse_log_handles_merges_and_renames() -> None:
    record = ("\x1e" + "\x1f".join(["abc", "p1 p2", "A", "a@x", "2026-01-01T00:00:00+00:00", "C", "c@x",
                                     "2026-01-01T00:00:00+00:00", "G", "KEY", "merge\n"]) + "\x1d\n\nM\tx.yml\nD\told.txt\n")
    [c] = list(parse_log(record))
    assert c.parents == ("p1", "p2") and c.signature == "good" and c.files == (("M", "x.yml"), ("D", "old.txt"))


CSV_1 = "principal,type,groups,policies,mfa,last_used\nalice,user,admins;dev,Admin,true,2026-11-01\nbob,user,dev,,false,\n"
CSV_2 = "principal,type,groups,policies,mfa,last_used\nalice,user,dev,Admin;Billing,false,2026-11-01\ncarol,user,dev,,yes,\n"


def test_access_review_snapshot_and_difference(tmp_path: Path) -> None:
    source = tmp_path / "idp.csv"
    source.write_text(CSV_1)
    first = Client()
    r1 = publish_review(first, read_file_source(source), source=f"file:{source}", home=tmp_path, tenant="acme")
    assert r1.first_review and r1.principals == 2 and r1.changes == 0
    assert {e["action"] for e in first.events} == {"access.review_snapshot"}
    alice = next(e for e in first.events if e["resource"]["id"] == "alice")
    assert alice["after"] == {"principal": "alice", "type": "user", "groups": ["admins", "dev"],
                              "policies": ["Admin"], "mfa": True, "last_used": "2026-11-01"}

    source.write_text(CSV_2)
    second = Client()
    r2 = publish_review(second, read_file_source(source), source=f"file:{source}", home=tmp_path, tenant="acme")
    changes = sorted((e["action"], e["resource"]["id"], json.dumps({k: v for k, v in e["metadata"].items()
                                                                     if k not in ("snapshot_id", "review_source")}))
                     for e in second.events if e["category"] == "admin")
    assert changes == [
        ("admin.access_granted", "alice", '{"policies": ["Billing"]}'),
        ("admin.access_granted", "carol", '{"principal_added": true, "groups": ["dev"], "policies": []}'),
        ("admin.access_revoked", "alice", '{"groups": ["admins"]}'),
        ("admin.access_revoked", "bob", '{"principal_removed": true, "groups": ["dev"], "policies": []}'),
        ("admin.mfa_disabled", "alice", "{}"),
    ]
    assert r2.changes == 5
    assert len({e["event_id"] for e in first.events + second.events}) == len(first.events + second.events)


def test_access_review_json_source_and_bad_input(tmp_path: Path) -> None:
    good = tmp_path / "p.json"
    good.write_text(json.dumps({"principals": [{"principal": "deploy", "type": "role", "policies": ["S3Write"]}]}))
    [p] = read_file_source(good)
    assert (p.type, p.policies, p.mfa) == ("role", ("S3Write",), None)
    for text, match in [("[{\"type\": \"user\"}]", "principal"), ("[{\"principal\": \"a\", \"type\": \"robot\"}]", "type"),
                        ("[{\"principal\": \"a\", \"mfa\": \"maybe\"}]", "mfa"), ("{not json", "not valid JSON"),
                        ("[{\"principal\": \"a\"}, {\"principal\": \"a\"}]", "twice")]:
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises((InvalidEventError, ConfigError), match=match):
            read_file_source(bad)
    with pytest.raises(ConfigError, match="no such file"):
        read_file_source(tmp_path / "missing.csv")


def test_diff_is_empty_for_the_same_snapshot() -> None:
    snap = {"user:a": {"groups": ["g"], "policies": [], "mfa": True}}
    assert diff(snap, snap) == []


def test_evidence_entry(tmp_path: Path) -> None:
    attachment = tmp_path / "pentest.pdf"
    attachment.write_bytes(b"%PDF report")
    event = evidence_event(kind="security", task="annual penetration test", criteria=["CC7.1", "CC4.1", "CC7.1"],
                           reviewer="ciso@example.com", actor="alice", tenant="acme", files=[attachment], ticket="SEC-12")
    prepared = prepare(event)
    assert prepared.category.value == "security" and prepared.action == "evidence.security"
    assert prepared.metadata["criteria"] == ["CC4.1", "CC7.1"]
    assert prepared.metadata["files"] == [
        {"path": str(attachment), "sha256": hashlib.sha256(b"%PDF report").hexdigest(), "bytes": 11}]


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"kind": "vibes"}, "type"), ({"criteria": []}, "criteria"), ({"criteria": ["CC6.1", "SOC2"]}, "criteria"),
     ({"task": " "}, "task"), ({"reviewer": ""}, "reviewer")],
)
def test_evidence_entry_refuses_bad_arguments(changes: dict[str, Any], field: str, tmp_path: Path) -> None:
    args = {"kind": "configuration", "task": "t", "criteria": ["CC8.1"], "reviewer": "r", "actor": "a", "tenant": "x"}
    with pytest.raises(InvalidEventError) as info:
        evidence_event(**(args | changes))
    assert info.value.field == field
