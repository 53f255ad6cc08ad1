"""The card's difficulty figure: reasoning rows by pass rate, as a small SVG bar chart.

Drawn by hand, a few rectangles and labels, rather than with a plotting library: the figure is one
series of at most a few hundred bars, and the service need not carry matplotlib for it.
"""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT, MARGIN = 480, 200, 32
FILE = "difficulty.svg"


def difficulty_svg(counts: dict[str, int], title: str) -> str:
    """Bars of ``counts`` (rows by a difficulty's value, ``unknown`` last), lowest value first."""
    levels = sorted((k for k in counts if k != "unknown"), key=float) + (
        ["unknown"] if "unknown" in counts else []
    )
    top = max(counts.values(), default=1)
    slot = (WIDTH - 2 * MARGIN) / max(1, len(levels))
    bars = []
    for i, level in enumerate(levels):
        height = (HEIGHT - 2 * MARGIN) * counts[level] / top
        x, y = MARGIN + i * slot, HEIGHT - MARGIN - height
        middle = f'x="{x + slot / 2:.1f}" text-anchor="middle"'
        bars.append(
            f'<rect x="{x + slot * 0.1:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" height="{height:.1f}" '
            f'fill="#4c72b0"><title>{escape(level)}: {counts[level]} rows</title></rect>'
            f'<text {middle} y="{HEIGHT - MARGIN + 14}">{escape(level)}</text>'
            f'<text {middle} y="{y - 4:.1f}">{counts[level]}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'font-family="sans-serif" font-size="11"><text x="{MARGIN}" y="16">{escape(title)}</text>'
        + "".join(bars)
        + "</svg>\n"
    )
