"""Small line charts as inline SVG, written by hand: a report's training curves (the student's
beside the reference's) in a few milliseconds, where matplotlib took about a second to import
and draw them after every graded submission. The same input gives the same bytes."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

PANEL_W, PANEL_H = 300, 236  # one panel, in px
LEFT, RIGHT, TOP, BOTTOM = 48, 10, 40, 38  # margins around a panel's plot area
TICKS = 5  # about this many ticks per axis
FONT = 'font-family="sans-serif"'


def nice_ticks(low: float, high: float, count: int = TICKS, whole: bool = False) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart, at least 1 if `whole`) covering
    [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high - low <= 1e-12 * max(1.0, abs(high)):
        pad = abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(1, count - 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(step, 1.0) if whole else step
    first = math.floor(low / step + 1e-9) * step
    ticks, k = [], 0
    while first + k * step <= high + step * (1 - 1e-9):
        ticks.append(round(first + k * step, 12))
        k += 1
    return ticks


def _label(value: float) -> str:
    return f"{value:.6g}"


def _segments(points: list[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """The runs of consecutive finite points: a missing value breaks the line."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None or not math.isfinite(y):
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


def panel(title: str, x_label: str, x: Sequence[float],
          lines: Sequence[tuple[str, str, bool, Sequence[float | None]]], left: int) -> str:
    """One chart at horizontal offset `left`: `lines` are (label, colour, dashed, values),
    values aligned with `x` (None: no value)."""
    n = len(x)
    values = [v for _, _, _, ys in lines for v in ys[:n] if v is not None and math.isfinite(v)]
    xs = [float(v) for v in x]
    x_ticks = nice_ticks(min(xs), max(xs), whole=all(v == int(v) for v in xs)) if xs else []
    y_ticks = nice_ticks(min(values), max(values)) if values else []
    x0, x1 = (x_ticks[0], x_ticks[-1]) if x_ticks else (0.0, 1.0)
    y0, y1 = (y_ticks[0], y_ticks[-1]) if y_ticks else (0.0, 1.0)
    w, h = PANEL_W - LEFT - RIGHT, PANEL_H - TOP - BOTTOM

    def px(v: float) -> float:
        return left + LEFT + (v - x0) / (x1 - x0) * w

    def py(v: float) -> float:
        return TOP + h - (v - y0) / (y1 - y0) * h

    out = [f'<text x="{left + PANEL_W / 2:.1f}" y="15" text-anchor="middle" font-size="12" '
           f'{FONT}>{html.escape(title)}</text>',
           f'<rect x="{left + LEFT}" y="{TOP}" width="{w}" height="{h}" fill="none" '
           'stroke="#444" stroke-width="0.8"/>']
    for t in x_ticks:
        out.append(f'<line x1="{px(t):.1f}" y1="{TOP + h}" x2="{px(t):.1f}" y2="{TOP + h + 4}" '
                   f'stroke="#444"/><text x="{px(t):.1f}" y="{TOP + h + 15}" '
                   f'text-anchor="middle" font-size="10" {FONT}>{_label(t)}</text>')
    for t in y_ticks:
        out.append(f'<line x1="{left + LEFT - 4}" y1="{py(t):.1f}" x2="{left + LEFT}" '
                   f'y2="{py(t):.1f}" stroke="#444"/><text x="{left + LEFT - 6}" '
                   f'y="{py(t) + 3.5:.1f}" text-anchor="end" font-size="10" {FONT}>'
                   f"{_label(t)}</text>")
    out.append(f'<text x="{left + LEFT + w / 2:.1f}" y="{PANEL_H - 6}" text-anchor="middle" '
               f'font-size="11" {FONT}>{html.escape(x_label)}</text>')
    for k, (label, colour, dashed, ys) in enumerate(lines):
        dash = ' stroke-dasharray="5,3"' if dashed else ""
        for run in _segments(list(zip(xs, list(ys[:n]), strict=False))):
            coords = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in run)
            out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" '
                       f'stroke-width="1.5"{dash}/>')
            out += [f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="2" fill="{colour}"/>'
                    for a, b in run]
        lx = left + LEFT + k * 90  # the legend: a row between the title and the plot
        out.append(f'<line x1="{lx}" y1="{TOP - 12}" x2="{lx + 18}" y2="{TOP - 12}" '
                   f'stroke="{colour}" stroke-width="1.5"{dash}/><text x="{lx + 22}" '
                   f'y="{TOP - 8}" font-size="10" {FONT}>{html.escape(label)}</text>')
    return "".join(out)


def line_charts(panels: Sequence[tuple[str, str, Sequence[float],
                                       Sequence[tuple[str, str, bool, Sequence[float | None]]]]]
                ) -> str:
    """Panels side by side as one <svg> element: each (title, x label, x, lines), as `panel`
    takes them."""
    width = PANEL_W * max(1, len(panels))
    body = "".join(panel(title, x_label, x, lines, k * PANEL_W)
                   for k, (title, x_label, x, lines) in enumerate(panels))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{PANEL_H}" '
            f'viewBox="0 0 {width} {PANEL_H}" role="img">{body}</svg>')
