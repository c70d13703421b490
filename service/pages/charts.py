"""Server-side SVG charts: a pair's waterfall, a cluster's graph, a histogram.

Each chart is an image with a text alternative; the pages also give the same numbers in a
table, so nothing depends on seeing the chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

BLUE, RED, GREEN, GREY, BLACK = "#1d70b8", "#d4351c", "#00703c", "#505a5f", "#0b0c0c"


def waterfall(prior_probability: float | None, parts: Sequence[dict[str, object]]) -> Markup:
    """Bars from the prior weight, one per comparison (level weight + term-frequency part),
    to the final match weight: green adds evidence for a match, red against."""
    prior = prior_probability or 0.5
    steps = [("prior", math.log2(prior / (1 - prior)))]
    for part in parts:
        weight = float(part.get("match_weight") or 0.0)  # type: ignore[arg-type]
        tf = float(part.get("tf_adjustment") or 0.0)  # type: ignore[arg-type]
        steps.append((str(part["comparison"]).replace("_", " "), weight + tf))
    running, bars = 0.0, []
    for name, delta in steps:
        bars.append((name, running, running + delta, delta))
        running += delta
    bars.append(("final", 0.0, running, running))
    low = min(0.0, *(min(a, b) for _, a, b, _ in bars))
    high = max(0.0, *(max(a, b) for _, a, b, _ in bars))
    span = (high - low) or 1.0
    width, row, left = 640, 26, 150
    plot = width - left - 70
    height = row * len(bars) + 30

    def x(value: float) -> float:
        return left + (value - low) / span * plot

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" aria-labelledby="waterfall-title" class="cci-chart">',
        f'<title id="waterfall-title">Waterfall of match weights from the prior '
        f"({steps[0][1]:.1f}) to the final weight ({running:.1f})</title>",
        f'<line x1="{x(0):.1f}" y1="0" x2="{x(0):.1f}" y2="{height - 20}" stroke="{GREY}"/>',
    ]
    for index, (name, start, end, delta) in enumerate(bars):
        y = 10 + index * row
        colour = BLUE if name in ("prior", "final") else GREEN if delta >= 0 else RED
        x0, x1 = sorted((x(start), x(end)))
        out.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" font-size="14" '
            f'fill="{BLACK}">{escape(name)}</text>'
            f'<rect x="{x0:.1f}" y="{y + 2}" width="{max(x1 - x0, 1.5):.1f}" height="{row - 8}" '
            f'fill="{colour}"/>'
            f'<text x="{x1 + 4:.1f}" y="{y + 15}" font-size="13" fill="{BLACK}">'
            f"{delta:+.1f}</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))


def cluster_graph(
    labels: Sequence[str], links: Sequence[tuple[int, int, float]], auto_link: float
) -> Markup:
    """Records on a circle, every scored pair a line: thick and dark at or above the auto-link
    weight, dashed red below it (the weakest links, where a split would cut)."""
    count = len(labels)
    size, radius = 460, 170
    centre = size / 2

    def point(index: int) -> tuple[float, float]:
        angle = 2 * math.pi * index / max(count, 1) - math.pi / 2
        return centre + radius * math.cos(angle), centre + radius * math.sin(angle)

    weakest = min((w for _, _, w in links), default=None)
    title = f"Graph of {count} records and {len(links)} scored pairs" + (
        f"; the weakest pair scores {weakest:.1f}" if weakest is not None else ""
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {size} {size}" '
        f'width="100%" style="max-width:{size}px" aria-labelledby="graph-title" class="cci-chart">',
        f'<title id="graph-title">{escape(title)}</title>',
    ]
    for a, b, weight in links:
        (x1, y1), (x2, y2) = point(a), point(b)
        strong = weight >= auto_link
        style = (
            f'stroke="{BLACK}" stroke-width="3"'
            if strong
            else f'stroke="{RED}" stroke-width="2" stroke-dasharray="6 4"'
        )
        out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" {style}/>')
        out.append(
            f'<text x="{(x1 + x2) / 2:.1f}" y="{(y1 + y2) / 2 - 4:.1f}" font-size="12" '
            f'text-anchor="middle" fill="{BLACK}">{weight:.1f}</text>'
        )
    for index, label in enumerate(labels):
        px, py = point(index)
        out.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="16" fill="{BLUE}"/>'
            f'<text x="{px:.1f}" y="{py + 5:.1f}" font-size="14" text-anchor="middle" '
            f'fill="#ffffff">{index + 1}</text>'
            f'<text x="{px:.1f}" y="{py + 34:.1f}" font-size="12" text-anchor="middle" '
            f'fill="{BLACK}">{escape(label)}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def histogram(bins: Sequence[tuple[int, int]], marks: Sequence[tuple[float, str]]) -> Markup:
    """Review items per unit of match weight, with the thresholds marked."""
    if not bins:
        return Markup("")
    low = min(min(b for b, _ in bins), *(int(m) for m, _ in marks))
    high = max(max(b for b, _ in bins) + 1, *(int(m) + 1 for m, _ in marks))
    tallest = max(n for _, n in bins) or 1
    width, height, bottom = 640, 240, 200
    step = (width - 40) / (high - low)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" aria-labelledby="histogram-title" class="cci-chart">',
        '<title id="histogram-title">Histogram of review items by match weight</title>',
    ]
    for lower, count in bins:
        h = count / tallest * (bottom - 20)
        out.append(
            f'<rect x="{20 + (lower - low) * step:.1f}" y="{bottom - h:.1f}" '
            f'width="{step - 2:.1f}" height="{h:.1f}" fill="{BLUE}"/>'
        )
    for value, label in marks:
        mx = 20 + (value - low) * step
        out.append(
            f'<line x1="{mx:.1f}" y1="10" x2="{mx:.1f}" y2="{bottom}" stroke="{RED}" '
            f'stroke-width="2"/><text x="{mx + 4:.1f}" y="22" font-size="13" '
            f'fill="{BLACK}">{escape(label)}</text>'
        )
    for tick in range(low, high + 1, max(1, (high - low) // 10)):
        out.append(
            f'<text x="{20 + (tick - low) * step:.1f}" y="{bottom + 18}" font-size="12" '
            f'text-anchor="middle" fill="{BLACK}">{tick}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))
