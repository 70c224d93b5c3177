"""`sealtrail produce git`: one change event per commit, the code-change trail SOC 2 auditors ask for.

Each commit becomes a ``change`` event (``code.commit``, or
``code.configuration_change`` when it touches a file matching the
configuration globs) with author, committer, times, message, changed files,
parents and signature status. The event id is a UUIDv5 of the repository
name and the commit hash, so publishing the same commit twice gives the same
id and the stream keeps one; a checkpoint (the last published commit, written
only after the broker acknowledged) makes a rerun start where the last one
stopped, and a rewritten history falls back to a full pass that the ids make
harmless.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sealtrail.errors import ConfigError, InvalidEventError

NAMESPACE = uuid.UUID("5d3f8a4e-2b1c-4e6f-9a7d-0c8b6e4f2a19")
DEFAULT_CONFIG_GLOBS = ("*.yml", "*.yaml", "*.json", "*.toml", "*.tf", "*.tfvars", "*.ini", "*.conf", "*.cfg",
                        "Dockerfile", "*.env", ".github/workflows/*")
SIGNATURES = {"G": "good", "B": "bad", "U": "good_untrusted", "X": "good_expired", "Y": "good_expired_key",
              "R": "good_revoked_key", "E": "cannot_check", "N": "unsigned"}
# NUL between fields and (with -z) between commits: git cannot store a NUL in a commit message, so a
# message cannot fake a field or a commit the way it could with the 0x1e/0x1f separators it may hold.
_FIELDS = ("%H", "%P", "%an", "%ae", "%aI", "%cn", "%ce", "%cI", "%G?", "%GK", "%B")
_FORMAT = "%x00".join(_FIELDS)
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
MAX_FILES = 1000
MAX_MESSAGE = 8192


@dataclass(frozen=True)
class Commit:
    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    author_time: str
    committer_name: str
    committer_email: str
    committer_time: str
    signature: str
    signing_key: str
    message: str
    files: tuple[tuple[str, str], ...] = field(default=())


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=600,
                              encoding="utf-8", errors="replace")
    except FileNotFoundError as e:
        raise ConfigError("git", "the git command is not installed") from e
    if done.returncode != 0:
        raise ConfigError("--repo", f"git {args[0]} failed in {repo}: {done.stderr.strip()[:500]}")
    return done.stdout


def _refuse(detail: str) -> InvalidEventError:
    return InvalidEventError("invalid_value", "git log", detail)


def _files_by_commit(text: str, shas: list[str]) -> dict[str, tuple[tuple[str, str], ...]]:
    """``git log -z --name-status --format=%H`` output: each sha, then NUL-separated (status, path) pairs.

    Parsed against the known sha list, so a path that looks like a sha is still a path.
    """
    tokens = text.split("\0")
    if tokens and tokens[-1] == "":
        tokens.pop()
    files: dict[str, tuple[tuple[str, str], ...]] = {}
    i = 0
    for n, sha in enumerate(shas):
        if i >= len(tokens) or tokens[i] != sha:
            raise _refuse(f"the file list does not follow rev-list at commit {n + 1} ({sha[:12]})")
        i += 1
        following = shas[n + 1] if n + 1 < len(shas) else None
        pairs = []
        while i < len(tokens) and tokens[i] != following:
            if i + 1 >= len(tokens):
                raise _refuse(f"a file status without a path in commit {sha[:12]}")
            pairs.append((tokens[i].strip(), tokens[i + 1]))
            i += 2
        files[sha] = tuple(pairs)
    if i != len(tokens):
        raise _refuse("the file list names more commits than rev-list")
    return files


def parse_log(log: str, files: str, shas: list[str]) -> Iterator[Commit]:
    """Commits from ``git log -z --format=_FORMAT`` and the file lists, checked against ``git rev-list`` (pure).

    Every record must have exactly the format's fields, and the records' shas
    must be rev-list's, in its order: anything else is refused, never guessed.
    """
    for sha in shas:
        if not _SHA.fullmatch(sha):
            raise _refuse(f"rev-list gave {sha[:80]!r}, not a commit id")
    tokens = log.split("\0")
    if tokens and tokens[-1] == "" and len(tokens) % len(_FIELDS) == 1:
        tokens.pop()
    if len(tokens) != len(_FIELDS) * len(shas) or (not shas and log):
        raise _refuse(f"{len(tokens)} fields for {len(shas)} commits (expected {len(_FIELDS)} each)")
    by_commit = _files_by_commit(files, shas)
    for n, expected in enumerate(shas):
        sha, parents, an, ae, at, cn, ce, ct, sig, key, message = tokens[n * len(_FIELDS) : (n + 1) * len(_FIELDS)]
        if sha != expected:
            raise _refuse(f"record {n + 1} is commit {sha[:80]!r}, rev-list says {expected}")
        yield Commit(sha, tuple(parents.split()), an, ae, at, cn, ce, ct, SIGNATURES.get(sig, sig), key,
                     message.strip(), by_commit[sha])


def read_commits(repo: Path, *, since: str | None = None, after: str | None = None) -> list[Commit]:
    """Commits reachable from HEAD, oldest first; only those after ``after`` (a commit) or ``since`` (a date).

    Three reads of the same range: rev-list names the commits, one log gives
    their fields and messages, another their changed files.
    """
    selection = ["--reverse", *([f"--since={since}"] if since else []), f"{after}..HEAD" if after else "HEAD"]
    shas = _git(repo, "rev-list", *selection).split()
    if not shas:
        return []
    log = _git(repo, "log", "-z", "--no-color", f"--format={_FORMAT}", *selection)
    files = _git(repo, "log", "-z", "--no-color", "--no-renames", "--name-status", "--format=%H", *selection)
    return list(parse_log(log, files, shas))


def config_files(files: tuple[tuple[str, str], ...], globs: tuple[str, ...]) -> list[str]:
    hits = []
    for _status, path in files:
        name = path.rsplit("/", 1)[-1]
        if any(fnmatch.fnmatch(path, g) or fnmatch.fnmatch(name, g) for g in globs):
            hits.append(path)
    return hits


def commit_event(commit: Commit, *, repo_name: str, tenant: str, globs: tuple[str, ...]) -> dict[str, Any]:
    """The audit event for one commit (pure)."""
    configs = config_files(commit.files, globs)
    metadata: dict[str, Any] = {
        "repository": repo_name,
        "commit": commit.sha,
        "parents": list(commit.parents),
        "author": {"name": commit.author_name, "email": commit.author_email, "time": commit.author_time},
        "committer": {"name": commit.committer_name, "email": commit.committer_email, "time": commit.committer_time},
        "message": commit.message[:MAX_MESSAGE],
        "files": [{"status": s, "path": p} for s, p in commit.files[:MAX_FILES]],
        "files_total": len(commit.files),
        "signature": {"status": commit.signature, **({"key": commit.signing_key} if commit.signing_key else {})},
    }
    if configs:
        metadata["configuration_files"] = configs[:MAX_FILES]
    return {
        "event_id": str(uuid.uuid5(NAMESPACE, f"git:{repo_name}:{commit.sha}")),
        "occurred_at": datetime.fromisoformat(commit.committer_time),
        "category": "change",
        "action": "code.configuration_change" if configs else "code.commit",
        "actor": {"id": (commit.author_email or commit.author_name or "unknown")[:256], "type": "user"},
        "resource": {"type": "git_commit", "id": f"{repo_name}@{commit.sha}"[:256]},
        "tenant": tenant,
        "source": f"git:{repo_name}"[:256],
        "metadata": metadata,
    }


@dataclass
class GitResult:
    published: int
    configuration_changes: int
    last: str | None
    resumed_from: str | None


def checkpoint_path(home: Path, repo_name: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in repo_name)
    return home / "produce" / "git" / f"{safe}.json"


def publish_git(client: Any, repo: Path, *, home: Path, repo_name: str | None = None, since: str | None = None,
                tenant: str = "default", globs: tuple[str, ...] = DEFAULT_CONFIG_GLOBS, batch: int = 500) -> GitResult:
    """Publish every commit not yet published; the checkpoint moves only after the broker acknowledged."""
    repo = Path(repo)
    if not repo.exists():
        raise ConfigError("--repo", f"no such folder: {repo}")
    top = Path(_git(repo, "rev-parse", "--show-toplevel").strip())
    name = repo_name or top.name
    state_file = checkpoint_path(home, name)
    last = json.loads(state_file.read_text()).get("last") if state_file.exists() else None
    if last and subprocess.run(["git", "-C", str(top), "merge-base", "--is-ancestor", last, "HEAD"],
                               capture_output=True).returncode != 0:
        last = None  # history rewritten: a full pass, made harmless by the deterministic ids
    commits = read_commits(top, since=since, after=last)
    published = configs = 0
    for start in range(0, len(commits), batch):
        chunk = commits[start : start + batch]
        for commit in chunk:
            event = commit_event(commit, repo_name=name, tenant=tenant, globs=globs)
            configs += event["action"] == "code.configuration_change"
            client.emit(event)
        client.flush()
        published += len(chunk)
        state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"last": chunk[-1].sha, "repository": name}))
        tmp.replace(state_file)
    return GitResult(published, configs, commits[-1].sha if commits else last, last)
