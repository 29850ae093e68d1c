"""The usage charts as inline SVG, drawn on the server: no chart library, no script,
nothing fetched by the browser. Each chart is decorative for screen readers
(`aria-hidden`): the page puts the same numbers in a table beside it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from markupsafe import Markup, escape

from dockyard.metadata.portal import DayCounts
from dockyard.tiers.sizes import format_size

DAYS = 30
WIDTH, HEIGHT = 720, 200
# Room for the axis labels on the left ("953.7 MiB"), the dates below and the last
# date's second half on the right.
LEFT, RIGHT, BOTTOM, TOP = 84, 24, 24, 8
# Colours with at least 4.5:1 against white, told apart by pattern too (one series is
# outlined), so the legend works without colour.
PUSH_COLOUR, PULL_COLOUR, STORAGE_COLOUR = "#0b5394", "#7f3f00", "#1b5e20"


@dataclass(frozen=True)
class UsageDay:
    """One row of the usage table: a day's pushes, pulls and the storage at its end
    (`measured`: recorded that day, or today's own; else estimated)."""

    day: date
    pushes: int
    pulls: int
    stored: int
    measured: bool = True


def usage_days(
    now: datetime,
    counts: Sequence[DayCounts],
    arrivals: dict[date, int],
    used: int,
    recorded: dict[date, int],
) -> list[UsageDay]:
    """The last `DAYS` days, oldest first. A day's storage is its recorded end
    (`storage_days`, today's is what is stored now); a day without one (the server
    did not run) is estimated from the day after: its storage less what arrived that
    day (blobs removed that day are not known, so such a day may show less than it
    held)."""
    today = now.date()
    by_day = {found.day: found for found in counts}
    rows: list[UsageDay] = []
    after = used  # the storage at the end of the day after the one being filled in
    for back in range(DAYS):
        day = today - timedelta(days=back)
        found = by_day.get(day)
        if back == 0:
            stored, measured = used, True
        elif day in recorded:
            stored, measured = recorded[day], True
        else:
            stored, measured = max(0, after - arrivals.get(day + timedelta(days=1), 0)), False
        rows.append(
            UsageDay(
                day, found.pushes if found else 0, found.pulls if found else 0, stored, measured
            )
        )
        after = stored
    return rows[::-1]


def since(now: datetime) -> datetime:
    """The start (UTC midnight) of the first day the charts show."""
    first = now.date() - timedelta(days=DAYS - 1)
    return datetime(first.year, first.month, first.day, tzinfo=now.tzinfo)


def operations_chart(rows: Sequence[UsageDay]) -> Markup:
    """Pushes and pulls per day, two bars a day."""
    top = _ceiling(max([max(r.pushes, r.pulls) for r in rows] + [0]))
    slot = (WIDTH - LEFT - RIGHT) / len(rows)
    bar = slot * 0.4
    parts = _frame(top, str)
    for index, row in enumerate(rows):
        x = LEFT + index * slot + slot * 0.1
        parts.append(_bar(x, bar, row.pushes, top, f'fill="{PUSH_COLOUR}"'))
        parts.append(
            _bar(
                x + bar, bar, row.pulls, top, f'fill="#fff" stroke="{PULL_COLOUR}" stroke-width="2"'
            )
        )
    parts.extend(_dates(rows, slot))
    return _svg(parts)


def storage_chart(rows: Sequence[UsageDay]) -> Markup:
    """The storage at each day's end, as a line."""
    top = _ceiling(max([r.stored for r in rows] + [0]))
    slot = (WIDTH - LEFT - RIGHT) / len(rows)
    parts = _frame(top, format_size)
    points = " ".join(
        f"{LEFT + index * slot + slot / 2:.1f},{_y(row.stored, top):.1f}"
        for index, row in enumerate(rows)
    )
    parts.append(
        f'<polyline points="{points}" fill="none" stroke="{STORAGE_COLOUR}" stroke-width="3"/>'
    )
    parts.extend(_dates(rows, slot))
    return _svg(parts)


def _ceiling(value: int) -> int:
    """A round top for the axis: 1, 2 or 5 times a power of ten, at least `value`."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return max(1, step * factor)
        step *= 10


def _y(value: int, top: int) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - value / top)


def _bar(x: float, width: float, value: int, top: int, paint: str) -> str:
    y = _y(value, top)
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
        f'height="{HEIGHT - BOTTOM - y:.1f}" {paint}/>'
    )


def _frame(top: int, label: Callable[[int], str]) -> list[str]:
    """The axes and three labelled grid lines (0, half, top)."""
    parts = []
    for value in (0, top // 2 if top > 1 else 0, top):
        y = _y(value, top)
        text = escape(label(value))
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#767676" '
            f'stroke-width="{1 if value else 2}"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{text}</text>'
        )
    return parts


def _dates(rows: Sequence[UsageDay], slot: float) -> list[str]:
    """The date under every seventh day, the last day included."""
    last = len(rows) - 1
    return [
        f'<text x="{LEFT + index * slot + slot / 2:.1f}" y="{HEIGHT - 6}" '
        f'text-anchor="middle">{row.day.strftime("%b %d")}</text>'
        for index, row in enumerate(rows)
        if (last - index) % 7 == 0
    ]


def _svg(parts: list[str]) -> Markup:
    body = "".join(parts)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'aria-hidden="true" focusable="false" font-size="12" fill="#1a1a1a">{body}</svg>'
    )
