"""What the SOC 2 report states, gathered from the trail: small functions over DuckDB and plain values.

Every figure in the report comes from one of these functions, so each can be
tested on a trail built in a folder. Reading happens in two places only: the
window's events are copied once into a DuckDB temporary table (`w`, without
hashes and signatures), which every section then groups; the access review
reads the `events` view directly, because the latest review may predate the
window. Which actions count for which control is the CONTROLS table below,
which the page prints beside each section.

SQL text here is constant; user values (dates, tenant, snapshot ids) are bound
parameters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import duckdb
import orjson

from sealtrail.errors import ConfigError
from sealtrail.evidence.findings import Report
from sealtrail.evidence.query import run_sql

CATEGORIES = ("auth", "change", "security", "admin", "access")
SAMPLE_ROWS = 10
TOP_ROWS = 10
MAX_GAPS_SHOWN = 50
MAX_FINDINGS_SHOWN = 100
MAX_PRINCIPALS_SHOWN = 500
HOURLY_GAPS_UP_TO_DAYS = 7  # windows up to a week look for empty hours, longer ones for empty days
ACCESS_CHANGE_ACTIONS = ("admin.access_granted", "admin.access_revoked", "admin.mfa_disabled", "admin.mfa_enabled")
TRAIL_RESOURCE_TYPES = ("audit_trail", "audit_log", "audit_event", "audit_bucket")
CONFIG_ACTIONS = ("admin.config_changed", "code.configuration_change", "evidence.configuration")

# What each trust services criterion asks, in a line (AICPA TSP section 100, 2017 criteria).
CRITERIA = {
    "CC6.1": "Logical access security over protected information assets",
    "CC6.2": "Users are registered and authorized before access is granted, and removed when no longer needed",
    "CC6.3": "Access is granted, changed and removed by role, with least privilege",
    "CC7.2": "System components are monitored for anomalies that indicate malicious acts, errors or failures",
    "CC8.1": "Changes to infrastructure, data, software and procedures are authorized, tested, approved and recorded",
}


@dataclass(frozen=True)
class Control:
    """One section of the report: the events a control's evidence consists of (a SQL predicate over `w`)."""

    key: str
    title: str
    criteria: tuple[str, ...]
    why: str
    rule: str
    where: str
    top_by: tuple[tuple[str, str], ...]


CONTROLS: tuple[Control, ...] = (
    Control(
        "failed_logins", "Failed logins", ("CC6.1", "CC7.2"),
        "Authentication is enforced and failures are recorded and watched for guessing or credential stuffing.",
        "category auth with outcome failure (auth.login_failed, auth.mfa_failed, ...)",
        "category = 'auth' AND outcome = 'failure'",
        (("actor_id", "Account tried"), ("actor_ip", "Client address")),
    ),
    Control(
        "privilege", "Privilege escalations", ("CC6.3", "CC7.2"),
        "Every grant of a role or privilege is recorded with who granted it to whom.",
        "security.privilege_escalation, admin.role_granted",
        "action IN ('security.privilege_escalation', 'admin.role_granted')",
        (("actor_id", "Granted by"), ("resource_id", "Granted to")),
    ),
    Control(
        "admin", "Administrative changes", ("CC6.2", "CC6.3"),
        "Users and their access are created, changed, disabled and revoked through recorded administrative actions.",
        "category admin, except configuration changes (admin.user_*, admin.role_*, admin.access_*, admin.mfa_*, ...)",
        "category = 'admin' AND action NOT IN ('admin.config_changed')",
        (("actor_id", "Administrator"), ("action", "Action")),
    ),
    Control(
        "config", "Configuration changes", ("CC8.1",),
        "Configuration changes are recorded with their author and before/after state.",
        ", ".join(CONFIG_ACTIONS),
        "action IN ('admin.config_changed', 'code.configuration_change', 'evidence.configuration')",
        (("actor_id", "Changed by"), ("resource_id", "Setting or commit")),
    ),
    Control(
        "trail_access", "Access to the audit trail", ("CC6.1", "CC7.2"),
        "Reads and exports of the audit trail itself, and every change to its capture, are themselves recorded.",
        "category access on resource type " + ", ".join(TRAIL_RESOURCE_TYPES)
        + " or sealtrail.*; security.capture_* and security.audited_table_* (change capture altered)",
        "(category = 'access' AND (resource_type IN ('audit_trail', 'audit_log', 'audit_event', 'audit_bucket')"
        " OR resource_type LIKE 'sealtrail%'))"
        " OR action LIKE 'security.capture%' OR action LIKE 'security.audited_table%'",
        (("actor_id", "Actor"), ("action", "Action")),
    ),
)

WINDOW_SQL = """
CREATE OR REPLACE TEMP TABLE w AS
SELECT chain, seq, occurred_at, category, action, outcome, actor_id, actor_type, actor_ip,
       resource_type, resource_id, tenant, source, request_id, before, after, metadata
FROM events
WHERE occurred_at >= CAST(? AS TIMESTAMPTZ) AND occurred_at < CAST(? AS TIMESTAMPTZ)
  AND (CAST(? AS VARCHAR) IS NULL OR tenant = CAST(? AS VARCHAR))
"""


# ---------------------------------------------------------------------------
# The window


@dataclass(frozen=True)
class Window:
    """Whole UTC days, first..last inclusive; events count when first 00:00 <= occurred_at < (last + 1) 00:00."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=timezone.utc)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=timezone.utc)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    @property
    def gap_unit(self) -> str:
        return "hour" if len(self.days) <= HOURLY_GAPS_UP_TO_DAYS else "day"

    def bucket_count(self) -> int:
        return len(self.days) * (24 if self.gap_unit == "hour" else 1)

    def bucket_start(self, index: int) -> datetime:
        step = timedelta(hours=1) if self.gap_unit == "hour" else timedelta(days=1)
        return self.start + index * step


def parse_day(name: str, text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except (ValueError, AttributeError) as e:
        raise ConfigError(name, f"not a date (YYYY-MM-DD): {text!r}") from e


def window_of(first: str, last: str) -> Window:
    start, end = parse_day("--from", first), parse_day("--to", last)
    if end < start:
        raise ConfigError("--to", f"{end} is before --from {start}")
    return Window(start, end)


def load_window(con: duckdb.DuckDBPyConnection, window: Window, tenant: str | None) -> int:
    """Copy the window's events into the temp table `w`; returns how many."""
    con.execute(WINDOW_SQL, [window.start.isoformat(), window.end.isoformat(), tenant, tenant])
    return int(run_sql(con, "SELECT count(*) AS n FROM w")[0]["n"])


# ---------------------------------------------------------------------------
# Pure helpers


def day_series(rows: Iterable[dict[str, Any]], days: Sequence[date], *, key: str = "day",
               group: str | None = None, value: str = "n") -> dict[str, list[int]]:
    """{group: [count per day]} from grouped rows (one series "" when group is None); days with none are 0."""
    index = {d: i for i, d in enumerate(days)}
    out: dict[str, list[int]] = {}
    for row in rows:
        day = row[key]
        if isinstance(day, datetime):
            day = day.date()
        if day not in index:
            continue
        name = "" if group is None else str(row[group])
        series = out.setdefault(name, [0] * len(days))
        series[index[day]] += int(row[value])
    return out


@dataclass(frozen=True)
class Gap:
    source: str
    start: datetime
    end: datetime  # exclusive
    buckets: int


def find_gaps(source: str, active: Iterable[int], window: Window) -> list[Gap]:
    """Runs of empty buckets strictly between a source's first and last active bucket in the window.

    Before the first and after the last event nothing is claimed: the source
    may have started or stopped reporting on purpose, and a report cannot tell.
    """
    seen = sorted(set(active))
    step = window.bucket_start(1) - window.bucket_start(0)
    gaps = []
    for a, b in zip(seen, seen[1:]):
        if b - a > 1:
            start = window.bucket_start(a + 1)
            gaps.append(Gap(source, start, start + (b - a - 1) * step, b - a - 1))
    return gaps


def criteria_of(controls: Iterable[Control]) -> list[str]:
    return sorted({c for control in controls for c in control.criteria})


# ---------------------------------------------------------------------------
# Sections


@dataclass
class ControlFacts:
    control: Control
    total: int
    per_day: list[int]
    by_action: list[dict[str, Any]]
    top: list[tuple[str, list[dict[str, Any]]]]
    sample: list[dict[str, Any]]


def control_facts(con: duckdb.DuckDBPyConnection, control: Control, window: Window) -> ControlFacts:
    where = f"({control.where})"
    per_day = day_series(
        run_sql(con, f"SELECT CAST(occurred_at AS DATE) AS day, count(*) AS n FROM w WHERE {where} GROUP BY 1"),
        window.days,
    ).get("", [0] * len(window.days))
    by_action = run_sql(con, f"SELECT action, outcome, count(*) AS n FROM w WHERE {where} "
                             "GROUP BY 1, 2 ORDER BY n DESC, action, outcome")
    top = []
    for column, label in control.top_by:
        rows = run_sql(con, f"""
            SELECT {column} AS name, count(*) AS n, count(DISTINCT actor_id) AS actors,
                   count(DISTINCT actor_ip) AS addresses, min(occurred_at) AS first, max(occurred_at) AS last
            FROM w WHERE {where} AND {column} IS NOT NULL
            GROUP BY 1 ORDER BY n DESC, name LIMIT {TOP_ROWS}""")
        top.append((label, rows))
    sample = run_sql(con, f"""
        SELECT occurred_at, action, outcome, actor_id, actor_ip, resource_type, resource_id, source,
               before, after, metadata, chain, seq
        FROM w WHERE {where} ORDER BY occurred_at DESC, chain, seq LIMIT {SAMPLE_ROWS}""")
    for row in sample:
        row["details"] = details_of(row)
    return ControlFacts(control, sum(per_day), per_day, by_action, top, sample)


def details_of(row: dict[str, Any]) -> str:
    """A short line from metadata and before/after: what an auditor reads first in a sample row."""
    parts = []
    meta = _json(row.get("metadata")) or {}
    for key in ("reason", "role", "granted", "setting", "groups", "policies", "principal_added", "principal_removed",
                "rows", "format", "purpose", "description", "statement"):
        if key in meta and meta[key] not in (None, "", []):
            value = meta[key]
            parts.append(f"{key}: {', '.join(map(str, value)) if isinstance(value, list) else value}")
    before, after = _json(row.get("before")), _json(row.get("after"))
    if isinstance(before, dict) and isinstance(after, dict) and set(before) == {"value"} == set(after):
        parts.append(f"{before['value']!r} -> {after['value']!r}")
    text = "; ".join(parts)
    return text if len(text) <= 160 else text[:159] + "…"


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


@dataclass
class Overview:
    total: int
    per_category: dict[str, list[int]]  # category -> count per day
    category_totals: dict[str, int]
    first: datetime | None
    last: datetime | None
    tenants: list[dict[str, Any]]


def overview(con: duckdb.DuckDBPyConnection, window: Window) -> Overview:
    rows = run_sql(con, "SELECT CAST(occurred_at AS DATE) AS day, category, count(*) AS n FROM w GROUP BY 1, 2")
    series = day_series(rows, window.days, group="category")
    order = [c for c in CATEGORIES if c in series] + sorted(c for c in series if c not in CATEGORIES)
    per_category = {c: series[c] for c in order}
    span = run_sql(con, "SELECT count(*) AS n, min(occurred_at) AS first, max(occurred_at) AS last FROM w")[0]
    tenants = run_sql(con, "SELECT tenant, count(*) AS n FROM w GROUP BY 1 ORDER BY n DESC, tenant LIMIT 20")
    return Overview(int(span["n"]), per_category, {c: sum(v) for c, v in per_category.items()},
                    span["first"], span["last"], tenants)


@dataclass
class SourceCoverage:
    source: str
    events: int
    first: datetime
    last: datetime
    active: int  # buckets with events
    span: int  # buckets from the first to the last active one
    gaps: list[Gap]

    @property
    def gap_buckets(self) -> int:
        return sum(g.buckets for g in self.gaps)


@dataclass
class Coverage:
    unit: str
    sources: list[SourceCoverage]
    tables: list[dict[str, Any]]
    gaps: list[Gap]  # longest first, at most MAX_GAPS_SHOWN
    gap_total: int


def coverage(con: duckdb.DuckDBPyConnection, window: Window) -> Coverage:
    unit = window.gap_unit
    seconds = 3600 if unit == "hour" else 86400
    start = window.start.isoformat()
    buckets = run_sql(con, f"""
        SELECT source, CAST(floor((epoch(occurred_at) - epoch(CAST('{start}' AS TIMESTAMPTZ))) / {seconds}) AS BIGINT)
               AS bucket, count(*) AS n, min(occurred_at) AS first, max(occurred_at) AS last
        FROM w GROUP BY 1, 2""")
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in buckets:
        by_source[row["source"]].append(row)
    sources = []
    for name, rows in by_source.items():
        active = sorted(r["bucket"] for r in rows)
        sources.append(SourceCoverage(
            name, sum(int(r["n"]) for r in rows), min(r["first"] for r in rows), max(r["last"] for r in rows),
            len(active), active[-1] - active[0] + 1, find_gaps(name, active, window),
        ))
    sources.sort(key=lambda s: (-s.events, s.source))
    all_gaps = sorted((g for s in sources for g in s.gaps), key=lambda g: (-g.buckets, g.start, g.source))
    tables = run_sql(con, """
        SELECT resource_type AS "table", source, count(*) AS n,
               count(*) FILTER (WHERE action = 'data.insert') AS inserts,
               count(*) FILTER (WHERE action = 'data.update') AS updates,
               count(*) FILTER (WHERE action = 'data.delete') AS deletes,
               min(occurred_at) AS first, max(occurred_at) AS last
        FROM w WHERE category = 'change' AND resource_type IS NOT NULL
        GROUP BY 1, 2 ORDER BY n DESC, "table", source""")
    return Coverage(unit, sources, tables, all_gaps[:MAX_GAPS_SHOWN], len(all_gaps))


# ---------------------------------------------------------------------------
# Access review


@dataclass
class Review:
    source: str
    snapshot_id: str
    taken_at: datetime
    reviewer: str
    principals: int


@dataclass
class ReviewFacts:
    latest: Review
    previous: Review | None
    principals: list[dict[str, Any]]  # of the latest review, at most MAX_PRINCIPALS_SHOWN
    without_mfa: int
    changes: list[dict[str, Any]]
    change_counts: dict[str, int]
    in_window: bool  # the latest review was taken inside the report's window


def reviews(con: duckdb.DuckDBPyConnection, before: datetime, tenant: str | None) -> list[Review]:
    """Every access review snapshot that ended before `before`, oldest first."""
    rows = con.execute("""
        SELECT source, json_extract_string(metadata, '$.snapshot_id') AS sid, min(occurred_at) AS taken_at,
               min(actor_id) AS reviewer, count(*) AS n
        FROM events
        WHERE action = 'access.review_snapshot' AND occurred_at < CAST(? AS TIMESTAMPTZ)
          AND (CAST(? AS VARCHAR) IS NULL OR tenant = CAST(? AS VARCHAR))
        GROUP BY 1, 2 ORDER BY taken_at, sid""", [before.isoformat(), tenant, tenant]).fetchall()
    return [Review(r[0], r[1] or "", r[2], r[3], int(r[4])) for r in rows]


def latest_pairs(found: Sequence[Review]) -> list[tuple[Review, Review | None]]:
    """(latest, the one before) per review source, by source name (pure)."""
    by_source: dict[str, list[Review]] = defaultdict(list)
    for review in sorted(found, key=lambda r: (r.taken_at, r.snapshot_id)):
        by_source[review.source].append(review)
    return [(items[-1], items[-2] if len(items) > 1 else None) for _, items in sorted(by_source.items())]


def access_reviews(con: duckdb.DuckDBPyConnection, window: Window, tenant: str | None) -> list[ReviewFacts]:
    out = []
    for latest, previous in latest_pairs(reviews(con, window.end, tenant)):
        cursor = con.execute("""
            SELECT resource_type, resource_id, after FROM events
            WHERE action = 'access.review_snapshot' AND source = ?
              AND json_extract_string(metadata, '$.snapshot_id') = ?
              AND (CAST(? AS VARCHAR) IS NULL OR tenant = CAST(? AS VARCHAR))
            ORDER BY resource_type, resource_id""", [latest.source, latest.snapshot_id, tenant, tenant])
        principals: list[dict[str, Any]] = []
        without_mfa = 0
        for rtype, rid, after in cursor.fetchall():
            access = _json(after) or {}
            if access.get("mfa") is False and rtype == "user":
                without_mfa += 1
            if len(principals) < MAX_PRINCIPALS_SHOWN:
                principals.append({"type": rtype, "principal": rid, "groups": access.get("groups") or [],
                                   "policies": access.get("policies") or [], "mfa": access.get("mfa"),
                                   "last_used": access.get("last_used")})
        changes: list[dict[str, Any]] = []
        if previous is not None:
            placeholders = ", ".join("?" for _ in ACCESS_CHANGE_ACTIONS)
            changes = _dicts(con.execute(f"""
                SELECT occurred_at, action, resource_type, resource_id, actor_id, metadata, chain, seq FROM events
                WHERE action IN ({placeholders}) AND source = ?
                  AND occurred_at > CAST(? AS TIMESTAMPTZ) AND occurred_at <= CAST(? AS TIMESTAMPTZ)
                  AND (CAST(? AS VARCHAR) IS NULL OR tenant = CAST(? AS VARCHAR))
                ORDER BY occurred_at, resource_type, resource_id, action, chain, seq""",
                [*ACCESS_CHANGE_ACTIONS, latest.source, previous.taken_at.isoformat(), latest.taken_at.isoformat(),
                 tenant, tenant]))
            for row in changes:
                row["details"] = details_of(row)
        counts = {a: sum(1 for c in changes if c["action"] == a) for a in ACCESS_CHANGE_ACTIONS}
        out.append(ReviewFacts(latest, previous, principals, without_mfa, changes, counts,
                               window.start <= latest.taken_at < window.end))
    return out


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# ---------------------------------------------------------------------------
# Verification


@dataclass
class Verification:
    ok: bool
    events: int
    objects: int
    chains: int
    findings: list[dict[str, Any]]
    finding_total: int
    kinds: dict[str, int] = field(default_factory=dict)


def verification_facts(report: Report) -> Verification:
    kinds: dict[str, int] = defaultdict(int)
    for f in report.findings:
        kinds[f.kind.value] += 1
    return Verification(report.ok, report.events, report.objects, len(report.chains),
                        [f.as_dict() for f in report.findings[:MAX_FINDINGS_SHOWN]], len(report.findings),
                        dict(sorted(kinds.items())))
