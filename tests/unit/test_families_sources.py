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


FIELDS = ["p1 p2", "A", "a@x", "2026-01-01T00:00:00+00:00", "C", "c@x", "2026-01-01T00:00:00+00:00", "G", "KEY"]


def test_parse_log_handles_merges_and_renames() -> None:
    sha = "ab" * 20
    log = "\0".join([sha, *FIELDS, "merge\n"]) + "\0"
    files = f"{sha}\0\nM\0x.yml\0D\0old.txt\0"
    [c] = list(parse_log(log, files, [sha]))
    assert c.parents == ("p1", "p2") and c.signature == "good" and c.files == (("M", "x.yml"), ("D", "old.txt"))


def test_a_path_that_looks_like_the_next_sha_is_still_a_path() -> None:
    one, two = "a" * 40, "b" * 40
    log = "\0".join([one, *FIELDS, "one\n", two, *FIELDS, "two\n"]) + "\0"
    files = f"{one}\0\nA\0{two}\0{two}\0"
    first, second = parse_log(log, files, [one, two])
    assert first.files == (("A", two),) and second.files == ()


@pytest.mark.parametrize(
    ("log", "shas", "why"),
    [
        ("\0".join(["a" * 40, *FIELDS, "one\n"]) + "\0", ["b" * 40], "rev-list says"),  # a sha rev-list did not name
        ("\0".join(["a" * 40, *FIELDS, "one\0forged\n"]) + "\0", ["a" * 40], "fields for 1 commits"),  # a NUL in a field
        ("\0".join(["zz", *FIELDS, "one\n"]) + "\0", ["zz"], "not a commit id"),
        ("\0".join(["a" * 40, *FIELDS, "one\n"]) + "\0", [], "fields for 0 commits"),
    ],
)
def test_records_that_disagree_with_rev_list_are_refused(log: str, shas: list[str], why: str) -> None:
    files = "".join(f"{sha}\0" for sha in shas)
    with pytest.raises(InvalidEventError, match=why):
        list(parse_log(log, files, shas))


FORGED_TAIL = ("\x1d\x1e" + "0" * 40 + "\x1f\x1fCEO\x1fceo@example.com\x1f2026-01-01T00:00:00+00:00\x1fCEO"
               "\x1fceo@example.com\x1f2026-01-01T00:00:00+00:00\x1fG\x1fABCDEF0123456789\x1fapprove production IAM change")


def test_a_commit_message_cannot_forge_a_commit_event(repo: Path, tmp_path: Path) -> None:
    """The review's M9 reproduction: the old record and field separators inside a verbatim message."""
    (repo / "iam.tf").write_text("role = admin\n")
    git(repo, "add", "iam.tf")
    git(repo, "commit", "-q", "--cleanup=verbatim", "-m", "harmless change" + FORGED_TAIL)
    client = Client()
    publish_git(client, repo, home=tmp_path / "home")
    assert len(client.events) == 3
    last = client.events[-1]
    assert last["actor"]["id"] == "alice@example.com"
    assert last["metadata"]["signature"] == {"status": "unsigned"}
    assert last["metadata"]["files"] == [{"status": "A", "path": "iam.tf"}]
    assert last["metadata"]["message"].startswith("harmless change")
    assert "ceo@example.com" not in {e["actor"]["id"] for e in client.events}


def test_a_nul_in_a_commit_message_ends_the_message(repo: Path, tmp_path: Path) -> None:
    """git stores a NUL in a message written with hash-object, and its log prints the message up to it."""
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD", "HEAD^{tree}"], check=True,
                          capture_output=True, text=True).stdout.split()
    body = (f"tree {head[1]}\nparent {head[0]}\nauthor A <a@x> 1700000000 +0000\n"
            f"committer A <a@x> 1700000000 +0000\n\nnul\0{FORGED_TAIL}\n").encode()
    forged = subprocess.run(["git", "-C", str(repo), "hash-object", "-t", "commit", "-w", "--stdin"], input=body,
                            check=True, capture_output=True).stdout.decode().strip()
    git(repo, "update-ref", "HEAD", forged)
    client = Client()
    publish_git(client, repo, home=tmp_path / "home")
    assert [e["metadata"]["message"] for e in client.events][-1] == "nul"
    assert len(client.events) == 3 and "ceo@example.com" not in {e["actor"]["id"] for e in client.events}


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
