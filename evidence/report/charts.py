"""Charts as inline SVG text, drawn on the server: the page loads nothing and prints as it shows.

Pure functions from counts to markup. Every bar carries a <title> (the
browser's tooltip, and what a screen reader or a text search of the page
finds), the SVG has role="img" with a label, and all text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

from markupsafe import Markup, escape

PALETTE = {
    "auth": "#3b6fb6",
    "change": "#2a9d8f",
    "security": "#c0392b",
    "admin": "#7b4fa0",
    "access": "#e08a1e",
}
OTHER_COLORS = ("#6c7a89", "#a0522d", "#4d8b31", "#b8860b", "#5f6caf")
DEFAULT_COLOR = "#3b6fb6"


def color_of(name: str, index: int = 0) -> str:
    return PALETTE.get(name) or OTHER_COLORS[index % len(OTHER_COLORS)]


def nice_ticks(top: int, count: int = 4) -> list[int]:
    """0 and a few round steps (1, 2 or 5 times a power of ten) reaching at least `top`."""
    if top <= 0:
        return [0, 1]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(1, int(step))
    return list(range(0, (math.ceil(top / step) + 1) * step, step))[: count + 2]


def label_every(n: int, room: int) -> int:
    """Label every k-th bar so that at most `room` labels fit."""
    return max(1, math.ceil(n / max(1, room)))


def day_label(day: date, previous: date | None) -> str:
    """The day of the month, with the month name on the first label and wherever the month changed."""
    return day.strftime("%d %b") if previous is None or previous.month != day.month else day.strftime("%d")


def stacked_bars(days: Sequence[date], series: dict[str, list[int]], *, label: str,
                 width: int = 960, height: int = 240, unit: str = "events",
                 colors: dict[str, str] | None = None) -> Markup:
    """A stacked bar per day; series maps a name to a count per day (same length as days)."""
    legend = any(series)
    left, right, top, bottom = 48, 12, 12, 44 if legend else 26
    fills = {name: (colors or {}).get(name) or color_of(name, i) for i, name in enumerate(series)}
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(days))
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    peak = max(totals, default=0)
    ticks = nice_ticks(peak)
    scale = plot_h / ticks[-1]
    slot = plot_w / n
    bar_w = min(64.0, max(1.0, slot * 0.78))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(label)}" preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(label)}</title>",
    ]
    for t in ticks:
        y = top + plot_h - t * scale
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{t:,}</text>')
    every = label_every(n, plot_w // 48)
    labelled: date | None = None
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h
        for name, values in series.items():
            value = values[i]
            if not value:
                continue
            h = value * scale
            y -= h
            tip = f"{day.isoformat()} {name + ': ' if name else ''}{value:,} {unit}"
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{fills[name]}" data-day="{day.isoformat()}" data-series="{escape(name)}" '
                         f'data-value="{value}"><title>{escape(tip)}</title></rect>')
        if i % every == 0:
            cx = left + i * slot + slot / 2
            parts.append(f'<text x="{cx:.1f}" y="{top + plot_h + 16}" text-anchor="middle" class="tick">'
                         f"{escape(day_label(day, labelled))}</text>")
            labelled = day
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" class="axis"/>')
    if peak == 0:
        parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
                     f'class="empty">no {escape(unit)} in this window</text>')
    if legend:
        x = left
        for name in series:
            parts.append(f'<rect x="{x}" y="{height - 14}" width="10" height="10" fill="{fills[name]}"/>')
            parts.append(f'<text x="{x + 14}" y="{height - 5}" class="legend">{escape(name)}</text>')
            x += 26 + 7 * len(name)
    parts.append("</svg>")
    return Markup("".join(parts))


def single_bars(days: Sequence[date], values: list[int], *, label: str, color: str = DEFAULT_COLOR,
                width: int = 960, height: int = 180, unit: str = "events") -> Markup:
    """One series per day, in one color (a control's events)."""
    return stacked_bars(days, {"": values}, label=label, width=width, height=height, unit=unit, colors={"": color})
