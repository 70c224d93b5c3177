"""OCSF classification of an audit event, so the trail can feed a security lake or SIEM as it is.

The Open Cybersecurity Schema Framework (what AWS Security Lake stores)
classifies every event by class, category and activity; sealtrail derives them
from the event's action, category and outcome, stores them as integer columns
beside its own, and hashes them like every other column. An action this table
does not know gets its category's class with activity 99 (Other).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

# An action is a dotted lower-case name; the event model (sealtrail.event) takes its limits from here.
ACTION_MAX = 128
ACTION_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
# fullmatch is what the pattern's ^...$ means to pydantic's (Rust) regex engine.
_ACTION = re.compile(ACTION_PATTERN.removeprefix("^").removesuffix("$"))

# class_uid -> category_uid is class_uid // 1000
AUTHENTICATION = 3002
ACCOUNT_CHANGE = 3001
ENTITY_MANAGEMENT = 3004
USER_ACCESS_MANAGEMENT = 3005
DATASTORE_ACTIVITY = 6005
VULNERABILITY_FINDING = 2002
DETECTION_FINDING = 2004

OTHER = 99

# action -> (class_uid, activity_id)
ACTIONS: dict[str, tuple[int, int]] = {
    "auth.login": (AUTHENTICATION, 1),  # Logon
    "auth.login_failed": (AUTHENTICATION, 1),  # a failed Logon: status tells
    "auth.mfa_failed": (AUTHENTICATION, 1),
    "auth.logout": (AUTHENTICATION, 2),  # Logoff
    "auth.password_change": (ACCOUNT_CHANGE, 3),
    "auth.password_reset": (ACCOUNT_CHANGE, 4),
    "admin.user_created": (ACCOUNT_CHANGE, 1),
    "admin.user_enabled": (ACCOUNT_CHANGE, 2),
    "admin.user_disabled": (ACCOUNT_CHANGE, 5),
    "admin.user_deleted": (ACCOUNT_CHANGE, 6),
    "admin.role_granted": (USER_ACCESS_MANAGEMENT, 1),  # Assign Privileges
    "admin.role_revoked": (USER_ACCESS_MANAGEMENT, 2),  # Revoke Privileges
    "admin.config_changed": (ENTITY_MANAGEMENT, 3),  # Update
    "security.privilege_escalation": (USER_ACCESS_MANAGEMENT, 1),
    "security.suspicious_activity": (DETECTION_FINDING, 1),  # Create
    "security.vulnerability_found": (VULNERABILITY_FINDING, 1),
    "data.read": (DATASTORE_ACTIVITY, 1),
    "data.update": (DATASTORE_ACTIVITY, 2),
    "data.insert": (DATASTORE_ACTIVITY, 6),  # Create
    "data.delete": (DATASTORE_ACTIVITY, 7),
    "access.sensitive_read": (DATASTORE_ACTIVITY, 1),  # Read
    "access.export": (DATASTORE_ACTIVITY, 4),  # Query
}

CATEGORY_CLASS = {
    "auth": AUTHENTICATION,
    "change": DATASTORE_ACTIVITY,
    "admin": ENTITY_MANAGEMENT,
    "access": DATASTORE_ACTIVITY,
    "security": DETECTION_FINDING,
}

# OCSF severity_id: 1 Informational, 2 Low, 3 Medium, 4 High
SEVERITY = {"security": 4, "admin": 2}
FAILED_AUTH_SEVERITY = 3
STATUS = {"success": 1, "failure": 2, "unknown": 0}


class Classification(NamedTuple):
    class_uid: int
    category_uid: int
    activity_id: int
    type_uid: int
    severity_id: int
    status_id: int


def classify(category: str, action: str, outcome: str) -> Classification:
    class_uid, activity_id = ACTIONS.get(action, (CATEGORY_CLASS[category], OTHER))
    severity = SEVERITY.get(category, 1)
    if category == "auth" and outcome == "failure":
        severity = FAILED_AUTH_SEVERITY
    return Classification(
        class_uid, class_uid // 1000, activity_id, class_uid * 100 + activity_id, severity, STATUS[outcome]
    )


@lru_cache(maxsize=4096)
def ocsf_columns(category: str, action: str, outcome: str) -> dict[str, int] | None:
    """The OCSF columns as stored, or None where the event model refuses the triple.

    The one cache of classification: a few hundred combinations recur, and
    for the stream's fast path one lookup replaces the category and outcome
    checks, the action pattern and the classification. Bounded, since
    producers choose actions. Callers must not change the dict.
    """
    if category not in CATEGORY_CLASS or outcome not in STATUS or len(action) > ACTION_MAX or not _ACTION.fullmatch(action):
        return None
    return classify(category, action, outcome)._asdict()
