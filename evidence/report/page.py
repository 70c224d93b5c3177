"""ReportFacts -> one self-contained HTML page (Jinja2, autoescaped; charts inline SVG; no external resources)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from sealtrail.evidence.report import charts
from sealtrail.evidence.report.build import ReportFacts
from sealtrail.evidence.report.facts import CRITERIA, criteria_of

TEMPLATES = Path(__file__).parent / "templates"
SECTION_CRITERIA = {
    "overview": ("CC7.2",),
    "verification": ("CC7.2",),
    "coverage": ("CC7.2",),
    "access_review": ("CC6.2", "CC6.3"),
}
CONTROL_COLORS = {
    "failed_logins": "#c0392b",
    "privilege": "#8e44ad",
    "admin": "#7b4fa0",
    "config": "#2a9d8f",
    "trail_access": "#e08a1e",
}


def _ts(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _listing(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "-"
    return "-" if value is None else str(value)


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(ts=_ts, num=_num, listing=_listing)
    return env


def render_html(facts: ReportFacts) -> str:
    days = facts.window.days
    overview_chart = charts.stacked_bars(days, facts.overview.per_category, label="Events per day by category")
    control_charts = {
        c.control.key: charts.single_bars(days, c.per_day, label=f"{c.control.title} per day",
                                          color=CONTROL_COLORS.get(c.control.key, charts.DEFAULT_COLOR))
        for c in facts.controls
    }
    all_criteria = sorted({*criteria_of(c.control for c in facts.controls),
                           *(x for ids in SECTION_CRITERIA.values() for x in ids)})
    return environment().get_template("report.html.j2").render(
        f=facts,
        overview_chart=overview_chart,
        control_charts=control_charts,
        criteria=CRITERIA,
        all_criteria=all_criteria,
        section_criteria=SECTION_CRITERIA,
        totals={c.control.key: c.total for c in facts.controls},
    )


def write_html(facts: ReportFacts, out: Path) -> int:
    """Write the page next to its final name, then rename: a reader never sees half a report."""
    text = render_html(facts)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return len(text.encode())
