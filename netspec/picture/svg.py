"""Draw a Scene as a self-contained SVG document: no external fonts, images or scripts.

The output depends only on the scene: numbers are rounded to a tenth of a pixel
and shapes are written in the scene's order, so the same spec gives the same
bytes. Every layer is a `<g class="layer">` with `data-layers` (the names it
stands for), `data-line` (its spec line), a link to that line and a `<title>`
tooltip holding its rows of `netspec check`'s table.
"""

from __future__ import annotations

from itertools import pairwise
from xml.sax.saxutils import escape, quoteattr

from .scene import Circle, Group, Path, Poly, Rect, Scene, Shape

STYLE = """
text{font-family:"DejaVu Sans",Verdana,Arial,sans-serif;fill:#222}
.shape{font-size:12px;font-weight:bold}.name,.small,.kernel{font-size:10px;fill:#555}
.kernel{fill:#1f4e79}.title{font-size:14px;font-weight:bold}
.node{font-size:11px;font-weight:bold}.op{font-size:10px;fill:#333}
.edgelabel,.shape-edge{font-size:9px;fill:#555}.sign{font-size:13px;font-weight:bold}
.face,.bar,.merge,.node-box,.stack{stroke:#333;stroke-width:0.8;stroke-linejoin:round}
.stack{fill:#fff}.node-box.collapsed{stroke-width:1.6}
.kern{stroke:#1f4e79;stroke-width:0.8;fill-opacity:0.75}
.kern.pool{stroke-dasharray:2 1.5}
.pyramid{fill:#f7c6c6;fill-opacity:0.35;stroke:#a33;stroke-width:0.5}
.padding{fill:#8fb8de;fill-opacity:0.55;stroke:none}
.padding-edge{fill:none;stroke:#1f4e79;stroke-width:0.7;stroke-dasharray:2 1.5}
.edge{fill:none;stroke:#555;stroke-width:1.2}.edge.skip{stroke:#2a6fb0}
.arrowhead{fill:#555}
g.layer{cursor:pointer}g.layer:hover .face,g.layer:hover .node-box,g.layer:hover .merge{stroke:#d35400;stroke-width:2}
g.layer.hl .face,g.layer.hl .node-box,g.layer.hl .merge{stroke:#d35400;stroke-width:2.5}
"""
#: The references of a graph that joins named values (only in the pictures that have them).
REF_STYLE = ".edge.ref{stroke:#7b3fa0;stroke-dasharray:5 2}.ref-name{font-size:9px;fill:#7b3fa0}"


def _n(v: float) -> str:
    """A coordinate: rounded to 0.1, without a trailing `.0`."""
    r = round(v, 1)
    if r == 0:
        r = 0.0   # no `-0`
    return str(int(r)) if r == int(r) else f"{r:.1f}"


def _pts(points: tuple[tuple[float, float], ...]) -> str:
    return " ".join(f"{_n(x)},{_n(y)}" for x, y in points)


def _fill(fill: str | None) -> str:
    return f' fill="{fill}"' if fill else ""


def _bend(x0: float, y0: float, x1: float, y1: float) -> str:
    """A cubic from (x0, y0) to (x1, y1), leaving and arriving along the longer axis."""
    if abs(x1 - x0) > abs(y1 - y0):
        mx = (x0 + x1) / 2
        return f"C{_n(mx)},{_n(y0)} {_n(mx)},{_n(y1)} {_n(x1)},{_n(y1)}"
    my = (y0 + y1) / 2
    return f"C{_n(x0)},{_n(my)} {_n(x1)},{_n(my)} {_n(x1)},{_n(y1)}"


def _path_d(p: Path) -> str:
    """Straight segments; with `curve`, the diagonal ones bend smoothly."""
    pts = p.points
    d = [f"M{_n(pts[0][0])},{_n(pts[0][1])}"]
    for (x0, y0), (x1, y1) in pairwise(pts):
        diagonal = x0 != x1 and y0 != y1
        d.append(_bend(x0, y0, x1, y1) if p.curve and diagonal else f"L{_n(x1)},{_n(y1)}")
    return "".join(d)


def shape_svg(s: Shape) -> str:
    """One shape as an SVG element."""
    if isinstance(s, Poly):
        return f'<polygon class="{s.cls}" points="{_pts(s.points)}"{_fill(s.fill)}/>'
    if isinstance(s, Rect):
        return (f'<rect class="{s.cls}" x="{_n(s.x)}" y="{_n(s.y)}" width="{_n(s.w)}" '
                f'height="{_n(s.h)}" rx="4"{_fill(s.fill)}/>')
    if isinstance(s, Circle):
        return (f'<circle class="{s.cls}" cx="{_n(s.x)}" cy="{_n(s.y)}" r="{_n(s.r)}"'
                f'{_fill(s.fill)}/>')
    if isinstance(s, Path):
        end = ' marker-end="url(#arrow)"' if s.arrow else ""
        return f'<path class="{s.cls}" d="{_path_d(s)}"{end}/>'
    anchor = "" if s.anchor == "start" else f' text-anchor="{s.anchor}"'
    return f'<text class="{s.cls}" x="{_n(s.x)}" y="{_n(s.y)}"{anchor}>{escape(s.text)}</text>'


def _group_svg(g: Group) -> str:
    x0, y0, x1, y1 = g.box
    head = (f'<g class="layer" id={quoteattr("layer-" + g.names[0])} '
            f'data-layers={quoteattr(" ".join(g.names))} data-line="{g.line}" '
            f'data-box="{_n(x0)} {_n(y0)} {_n(x1)} {_n(y1)}">'
            f'<title>{escape(g.title)}</title><a href="#L{g.line}">')
    return head + "".join(shape_svg(s) for s in g.shapes) + "</a></g>"


def render(scene: Scene) -> str:
    """The scene as an SVG document (a string), sized to fit everything drawn."""
    x0, y0, x1, y1 = scene.bounds()
    w, h = x1 - x0, y1 - y0
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(w)}" height="{_n(h)}" '
         f'viewBox="{_n(x0)} {_n(y0)} {_n(w)} {_n(h)}">'),
        f"<title>{escape(scene.title)}</title>",
        f"<style>{STYLE.strip()}" + (
            "\n" + REF_STYLE if any(isinstance(s, Path) and "ref" in s.cls.split()
                                    for s in scene.shapes) else "") + "</style>",
        ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
         'markerHeight="7" orient="auto-start-reverse"><path class="arrowhead" '
         'd="M0,1L10,5L0,9z"/></marker></defs>'),
        f'<rect x="{_n(x0)}" y="{_n(y0)}" width="{_n(w)}" height="{_n(h)}" fill="#fff"/>',
    ]
    parts.extend(shape_svg(s) for s in scene.shapes)
    parts.extend(_group_svg(g) for g in scene.groups)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
