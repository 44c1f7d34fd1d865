"""The learning curve of `netspec train --plot curve.svg`: loss and accuracy per epoch,
training and validation, as two panels of one SVG (no plotting library).

Training is drawn solid, validation dashed, both in the same colour per panel; each
point is an epoch, and the axes' ticks are round numbers (1, 2 or 5 times a power of
ten). The picture is rewritten after every epoch, so it shows the run so far.
"""

from __future__ import annotations

import math
from html import escape

WIDTH, HEIGHT = 760, 300
PANEL_W, PANEL_H = 300, 200
LEFT, TOP = 60, 40
GAP = 80
COLOURS = {"loss": "#c0392b", "accuracy": "#2471a3"}


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values (1, 2 or 5 × 10ⁿ apart) covering [low, high], about `count` of them."""
    if not high > low:
        high = low + 1
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 0.5:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _label(v: float) -> str:
    return f"{v:g}"


def _panel(x0: float, title: str, series: dict[str, list[float | None]], epochs: int,
           colour: str, percent: bool) -> list[str]:
    values = [v for vs in series.values() for v in vs if v is not None]
    if percent:
        values = [100 * v for v in values]
    ticks = nice_ticks(min(values), max(values)) if values else [0, 1]
    lo, hi = ticks[0], ticks[-1]
    xs = nice_ticks(1, max(epochs, 2), min(epochs, 6))
    xs = [t for t in xs if 1 <= t <= epochs and t == int(t)] or [1]

    def px(epoch: float) -> float:
        return x0 + (epoch - 1) / max(epochs - 1, 1) * PANEL_W

    def py(v: float) -> float:
        return TOP + PANEL_H - (v - lo) / (hi - lo) * PANEL_H

    out = [f'<text x="{x0 + PANEL_W / 2:.1f}" y="{TOP - 14}" text-anchor="middle" '
           f'font-weight="bold">{escape(title)}</text>',
           f'<rect x="{x0}" y="{TOP}" width="{PANEL_W}" height="{PANEL_H}" fill="none" '
           f'stroke="#888"/>']
    for t in ticks:
        out.append(f'<line x1="{x0}" x2="{x0 + PANEL_W}" y1="{py(t):.1f}" y2="{py(t):.1f}" '
                   f'stroke="#e4e4e4"/><text x="{x0 - 6}" y="{py(t) + 4:.1f}" '
                   f'text-anchor="end">{_label(t)}{"%" if percent else ""}</text>')
    for t in xs:
        out.append(f'<text x="{px(t):.1f}" y="{TOP + PANEL_H + 16}" text-anchor="middle">'
                   f'{int(t)}</text>')
    out.append(f'<text x="{x0 + PANEL_W / 2:.1f}" y="{TOP + PANEL_H + 34}" '
               f'text-anchor="middle">epoch</text>')
    for name, dash in (("training", ""), ("validation", ' stroke-dasharray="6 4"')):
        points = [(px(i + 1), py(100 * v if percent else v))
                  for i, v in enumerate(series.get(name, [])) if v is not None]
        if not points:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                   f'stroke-width="2"{dash}/>')
        out.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>'
                   for x, y in points)
    return out


def curve_svg(history: list[dict], title: str) -> str:
    """The SVG of `history` (one record per epoch: loss, accuracy, val_loss, val_accuracy)."""
    epochs = len(history)
    get = lambda key: [r.get(key) for r in history]  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
             f'<title>{escape(title)}</title>', f'<rect width="{WIDTH}" height="{HEIGHT}" '
             f'fill="white"/>']
    parts += _panel(LEFT, "loss", {"training": get("loss"), "validation": get("val_loss")},
                    epochs, COLOURS["loss"], percent=False)
    parts += _panel(LEFT + PANEL_W + GAP, "accuracy",
                    {"training": get("accuracy"), "validation": get("val_accuracy")},
                    epochs, COLOURS["accuracy"], percent=True)
    y = HEIGHT - 12
    parts.append(f'<text x="{LEFT}" y="{y}">— training   - - validation   '
                 f'({escape(title)}, {epochs} epoch{"s" if epochs != 1 else ""})</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
