"""`sealtrail evidence add`: a structured SOC 2 evidence entry, recorded as an event in the trail.

Evidence then lives under the same lock and chain as everything else: what
was done (the task), which SOC 2 criteria it supports, who approved it, and
the SHA-256 of each attached file (the files themselves stay where they are;
the digest proves later that the file shown to an auditor is the one that
was recorded).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sealtrail.errors import InvalidEventError

TYPES = {
    "configuration": "admin",
    "code_change": "change",
    "security": "security",
    "access_review": "access",
}
CRITERION = re.compile(r"^(CC|A|C|PI|P)\d{1,2}(\.\d{1,2})?$")


def file_digest(path: Path) -> dict[str, Any]:
    h = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
                size += len(block)
    except OSError as e:
        raise InvalidEventError("invalid_value", "file", f"cannot read {path}: {e.strerror}") from e
    return {"path": str(path), "sha256": h.hexdigest(), "bytes": size}


def evidence_event(*, kind: str, task: str, criteria: list[str], reviewer: str, actor: str, tenant: str,
                   files: Sequence[Path] = (), notes: str | None = None, ticket: str | None = None) -> dict[str, Any]:
    """The event for one evidence entry; every argument is checked with a message naming it."""
    if kind not in TYPES:
        raise InvalidEventError("invalid_value", "type", f"one of {', '.join(TYPES)}, got {kind!r}")
    for name, value in (("task", task), ("reviewer", reviewer), ("actor", actor), ("tenant", tenant)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidEventError("missing_field", name, "required and not empty")
    if not criteria:
        raise InvalidEventError("missing_field", "criteria", "name at least one SOC 2 criterion, e.g. CC6.1")
    bad = [c for c in criteria if not CRITERION.match(c)]
    if bad:
        raise InvalidEventError("invalid_value", "criteria", f"not SOC 2 criteria ids (CC6.1, A1.2, C1.1, PI1.3, P4.2): {bad}")
    metadata: dict[str, Any] = {
        "evidence_type": kind,
        "task": task.strip()[:4096],
        "criteria": sorted(set(criteria)),
        "reviewer": reviewer,
        "files": [file_digest(Path(f)) for f in files],
    }
    if notes:
        metadata["notes"] = notes[:8192]
    if ticket:
        metadata["ticket"] = ticket[:256]
    return {
        "category": TYPES[kind],
        "action": f"evidence.{kind}",
        "actor": {"id": actor[:256], "type": "user"},
        "resource": {"type": "soc2_evidence", "id": ",".join(metadata["criteria"])[:256]},
        "tenant": tenant,
        "source": "sealtrail-evidence",
        "metadata": metadata,
    }
