"""Pictures made of tiles of numbers: a layer's filters (`netspec draw --filters`) and one
sample's feature maps (`netspec run --maps`), enlarged, labelled, on one colour scale
with its legend.

What the two share lives here: the colour scales, the legend, text, and the SVG
document around them. Output is deterministic (numbers rounded as svg.py rounds them)
and self-contained: images are PNG data inside the file, nothing is loaded from
elsewhere.
"""

from __future__ import annotations

import base64
from xml.sax.saxutils import escape, quoteattr

from .scene import text_width
from .svg import _n as num

#: The diverging scale of signed values: negative blue, zero white, positive red.
NEGATIVE, POSITIVE = (33, 102, 172), (178, 24, 43)
LEGEND_WIDTH, LEGEND_HEIGHT = 200, 12

STYLE = """
text{font-family:"DejaVu Sans",Verdana,Arial,sans-serif;fill:#222;font-size:11px}
.title{font-size:15px;font-weight:bold}.sub{fill:#444}.label{font-size:10px;fill:#444}
.head{font-size:13px;font-weight:bold}.tick{font-size:10px;fill:#333}
.frame{fill:none;stroke:#666;stroke-width:0.6}.bar{stroke:#666;stroke-width:0.6}
g.tile{shape-rendering:crispEdges}
"""

#: The legends' gradients, each defined once per document.
GRADIENTS = (
    '<linearGradient id="scale-diverging">'
    f'<stop offset="0" stop-color="rgb{NEGATIVE}"/><stop offset="0.5" stop-color="#ffffff"/>'
    f'<stop offset="1" stop-color="rgb{POSITIVE}"/></linearGradient>'
    '<linearGradient id="scale-grey"><stop offset="0" stop-color="#000000"/>'
    '<stop offset="1" stop-color="#ffffff"/></linearGradient>')


def value(v: float) -> str:
    """A value as labels print it: three significant digits, no `-0`."""
    text = f"{v:.3g}"
    return "0" if text in ("-0", "0") else text.replace("-", "−")


def _hex(rgb: tuple[int, int, int] | list[int]) -> str:
    return "#" + "".join(f"{max(0, min(255, c)):02x}" for c in rgb)


def diverging(v: float, limit: float) -> str:
    """The colour of `v` on the scale −limit (blue) … 0 (white) … +limit (red)."""
    t = 0.0 if limit <= 0 else max(-1.0, min(1.0, v / limit))
    end = POSITIVE if t > 0 else NEGATIVE
    return _hex([round(255 + (e - 255) * abs(t)) for e in end])


def rgb(values: tuple[float, float, float], limit: float) -> str:
    """Three signed values as one colour: each channel −limit dark, 0 half, +limit full."""
    half = [0.5 if limit <= 0 else 0.5 + max(-1.0, min(1.0, v / limit)) / 2 for v in values]
    return _hex([round(255 * h) for h in half])


def text(x: float, y: float, s: str, cls: str = "label", anchor: str = "start") -> str:
    """One line of text (`anchor` start, middle or end)."""
    a = "" if anchor == "start" else f' text-anchor="{anchor}"'
    return f'<text class="{cls}" x="{num(x)}" y="{num(y)}"{a}>{escape(s)}</text>'


def width_of(s: str, cls: str = "label") -> float:
    """An estimate (on the wide side) of a text's width."""
    size = {"title": 15, "head": 13, "sub": 11, "tick": 10}.get(cls, 10)
    return text_width(s, size, cls in ("title", "head"))


def legend(x: float, y: float, scale: str, low: float, high: float, caption: str) -> str:
    """A colour bar from `low` to `high` with its ticks and caption, at (x, y) its top left.

    `scale` is `diverging` (blue, white at 0, red: `low` = −`high`) or `grey` (black to
    white). The group carries the range as data, for tests and scripts.
    """
    w, h = LEGEND_WIDTH, LEGEND_HEIGHT
    ticks = [(0.0, low), (1.0, high)] + ([(0.5, 0.0)] if scale == "diverging" else [])
    out = [f'<g class="legend" data-scale="{scale}" data-low="{low!r}" data-high="{high!r}">',
           f'<rect x="{num(x)}" y="{num(y)}" width="{w}" height="{h}" '
           f'fill="url(#scale-{scale})" class="bar"/>']
    for at, v in sorted(ticks):
        tx = x + at * w
        out.append(f'<path d="M{num(tx)},{num(y + h)}L{num(tx)},{num(y + h + 4)}" '
                   f'stroke="#333" stroke-width="0.8"/>')
        out.append(text(tx, y + h + 15, value(v), "tick", "middle"))
    out.append(text(x + w + 12, y + h - 1, caption, "sub"))
    out.append("</g>")
    return "".join(out)


def legend_width(caption: str) -> float:
    return LEGEND_WIDTH + 12 + width_of(caption, "sub")


#: The height a legend takes, its ticks included.
LEGEND_SPACE = LEGEND_HEIGHT + 22


def png_uri(png: bytes) -> str:
    """PNG bytes as a data: URI, so that an image stays inside the SVG file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def document(width: float, height: float, title: str, body: list[str],
             data: dict[str, str] | None = None) -> str:
    """The SVG document: `body` on white, sized `width` × `height`, `data` as its
    `data-*` attributes."""
    attrs = "".join(f" data-{k}={quoteattr(v)}" for k, v in (data or {}).items())
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{num(width)}" '
         f'height="{num(height)}" viewBox="0 0 {num(width)} {num(height)}"{attrs}>'),
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE.strip()}</style>",
        f"<defs>{GRADIENTS}</defs>",
        f'<rect x="0" y="0" width="{num(width)}" height="{num(height)}" fill="#fff"/>',
        *body,
        "</svg>",
    ]
    return "\n".join(parts) + "\n"
