"""A realistic, deterministic mix of audit events for the demo, the tests and the benchmark.

Logins and failed logins (some from a brute-forcing address), data changes with
before/after values, privilege escalations, admin actions and sensitive reads,
spread over several tenants and services. The same seed gives the same events.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

TENANTS = ("acme", "globex", "initech", "umbrella")
SERVICES = ("web", "billing", "admin-console", "reports")
ATTACKER_IP = "203.0.113.66"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def generate(count: int, seed: int = 7, start: datetime | None = None) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    start = start or datetime(2026, 11, 1, tzinfo=timezone.utc)
    users = [f"user-{i:04d}" for i in range(200)]
    for i in range(count):
        tenant = rng.choice(TENANTS)
        user = rng.choice(users)
        ip = f"198.51.100.{rng.randrange(1, 255)}"
        at = start + timedelta(seconds=i * 3 + rng.random())
        base = {
            "event_id": _uuid(rng),
            "occurred_at": at.isoformat(),
            "tenant": tenant,
            "request_id": f"req-{rng.getrandbits(48):012x}",
        }
        roll = rng.random()
        if roll < 0.35:
            yield {**base, "category": "auth", "action": "auth.login", "source": "web",
                   "actor": {"id": user, "ip": ip, "user_agent": "Mozilla/5.0"},
                   "metadata": {"method": rng.choice(["password", "sso", "passkey"])}}
        elif roll < 0.50:
            attacker = rng.random() < 0.5
            yield {**base, "category": "auth", "action": "auth.login_failed", "outcome": "failure",
                   "source": "web", "actor": {"id": user, "ip": ATTACKER_IP if attacker else ip,
                                              "user_agent": "python-requests/2.32" if attacker else "Mozilla/5.0"},
                   "metadata": {"reason": rng.choice(["bad_password", "unknown_user", "mfa_failed"])}}
        elif roll < 0.80:
            order = f"ord-{rng.randrange(10_000):05d}"
            amount = rng.randrange(100, 100_000)
            op = rng.choice(["update", "update", "insert", "delete"])
            before = None if op == "insert" else {"status": "pending", "amount_cents": amount}
            after = None if op == "delete" else {"status": rng.choice(["paid", "refunded"]), "amount_cents": amount}
            yield {**base, "category": "change", "action": f"data.{op}", "source": "billing",
                   "actor": {"id": user, "ip": ip}, "resource": {"type": "order", "id": order},
                   "before": before, "after": after,
                   "metadata": {"changed": sorted(set(before or {}) | set(after or {}))}}
        elif roll < 0.86:
            yield {**base, "category": "security", "action": "security.privilege_escalation", "source": "admin-console",
                   "actor": {"id": user, "ip": ip}, "resource": {"type": "role", "id": "admin"},
                   "before": {"roles": ["viewer"]}, "after": {"roles": ["viewer", "admin"]},
                   "metadata": {"granted_by": rng.choice(users)}}
        elif roll < 0.94:
            action = rng.choice(["admin.user_created", "admin.user_disabled", "admin.role_granted", "admin.config_changed"])
            yield {**base, "category": "admin", "action": action, "source": "admin-console",
                   "actor": {"id": rng.choice(users[:5]), "type": "user", "ip": ip},
                   "resource": {"type": "user", "id": user}, "metadata": {"ticket": f"CHG-{rng.randrange(9999)}"}}
        else:
            yield {**base, "category": "access", "action": rng.choice(["access.export", "access.sensitive_read"]),
                   "source": "reports", "actor": {"id": user, "ip": ip},
                   "resource": {"type": "report", "id": f"rep-{rng.randrange(500)}"},
                   "metadata": {"rows": rng.randrange(1, 5000)}}
