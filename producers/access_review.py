"""`sealtrail produce access-review`: who has access, as evidence, and what changed since the last review.

A snapshot lists each principal (user, group or role) with its groups,
attached policies, MFA status and last use. Every principal becomes an
``access.review_snapshot`` event; the difference from the previous snapshot
of the same source becomes admin events: ``admin.access_granted`` (a new
principal, group or policy), ``admin.access_revoked`` (one gone) and
``admin.mfa_disabled`` (MFA switched off; ``admin.mfa_enabled`` the other
way). The previous snapshot is kept under ``$HOME/produce/access-review/``
and replaced only after the broker acknowledged the events.

Sources: ``aws-iam`` (boto3 IAM: users with their groups, attached and inline
policies, MFA devices and last use; roles with their policies) and
``file:PATH``, JSON or CSV exported from any identity provider::

    [{"principal": "alice", "type": "user", "groups": ["admins"], "policies": ["AdministratorAccess"],
      "mfa": true, "last_used": "2026-11-01T09:00:00Z"}]

    principal,type,groups,policies,mfa,last_used        (lists separated by ';')
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sealtrail.errors import ConfigError, InvalidEventError, ServiceUnavailable

NAMESPACE = uuid.UUID("8c1e5b7a-3f2d-4a9b-b6e0-71d4c2a9e853")
TYPES = ("user", "group", "role", "service")
DEFAULT_REVIEWER = "sealtrail-access-review"  # the reviewer named when the command is given none


@dataclass(frozen=True)
class Principal:
    principal: str
    type: str = "user"
    groups: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()
    mfa: bool | None = None
    last_used: str | None = None

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["groups"], d["policies"] = sorted(self.groups), sorted(self.policies)
        return d


def _list(value: Any, field: str, where: str) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        return tuple(sorted({v.strip() for v in value.split(";") if v.strip()}))
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(sorted(set(value)))
    raise InvalidEventError("wrong_type", field, f"{where}: expected a list of names")


def _bool(value: Any, where: str) -> bool | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "enabled", "on"):
        return True
    if text in ("false", "no", "0", "disabled", "off"):
        return False
    raise InvalidEventError("invalid_value", "mfa", f"{where}: not a yes/no value: {value!r}")


def principal_from(record: dict[str, Any], where: str) -> Principal:
    name = record.get("principal") or record.get("name") or record.get("user")
    if not isinstance(name, str) or not name.strip():
        raise InvalidEventError("missing_field", "principal", f"{where}: every row needs a principal name")
    kind = (record.get("type") or "user").strip().lower()
    if kind not in TYPES:
        raise InvalidEventError("invalid_value", "type", f"{where}: one of {', '.join(TYPES)}, got {kind!r}")
    last = record.get("last_used") or None
    return Principal(name.strip(), kind, _list(record.get("groups"), "groups", where),
                     _list(record.get("policies"), "policies", where), _bool(record.get("mfa"), where),
                     str(last) if last else None)


def read_file_source(path: Path) -> list[Principal]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise ConfigError("--source", f"no such file: {path}") from e
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError("--source", f"{path}: not valid JSON ({e})") from e
        if isinstance(data, dict):
            data = data.get("principals", data.get("users"))
        if not isinstance(data, list):
            raise ConfigError("--source", f"{path}: expected a JSON list of principals")
        rows = data
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
    principals = []
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise InvalidEventError("not_an_object", None, f"{path} entry {i}: expected an object")
        principals.append(principal_from(row, f"{path} entry {i}"))
    names = [(p.type, p.principal) for p in principals]
    if len(set(names)) != len(names):
        raise InvalidEventError("invalid_value", "principal", f"{path}: a principal is listed twice")
    return principals


def read_aws_iam(session: Any = None) -> list[Principal]:
    """Users (groups, attached and inline policies, MFA, last use) and roles, from IAM via boto3."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    iam = (session or boto3.session.Session()).client("iam")
    out = []
    try:
        for page in iam.get_paginator("list_users").paginate():
            for user in page["Users"]:
                name = user["UserName"]
                groups = [g["GroupName"] for p in iam.get_paginator("list_groups_for_user").paginate(UserName=name)
                          for g in p["Groups"]]
                policies = [a["PolicyName"] for p in iam.get_paginator("list_attached_user_policies").paginate(UserName=name)
                            for a in p["AttachedPolicies"]]
                policies += [n for p in iam.get_paginator("list_user_policies").paginate(UserName=name)
                             for n in p["PolicyNames"]]
                mfa = bool(iam.list_mfa_devices(UserName=name)["MFADevices"])
                last = user.get("PasswordLastUsed")
                out.append(Principal(name, "user", tuple(sorted(groups)), tuple(sorted(policies)), mfa,
                                     last.isoformat() if last else None))
        for page in iam.get_paginator("list_roles").paginate():
            for role in page["Roles"]:
                name = role["RoleName"]
                policies = [a["PolicyName"] for p in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
                            for a in p["AttachedPolicies"]]
                last = (role.get("RoleLastUsed") or {}).get("LastUsedDate")
                out.append(Principal(name, "role", (), tuple(sorted(policies)), None, last.isoformat() if last else None))
    except (BotoCoreError, ClientError) as e:
        raise ServiceUnavailable("aws-iam", str(e)) from e
    return out


def read_source(source: str) -> list[Principal]:
    if source == "aws-iam":
        return read_aws_iam()
    if source.startswith("file:"):
        return read_file_source(Path(source[5:]))
    raise ConfigError("--source", f"expected aws-iam or file:PATH, got {source!r}")


def diff(previous: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(action, principal key, details) for what changed between two snapshots keyed by 'type:name' (pure)."""
    changes: list[tuple[str, str, dict[str, Any]]] = []
    for key in sorted(set(previous) | set(current)):
        old, new = previous.get(key), current.get(key)
        if old is None:
            added_principal = current[key]  # the key is in one snapshot at least
            changes.append(("admin.access_granted", key, {"principal_added": True, "groups": added_principal["groups"],
                                                          "policies": added_principal["policies"]}))
            continue
        if new is None:
            changes.append(("admin.access_revoked", key, {"principal_removed": True,
                                                          "groups": old["groups"], "policies": old["policies"]}))
            continue
        for kind in ("groups", "policies"):
            added = sorted(set(new[kind]) - set(old[kind]))
            removed = sorted(set(old[kind]) - set(new[kind]))
            if added:
                changes.append(("admin.access_granted", key, {kind: added}))
            if removed:
                changes.append(("admin.access_revoked", key, {kind: removed}))
        if old.get("mfa") is True and new.get("mfa") is False:
            changes.append(("admin.mfa_disabled", key, {}))
        elif old.get("mfa") is False and new.get("mfa") is True:
            changes.append(("admin.mfa_enabled", key, {}))
    return changes


@dataclass
class ReviewResult:
    principals: int
    changes: int
    snapshot_id: str
    first_review: bool


def state_path(home: Path, source: str) -> Path:
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    return home / "produce" / "access-review" / f"{digest}.json"


def publish_review(client: Any, principals: Iterable[Principal], *, source: str, home: Path, tenant: str,
                   reviewer: str = DEFAULT_REVIEWER, taken_at: datetime | None = None) -> ReviewResult:
    taken_at = taken_at or datetime.now(timezone.utc)
    current = {f"{p.type}:{p.principal}": p.as_json() for p in principals}
    canonical = json.dumps(current, sort_keys=True).encode()
    snapshot_id = hashlib.sha256(source.encode() + b"\0" + taken_at.isoformat().encode() + b"\0" + canonical).hexdigest()[:32]
    path = state_path(home, source)
    previous = json.loads(path.read_text())["principals"] if path.exists() else None
    actor = {"id": reviewer, "type": "system" if reviewer == "sealtrail-access-review" else "user"}

    def event(action: str, category: str, key: str, seq: str, **fields: Any) -> dict[str, Any]:
        kind, _, name = key.partition(":")
        return {"event_id": str(uuid.uuid5(NAMESPACE, f"{snapshot_id}:{seq}:{key}")), "occurred_at": taken_at,
                "category": category, "action": action, "actor": actor, "resource": {"type": kind, "id": name[:256]},
                "tenant": tenant, "source": f"access-review:{source}"[:256], **fields}

    for key, access in current.items():
        client.emit(event("access.review_snapshot", "access", key, "snapshot", after=access,
                          metadata={"snapshot_id": snapshot_id, "review_source": source, "principals": len(current)}))
    changes = diff(previous, current) if previous is not None else []
    for i, (action, key, details) in enumerate(changes):
        client.emit(event(action, "admin", key, f"change{i}",
                          before=previous.get(key) if previous else None, after=current.get(key),
                          metadata={"snapshot_id": snapshot_id, "review_source": source, **details}))
    client.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"snapshot_id": snapshot_id, "taken_at": taken_at.isoformat(), "principals": current}))
    tmp.replace(path)
    return ReviewResult(len(current), len(changes), snapshot_id, previous is None)
